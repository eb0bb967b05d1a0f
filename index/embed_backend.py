"""Where an index write's chunks are embedded: the seam between the single writer
(index.build.Indexer, which chunks, pools sentence vectors and commits in its own
order) and the model passes, which may run in this process or on a cluster
(index.embed_ray). A backend takes batches and gives back their results in the
same order, so the writer commits exactly what a serial run commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from index.embed import Embedder, Vectors

# The chunk texts of one batch (title + chunk, as the model reads them) and, for each,
# the character spans of the sentences in it (index.sentvecs.Pooler.local_spans).
Batch = tuple[Sequence[str], Sequence[Sequence[tuple[int, int]]]]
# Embedder.embed_with_spans' result: chunk vectors, and per chunk its span sums and counts.
Embedded = tuple[Vectors, list[Vectors], list[Vectors]]


class EmbedBackend(Protocol):
    def embed_batches(self, batches: Iterable[Batch]) -> Iterator[Embedded]:
        """One result per batch, in input order. It may read batches ahead of the
        results it has yielded (to keep several workers busy), never behind."""
        ...


class InProcess:
    """The default: this process's embedder, one batch at a time, nothing read ahead."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_batches(self, batches: Iterable[Batch]) -> Iterator[Embedded]:
        for texts, spans in batches:
            yield self.embedder.embed_with_spans(texts, spans)
