"""The BM25 leg of hybrid retrieval: search over lexical segments of `index.text` terms.

Dense retrieval misses exact names, numbers and rare words that a question quotes
verbatim; BM25 catches those. The postings live in write-once segments
(`index.postings`); an index state names its segments in the index database, and chunk ids
the state no longer names are skipped at query time, so an update writes only a small
segment for what it changed while a reader never sees a half-updated index.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from index.chunk import embedding_input
from index.postings import LexicalIndexError, Segment
from index.store import chunk_ids, version_article
from index.text import TOKENIZER, tokenize

if TYPE_CHECKING:
    from index.manifest import ArticleEntry
    from index.types import Article

__all__ = ["LexicalIndex", "LexicalIndexError", "Segment", "compact"]


LEXICAL_DIR = "lexical"  # the segments' directory inside an index directory

# Lucene's BM25 (as bm25s computes it): idf = ln(1 + (N - df + 0.5) / (df + 0.5)),
# term part = tf / (tf + K1 * (1 - B + B * length / average length)).
K1 = 1.5
B = 0.75
MAX_SEGMENTS = 8  # more than this and all but the oldest are merged into one
MAX_DEAD_SHARE = 0.3  # rows of replaced or removed chunks before everything is merged


class LexicalIndex:
    """BM25 over the live rows of some segments: each live chunk id is read from the
    newest segment that holds it, and statistics (document count, frequencies, average
    length) count live rows only, so scores are those of one index of the live chunks.

    Searching is read-only, so one instance can serve concurrent requests.
    """

    def __init__(self, segments: Sequence[Segment], live: Mapping[str, int] | None = None) -> None:
        """`live`: chunk count by version key (`index.store.live_versions`); None: every
        version the segments hold."""
        self.segments = list(segments)
        claimed: set[str] = set()  # versions a newer segment holds
        found: set[str] = set()
        masks: list[npt.NDArray[np.bool_]] = []
        for segment in reversed(self.segments):
            mask = np.zeros(len(segment), dtype=np.bool_)
            for version, first, rows in segment.versions:
                if version in claimed:
                    continue
                claimed.add(version)
                if live is None or live.get(version) == rows:
                    mask[first : first + rows] = True
                    found.add(version)
            masks.append(mask)
        self.masks = masks[::-1]
        missing = [] if live is None else sorted(v for v, n in live.items() if n and v not in found)
        if missing:
            raise LexicalIndexError(
                f"{len(missing)} article versions of the index are missing from its keyword "
                f"index (e.g. {missing[0]!r}); rebuild with `newsdesk index build`"
            )
        self._offsets = np.cumsum([0, *(len(s) for s in self.segments)])
        self._live = np.concatenate([*self.masks, np.zeros(0, dtype=np.bool_)])
        self._ids = [i for segment in self.segments for i in segment.ids]
        self._lengths = np.concatenate(
            [*(s.lengths for s in self.segments), np.zeros(0, np.float32)]
        )
        self._count = int(self._live.sum())
        total_length = float(self._lengths[self._live].sum())
        self._average = total_length / self._count if self._count else 0.0

    @classmethod
    def open(cls, root: Path, names: Sequence[str], live: Mapping[str, int]) -> LexicalIndex:
        return cls([Segment.load(root / name, TOKENIZER) for name in names], live)

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"LexicalIndex(segments={len(self.segments)}, chunks={self._count})"

    def search(
        self, query: str, k: int, allowed: npt.NDArray[np.bool_] | None = None
    ) -> list[tuple[str, float]]:
        """Top-`k` (chunk id, BM25 score) with score > 0, best first.

        With `allowed`, a mask over rows (made from `row_articles`), only those chunks
        compete, however few they are: every chunk is scored and the rest are masked out
        before ranking, so a metadata filter never starves the result the way "retrieve
        k, then filter" would. A mask rather than chunk ids, because a filter admits
        whole articles and a million-id set costs more than the search. Ties rank in
        index order so results are reproducible.
        """
        if k <= 0 or self._count == 0:
            return []
        scores: npt.NDArray[np.float32] | None = None
        for term, repeats in Counter(tokenize(query)).items():
            rows, tfs = self._postings(term)
            if rows.size == 0:
                continue
            df = rows.size
            idf = math.log(1 + (self._count - df + 0.5) / (df + 0.5))
            norm = K1 * (1 - B + B * self._lengths[rows] / self._average)
            if scores is None:
                scores = np.zeros(len(self._ids), dtype=np.float32)
            scores[rows] += repeats * idf * tfs / (tfs + norm)
        if scores is None:
            return []
        matching = scores > 0
        if allowed is not None:
            matching &= allowed
        rows = np.flatnonzero(matching)
        hits = scores[rows]
        if rows.size > k:
            keep = np.argpartition(-hits, k - 1)[:k]
            rows, hits = rows[keep], hits[keep]
        order = np.lexsort((rows, -hits))
        return [
            (self._ids[int(row)], float(hits[i])) for i, row in zip(order, rows[order], strict=True)
        ]

    def _postings(self, term: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Live (row, tf) of `term` across all segments, rows numbered index-wide."""
        row_parts, tf_parts = [], []
        for offset, segment in zip(self._offsets, self.segments, strict=False):
            rows, tfs = segment.postings(term)
            if rows.size:
                row_parts.append(rows + offset)
                tf_parts.append(tfs)
        if not row_parts:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows, tfs = np.concatenate(row_parts), np.concatenate(tf_parts)
        alive = self._live[rows]
        return rows[alive], tfs[alive]

    def row_articles(self, number: Mapping[str, int]) -> npt.NDArray[np.int64]:
        """Each row's article as `number` numbers them (-1: a dead row, or an article not
        numbered), so a filter over articles becomes a mask over rows by indexing."""
        found = np.full(len(self._ids), -1, dtype=np.int64)
        for offset, segment in zip(self._offsets, self.segments, strict=False):
            for version, first, rows in segment.versions:
                article = number.get(version_article(version), -1)
                if article >= 0:
                    found[offset + first : offset + first + rows] = article
        found[~self._live] = -1
        return found


def compact(segments: Sequence[Segment], live: Mapping[str, int]) -> list[Segment]:
    """The segments a state with `live` chunks should name: segments without a live row
    are dropped; all are merged when replaced rows pile up (they cost memory and time per
    query), and the newer ones when there are too many, so a small update stays cheap
    while the big first segment is rewritten only now and then."""
    index = LexicalIndex(segments, live)
    kept = [(s, m) for s, m in zip(index.segments, index.masks, strict=True) if m.any()]
    rows = sum(len(s) for s, _ in kept)
    dead = rows - len(index)
    if dead and dead > MAX_DEAD_SHARE * rows:
        return [Segment.merge(kept)]
    if len(kept) > MAX_SEGMENTS:
        return [kept[0][0], Segment.merge(kept[1:])]
    return [s for s, _ in kept]


def segment_of(articles: Iterable[Article], entries: Mapping[str, ArticleEntry]) -> Segment:
    """The postings of these articles' chunks, as the model saw them (title, then text)."""
    ids: list[str] = []
    docs: list[list[str]] = []
    for article in articles:
        entry = entries[article.id]
        ids.extend(chunk_ids(article.id, entry.hash, entry.chunks))
        docs.extend(
            tokenize(embedding_input(article.title, article.text[s:e])) for s, e in entry.spans
        )
    return Segment.from_terms(ids, docs, TOKENIZER)
