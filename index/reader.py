"""A read-only, consistent view of one index state, for everything that asks questions.

Everything comes from the state the index database named when the reader opened,
through one read transaction held for the reader's life (index.db.Snapshot): chunk
spans and each article's date and source at open, an article's text and sentence rows
when a passage needs them; the Chroma collection (filtered to that state's article
versions), the BM25 segments and the sentence-vector file, mapped read-only. A write
that commits later does not disturb an open reader (the transaction keeps its rows,
Chroma chunks it names are removed only by later writes, and a replaced file stays
mapped); `IndexReader.is_current` tells when it is time to reopen. One reader serves
concurrent questions: nothing in it changes after open.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from functools import cached_property, lru_cache

import numpy as np
import numpy.typing as npt

from index.dates import epoch_seconds
from index.db import IndexDB, SentenceRows, Snapshot
from index.embed import Embedder
from index.lexical import LEXICAL_DIR, LexicalIndex, LexicalIndexError
from index.manifest import Manifest, UnusableIndex, check_compatible
from index.sentences import sentence_spans
from index.sentvecs import SentenceVectors
from index.store import (
    ChunkStore,
    StoreUnavailable,
    chroma_client,
    chunk_ids,
    live_versions,
    parse_chunk_id,
)
from index.types import Article, ArticleInfo
from index.vectors import VectorArray
from newsdesk.settings import Settings

_OPEN_TRIES = 3  # a build may replace the vector file between the snapshot and the mapping
_CACHED = 512  # articles (and their sentence rows) kept decoded: a few questions' worth


class IndexReader:
    def __init__(
        self, settings: Settings, embedder: Embedder | None = None, fresh: bool = False
    ) -> None:
        """`fresh`: the state was written by another process (see `chroma_client`)."""
        self.settings = settings
        self.embedder = embedder or Embedder(settings.embedding)
        self.db = IndexDB(settings.index_dir)
        for attempt in range(_OPEN_TRIES):
            snapshot, manifest = self._snapshot()
            self.manifest: Manifest = manifest
            check_compatible(manifest, settings, self.embedder.model_id)
            path = settings.index_dir / manifest.vectors_file
            try:
                # First, so Chroma loads its vectors while the rest opens (ChunkStore.warm)
                client = chroma_client(settings, fresh=fresh)
                self.store = ChunkStore.open(client, manifest.collection, model=manifest.model)
                self.store.warm(manifest.dimension)
                self._vectors = VectorArray(path, manifest.dimension, manifest.vector_rows)
                root = settings.index_dir / LEXICAL_DIR
                live = live_versions(manifest.articles)
                self.lexical = LexicalIndex.open(root, manifest.lexical_segments, live)
                break
            except (UnusableIndex, LexicalIndexError, StoreUnavailable):
                snapshot.close()
                # files of a state a writer replaced meanwhile: read the new one
                if attempt == _OPEN_TRIES - 1 or self.db.version() == manifest.state:
                    raise
        self.articles = ArticleTexts(snapshot, manifest.articles)
        self.infos = snapshot.infos()
        self._sentence_rows = lru_cache(maxsize=_CACHED)(snapshot.sentences)

    def _snapshot(self) -> tuple[Snapshot, Manifest]:
        if self.db.exists():
            snapshot = Snapshot(self.db.path)
            if snapshot.manifest is not None:
                return snapshot, snapshot.manifest
            snapshot.close()
        raise UnusableIndex(
            f"no index in {self.settings.index_dir}: build one with "
            "`newsdesk index build SOURCE...` (or `newsdesk index build --demo`)"
        )

    @cached_property
    def table(self) -> ArticleTable:
        """Built on the first filtered question, not at open: most questions have none."""
        return ArticleTable(self.infos.values())

    @cached_property
    def lexical_articles(self) -> npt.NDArray[np.int64]:
        """The article (its number in `table`) of each keyword-index row, -1 for dead rows."""
        return self.lexical.row_articles(self.table.number)

    @property
    def version(self) -> str:
        """Names this index state: changes with every build or update that changed anything."""
        return self.manifest.state

    def is_current(self) -> bool:
        """Whether this is still the live state: one indexed lookup, asked before every
        chat answer."""
        return self.db.version() == self.manifest.state

    def is_live_chunk(self, chunk_id: str) -> bool:
        """True for a chunk of this state, told by its id alone: a hit whose record a
        writer in another process has deleted meanwhile comes back without metadata."""
        article_id, hash_prefix, number = parse_chunk_id(chunk_id)
        entry = self.manifest.articles.get(article_id)
        return entry is not None and entry.hash[:12] == hash_prefix and number < entry.chunks

    def chunk_ids(self, article_ids: Iterable[str]) -> list[str]:
        entries = self.manifest.articles
        return [
            chunk
            for article_id in article_ids
            if article_id in entries
            for chunk in chunk_ids(article_id, entries[article_id].hash, entries[article_id].chunks)
        ]

    def chunk_span(self, chunk_id: str) -> tuple[str, int, int]:
        """(article id, start, end) of a live chunk."""
        article_id, _, number = parse_chunk_id(chunk_id)
        start, end = self.manifest.articles[article_id].span(number)
        return article_id, start, end

    def sentences(self, article_id: str) -> list[tuple[int, int]]:
        """Sentence spans of an article: as stored at index time, else split now."""
        found = self._sentence_rows(article_id)
        if found is not None:
            return found.spans
        return sentence_spans(self.articles[article_id].text)

    def sentence_vectors(self, article_id: str) -> SentenceVectors | None:
        """The article's sentence vectors from index time (None when it has none, or
        from another sentence splitter): read from the mapped file, so the page cache,
        not this process, holds the ones in use."""
        found: SentenceRows | None = self._sentence_rows(article_id)
        return self._vectors.read(found) if found is not None else None


class ArticleTexts(Mapping[str, Article]):
    """The state's articles by id, read from the reader's snapshot when asked for and
    the most recent kept: a question reads a few dozen, and holding all of them would
    cost more memory than the rest of the index (1 GB of text at a million chunks)."""

    def __init__(self, snapshot: Snapshot, ids: Collection[str]) -> None:
        self._ids = ids
        self._read = lru_cache(maxsize=_CACHED)(snapshot.article)

    def __getitem__(self, article_id: str) -> Article:
        found = self._read(article_id) if article_id in self._ids else None
        if found is None:
            raise KeyError(article_id)
        return found

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


class ArticleTable:
    """Every article's date and source as arrays, so that a filter tests a whole archive
    in one numpy expression: a Python test per article took ~120 ms a question at
    100,000 articles, and a date word in a news question is enough to make one. The
    arrays are made on first use: most questions have no filter."""

    def __init__(self, infos: Iterable[Article | ArticleInfo]) -> None:
        self._infos = list(infos)
        self.ids = [a.id for a in self._infos]

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def number(self) -> dict[str, int]:
        return {article_id: n for n, article_id in enumerate(self.ids)}

    @cached_property
    def stamps(self) -> npt.NDArray[np.float64]:
        """Publication dates in epoch seconds; NaN for an undated article."""
        dates = (epoch_seconds(a.date) if a.date else np.nan for a in self._infos)
        return np.fromiter(dates, dtype=np.float64, count=len(self._infos))

    @cached_property
    def dated(self) -> npt.NDArray[np.bool_]:
        return ~np.isnan(self.stamps)

    def of_sources(self, sources: Iterable[str]) -> npt.NDArray[np.bool_]:
        wanted = set(sources)
        return np.fromiter((a.source in wanted for a in self._infos), np.bool_, len(self._infos))

    def of_ids(self, article_ids: Iterable[str]) -> npt.NDArray[np.bool_]:
        mask = np.zeros(len(self.ids), dtype=np.bool_)
        mask[[self.number[i] for i in article_ids if i in self.number]] = True
        return mask

    def ids_of(self, mask: npt.NDArray[np.bool_]) -> list[str]:
        return [self.ids[n] for n in np.flatnonzero(mask).tolist()]
