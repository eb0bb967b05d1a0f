"""Sentence vectors of every article version in one append-only float16 array file.

One file per index instead of one per article version (100k+ files at archive size):
a writer appends an article's pooled sentence means as rows, flushes them to disk, and
only then commits the state that names them (index.db); rows no committed state names
are garbage, like the chunks of a dead writer in Chroma. Readers map the file
read-only: a row, once named by a committed state, is never rewritten, so an open
reader keeps reading its own state's rows while a writer appends. A build starts a new
file (the old one goes once no state names it; a reader that mapped it keeps its
mapping), which is also how the rows of replaced versions are reclaimed.

float16 is the precision the per-article files had: sentence vectors only rank the
sentences of retrieved passages against the question, where 3 significant digits of a
unit vector's components move cosines by about 1e-3.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from index.db import IndexDB, SentenceRows
from index.manifest import UnusableIndex
from index.sentences import SPLITTER
from index.sentvecs import SentenceVectors

VECTORS_PREFIX = "vectors-"
VECTORS_SUFFIX = ".f16"
_DTYPE = np.dtype("<f2")


def vectors_name(state: str) -> str:
    return f"{VECTORS_PREFIX}{state}{VECTORS_SUFFIX}"


def row_bytes(dimension: int) -> int:
    return dimension * _DTYPE.itemsize


def file_rows(path: Path, dimension: int) -> int:
    """Whole rows in the file (0 if it is missing)."""
    try:
        return path.stat().st_size // row_bytes(dimension)
    except FileNotFoundError:
        return 0


class VectorFile:
    """The writer's end: rows appended after `rows` (what the live state covers; anything
    past it a dead writer left, cut off here), flushed by `sync` before the commit."""

    def __init__(self, path: Path, dimension: int, rows: int) -> None:
        self.path = path
        self.dimension = dimension
        self.rows = rows
        if file_rows(path, dimension) < rows:
            raise UnusableIndex(
                f"{path}: the sentence-vector file is missing or shorter than the index "
                f"says ({rows} rows); `newsdesk index check --repair` mends it"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("r+b" if path.exists() else "w+b")
        self._file.truncate(rows * row_bytes(dimension))
        self._file.seek(0, os.SEEK_END)

    def append(self, vectors: SentenceVectors) -> SentenceRows:
        """Write one article version's sentence means; returns where they are."""
        counts = vectors.counts[:, None]
        means = np.divide(vectors.sums, counts, out=np.zeros_like(vectors.sums), where=counts > 0)
        self._file.write(means.astype(_DTYPE).tobytes())
        found = SentenceRows.of(vectors.spans, vectors.counts, self.rows, SPLITTER)
        self.rows += len(vectors.spans)
        return found

    def copy(self, rows: npt.NDArray[np.float16]) -> int:
        """Append rows as they are (a compaction moving live rows); returns the first."""
        self._file.write(np.ascontiguousarray(rows, dtype=_DTYPE).tobytes())
        first = self.rows
        self.rows += len(rows)
        return first

    def sync(self) -> None:
        """On disk before any state names the rows."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


class VectorArray:
    """The reader's end: the file mapped read-only, rows as float32 sums on request."""

    def __init__(self, path: Path, dimension: int, rows: int) -> None:
        self.path = path
        self._rows: npt.NDArray[np.float16] | np.memmap[tuple[int, int], np.dtype[np.float16]]
        if rows == 0:
            self._rows = np.zeros((0, dimension), dtype=_DTYPE)
            return
        try:
            self._rows = np.memmap(path, dtype=_DTYPE, mode="r", shape=(rows, dimension))
        except (OSError, ValueError) as exc:
            raise UnusableIndex(
                f"{path}: sentence-vector file is missing or shorter than the index says "
                f"({rows} rows of {dimension}); `newsdesk index check --repair` mends it"
            ) from exc

    def rows(self, found: SentenceRows) -> npt.NDArray[np.float16]:
        """One article version's stored rows, as they are."""
        return np.asarray(self._rows[found.row : found.row + found.sentences])

    def read(self, found: SentenceRows) -> SentenceVectors | None:
        """One article version's vectors, None if they are from another sentence
        splitter (never misread) or out of the file's bounds."""
        if found.splitter != SPLITTER or found.row + found.sentences > len(self._rows):
            return None
        means = np.asarray(self._rows[found.row : found.row + found.sentences], np.float32)
        counts = found.counts
        return SentenceVectors(spans=found.spans, sums=means * counts[:, None], counts=counts)


def read_vectors(index_dir: Path, article_id: str, article_hash: str) -> SentenceVectors | None:
    """The live state's sentence vectors of one article version, if it has that version."""
    db = IndexDB(index_dir)
    live = db.read_live(ids=[article_id])
    if live is None:
        return None
    manifest, _, sentences = live
    entry = manifest.articles.get(article_id)
    if entry is None or entry.hash != article_hash or article_id not in sentences:
        return None
    array = VectorArray(index_dir / manifest.vectors_file, manifest.dimension, manifest.vector_rows)
    return array.read(sentences[article_id])
