"""What every index write shares: chunking parameters, the report, and `StateWriter`,
which embeds articles into a Chroma collection (copying the vectors of chunks an edit
left alone), pools their sentence vectors into the array file, writes keyword segments
and finds near-duplicate groups. Build (index.build), update (index.update) and repair
(index.repair) are transactions made of these steps, each ending in one commit.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.chunk import chunk_text, embedding_input
from index.db import IndexDB, SentenceRows
from index.dedupe import find_duplicates
from index.embed import Embedder, Vectors
from index.embed_backend import Batch, EmbedBackend, InProcess
from index.lexical import LEXICAL_DIR, Segment
from index.manifest import ArticleEntry, Manifest
from index.reuse import Reuse, plan_reuse
from index.sentvecs import Pooler, SentenceVectors
from index.store import ChunkStore, chunk_ids
from index.text import TOKENIZER
from index.types import Article, Chunk, Problem
from index.vectors import VectorFile
from newsdesk.errors import NewsdeskError
from newsdesk.settings import ChunkingSettings, Settings

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (chunks written, chunks to write): embedded or copied
_SLAB = 256  # chunks embedded and written per step: bounds memory, lets Ctrl-C and progress through
# An article's previous version: its text, its entry, its sentence vectors if it had them.
Previous = Mapping[str, tuple[Article, ArticleEntry, SentenceVectors | None]]


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


@dataclass
class Embedded:
    """What `StateWriter.embed_into` wrote: entries and sentence rows by article id."""

    entries: dict[str, ArticleEntry]
    sentences: dict[str, SentenceRows]
    copied: int  # chunk vectors copied from a previous version, not embedded

    @property
    def chunks(self) -> int:
        return sum(entry.chunks for entry in self.entries.values())


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


def new_state_id() -> str:
    """Sorts by time; the random part keeps two builds in the same second apart."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def source_names(sources: Sequence[Path]) -> list[str]:
    return sorted(str(Path(s).resolve()) for s in sources)


class StateWriter:
    """The steps of a write to one index directory (and its Chroma collection)."""

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
        self.db = IndexDB(settings.index_dir)
        self._segments: dict[str, Segment] = {}  # loaded or written, by name (see segment)

    def embed_into(
        self,
        store: ChunkStore,
        vectors: VectorFile,
        articles: Sequence[Article],
        params: ChunkParams,
        progress: Progress | None,
        previous: Previous | None = None,
    ) -> Embedded:
        """Chunk all articles, then embed and write them a slab at a time (chunk vectors
        to `store`, sentence vectors to `vectors` as each article completes); chunks kept
        unchanged from a `previous` version (by article id) have their vectors copied."""
        spans = self.embedder.token_spans
        rows: list[tuple[Article, Chunk]] = []
        entries: dict[str, ArticleEntry] = {}
        for article in articles:
            chunks = chunk_text(
                article.id, article.text, spans, params.chunk_tokens, params.overlap_tokens
            )
            rows.extend((article, chunk) for chunk in chunks)
            entries[article.id] = ArticleEntry.of(article.hash, [(c.start, c.end) for c in chunks])
        titles = {a.id: self.title_prefix(a.title, params.title_tokens) for a in articles}
        sentences: dict[str, SentenceRows] = {}

        def pooled(article: Article, found: SentenceVectors) -> None:
            sentences[article.id] = vectors.append(found)

        pooler = Pooler(pooled, self.embedder.dimension, {i: e.chunks for i, e in entries.items()})
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
            chunk_vectors = dict(copied)
            if todo:
                embedded, sums, counts = next(results)
                for (a, c), vector, s, n in zip(todo, embedded, sums, counts, strict=True):
                    chunk_vectors[(a.id, c.index)] = vector
                    pooler.add(a, c.start, c.end, s, n)
            for a, c in slab:
                if (a.id, c.index) in copied:
                    pooler.skip(a)
            store.add(slab, np.stack([chunk_vectors[(a.id, c.index)] for a, c in slab]))
            if progress is not None:
                progress(lo + len(slab), len(rows))
        return Embedded(entries, sentences, len(copied))

    def _copy_unchanged(
        self,
        store: ChunkStore,
        articles: Sequence[Article],
        entries: Mapping[str, ArticleEntry],
        pooler: Pooler,
        title_tokens: int,
        previous: Previous,
    ) -> dict[tuple[str, int], Vectors]:
        """Stored vectors of the chunks an edit left alone, by (article id, chunk number);
        their sentences' pooled vectors go to the pooler (see index.reuse)."""
        plans: dict[str, tuple[Article, SentenceVectors, Reuse, list[str]]] = {}
        for article in articles:
            if article.id not in previous:
                continue
            old_article, old_entry, old_vectors = previous[article.id]
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

    def title_prefix(self, title: str, max_tokens: int) -> str:
        """The title cut to `max_tokens` word-pieces, so it never crowds out the chunk."""
        if max_tokens == 0 or not title:
            return ""
        spans = self.embedder.token_spans(title)
        if len(spans) <= max_tokens:
            return title
        return title[: spans[max_tokens - 1][1]]

    def segment(self, name: str) -> Segment:
        """A segment of the live state. Segments are write-once, so one loaded or
        written here is kept for the next update, with what was worked out about it
        (`Segment.versions`): at a million chunks that is 0.4 s an update. Those the
        live state no longer names are let go (`keep_segments`)."""
        found = self._segments.get(name)
        if found is None:
            found = self._segments[name] = Segment.load(
                self.index_dir / LEXICAL_DIR / name, TOKENIZER
            )
        return found

    def keep_segments(self, names: Sequence[str]) -> None:
        self._segments = {n: s for n, s in self._segments.items() if n in names}

    def write_segments(self, segments: Sequence[Segment], names: Mapping[int, str]) -> list[str]:
        """Names of `segments`, saving those not yet on disk (`names` has the saved ones,
        by identity) under new names: write-once directories the commit then names."""
        written = []
        for segment in segments:
            name = names.get(id(segment))
            if name is None:
                name = new_state_id()
                segment.save(self.index_dir / LEXICAL_DIR / name)
                self._segments[name] = segment
            written.append(name)
        return written

    def dedupe_threshold(self) -> float | None:
        cfg = self.settings.dedupe
        return cfg.threshold if cfg.enabled else None

    def duplicates(self, articles: Iterable[Article]) -> tuple[dict[str, str], float | None]:
        """Near-duplicate groups of the whole live set (index.dedupe), and the threshold
        they were found with: for a build, and for an update when the groups are new or
        the dedupe settings changed (otherwise index.update patches them). It costs
        about 0.75 ms per 3,000-character article on one core (40 s for 50k articles)."""
        threshold = self.dedupe_threshold()
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
