"""Hybrid retrieval: dense (Chroma) and BM25 legs fused by reciprocal rank.

Each leg finds candidates under the same filters; reciprocal rank fusion
combines them without having to calibrate cosine against BM25 scores.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from index.dates import epoch_seconds, normalize_date
from index.dedupe import Said
from index.reader import ArticleTable, IndexReader
from index.store import parse_chunk_id
from index.types import Article
from newsdesk.settings import RetrievalSettings

_DAY = 86_400


@dataclass(frozen=True, slots=True)
class Filters:
    """Which articles a question may draw on. Dates are inclusive; `as_of` is one more
    upper bound (the collection as it stood that day). An undated article cannot be
    shown to be in range: under a date bound it is left out unless the caller lets
    undated articles through (`retrieval.undated = "include"`)."""

    sources: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    article_ids: tuple[str, ...] = ()
    as_of: str | None = None

    @classmethod
    def parse(
        cls,
        sources: tuple[str, ...] = (),
        since: str | None = None,
        until: str | None = None,
        article_ids: tuple[str, ...] = (),
        as_of: str | None = None,
    ) -> Filters:
        """Filters from user input; a date that cannot be read is a ValueError naming it."""
        return cls(
            sources=tuple(sources),
            since=_date_bound("since", since),
            until=_date_bound("until", until),
            article_ids=tuple(article_ids),
            as_of=_date_bound("as-of", as_of),
        )

    def __bool__(self) -> bool:
        return bool(self.sources or self.article_ids or self.dated)

    @property
    def dated(self) -> bool:
        """Whether any date bound applies (and so undated articles need a decision)."""
        return bool(self.since or self.until or self.as_of)

    def _range(self) -> tuple[int | None, int | None]:
        return _bounds(self.since, self.until, self.as_of)

    def admitted(self, table: ArticleTable, include_undated: bool = False) -> npt.NDArray[np.bool_]:
        """Which articles of `table` the filters admit: the same rule as `where()` (the
        dense leg's, which Chroma applies), for the BM25 leg and the time scope."""
        mask = np.ones(len(table), dtype=np.bool_)
        if self.sources:
            mask &= table.of_sources(self.sources)
        if self.article_ids:
            mask &= table.of_ids(self.article_ids)
        low, high = self._range()
        if low is None and high is None:
            return mask
        with np.errstate(invalid="ignore"):  # NaN, an undated article, compares False
            inside = (table.stamps >= (low if low is not None else -np.inf)) & (
                table.stamps <= (high if high is not None else np.inf)
            )
        return mask & (inside | (~table.dated if include_undated else False))

    def undated(self, table: ArticleTable) -> npt.NDArray[np.bool_]:
        """The undated articles of `table` the filters would admit but for their date
        bounds: what retrieval.undated decides about."""
        return self.admitted(table, include_undated=True) & ~table.dated

    def where(self, undated_ids: Collection[str] | None = None) -> dict[str, Any] | None:
        """The Chroma metadata filter for the dense leg.

        Chroma cannot test for a missing key, and an undated chunk has no `date_ts`,
        so undated articles let through a date bound are named by id: `undated_ids`
        (None: they are left out, as `matches(include_undated=False)` does).
        """
        clauses: list[dict[str, Any]] = []
        if self.sources:
            clauses.append({"source": {"$in": list(self.sources)}})
        if self.article_ids:
            clauses.append({"article_id": {"$in": list(self.article_ids)}})
        low, high = self._range()
        dates: list[dict[str, Any]] = []
        if low is not None:
            dates.append({"date_ts": {"$gte": low}})
        if high is not None:
            dates.append({"date_ts": {"$lte": high}})
        if dates and undated_ids:
            in_range = dates[0] if len(dates) == 1 else {"$and": dates}
            dates = [{"$or": [in_range, {"article_id": {"$in": sorted(undated_ids)}}]}]
        clauses += dates
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@lru_cache(maxsize=256)
def _bounds(
    since: str | None, until: str | None, as_of: str | None
) -> tuple[int | None, int | None]:
    """Epoch seconds of a filter's date range, worked out once per filter rather than
    once per article it tests."""
    low = epoch_seconds(since) if since else None
    highs = [_end_of(bound) for bound in (until, as_of) if bound]
    return low, min(highs) if highs else None


def _end_of(bound: str) -> int:
    """The last second a bound covers: all of a whole day, else the instant itself."""
    high = epoch_seconds(bound)
    return high + _DAY - 1 if len(bound) == 10 else high


def _date_bound(name: str, value: str | None) -> str | None:
    if not value:
        return None
    try:
        return normalize_date(value)
    except ValueError as exc:
        raise ValueError(f"--{name}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk with its article, exact span, and what each leg thought of it."""

    chunk_id: str
    article: Article
    start: int
    end: int
    score: float  # fused (reciprocal rank) score
    dense_score: float | None = None  # cosine similarity
    lexical_score: float | None = None  # BM25

    @property
    def text(self) -> str:
        return self.article.text[self.start : self.end]


class Retriever:
    def __init__(self, reader: IndexReader, settings: RetrievalSettings) -> None:
        self.reader = reader
        self.settings = settings

    def retrieve(
        self, query: str, filters: Filters | None = None, k: int | None = None
    ) -> list[Passage]:
        filters = filters or Filters()
        k = k or self.settings.k
        dense = self._dense(query, filters) if self.settings.dense else {}
        lexical = self._lexical(query, filters) if self.settings.lexical else {}
        fused: dict[str, float] = {}
        for ranking in (dense, lexical):
            for rank, chunk in enumerate(ranking, start=1):
                fused[chunk] = fused.get(chunk, 0.0) + 1.0 / (self.settings.rrf_k + rank)
        ranked = sorted(fused, key=lambda c: (-fused[c], c))
        best = self._distinct(query, ranked, k) if self.settings.collapse_repeats else ranked[:k]
        return [self._passage(c, fused[c], dense.get(c), lexical.get(c)) for c in best]

    def _distinct(self, query: str, ranked: list[str], k: int) -> list[str]:
        """The first `k` of `ranked` less those whose sentence closest to the question
        says what a better-ranked passage's closest sentence in another article (and
        duplicate group) says (`Said.same`). A sentence that wire copy repeats across
        many stories would otherwise fill every slot with the same quote and push out
        the passage that answers."""
        vector = self.reader.embedder.embed_query(query)
        groups = self.reader.manifest.duplicates
        kept: list[str] = []
        said: list[tuple[str, Said]] = []  # (group, closest sentence) of those kept
        for chunk in ranked:
            article_id = parse_chunk_id(chunk)[0]
            group = groups.get(article_id, article_id)
            closest = self._closest_sentence(chunk, vector)
            # Not within one article, whose overlapping chunks share sentences by design,
            # nor one near-duplicate group, which the answerer quotes from its canonical
            # copy with the others as "also reported by".
            if closest is not None and any(g != group and closest.same(other) for g, other in said):
                continue
            kept.append(chunk)
            if closest is not None:
                said.append((group, closest))
            if len(kept) == k:
                break
        return kept

    def _closest_sentence(self, chunk_id: str, vector: npt.NDArray[np.float32]) -> Said | None:
        """The chunk's sentence most like the question, by the vectors pooled at index
        time; None when the index has none for its article."""
        article_id, start, end = self.reader.chunk_span(chunk_id)
        stored = self.reader.sentence_vectors(article_id)
        if stored is None:
            return None
        scored = [
            (float(unit @ vector), n)
            for n, (a, b) in enumerate(stored.spans)
            if a >= start and b <= end and (unit := stored.vector(n, n)) is not None
        ]
        if not scored:
            return None
        a, b = stored.spans[max(scored)[1]]
        return Said.of(self.reader.articles[article_id].text[a:b])

    def undated(self, filters: Filters) -> list[str]:
        """Ids of the undated articles the filters would admit but for their date bounds."""
        if not filters.dated:
            return []
        return self.reader.table.ids_of(filters.undated(self.reader.table))

    def _dense(self, query: str, filters: Filters) -> dict[str, float]:
        reader = self.reader
        vector = reader.embedder.embed_query(query)
        let_through = self.undated(filters) if self.settings.undated == "include" else None
        hits = reader.store.nearest(vector, self.settings.candidates, filters.where(let_through))
        return {chunk: 1.0 - distance for chunk, distance in hits if reader.is_live_chunk(chunk)}

    def _lexical(self, query: str, filters: Filters) -> dict[str, float]:
        allowed = None
        if filters:
            admitted = filters.admitted(self.reader.table, self.settings.undated == "include")
            rows = self.reader.lexical_articles
            allowed = (rows >= 0) & admitted[rows]
        return dict(self.reader.lexical.search(query, self.settings.candidates, allowed))

    def _passage(
        self, chunk_id: str, score: float, dense: float | None, lexical: float | None
    ) -> Passage:
        article_id, start, end = self.reader.chunk_span(chunk_id)
        article = self.reader.articles[article_id]
        return Passage(chunk_id, article, start, end, score, dense, lexical)
