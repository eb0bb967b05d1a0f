"""Full rebuilds, and the Indexer: the one entry point for writing an index directory.

Every write holds the directory's write lock, first sweeps what a dead writer left
(index.repair.recover), and ends in one database commit that switches the live state
(index.db). A rebuild fills a new Chroma collection and a new sentence-vector file,
commits, and only then drops the old ones; an update (index.update) adds
content-versioned chunks to the live collection, commits, and only then deletes what
the new state no longer names. Whatever a writer leaves when it dies before its
commit is named by no state: a leftover, never damage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from index.check import CheckReport, Leftovers, remove_leftovers, stray_collections, stray_paths
from index.demo import is_demo_source
from index.lexical import segment_of
from index.load import load_sources
from index.lock import WriteLock, write_lock
from index.manifest import Manifest, now_iso
from index.repair import recover, repair
from index.store import ChunkStore, chroma_client, drop_collection
from index.types import Problem
from index.update import update
from index.vectors import VectorFile, vectors_name
from index.write import (
    IndexReport,
    NothingToIndex,
    Progress,
    StateWriter,
    chunk_params,
    new_state_id,
    source_names,
)
from newsdesk import __version__

__all__ = ["IndexReport", "Indexer", "NothingToIndex", "Progress", "chunk_params", "source_names"]

log = logging.getLogger(__name__)


class Indexer(StateWriter):
    """Writes one index directory (and its Chroma collection) from article sources."""

    def build(self, sources: Sequence[Path], progress: Progress | None = None) -> IndexReport:
        """Index `sources` from scratch into a new collection, then switch to it."""
        with write_lock(self.index_dir) as lock:
            recover(self, lock)
            return self._build(sources, progress, lock)

    def update(
        self, sources: Sequence[Path], prune: bool = False, progress: Progress | None = None
    ) -> IndexReport:
        """Embed only new or changed articles; with `prune`, drop those no longer in `sources`."""
        with write_lock(self.index_dir) as lock:
            recover(self, lock)
            old = self.db.read_manifest()  # an old layout raises, naming the rebuild
            if old is None:
                return self._build(sources, progress, lock)
            return update(self, old, sources, prune, progress, lock)

    def repair(self) -> tuple[CheckReport, list[str]]:
        """Remove leftovers and mend damage from the stored article texts. Returns what
        the check found before and what was done; raises UnusableIndex when the damage
        needs the sources (the article texts themselves are unreadable or wrong)."""
        with write_lock(self.index_dir) as lock:
            return repair(self, lock)

    def _build(
        self, sources: Sequence[Path], progress: Progress | None, lock: WriteLock
    ) -> IndexReport:
        began = time.monotonic()
        loaded = load_sources(sources)
        if not loaded.articles:
            raise NothingToIndex(_nothing_message(sources, loaded.problems))
        old = None if self.db.legacy() else self.db.read_manifest()
        params = chunk_params(self.settings, self.embedder)
        client = chroma_client(self.settings)
        state = new_state_id()
        name = f"{self.settings.chroma.collection_prefix}-{state}"
        lock.record(f"collection {name}")
        store = ChunkStore.create(client, name, self.embedder.model_id, self.embedder.dimension)
        vectors = VectorFile(self.index_dir / vectors_name(state), self.embedder.dimension, 0)
        try:
            done = self.embed_into(store, vectors, loaded.articles, params, progress)
            segments = self.write_segments([segment_of(loaded.articles, done.entries)], {})
            duplicates, threshold = self.duplicates(loaded.articles)
            vectors.sync()
            manifest = Manifest(
                state=state,
                newsdesk_version=__version__,
                collection=name,
                lexical_segments=segments,
                vectors_file=vectors.path.name,
                vector_rows=vectors.rows,
                chroma_url=self.settings.chroma.url,
                model=self.embedder.model_id,
                dimension=self.embedder.dimension,
                chunk_tokens=params.chunk_tokens,
                overlap_tokens=params.overlap_tokens,
                title_tokens=params.title_tokens,
                sources=source_names(sources),
                includes_demo=any(is_demo_source(Path(s)) for s in sources),
                created_at=now_iso(),
                updated_at=now_iso(),
                articles=done.entries,
                duplicates=duplicates,
                dedupe_threshold=threshold,
            )
            self.db.commit(manifest, loaded.articles, done.sentences, replace_all=True)
            self.keep_segments(manifest.lexical_segments)
        except BaseException:
            vectors.close()
            drop_collection(client, name)
            remove_leftovers(self.settings, Leftovers(paths=stray_paths(self.index_dir, old)), None)
            raise
        vectors.close()
        if old is not None and old.chroma_url == self.settings.chroma.url:
            drop_collection(client, old.collection)
        # The old state's files, and whatever killed writes left (collections too, embedded).
        leftovers = Leftovers(
            collections=stray_collections(self.settings, name),
            paths=stray_paths(self.index_dir, manifest),
        )
        remove_leftovers(self.settings, leftovers, None)
        return IndexReport(
            manifest=manifest,
            problems=loaded.problems,
            added=len(loaded.articles),
            chunks_embedded=manifest.chunk_count,
            seconds=time.monotonic() - began,
        )


def _nothing_message(sources: Sequence[Path], problems: Sequence[Problem]) -> str:
    names = ", ".join(str(s) for s in sources)
    detail = f" ({len(problems)} problems, see above)" if problems else ""
    return f"no articles found in {names}{detail}; the existing index was not changed"
