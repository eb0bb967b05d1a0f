"""Where an index write's chunks are embedded: the seam between the single writer
(index.build.Indexer, which chunks, pools sentence vectors and commits in its own
order) and the model passes, which may run in this process or on a cluster
(index.embed_ray). A backend takes batches and gives back their results in the
same order, so the writer commits exactly what a serial run commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from index.embed import Embedder, Vectors, cpu_passes

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
    """The default: this process's embedder, one batch at a time, nothing read ahead.

    On a CPU each batch is split into one part per core (index.embed.cpu_passes), and
    the parts run side by side as one-thread model passes: on 2 AVX2 cores two
    one-thread passes embed 1.29x as fast as one two-thread pass (MiniLM, 2026-12-07,
    bench/README.md), since a small model's pass cannot keep two threads busy. A batch
    small enough for the numpy pass (Embedder.light) is one pass, and loads no torch."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_batches(self, batches: Iterable[Batch]) -> Iterator[Embedded]:
        pool: ThreadPoolExecutor | None = None
        try:
            for texts, spans in batches:
                passes = 1 if self.embedder.light(len(texts), index=True) else self._passes()
                if passes < 2:
                    yield self.embedder.embed_with_spans(texts, spans)
                    continue
                pool = pool or ThreadPoolExecutor(passes, thread_name_prefix="embed")
                size = -(-len(texts) // passes)
                embed = self.embedder.embed_with_spans
                parts = [
                    pool.submit(embed, texts[lo : lo + size], spans[lo : lo + size])
                    for lo in range(0, len(texts), size)
                ]
                yield join([part.result() for part in parts])
        finally:
            if pool is not None:
                pool.shutdown()

    def _passes(self) -> int:
        _ = self.embedder.index_model  # on a CPU, loading it fixes the passes at one thread
        return cpu_passes() if self.embedder.placement.device == "cpu" else 1


def join(pieces: Sequence[Embedded]) -> Embedded:
    """The results of consecutive parts of one batch, as one result."""
    if not pieces:
        return np.zeros((0, 0), dtype=np.float32), [], []
    vectors: Vectors = np.concatenate([piece[0] for piece in pieces])
    return vectors, [s for p in pieces for s in p[1]], [n for p in pieces for n in p[2]]
