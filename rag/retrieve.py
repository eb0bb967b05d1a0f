"""Hybrid retrieval: dense (Chroma) and BM25 legs fused by reciprocal rank.

Each leg finds candidates under the same filters; reciprocal rank fusion
combines them without having to calibrate cosine against BM25 scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from index.dates import epoch_seconds, normalize_date
from index.reader import IndexReader
from index.types import Article
from newsdesk.settings import RetrievalSettings

_DAY = 86_400


@dataclass(frozen=True, slots=True)
class Filters:
    """Which articles a question may draw on. Dates are inclusive; an undated article
    is excluded whenever a date bound is set (it cannot be shown to be in range)."""

    sources: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    article_ids: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls,
        sources: tuple[str, ...] = (),
        since: str | None = None,
        until: str | None = None,
        article_ids: tuple[str, ...] = (),
    ) -> Filters:
        """Filters from user input; a date that cannot be read is a ValueError naming it."""
        return cls(
            sources=tuple(sources),
            since=_date_bound("since", since),
            until=_date_bound("until", until),
            article_ids=tuple(article_ids),
        )

    def __bool__(self) -> bool:
        return bool(self.sources or self.since or self.until or self.article_ids)

    def _range(self) -> tuple[int | None, int | None]:
        low = epoch_seconds(self.since) if self.since else None
        high = None
        if self.until:
            high = epoch_seconds(self.until)
            if len(self.until) == 10:  # a whole day: include all of it
                high += _DAY - 1
        return low, high

    def matches(self, article: Article) -> bool:
        """The same rule as `where()`, for the BM25 leg, which filters in Python."""
        if self.sources and article.source not in self.sources:
            return False
        if self.article_ids and article.id not in self.article_ids:
            return False
        low, high = self._range()
        if low is None and high is None:
            return True
        if not article.date:
            return False
        stamp = epoch_seconds(article.date)
        return (low is None or stamp >= low) and (high is None or stamp <= high)

    def where(self) -> dict[str, Any] | None:
        """The Chroma metadata filter for the dense leg."""
        clauses: list[dict[str, Any]] = []
        if self.sources:
            clauses.append({"source": {"$in": list(self.sources)}})
        if self.article_ids:
            clauses.append({"article_id": {"$in": list(self.article_ids)}})
        low, high = self._range()
        if low is not None:
            clauses.append({"date_ts": {"$gte": low}})
        if high is not None:
            clauses.append({"date_ts": {"$lte": high}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


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
        best = sorted(fused, key=lambda c: (-fused[c], c))[:k]
        return [self._passage(c, fused[c], dense.get(c), lexical.get(c)) for c in best]

    def _dense(self, query: str, filters: Filters) -> dict[str, float]:
        reader = self.reader
        vector = reader.embedder.embed_query(query)
        hits = reader.store.query(vector, self.settings.candidates, filters.where())
        return {
            h.id: 1.0 - h.distance
            for h in hits
            if reader.is_live(h.article_id, str(h.metadata.get("hash")))
        }

    def _lexical(self, query: str, filters: Filters) -> dict[str, float]:
        allowed = None
        if filters:
            articles = self.reader.articles.values()
            allowed = set(self.reader.chunk_ids(a.id for a in articles if filters.matches(a)))
        return dict(self.reader.lexical.search(query, self.settings.candidates, allowed))

    def _passage(
        self, chunk_id: str, score: float, dense: float | None, lexical: float | None
    ) -> Passage:
        article_id, start, end = self.reader.chunk_span(chunk_id)
        article = self.reader.articles[article_id]
        return Passage(chunk_id, article, start, end, score, dense, lexical)
