"""The BM25 leg of hybrid retrieval, kept in its own directory beside the Chroma data.

Dense retrieval misses exact names, numbers and rare words that a question quotes
verbatim; BM25 catches those. Each index state owns one lexical directory that is
written once and never touched again: an update builds a whole new directory and the
manifest switches to it, so a reader never sees a half-updated index. That is why the
API is only build / load / search.

On disk (all inside the directory):

- ``lexical.json``: format, tokenizer id and document count, so a directory built by
  an incompatible version is refused instead of silently returning poor matches;
- ``ids.json``: chunk ids in document order, because bm25s only knows row numbers;
- ``bm25/``: the bm25s index (absent when no chunk has a single searchable token).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from index.manifest import fsync_dir

if TYPE_CHECKING:
    import bm25s  # type: ignore[import-untyped]

FORMAT = 1
META_FILE = "lexical.json"
IDS_FILE = "ids.json"
BM25_DIR = "bm25"

# Bump whenever tokenize() changes in a way that alters tokens: indexes built with an
# older tokenizer are then refused at load (and rebuilt) rather than half-matching.
TOKENIZER = "newsdesk-1/snowball-english"

_STEMMER_ALGORITHM = "english"
_MAX_TOKEN_CHARS = 40

# NLTK's English list in apostrophe-free form (tokens lose their apostrophes before the
# check), minus "won" (news questions ask who won far more often than they say "won't"),
# plus "us", which survives when written as the acronym "US" / "U.S.".
# Question words (what/who/when/how) are included because they match everything.
STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against ain all am an and any are aren arent as at be
    because been before being below between both but by can couldn couldnt d did didn
    didnt do does doesn doesnt doing don dont down during each few for from further had
    hadn hadnt has hasn hasnt have haven havent having he her here hers herself him
    himself his how i if in into is isn isnt it its itself just ll m ma me mightn mightnt
    more most mustn mustnt my myself needn neednt no nor not now o of off on once only or
    other our ours ourselves out over own re s same shan shant she shes should shouldve
    shouldn shouldnt so some such t than that thatll the their theirs them themselves
    then there these they this those through to too under until up us ve very was
    wasn wasnt we were weren werent what when where which while who whom why will with wont
    wouldn wouldnt y you youd youll your youre yours yourself yourselves youve
    """.split()  # noqa: SIM905 - a word list reads better as prose
)

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_LETTER = r"[^\W\d_]"
_THOUSANDS_RE = re.compile(rf"\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?{_LETTER}*")
# U+0300-U+036F are the accents NFKD splits off Latin, Greek and Cyrillic letters; other
# scripts' combining marks (Devanagari vowel signs, Arabic harakat...) are part of the
# spelling and are left alone.
_ACCENTS_RE = re.compile(r"[\u0300-\u036f]+")
# Letters with no decomposition that people still type without the stroke; apostrophe
# look-alikes (curly quotes, primes) so both spellings of "Obama's" are one token.
_FOLD = str.maketrans(
    {
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "Th",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "\u0131": "i",
        "\u2019": "'",
        "\u2018": "'",
        "\u02bc": "'",
        "\u2032": "'",
        "`": "'",
    }
)

_local = threading.local()


class LexicalIndexError(ValueError):
    """The lexical directory is missing, unreadable, inconsistent or may not be written."""


def tokenize(text: str) -> list[str]:
    """Terms for BM25; documents and queries must go through this same function.

    Case, accents and apostrophe style are folded so "Zürich"/"Zurich" and curly/straight
    "Obama's" meet; numbers stay (questions ask about years and counts) with thousands
    separators dropped; stopwords go, except when written as an acronym ("U.S.", "US",
    "WHO"), since those are names, not filler; the rest is Snowball-stemmed so "warned"
    finds "warning".
    """
    terms: list[str] = []
    for acronym, number, cjk, word in _token_re().findall(_fold(text)):
        if word:
            term = word.casefold()
            if "'" in term:
                term = term.removesuffix("'s").replace("'", "")
            if term in STOPWORDS and not (len(word) > 1 and word.isupper()):
                continue
        elif number:
            term = number.replace(",", "") if _THOUSANDS_RE.fullmatch(number) else number
            if "," in term:
                terms.extend(part.casefold() for part in term.split(",") if part)
                continue
            term = term.casefold()
        elif acronym:
            term = acronym.replace(".", "").casefold()
        else:
            term = cjk
        if term and len(term) <= _MAX_TOKEN_CHARS:
            terms.append(term)
    return _stemmer().stemWords(terms) if terms else terms


@functools.cache
def _token_re() -> re.Pattern[str]:
    """The token pattern, built on first use because it needs a scan of the Unicode table.

    Python's \\w leaves out combining marks, which would cut Hindi, Thai or Arabic words
    at every vowel sign, so the word pattern adds every mark of the Basic Multilingual
    Plane. CJK has no spaces between words, so each ideograph or kana is its own term.
    """
    marks = "".join(
        re.escape(chr(cp)) for cp in range(0x10000) if unicodedata.category(chr(cp)).startswith("M")
    )
    letter = rf"[^\W_{_CJK}]"
    # Possessive (Python 3.11+): a word never needs to give characters back, and not
    # backtracking makes the pattern about a third faster.
    word = rf"(?:{letter}++[{marks}]*+)++"
    return re.compile(
        rf"""
        (?P<acronym>{_LETTER}\.(?:{_LETTER}\.)*{_LETTER}\.?(?![^\W_]))  # U.S., U.K, a.m.
        | (?P<number>\d+(?:[.,]\d+)*(?:{_LETTER}+)?)                    # 1,000 3.5 1990s 20th
        | (?P<cjk>[{_CJK}])                                             # one ideograph/kana each
        | (?P<word>{word}(?:'{word})*)                                  # don't, O'Neill, Zürich
        """,
        re.VERBOSE,
    )


def _fold(text: str) -> str:
    """Compatibility-normalise (ligatures, full-width forms) and strip Latin accents."""
    if text.isascii():
        return text.replace("`", "'")
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return unicodedata.normalize("NFC", _ACCENTS_RE.sub("", decomposed))


def _stemmer() -> Any:
    """A stemmer per thread: PyStemmer objects are not safe to share between threads."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer  # type: ignore[import-not-found]  # PyStemmer ships no stubs

        stemmer = Stemmer.Stemmer(_STEMMER_ALGORITHM)
        _local.stemmer = stemmer
    return stemmer


class LexicalIndex:
    """A BM25 index over chunk texts, searched by chunk id; make one with build() or load().

    Searching is read-only, so one instance can serve concurrent requests.
    """

    def __init__(self, directory: Path, ids: list[str], bm25: bm25s.BM25 | None) -> None:
        self.directory = directory
        self._ids = ids
        self._bm25 = bm25
        self._position = {chunk_id: row for row, chunk_id in enumerate(ids)}

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"LexicalIndex({str(self.directory)!r}, chunks={len(self._ids)})"

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str], directory: Path) -> LexicalIndex:
        """Index `texts` and write the result as a new `directory`, all or nothing.

        Everything is written into a hidden temp directory beside `directory` and renamed
        into place at the end, so a crash leaves either no `directory` or a complete one
        (plus, after a hard kill, a stray ``.NAME.*.tmp`` that nothing reads).
        """
        directory = Path(directory)
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
        id_list = list(ids)
        if not all(isinstance(chunk_id, str) for chunk_id in id_list):
            raise TypeError("chunk ids must be strings")
        if len(set(id_list)) != len(id_list):
            raise ValueError("chunk ids must be unique")
        _refuse_existing(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)

        bm25 = _index([tokenize(text) for text in texts])

        tmp = Path(
            tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent)
        )
        try:
            if bm25 is not None:
                # No corpus is saved, so bm25s draws no progress bar here; show_progress is
                # not passed because early 0.3 releases reject it.
                bm25.save(tmp / BM25_DIR)
            (tmp / IDS_FILE).write_text(json.dumps(id_list, ensure_ascii=False), encoding="utf-8")
            meta = {
                "format": FORMAT,
                "tokenizer": TOKENIZER,
                "chunks": len(id_list),
                "bm25": bm25 is not None,
            }
            (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
            _fsync_tree(tmp)
            _refuse_existing(directory)
            try:
                # Replaces `directory` only if it is an empty directory; fails otherwise.
                os.replace(tmp, directory)
            except OSError as exc:
                raise LexicalIndexError(
                    f"{directory}: could not move the new index into place ({exc})"
                ) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(directory.parent)
        return cls(directory, id_list, bm25)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Open a built directory; score arrays are memory-mapped so start-up stays quick."""
        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.is_file():
            what = "no such directory" if not directory.exists() else f"no {META_FILE}"
            raise LexicalIndexError(f"{directory}: not a lexical index ({what})")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            ids = json.loads((directory / IDS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LexicalIndexError(f"{directory}: unreadable lexical index ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise LexicalIndexError(f"{directory}: unsupported lexical index format; rebuild it")
        if meta.get("tokenizer") != TOKENIZER:
            raise LexicalIndexError(
                f"{directory}: built with tokenizer {meta.get('tokenizer')!r}, this version "
                f"uses {TOKENIZER!r}; rebuild the index"
            )
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise LexicalIndexError(f"{directory}: {IDS_FILE} is not a list of chunk ids")
        if meta.get("chunks") != len(ids) or len(set(ids)) != len(ids):
            raise LexicalIndexError(
                f"{directory}: {IDS_FILE} holds {len(ids)} ids "
                f"(unique: {len(set(ids))}), expected {meta.get('chunks')}"
            )
        bm25 = _load_bm25(directory, len(ids)) if meta.get("bm25") else None
        return cls(directory, ids, bm25)

    def search(
        self, query: str, k: int, allowed: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        """Top-`k` (chunk id, BM25 score) with score > 0, best first.

        With `allowed`, only those chunks compete, however few they are: every chunk is
        scored and the rest are masked out before ranking, so a metadata filter never
        starves the result the way "retrieve k, then filter" would. Ties rank in index
        order so results are reproducible.
        """
        if k <= 0 or self._bm25 is None:
            return []
        token_ids = self._bm25.get_tokens_ids(tokenize(query))
        if not token_ids:
            return []
        scores: npt.NDArray[np.floating[Any]] = self._bm25.get_scores_from_ids(token_ids)
        matching = scores > 0
        if allowed is not None:
            matching &= self._mask(allowed)
        rows = np.flatnonzero(matching)
        hits = scores[rows]
        if rows.size > k:
            keep = np.argpartition(-hits, k - 1)[:k]
            rows, hits = rows[keep], hits[keep]
        order = np.lexsort((rows, -hits))
        return [
            (self._ids[int(row)], float(hits[i])) for i, row in zip(order, rows[order], strict=True)
        ]

    def _mask(self, allowed: Collection[str]) -> npt.NDArray[np.bool_]:
        """True at the rows of the allowed chunks; ids not in this index are ignored."""
        get = self._position.get
        rows = np.array([get(chunk_id, -1) for chunk_id in allowed], dtype=np.int64)
        mask = np.zeros(len(self._ids), dtype=np.bool_)
        mask[rows[rows >= 0]] = True
        return mask


def _index(corpus_tokens: list[list[str]]) -> bm25s.BM25 | None:
    """The bm25s index, or None when there is nothing to match (bm25s cannot index that)."""
    if not any(corpus_tokens):
        return None
    import bm25s

    bm25 = bm25s.BM25()
    # No empty token: tokenize() never yields "", and an extra vocabulary entry would only
    # make the saved files disagree with what the queries can reach.
    bm25.index(corpus_tokens, create_empty_token=False, show_progress=False)
    return bm25


def _load_bm25(directory: Path, chunks: int) -> bm25s.BM25:
    import bm25s

    where = directory / BM25_DIR
    try:
        # Without load_corpus there is no progress bar; not passing show_progress keeps
        # older 0.3 releases working (they would take it for a BM25 parameter).
        bm25 = bm25s.BM25.load(where, mmap=True)
        data, indices, indptr = (bm25.scores[name] for name in ("data", "indices", "indptr"))
        consistent = (
            bm25.scores["num_docs"] == chunks
            and data.ndim == indices.ndim == indptr.ndim == 1
            and len(indptr) == len(bm25.vocab_dict) + 1
            and int(indptr[0]) == 0
            and int(indptr[-1]) == len(data) == len(indices)
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise LexicalIndexError(f"{where}: unreadable BM25 index ({exc})") from exc
    if not consistent:
        raise LexicalIndexError(f"{where}: BM25 index does not match {IDS_FILE}; rebuild it")
    return bm25


def _refuse_existing(directory: Path) -> None:
    """Directories are write-once: only a missing or empty target may be built into."""
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
