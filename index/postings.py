"""BM25 postings in write-once segments, so an update indexes only the chunks it changed.

bm25s, used before, stores finished scores, and those depend on statistics of the
whole corpus (document count, document frequencies, average length): one changed
article changed every score, so each update re-tokenised and re-indexed every chunk
(26.8 s of a 55,608-chunk index for one article). A segment here keeps raw term
frequencies and document lengths instead; `index.lexical.LexicalIndex` scores a list
of segments at query time with statistics over their live rows, and an update writes
one small segment for what it embedded.

On disk (one directory per segment, never modified once renamed into place):

- ``segment.json``: format, tokenizer id and sizes, so a directory from an
  incompatible version is refused rather than half-matching;
- ``ids.json``: chunk ids by row; ``vocab.json``: terms by term number;
- ``indptr.npy`` / ``rows.npy`` / ``tfs.npy``: postings by term (compressed sparse
  rows: term t's postings are rows[indptr[t]:indptr[t+1]]), memory-mapped on load;
- ``lengths.npy``: each row's number of terms.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from index.manifest import fsync_dir
from index.store import chunk_versions
from newsdesk.errors import NewsdeskError

FORMAT = 2
META_FILE = "segment.json"
IDS_FILE = "ids.json"
VOCAB_FILE = "vocab.json"
_ARRAYS = ("indptr", "rows", "tfs", "lengths")

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]


class LexicalIndexError(NewsdeskError, ValueError):
    """A lexical segment is missing, unreadable, inconsistent or may not be written."""


@dataclass(frozen=True, eq=False)
class Segment:
    """Postings of some chunks: which rows hold each term, and how often."""

    ids: list[str]
    terms: list[str]
    indptr: Ints
    rows: Ints
    tfs: Floats
    lengths: Floats
    tokenizer: str

    @cached_property
    def term_numbers(self) -> dict[str, int]:
        return {term: number for number, term in enumerate(self.terms)}

    @cached_property
    def versions(self) -> list[tuple[str, int, int]]:
        """(version key, first row, rows) of each article version it holds. A segment
        holds a version's chunks together and in order (as `index.lexical.segment_of`
        writes them and `merge` keeps them), so whether rows are live is decided once
        per version: 10x fewer steps than per row at open."""
        return chunk_versions(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def postings(self, term: str) -> tuple[Ints, Floats]:
        """(rows, term frequencies) of `term`, as int64 and float32 however stored;
        empty when this segment lacks it."""
        number = self.term_numbers.get(term)
        if number is None:
            return _NO_ROWS, _NO_TFS
        lo, hi = int(self.indptr[number]), int(self.indptr[number + 1])
        return self.rows[lo:hi].astype(np.int64), self.tfs[lo:hi].astype(np.float32)

    @classmethod
    def from_terms(
        cls, ids: Sequence[str], docs: Sequence[Sequence[str]], tokenizer: str
    ) -> Segment:
        """Postings of already tokenised documents, one per id."""
        if len(ids) != len(docs):
            raise ValueError(f"{len(ids)} ids but {len(docs)} documents")
        id_list = list(ids)
        if not all(isinstance(i, str) for i in id_list):
            raise TypeError("chunk ids must be strings")
        if len(set(id_list)) != len(id_list):
            raise ValueError("chunk ids must be unique")
        numbers: dict[str, int] = {}
        flat = np.fromiter(
            (numbers.setdefault(t, len(numbers)) for doc in docs for t in doc), dtype=np.int64
        )
        lengths = np.array([len(doc) for doc in docs], dtype=np.float32)
        doc_of = np.repeat(np.arange(len(docs), dtype=np.int64), lengths.astype(np.int64))
        # One key per (term, row) pair, sorted term-major: the postings in order, with counts.
        keys, counts = np.unique(flat * max(len(docs), 1) + doc_of, return_counts=True)
        term_of = keys // max(len(docs), 1)
        indptr = np.zeros(len(numbers) + 1, dtype=np.int64)
        np.cumsum(np.bincount(term_of, minlength=len(numbers)), out=indptr[1:])
        return cls(
            ids=id_list,
            terms=list(numbers),
            indptr=indptr,
            rows=keys % max(len(docs), 1),
            tfs=counts.astype(np.float32),
            lengths=lengths,
            tokenizer=tokenizer,
        )

    @classmethod
    def merge(cls, parts: Sequence[tuple[Segment, npt.NDArray[np.bool_]]]) -> Segment:
        """One segment of the rows each mask keeps, in order: no text is tokenised again."""
        numbers: dict[str, int] = {}
        ids: list[str] = []
        lengths: list[Floats] = []
        term_parts: list[Ints] = []
        row_parts: list[Ints] = []
        tf_parts: list[Floats] = []
        tokenizers = {segment.tokenizer for segment, _ in parts}
        if len(tokenizers) > 1:
            raise LexicalIndexError(f"cannot merge segments of tokenizers {sorted(tokenizers)}")
        offset = 0
        for segment, keep in parts:
            renumber = np.cumsum(keep, dtype=np.int64) - 1 + offset
            to_global = np.fromiter(
                (numbers.setdefault(t, len(numbers)) for t in segment.terms),
                dtype=np.int64,
                count=len(segment.terms),
            )
            term_of = np.repeat(to_global, np.diff(segment.indptr))
            kept = keep[segment.rows]
            term_parts.append(term_of[kept])
            row_parts.append(renumber[segment.rows[kept]])
            tf_parts.append(np.asarray(segment.tfs[kept]))
            ids.extend(i for i, k in zip(segment.ids, keep, strict=True) if k)
            lengths.append(np.asarray(segment.lengths[keep]))
            offset += int(keep.sum())
        terms = np.concatenate(term_parts) if term_parts else _NO_ROWS
        rows = np.concatenate(row_parts) if row_parts else _NO_ROWS
        tfs = np.concatenate(tf_parts) if tf_parts else _NO_TFS
        # Terms only dead rows held are dropped: renumber the ones still used.
        used = np.bincount(terms, minlength=len(numbers)) > 0
        new_number = np.cumsum(used) - 1
        terms = new_number[terms]
        order = np.lexsort((rows, terms))
        indptr = np.zeros(int(used.sum()) + 1, dtype=np.int64)
        np.cumsum(np.bincount(terms, minlength=len(indptr) - 1), out=indptr[1:])
        names = list(numbers)
        return cls(
            ids=ids,
            terms=[names[n] for n in np.flatnonzero(used)],
            indptr=indptr,
            rows=rows[order],
            tfs=tfs[order],
            lengths=np.concatenate(lengths) if lengths else _NO_TFS,
            tokenizer=tokenizers.pop() if tokenizers else "",
        )

    def save(self, directory: Path) -> None:
        """Write as a new `directory`, all or nothing.

        Everything goes into a hidden temp directory beside it, renamed into place at the
        end, so a crash leaves no `directory` or a complete one (plus, after a hard kill,
        a stray ``.NAME.*.tmp`` that nothing reads and the next sweep removes).
        """
        directory = Path(directory)
        _refuse_existing(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent)
        )
        try:
            for name in _ARRAYS:
                np.save(tmp / f"{name}.npy", _narrow(name, getattr(self, name)))
            (tmp / IDS_FILE).write_text(json.dumps(self.ids, ensure_ascii=False), encoding="utf-8")
            (tmp / VOCAB_FILE).write_text(
                json.dumps(self.terms, ensure_ascii=False), encoding="utf-8"
            )
            meta = {
                "format": FORMAT,
                "tokenizer": self.tokenizer,
                "rows": len(self.ids),
                "terms": len(self.terms),
                "postings": len(self.rows),
            }
            (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
            _fsync_tree(tmp)
            _refuse_existing(directory)
            try:
                os.replace(tmp, directory)  # replaces only a missing or empty directory
            except OSError as exc:
                raise LexicalIndexError(
                    f"{directory}: could not move the new segment into place ({exc})"
                ) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(directory.parent)

    @classmethod
    def load(cls, directory: Path, tokenizer: str, verify: bool = False) -> Segment:
        """Open a saved segment; postings are memory-mapped so start-up stays quick.
        Sizes are always checked; `verify` (index check) also reads every posting to
        check its row is in range, and every id and term to check it is a string and the
        ids unique: at a million chunks that is a GB read and a second at each open."""
        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.is_file():
            what = "no such directory" if not directory.exists() else f"no {META_FILE}"
            raise LexicalIndexError(f"{directory}: not a lexical segment ({what})")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            ids = json.loads((directory / IDS_FILE).read_text(encoding="utf-8"))
            terms = json.loads((directory / VOCAB_FILE).read_text(encoding="utf-8"))
            arrays: dict[str, Any] = {
                name: np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                for name in _ARRAYS
            }
        except (OSError, ValueError) as exc:
            raise LexicalIndexError(f"{directory}: unreadable lexical segment ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise LexicalIndexError(
                f"{directory}: unsupported lexical segment format; rebuild the index"
            )
        if meta.get("tokenizer") != tokenizer:
            raise LexicalIndexError(
                f"{directory}: built with tokenizer {meta.get('tokenizer')!r}, this version "
                f"uses {tokenizer!r}; rebuild the index"
            )
        for name, value in (("ids", ids), ("terms", terms)):
            strings = not verify or all(isinstance(v, str) for v in value)
            if not isinstance(value, list) or not strings:
                raise LexicalIndexError(f"{directory}: {name} are not a list of strings")
        indptr, rows = arrays["indptr"], arrays["rows"]
        consistent = (
            meta.get("rows") == len(ids) == len(arrays["lengths"])
            and (not verify or len(set(ids)) == len(ids))
            and meta.get("terms") == len(terms) == len(indptr) - 1
            and all(arrays[name].ndim == 1 for name in _ARRAYS)
            and int(indptr[0]) == 0
            and int(indptr[-1]) == len(rows) == len(arrays["tfs"]) == meta.get("postings")
            and (
                not verify
                or len(rows) == 0
                or (int(rows.min()) >= 0 and int(rows.max()) < len(ids))
            )
        )
        if not consistent:
            raise LexicalIndexError(
                f"{directory}: lexical segment files disagree; rebuild the index"
            )
        return cls(ids=ids, terms=terms, tokenizer=tokenizer, **arrays)


_NO_ROWS: Ints = np.zeros(0, dtype=np.int64)
_NO_TFS: Floats = np.zeros(0, dtype=np.float32)


def _narrow(name: str, array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Postings as stored: row numbers in int32 (a segment holds fewer than 2**31 rows)
    and term frequencies in float16 (whole numbers, exact up to 2,048, and a chunk is 256
    word-pieces): 6 bytes a posting instead of 12. A question's common terms page in
    their whole posting lists, so at a million chunks this halves what they put in RSS."""
    if name == "rows" and len(array) and int(array.max()) < 2**31:
        return array.astype(np.int32)
    if name == "tfs" and (len(array) == 0 or float(array.max()) <= 2048):
        return array.astype(np.float16)
    return array


def _refuse_existing(directory: Path) -> None:
    """Segments are write-once: only a missing or empty target may be written."""
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise LexicalIndexError(f"{directory}: exists and is not a directory")
    if directory.is_dir() and any(directory.iterdir()):
        raise LexicalIndexError(f"{directory}: already exists and is not empty")


def _fsync_tree(root: Path) -> None:
    """Flush every file before the rename, so the rename never publishes empty files."""
    for current, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(current, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(current))
