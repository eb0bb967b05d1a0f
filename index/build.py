"""Full rebuilds and incremental updates of an index directory.

Both write in an order that keeps the last complete state serving: a rebuild
fills a new collection and switches the manifest to it only at the end; an update
adds content-versioned chunks first, switches the manifest, and only then removes
what the new state no longer names.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.articles import (
    ARTICLES_DIR,
    ArticleLines,
    read_articles,
    write_articles,
)
from index.check import (
    CheckReport,
    Leftovers,
    check_index,
    find_leftovers,
    remove_leftovers,
    stray_collections,
    stray_paths,
)
from index.chunk import chunk_text, embedding_input
from index.dedupe import find_duplicates, update_duplicates
from index.demo import is_demo_source
from index.embed import Embedder, Vectors
from index.embed_backend import Batch, EmbedBackend, InProcess
from index.lexical import LEXICAL_DIR, Segment, compact, segment_of
from index.load import load_sources
from index.lock import WriteLock, write_lock
from index.manifest import (
    ArticleEntry,
    Manifest,
    UnusableIndex,
    check_compatible,
    now_iso,
    read_manifest,
    write_manifest,
)
from index.reuse import Reuse, plan_reuse
from index.sentvecs import Pooler, SentenceVectors, read_vectors, sweep_vectors, vector_file
from index.store import ChunkStore, StoreUnavailable, chroma_client, chunk_ids, drop_collection
from index.text import TOKENIZER
from index.types import Article, Chunk, Problem
from newsdesk import __version__
from newsdesk.errors import NewsdeskError
from newsdesk.settings import ChunkingSettings, Settings

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (chunks written, chunks to write): embedded or copied
_SLAB = 256  # chunks embedded and written per step: bounds memory, lets Ctrl-C and progress through
# An updated article's possible copies: the articles of the nearest chunks to a few of its
# own (copies of a story embed alike; the exact shingle check then decides).
_COPY_PROBES = 5
_COPY_NEIGHBOURS = 8
_COPY_DISTANCE = 0.3  # cosine distance: loose, as the headline in every chunk differs


class NothingToIndex(NewsdeskError, RuntimeError):
    """The sources held no usable article; the existing index is left as it was."""


@dataclass(frozen=True, slots=True)
class ChunkParams:
    chunk_tokens: int
    overlap_tokens: int
    title_tokens: int


@dataclass
class IndexReport:
    """What a build or update did, for the CLI to print and tests to check."""

    manifest: Manifest | None
    problems: list[Problem] = field(default_factory=list)
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    chunks_copied: int = 0  # kept from an article's previous version, not embedded again
    chunks_removed: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """One line: what the index holds now and what this run changed."""
        assert self.manifest is not None
        copied = f" ({self.chunks_copied} unchanged ones copied)" if self.chunks_copied else ""
        groups = self.manifest.duplicate_groups
        copies = f" (near-duplicate groups: {groups})" if groups else ""
        holds = f"{self.manifest.article_count} articles{copies}"
        return (
            f"{holds}, {self.manifest.chunk_count} chunks in "
            f"index; this run: {self.added} added, {self.changed} changed, {self.unchanged} "
            f"unchanged, {self.removed} removed; {self.chunks_embedded} chunks embedded{copied} "
            f"in {self.seconds:.1f}s"
        )


def chunk_params(
    settings: Settings, embedder: Embedder, built: Manifest | None = None
) -> ChunkParams:
    """Chunk size from the model unless set, so the title plus a chunk fits its window.

    An update passes the index's manifest (`built`): every chunking setting not given
    explicitly (flag, environment, config file) keeps the value the index was built with,
    so a changed default never stops an old index from taking updates. One given
    explicitly and different still refuses, naming the rebuild (check_compatible).
    """
    cfg = settings.chunking
    if built is not None:
        given = cfg.model_dump(include=cfg.model_fields_set)
        own: dict[str, int] = {
            "overlap_tokens": built.overlap_tokens,
            "title_tokens": built.title_tokens,
        }
        if not given.keys() & {"max_tokens", "title_tokens"}:
            own["max_tokens"] = built.chunk_tokens
        cfg = ChunkingSettings(**{**own, **given})
    size = cfg.max_tokens or embedder.max_tokens - cfg.title_tokens
    if size + cfg.title_tokens > embedder.max_tokens:
        log.warning(
            "chunking.max_tokens %d + title_tokens %d exceeds the model's %d word-pieces: "
            "chunks will be embedded truncated",
            size,
            cfg.title_tokens,
            embedder.max_tokens,
        )
    if cfg.overlap_tokens >= size:
        raise ValueError(f"chunking.overlap_tokens must be below the chunk size {size}")
    return ChunkParams(size, cfg.overlap_tokens, cfg.title_tokens)


class Indexer:
    """Writes one index directory (and its Chroma collection) from article sources."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        backend: EmbedBackend | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder or Embedder(settings.embedding)
        # Where chunks are embedded (index.embed_backend): this process unless given,
        # e.g. Ray workers (index.embed_ray); this object still writes everything.
        self.backend = backend or InProcess(self.embedder)
        self.index_dir = settings.index_dir

    def build(self, sources: Sequence[Path], progress: Progress | None = None) -> IndexReport:
        """Index `sources` from scratch into a new collection, then switch to it."""
        with write_lock(self.index_dir) as lock:
            self._recover(lock)
            return self._build(sources, progress, lock)

    def update(
        self, sources: Sequence[Path], prune: bool = False, progress: Progress | None = None
    ) -> IndexReport:
        """Embed only new or changed articles; with `prune`, drop those no longer in `sources`."""
        with write_lock(self.index_dir) as lock:
            self._recover(lock)
            return self._update(sources, prune, progress, lock)

    def repair(self) -> tuple[CheckReport, list[str]]:
        """Remove leftovers and mend damage from the stored article texts. Returns what
        the check found before and what was done; raises UnusableIndex when the damage
        needs the sources (the article texts themselves are unreadable or wrong)."""
        with write_lock(self.index_dir) as lock:
            found = check_index(self.settings)
            done = []
            if found.leftovers:
                store = self._live_store(found.manifest)
                remove_leftovers(self.settings, found.leftovers, store)
                done += [f"removed {line}" for line in found.leftovers.lines()]
            if not found.ok:
                done += self._mend(found, lock)
            return found, done

    def _recover(self, lock: WriteLock) -> None:
        """Sweep what the last writer left if it died or failed half-way (its record
        names the collection it was filling), so a re-run starts clean."""
        if not lock.unfinished:
            return
        log.warning(
            "the last build or update of %s (pid %s) did not finish: removing what it left",
            self.index_dir,
            lock.unfinished[0],
        )
        manifest = read_manifest(self.index_dir)
        live = manifest.collection if manifest is not None else None
        for line in lock.unfinished[1:]:
            kind, _, name = line.partition(" ")
            if kind == "collection" and name != live:
                drop_collection(chroma_client(self.settings), name)
        store = self._live_store(manifest)
        remove_leftovers(self.settings, find_leftovers(self.settings, manifest, store), store)

    def _live_store(self, manifest: Manifest | None) -> ChunkStore | None:
        """The live collection, if it is in the store these settings point at."""
        if manifest is None or manifest.chroma_url != self.settings.chroma.url:
            return None
        try:
            return ChunkStore.open(chroma_client(self.settings), manifest.collection)
        except StoreUnavailable:
            return None

    def _mend(self, found: CheckReport, lock: WriteLock) -> list[str]:
        """Embed damaged articles again from the stored texts (into a new collection if
        the old one is gone or unusable), rebuild the keyword index if it is damaged,
        and switch the manifest to the mended state."""
        manifest, articles = found.manifest, found.articles
        if manifest is None or articles is None:
            raise UnusableIndex("cannot repair: " + "; ".join(found.damage))
        check_compatible(manifest, self.settings, self.embedder.model_id)
        params = ChunkParams(manifest.chunk_tokens, manifest.overlap_tokens, manifest.title_tokens)
        client = chroma_client(self.settings)
        collection = manifest.collection
        if found.collection:
            collection = f"{self.settings.chroma.collection_prefix}-{_new_state_id()}"
            lock.record(f"collection {collection}")
            store = ChunkStore.create(
                client, collection, self.embedder.model_id, self.embedder.dimension
            )
            todo = list(articles.values())
        else:
            store = ChunkStore.open(client, collection)
            todo = [articles[i] for i in sorted(found.reembed)]
        entries, _ = self._embed_into(store, todo, params, None)
        live = {**manifest.articles, **entries}
        segments = manifest.lexical_segments
        if found.lexical or entries != {i: manifest.articles[i] for i in entries}:
            segments = self._write_segments([segment_of(articles.values(), live)], {})
        mended = manifest.model_copy(
            update={
                "collection": collection,
                "articles": live,
                "lexical_segments": segments,
                "lexical_dir": None if segments else manifest.lexical_dir,
                "updated_at": now_iso(),
            }
        )
        write_manifest(self.index_dir, mended)
        if collection != manifest.collection:
            drop_collection(client, manifest.collection)
        self._sweep_lexical(mended)
        chunks = sum(entry.chunks for entry in entries.values())
        done = [f"embedded {len(todo)} articles again ({chunks} chunks)"]
        if segments != manifest.lexical_segments:
            done.append("rebuilt the keyword index")
        if collection != manifest.collection:
            done.append(f"moved the index into a new collection {collection}")
        return done

    def _build(
        self, sources: Sequence[Path], progress: Progress | None, lock: WriteLock
    ) -> IndexReport:
        began = time.monotonic()
        loaded = load_sources(sources)
        if not loaded.articles:
            raise NothingToIndex(_nothing_message(sources, loaded.problems))
        old = read_manifest(self.index_dir)
        params = chunk_params(self.settings, self.embedder)
        client = chroma_client(self.settings)
        state = _new_state_id()
        name = f"{self.settings.chroma.collection_prefix}-{state}"
        lock.record(f"collection {name}")
        store = ChunkStore.create(client, name, self.embedder.model_id, self.embedder.dimension)
        try:
            entries, _ = self._embed_into(store, loaded.articles, params, progress)
            articles_file = self._write_articles(state, loaded.articles)
            segments = self._write_segments([segment_of(loaded.articles, entries)], {})
            duplicates, threshold = self._duplicates(loaded.articles)
            manifest = Manifest(
                newsdesk_version=__version__,
                collection=name,
                articles_file=articles_file,
                lexical_segments=segments,
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
                articles=entries,
                duplicates=duplicates,
                dedupe_threshold=threshold,
            )
            write_manifest(self.index_dir, manifest)
        except BaseException:
            drop_collection(client, name)
            self._remove_articles(state)
            self._sweep_lexical(old)
            kept = old.articles.items() if old is not None else []
            sweep_vectors(self.index_dir, ((i, e.hash) for i, e in kept))
            raise
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

    def _update(
        self, sources: Sequence[Path], prune: bool, progress: Progress | None, lock: WriteLock
    ) -> IndexReport:
        old = read_manifest(self.index_dir)
        if old is None:
            return self._build(sources, progress, lock)
        began = time.monotonic()
        params = chunk_params(self.settings, self.embedder, old)
        check_compatible(
            old,
            self.settings,
            self.embedder.model_id,
            (params.chunk_tokens, params.overlap_tokens, params.title_tokens),
        )
        loaded = load_sources(sources)
        problems = list(loaded.problems)
        old_lines = ArticleLines(self.index_dir / old.articles_file)
        fresh = [a for a in loaded.articles if a.id not in old.articles]
        changed = [
            a for a in loaded.articles if a.id in old.articles and old.articles[a.id].hash != a.hash
        ]
        removed = self._ids_to_prune(old, loaded.articles, problems) if prune else []
        report = IndexReport(
            manifest=old,
            problems=problems,
            added=len(fresh),
            changed=len(changed),
            unchanged=len(loaded.articles) - len(fresh) - len(changed),
            removed=len(removed),
        )
        legacy = not old.lexical_segments  # written before segments: convert it now
        if not fresh and not changed and not removed and not legacy:
            if old.dedupe_threshold != self._dedupe_threshold():  # dedupe settings changed
                report.manifest = self._regroup(old, old_lines)
            report.seconds = time.monotonic() - began
            return report
        client = chroma_client(self.settings)
        store = ChunkStore.open(client, old.collection, model=old.model)
        before = old_lines.read({a.id for a in changed})
        previous = {i: (article, old.articles[i]) for i, article in before.items()}
        entries, copied = self._embed_into(store, fresh + changed, params, progress, previous)
        articles = dict(old.articles)
        for article_id in removed:
            del articles[article_id]
        articles.update(entries)
        state = _new_state_id()
        try:
            articles_file = f"{ARTICLES_DIR}/{state}.jsonl"
            old_lines.rewrite(self.index_dir / articles_file, fresh + changed, removed)
            # Regroup everything only when the groups are new; else only what changed.
            regroup = old.dedupe_threshold != self._dedupe_threshold()
            everything = legacy or (regroup and self._dedupe_threshold() is not None)
            current = read_articles(self.index_dir / articles_file).values() if everything else ()
            if legacy:
                segments = [segment_of(current, articles)]
                names = {}
            else:
                loaded_segments = [self._segment(name) for name in old.lexical_segments]
                names = {
                    id(seg): n for seg, n in zip(loaded_segments, old.lexical_segments, strict=True)
                }
                segments = [*loaded_segments, segment_of(fresh + changed, articles)]
            live = {c for i, e in articles.items() for c in chunk_ids(i, e.hash, e.chunks)}
            if regroup or legacy:
                duplicates, threshold = self._duplicates(current)
            else:
                duplicates, threshold = self._duplicates_after(
                    old, store, fresh + changed, removed, articles, old_lines
                )
            manifest = old.model_copy(
                update={
                    "articles_file": articles_file,
                    "lexical_segments": self._write_segments(compact(segments, live), names),
                    "lexical_dir": None,
                    "articles": articles,
                    "duplicates": duplicates,
                    "dedupe_threshold": threshold,
                    "sources": sorted({*old.sources, *source_names(sources)}),
                    "includes_demo": old.includes_demo or any(is_demo_source(s) for s in sources),
                    "updated_at": now_iso(),
                }
            )
            write_manifest(self.index_dir, manifest)
        except BaseException:
            self._remove_articles(state)
            self._sweep_lexical(old)
            raise
        stale = [old.articles[a.id] for a in changed] + [old.articles[i] for i in removed]
        stale_ids = [
            chunk_id
            for article_id, entry in zip([a.id for a in changed] + removed, stale, strict=True)
            for chunk_id in chunk_ids(article_id, entry.hash, entry.chunks)
        ]
        store.delete(stale_ids)
        for article_id in [a.id for a in changed] + removed:
            vector_file(self.index_dir, article_id, old.articles[article_id].hash).unlink(
                missing_ok=True
            )
        self._remove_articles(Path(old.articles_file).stem)
        self._sweep_lexical(manifest)
        report.manifest = manifest
        report.chunks_embedded = sum(entry.chunks for entry in entries.values()) - copied
        report.chunks_copied = copied
        report.chunks_removed = len(stale_ids)
        report.seconds = time.monotonic() - began
        return report

    def _dedupe_threshold(self) -> float | None:
        cfg = self.settings.dedupe
        return cfg.threshold if cfg.enabled else None

    def _duplicates(self, articles: Iterable[Article]) -> tuple[dict[str, str], float | None]:
        """Near-duplicate groups of the whole live set (index.dedupe), and the threshold
        they were found with: for a build, and for an update when the groups are new or
        the dedupe settings changed (otherwise `_duplicates_after` patches them). It costs
        about 0.75 ms per 3,000-character article on one core (40 s for 50k articles)."""
        threshold = self._dedupe_threshold()
        if threshold is None:
            return {}, None
        began = time.monotonic()
        found = find_duplicates(articles, threshold)
        log.info(
            "near-duplicates: %d articles in %d groups (%.1fs)",
            len(found),
            len(set(found.values())),
            time.monotonic() - began,
        )
        return found, threshold

    def _duplicates_after(
        self,
        old: Manifest,
        store: ChunkStore,
        touched: Sequence[Article],
        removed: Sequence[str],
        live: Mapping[str, ArticleEntry],
        lines: ArticleLines,
    ) -> tuple[dict[str, str], float | None]:
        """The groups after an update, from the old ones and the touched articles'
        neighbours in the vector index (index.dedupe.update_duplicates)."""
        threshold = self._dedupe_threshold()
        if threshold is None:
            return {}, None

        def neighbours(article: Article) -> set[str]:
            entry = live[article.id]
            ids = chunk_ids(article.id, entry.hash, entry.chunks)
            probes = ids[:: max(1, len(ids) // _COPY_PROBES)][:_COPY_PROBES]
            found = set()
            for vector in store.vectors(probes).values():
                for hit in store.query(vector, _COPY_NEIGHBOURS):
                    other = live.get(hit.article_id)
                    current = other is not None and other.hash == hit.metadata.get("hash")
                    if current and hit.distance <= _COPY_DISTANCE:
                        found.add(hit.article_id)
            return found

        found = update_duplicates(
            old.duplicates, touched, removed, neighbours, lines.read, threshold
        )
        return found, threshold

    def _regroup(self, old: Manifest, lines: ArticleLines) -> Manifest:
        """The same state with its duplicate groups found again under the current settings."""
        articles = lines.read(set(old.articles)).values()
        duplicates, threshold = self._duplicates(articles)
        manifest = old.model_copy(
            update={
                "duplicates": duplicates,
                "dedupe_threshold": threshold,
                "updated_at": now_iso(),
            }
        )
        write_manifest(self.index_dir, manifest)
        return manifest

    def _ids_to_prune(
        self, old: Manifest, articles: Sequence[Article], problems: list[Problem]
    ) -> list[str]:
        """Ids gone from the sources, unless some input was unreadable: then we can't tell."""
        if any(not p.kept for p in problems):
            problems.append(
                Problem(
                    where="--prune",
                    message="nothing pruned: some input could not be read, so an article "
                    "missing from the sources may only be missing from a broken file",
                )
            )
            return []
        present = {a.id for a in articles}
        return sorted(set(old.articles) - present)

    def _embed_into(
        self,
        store: ChunkStore,
        articles: Sequence[Article],
        params: ChunkParams,
        progress: Progress | None,
        previous: Mapping[str, tuple[Article, ArticleEntry]] | None = None,
    ) -> tuple[dict[str, ArticleEntry], int]:
        """Chunk all articles, then embed and write them a slab at a time; chunks kept
        unchanged from a `previous` version (by article id) have their vectors copied.
        Returns the articles' entries and how many chunk vectors were copied."""
        spans = self.embedder.token_spans
        rows: list[tuple[Article, Chunk]] = []
        entries: dict[str, ArticleEntry] = {}
        for article in articles:
            chunks = chunk_text(
                article.id, article.text, spans, params.chunk_tokens, params.overlap_tokens
            )
            rows.extend((article, chunk) for chunk in chunks)
            entries[article.id] = ArticleEntry(
                hash=article.hash, spans=[(c.start, c.end) for c in chunks]
            )
        titles = {a.id: self.title_prefix(a.title, params.title_tokens) for a in articles}
        pooler = Pooler(
            self.index_dir, self.embedder.dimension, {i: e.chunks for i, e in entries.items()}
        )
        copied = self._copy_unchanged(
            store, articles, entries, pooler, params.title_tokens, previous or {}
        )
        slabs = [rows[lo : lo + _SLAB] for lo in range(0, len(rows), _SLAB)]
        todos = [[(a, c) for a, c in slab if (a.id, c.index) not in copied] for slab in slabs]

        def batches() -> Iterator[Batch]:
            """The slabs' model inputs, made as the backend asks for them."""
            for todo in filter(None, todos):
                texts = [embedding_input(titles[a.id], c.text) for a, c in todo]
                local = [
                    pooler.local_spans(a, c.start, c.end, len(text) - len(c.text))
                    for (a, c), text in zip(todo, texts, strict=True)
                ]
                yield texts, local

        results = self.backend.embed_batches(batches())
        for lo, slab, todo in zip(range(0, len(rows), _SLAB), slabs, todos, strict=True):
            vectors = dict(copied)
            if todo:
                embedded, sums, counts = next(results)
                for (a, c), vector, s, n in zip(todo, embedded, sums, counts, strict=True):
                    vectors[(a.id, c.index)] = vector
                    pooler.add(a, c.start, c.end, s, n)
            for a, c in slab:
                if (a.id, c.index) in copied:
                    pooler.skip(a)
            store.add(slab, np.stack([vectors[(a.id, c.index)] for a, c in slab]))
            if progress is not None:
                progress(lo + len(slab), len(rows))
        return entries, len(copied)

    def _copy_unchanged(
        self,
        store: ChunkStore,
        articles: Sequence[Article],
        entries: Mapping[str, ArticleEntry],
        pooler: Pooler,
        title_tokens: int,
        previous: Mapping[str, tuple[Article, ArticleEntry]],
    ) -> dict[tuple[str, int], Vectors]:
        """Stored vectors of the chunks an edit left alone, by (article id, chunk number);
        their sentences' pooled vectors go to the pooler (see index.reuse)."""
        plans: dict[str, tuple[Article, SentenceVectors, Reuse, list[str]]] = {}
        for article in articles:
            if article.id not in previous:
                continue
            old_article, old_entry = previous[article.id]
            old_vectors = read_vectors(self.index_dir, article.id, old_entry.hash)
            retitled = self.title_prefix(old_article.title, title_tokens) != self.title_prefix(
                article.title, title_tokens
            )
            if retitled or old_vectors is None:
                continue  # an embedded title is in every chunk's model input
            plan = plan_reuse(
                old_article.text,
                old_entry.spans,
                old_vectors.spans,
                article.text,
                entries[article.id].spans,
                pooler.spans(article),
            )
            old_ids = chunk_ids(article.id, old_entry.hash, old_entry.chunks)
            plans[article.id] = (article, old_vectors, plan, old_ids)
        wanted = [ids[old] for _, _, plan, ids in plans.values() for old in plan.chunks.values()]
        found = store.vectors(wanted) if wanted else {}
        copied: dict[tuple[str, int], Vectors] = {}
        for article, old_vectors, plan, old_ids in plans.values():
            if all(old_ids[old] in found for old in plan.chunks.values()):  # else: embed it all
                pooler.carry(article, old_vectors, plan.sentences)
                for new, old in plan.chunks.items():
                    copied[(article.id, new)] = found[old_ids[old]]
        return copied

    def _write_articles(self, state: str, articles: Iterable[Article]) -> str:
        """The article texts of one index state, beside Chroma."""
        articles_file = f"{ARTICLES_DIR}/{state}.jsonl"
        write_articles(self.index_dir / articles_file, articles)
        return articles_file

    def _remove_articles(self, state: str) -> None:
        (self.index_dir / ARTICLES_DIR / f"{state}.jsonl").unlink(missing_ok=True)

    def _segment(self, name: str) -> Segment:
        return Segment.load(self.index_dir / LEXICAL_DIR / name, TOKENIZER)

    def _write_segments(self, segments: Sequence[Segment], names: Mapping[int, str]) -> list[str]:
        """Names of `segments`, saving those not yet on disk (`names` has the saved ones,
        by identity) under new names."""
        written = []
        for segment in segments:
            name = names.get(id(segment))
            if name is None:
                name = _new_state_id()
                segment.save(self.index_dir / LEXICAL_DIR / name)
            written.append(name)
        return written

    def _sweep_lexical(self, manifest: Manifest | None) -> None:
        """Remove what `manifest` does not name from lexical/: segments of replaced or
        failed states, temp directories of killed writes, an old bm25s directory."""
        root = self.index_dir / LEXICAL_DIR
        if not root.is_dir():
            return
        keep = set(manifest.lexical_segments) if manifest is not None else set()
        if manifest is not None and manifest.lexical_dir:
            keep.add(Path(manifest.lexical_dir).name)
        for path in root.iterdir():
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()

    def title_prefix(self, title: str, max_tokens: int) -> str:
        """The title cut to `max_tokens` word-pieces, so it never crowds out the chunk."""
        if max_tokens == 0 or not title:
            return ""
        spans = self.embedder.token_spans(title)
        if len(spans) <= max_tokens:
            return title
        return title[: spans[max_tokens - 1][1]]


def _new_state_id() -> str:
    """Sorts by time; the random part keeps two builds in the same second apart."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def source_names(sources: Sequence[Path]) -> list[str]:
    return sorted(str(Path(s).resolve()) for s in sources)


def _nothing_message(sources: Sequence[Path], problems: Sequence[Problem]) -> str:
    names = ", ".join(str(s) for s in sources)
    detail = f" ({len(problems)} problems, see above)" if problems else ""
    return f"no articles found in {names}{detail}; the existing index was not changed"
