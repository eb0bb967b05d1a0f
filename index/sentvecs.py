"""Sentence vectors, pooled from the chunk pass at index time, one file per article version.

The answerer scores every sentence of the retrieved passages against the
question. Embedding those sentences at query time cost about a second per
question on two cores. The chunk pass already computes a vector for every
word-piece, so a sentence's vector is the mean of its word-pieces' vectors, read in
the context of their chunk ("late chunking"): no extra model work at index time.

The pooled vectors go to one array file (index.vectors) and the spans they were pooled
over, with the splitter's version, to the index database: readers take the spans from
there instead of re-splitting the article at query time, and vectors from another
splitter version are ignored, never misread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from index.sentences import sentence_spans
from index.types import Article


@dataclass(frozen=True)
class SentenceVectors:
    spans: list[tuple[int, int]]
    sums: npt.NDArray[np.float32]  # (sentences, dimension): sum of word-piece vectors
    counts: npt.NDArray[np.float32]  # (sentences,): word-pieces summed; 0 = never embedded

    def vector(self, first: int, last: int) -> npt.NDArray[np.float32] | None:
        """Unit vector of sentences first..last (inclusive) read together, if all were seen."""
        if not np.all(self.counts[first : last + 1] > 0):
            return None
        total = self.sums[first : last + 1].sum(axis=0)
        norm = float(np.linalg.norm(total))
        return None if norm == 0 else (total / norm).astype(np.float32)


class Pooler:
    """Adds up word-piece vectors per sentence across an article's chunks, and hands
    the article's vectors to `done` as soon as its last chunk has been embedded (so
    only the articles in flight are held in memory)."""

    def __init__(
        self,
        done: Callable[[Article, SentenceVectors], None],
        dimension: int,
        chunk_counts: dict[str, int],
    ) -> None:
        self.done = done
        self.dimension = dimension
        self._remaining = dict(chunk_counts)
        self._open: dict[str, SentenceVectors] = {}
        self._carried: dict[str, set[int]] = {}

    def local_spans(
        self, article: Article, start: int, end: int, offset: int
    ) -> list[tuple[int, int]]:
        """The sentences within article.text[start:end], as offsets into the embedded
        text, which has `offset` characters (the title) in front of the chunk."""
        return [
            (max(a, start) - start + offset, min(b, end) - start + offset)
            for _, (a, b) in self._inside(article, start, end)
        ]

    def add(
        self,
        article: Article,
        start: int,
        end: int,
        sums: npt.NDArray[np.float32],
        counts: npt.NDArray[np.float32],
    ) -> None:
        """Add one chunk's span sums (in `local_spans` order); write when the article is done."""
        pooled = self._vectors(article)
        carried = self._carried.get(article.id, ())
        for row, (i, _) in enumerate(self._inside(article, start, end)):
            if i not in carried:
                pooled.sums[i] += sums[row]
                pooled.counts[i] += counts[row]
        self.skip(article)

    def carry(self, article: Article, old: SentenceVectors, sentences: Mapping[int, int]) -> None:
        """Start the article with the pooled vectors of sentences kept from an older
        version (new sentence number -> old one; see index.reuse); chunks added later
        leave those sentences alone."""
        pooled = self._vectors(article)
        self._carried[article.id] = set(sentences)
        for new, previous in sentences.items():
            pooled.sums[new] = old.sums[previous]
            pooled.counts[new] = old.counts[previous]

    def skip(self, article: Article) -> None:
        """One more chunk of the article done (embedded, or its vector copied)."""
        self._remaining[article.id] -= 1
        if self._remaining[article.id] == 0:
            self.done(article, self._open.pop(article.id))
            self._carried.pop(article.id, None)

    def spans(self, article: Article) -> list[tuple[int, int]]:
        return self._vectors(article).spans

    def _inside(self, article: Article, start: int, end: int) -> list[tuple[int, tuple[int, int]]]:
        spans = self._vectors(article).spans
        return [(i, (a, b)) for i, (a, b) in enumerate(spans) if a < end and b > start]

    def _vectors(self, article: Article) -> SentenceVectors:
        pooled = self._open.get(article.id)
        if pooled is None:
            spans = sentence_spans(article.text)
            pooled = SentenceVectors(
                spans=spans,
                sums=np.zeros((len(spans), self.dimension), dtype=np.float32),
                counts=np.zeros(len(spans), dtype=np.float32),
            )
            self._open[article.id] = pooled
        return pooled
