"""Sentence vectors, pooled from the chunk pass at index time, one file per article version.

The answerer scores every sentence of the retrieved passages against the
question. Embedding those sentences at query time cost about a second per
question on two cores. The chunk pass already computes a vector for every
word-piece, so a sentence's vector is the mean of its word-pieces' vectors, read in
the context of their chunk ("late chunking"): no extra model work at index time.

Files are named by article id and content hash, so an update writes only what
changed, and a reader still open on an older state keeps finding its own.
Each file also holds the sentence spans it was pooled over and the splitter's
version: readers take the spans from it instead of re-splitting the article at
query time, and a file from another splitter version is ignored, never misread.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from index.sentences import SPLITTER, sentence_spans
from index.types import Article

SENTENCES_DIR = "sentences"


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


def vector_file(index_dir: Path, article_id: str, article_hash: str) -> Path:
    key = hashlib.sha1(article_id.encode()).hexdigest()[:16]
    return index_dir / SENTENCES_DIR / f"{key}-{article_hash[:16]}.npz"


def write_vectors(
    index_dir: Path, article_id: str, article_hash: str, vectors: SentenceVectors
) -> None:
    path = vector_file(index_dir, article_id, article_hash)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    counts = vectors.counts[:, None]
    means = np.divide(vectors.sums, counts, out=np.zeros_like(vectors.sums), where=counts > 0)
    with partial.open("wb") as f:
        np.savez(
            f,
            splitter=np.array(SPLITTER),
            spans=np.asarray(vectors.spans, dtype=np.int32).reshape(-1, 2),
            means=means.astype(np.float16),
            counts=vectors.counts.astype(np.float32),
        )
    partial.replace(path)


def read_vectors(index_dir: Path, article_id: str, article_hash: str) -> SentenceVectors | None:
    """The article's stored vectors, or None if absent or from another sentence splitter."""
    path = vector_file(index_dir, article_id, article_hash)
    try:
        with np.load(path) as data:
            if str(data["splitter"]) != SPLITTER:
                return None
            stored = [(int(a), int(b)) for a, b in data["spans"].tolist()]
            counts = data["counts"].astype(np.float32)
            sums = data["means"].astype(np.float32) * counts[:, None]
    except (OSError, KeyError, ValueError):
        return None
    return SentenceVectors(spans=stored, sums=sums, counts=counts)


def sweep_vectors(index_dir: Path, keep: Iterable[tuple[str, str]]) -> int:
    """Delete vector files of article versions not in `keep`; returns how many."""
    folder = index_dir / SENTENCES_DIR
    if not folder.is_dir():
        return 0
    wanted = {vector_file(index_dir, article_id, h).name for article_id, h in keep}
    removed = 0
    for path in folder.iterdir():
        if path.name not in wanted:  # a .part left here is from a writer that died
            path.unlink(missing_ok=True)
            removed += 1
    return removed


class Pooler:
    """Adds up word-piece vectors per sentence across an article's chunks, and writes
    the article's file as soon as its last chunk has been embedded."""

    def __init__(self, index_dir: Path, dimension: int, chunk_counts: dict[str, int]) -> None:
        self.index_dir = index_dir
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
            write_vectors(self.index_dir, article.id, article.hash, self._open.pop(article.id))
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
