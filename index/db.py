"""The index database: the live state, its articles, spans and duplicate groups in SQLite.

One transaction switches the live state: a build or update writes everything the new
state names outside the database first (Chroma chunks, sentence-vector rows, keyword
segments), then commits the state row, the article rows and the duplicate groups
together. A writer killed before that commit leaves the previous state serving, whole;
one killed after it leaves the new one. WAL mode lets readers go on reading the state
they began with while a writer commits (snapshot reads within a read transaction).

Sentence vectors themselves live in one memory-mapped array file (index.vectors), the
chunk vectors in Chroma; the database says which rows and chunks a state names.
Connections are short-lived, one per use: nothing is shared between threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from index.manifest import ArticleEntry, Manifest, UnusableIndex, pack_spans, unpack_spans
from index.types import Article, ArticleInfo

DB_FILE = "index.sqlite"
SCHEMA = 1  # PRAGMA user_version; a database of another schema is refused by name
LEGACY_MANIFEST = "manifest.json"  # what indexes before the database kept

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),  -- one row: the live state
    version TEXT NOT NULL,                  -- names the state; new with every switch
    newsdesk_version TEXT NOT NULL,
    collection TEXT NOT NULL,
    chroma_url TEXT,
    model TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    chunk_tokens INTEGER NOT NULL,
    overlap_tokens INTEGER NOT NULL,
    title_tokens INTEGER NOT NULL,
    sources TEXT NOT NULL,                  -- JSON list of paths
    includes_demo INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    dedupe_threshold REAL,
    lexical_segments TEXT NOT NULL,         -- JSON list of names under lexical/, oldest first
    vectors_file TEXT NOT NULL,             -- the sentence-vector array file (index.vectors)
    vector_rows INTEGER NOT NULL            -- rows of it written when this state committed
);
-- Small columns first, the text last: a row longer than a page spills into overflow
-- pages, and reading a column after the text would walk them (opening the state reads
-- every article's hash and spans).
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    chunk_spans BLOB NOT NULL,              -- int32 (start, end) pairs, in chunk order
    sentence_spans BLOB,                    -- int32 (start, end) pairs the vectors pool over
    sentence_counts BLOB,                   -- float32 word-pieces pooled per sentence
    vector_row INTEGER,                     -- first row of its sentences in the array file
    splitter TEXT,                          -- index.sentences.SPLITTER they were split by
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    date TEXT,
    source TEXT NOT NULL,
    author TEXT NOT NULL,
    metadata TEXT NOT NULL,                 -- JSON object
    origin TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS duplicates (
    article_id TEXT PRIMARY KEY,            -- a member of a near-duplicate group
    canonical TEXT NOT NULL                 -- the group's canonical article
) WITHOUT ROWID;
"""

_STATE_COLUMNS = (
    "version",
    "newsdesk_version",
    "collection",
    "chroma_url",
    "model",
    "dimension",
    "chunk_tokens",
    "overlap_tokens",
    "title_tokens",
    "sources",
    "includes_demo",
    "created_at",
    "updated_at",
    "dedupe_threshold",
    "lexical_segments",
    "vectors_file",
    "vector_rows",
)
_LOOKUPS = 1000  # more ids than this: one scan beats a lookup each
_ARTICLE_COLUMNS = "id, hash, title, text, url, date, source, author, metadata, origin"
_ROW_COLUMNS = (
    f"{_ARTICLE_COLUMNS}, chunk_spans, sentence_spans, sentence_counts, vector_row, splitter"
)


@dataclass(frozen=True, slots=True)
class SentenceRows:
    """Where one article version's sentence vectors are: its sentence spans, the
    word-pieces pooled per sentence (0: never embedded), the first of its rows in the
    array. Spans and counts stay packed as stored: a reader holds every article's, and
    decodes only those of the passages a question retrieved."""

    packed_spans: bytes  # int32 (start, end) pairs
    packed_counts: bytes  # float32
    row: int
    splitter: str

    @classmethod
    def of(
        cls, spans: list[tuple[int, int]], counts: npt.NDArray[np.float32], row: int, splitter: str
    ) -> SentenceRows:
        return cls(pack_spans(spans), counts.astype("<f4").tobytes(), row, splitter)

    @property
    def sentences(self) -> int:
        return len(self.packed_spans) // 8

    @property
    def spans(self) -> list[tuple[int, int]]:
        return unpack_spans(self.packed_spans)

    @property
    def counts(self) -> npt.NDArray[np.float32]:
        return np.frombuffer(self.packed_counts, dtype="<f4").astype(np.float32)


class IndexDB:
    """The database of one index directory; every method opens and closes its own
    connection, so an instance may be shared freely."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self.path = index_dir / DB_FILE
        self._last: Manifest | None = None  # the last state read or committed through this

    def legacy(self) -> bool:
        """An index in the layout before the database: a rebuild replaces it."""
        return not self.path.is_file() and (self.index_dir / LEGACY_MANIFEST).is_file()

    def exists(self) -> bool:
        """Whether an index in this layout is here; an old-layout one raises, naming
        the rebuild (there is no second code path to read it)."""
        if self.path.is_file():
            return True
        if self.legacy():
            raise UnusableIndex(
                f"the index in {self.index_dir} is in an older layout ({LEGACY_MANIFEST}) "
                "that this version no longer reads; rebuild it from its sources with "
                f"`newsdesk index build SOURCE... --index-dir {self.index_dir}`"
            )
        return False

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """One connection for one use. FULL sync: a commit is the switch, and an update
        deletes the old state's chunks right after it, so it must survive a power cut."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=30)
        except sqlite3.Error as exc:
            raise UnusableIndex(f"{self.path}: cannot open the index database ({exc})") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            yield conn
        except sqlite3.DatabaseError as exc:
            raise UnusableIndex(f"{self.path}: unreadable index database ({exc})") from exc
        finally:
            conn.close()

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query in the block sees the same committed state."""
        with self.connect() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.rollback()

    def read_manifest(self) -> Manifest | None:
        """The live state, or None when nothing has been built here yet. The last state
        read or committed through this object is kept and handed out again while it is
        live: a warm writer's next update then reads one row, not every article's chunk
        spans (0.4 s at a million chunks). A state never changes once committed, and
        callers copy a manifest to change it (`model_copy`), never change it in place."""
        if not self.exists():
            return None
        with self.snapshot() as conn:
            last = self._last
            if last is not None:
                try:
                    row = conn.execute("SELECT version FROM state WHERE id = 1").fetchone()
                except sqlite3.Error:
                    row = None
                if row is not None and row[0] == last.state:
                    return last
            self._last = _manifest(conn, self.path)
            return self._last

    def read_live(
        self, ids: Collection[str] | None = None
    ) -> tuple[Manifest, dict[str, Article], dict[str, SentenceRows]] | None:
        """The live state with its articles (those in `ids`, else all) and sentence rows,
        read in one snapshot, so they belong together."""
        if not self.exists():
            return None
        with self.snapshot() as conn:
            manifest = _manifest(conn, self.path)
            if manifest is None:
                return None
            return manifest, _articles(conn, ids), _sentences(conn, ids)

    def read_texts(self) -> tuple[str, dict[str, Article]] | None:
        """The live state's name and its articles, read together (no spans, no vectors):
        what a saved answer's citations are checked against."""
        if not self.exists():
            return None
        with self.snapshot() as conn:
            row = conn.execute("SELECT version FROM state WHERE id = 1").fetchone()
            return None if row is None else (str(row[0]), _articles(conn, None))

    def read_articles(self, ids: Collection[str] | None = None) -> dict[str, Article]:
        """The live state's articles (those in `ids`, else all)."""
        if not self.exists():
            return {}
        with self.snapshot() as conn:
            return _articles(conn, ids)

    def read_sentences(self, ids: Collection[str] | None = None) -> dict[str, SentenceRows]:
        if not self.exists():
            return {}
        with self.snapshot() as conn:
            return _sentences(conn, ids)

    def integrity(self) -> list[str]:
        """What SQLite's own check finds wrong in the database file (empty: nothing)."""
        with self.connect() as conn:
            found = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
        return [] if found == ["ok"] else [f"{self.path}: {line}" for line in found]

    def live_vector_rows(self) -> int:
        """Rows of the vector file the live state uses (its sentences), without reading
        the spans: the rest of the file is garbage a compaction reclaims."""
        with self.snapshot() as conn:
            (size,) = conn.execute(
                "SELECT coalesce(sum(length(sentence_spans)), 0) FROM articles "
                "WHERE vector_row IS NOT NULL"
            ).fetchone()
        return int(size) // 8  # two int32 per sentence

    def version(self) -> str | None:
        """The live state's name: one indexed lookup, asked before every chat answer."""
        if not self.path.is_file():
            return None
        with self.connect() as conn:
            row = conn.execute("SELECT version FROM state WHERE id = 1").fetchone()
        return str(row[0]) if row else None

    def commit(
        self,
        manifest: Manifest,
        put: Iterable[Article],
        sentences: Mapping[str, SentenceRows],
        drop: Collection[str] = (),
        replace_all: bool = False,
        moved: Mapping[str, int] | None = None,
    ) -> None:
        """Switch the live state to `manifest` in one transaction: its metadata and
        duplicate groups, the articles in `put` written (their chunk spans from the
        manifest, sentence rows from `sentences`), those in `drop` removed, or, with
        `replace_all`, every article not in `put`; `moved` gives other articles' sentence
        vectors a new first row (after a compaction into a new file). Everything the
        state names outside the database must be written and flushed before this is
        called."""
        values: list[object] = []
        for column in _STATE_COLUMNS:
            value = getattr(manifest, "state" if column == "version" else column)
            values.append(json.dumps(value) if isinstance(value, list) else value)
        rows = [_article_row(a, manifest.articles[a.id], sentences.get(a.id)) for a in put]
        with self.connect() as conn, conn:
            conn.executescript(_SCHEMA_SQL)  # committed on its own: idempotent
            conn.execute(f"PRAGMA user_version = {SCHEMA}")
            if replace_all:
                conn.execute("DELETE FROM articles")
            else:
                conn.executemany("DELETE FROM articles WHERE id = ?", ((i,) for i in drop))
            conn.executemany(
                f"INSERT OR REPLACE INTO articles ({_ROW_COLUMNS}) VALUES ({', '.join('?' * 15)})",
                rows,
            )
            conn.executemany(
                "UPDATE articles SET vector_row = ? WHERE id = ?",
                ((row, i) for i, row in (moved or {}).items()),
            )
            conn.execute(
                f"INSERT OR REPLACE INTO state (id, {', '.join(_STATE_COLUMNS)}) "
                f"VALUES (1, {', '.join('?' * len(_STATE_COLUMNS))})",
                values,
            )
            conn.execute("DELETE FROM duplicates")
            conn.executemany("INSERT INTO duplicates VALUES (?, ?)", manifest.duplicates.items())
        self._last = manifest


class Snapshot:
    """One read transaction held open for an index reader's lifetime, so what it reads
    later (an article's text, its sentence rows) belongs to the state it opened,
    whatever writers commit meanwhile: WAL keeps the pages the transaction sees. One
    connection serves the reader's threads, one lookup at a time.

    While it is open the WAL cannot be checkpointed past it, so the file grows with
    every write until the reader is dropped; a reader is replaced as soon as it is
    not current (`IndexReader.is_current`), so that is one update's worth.
    """

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("BEGIN")
            self.manifest = _manifest(self._conn, path)  # the first read fixes the snapshot
        except sqlite3.Error as exc:
            self.close()
            raise UnusableIndex(f"{path}: unreadable index database ({exc})") from exc
        self.path = path

    def infos(self) -> dict[str, ArticleInfo]:
        with self._reading() as conn:
            rows = conn.execute("SELECT id, date, source FROM articles").fetchall()
        return {i: ArticleInfo(i, date, source) for i, date, source in rows}

    def article(self, article_id: str) -> Article | None:
        with self._reading() as conn:
            return _articles(conn, [article_id]).get(article_id)

    def sentences(self, article_id: str) -> SentenceRows | None:
        with self._reading() as conn:
            return _sentences(conn, [article_id]).get(article_id)

    def close(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise UnusableIndex(f"{self.path}: unreadable index database ({exc})") from exc


def _manifest(conn: sqlite3.Connection, path: Path) -> Manifest | None:
    (schema,) = conn.execute("PRAGMA user_version").fetchone()
    if schema == 0:
        return None  # created, never committed to
    if schema != SCHEMA:
        raise UnusableIndex(
            f"{path}: index database of schema {schema}, this version reads {SCHEMA}; "
            "rebuild it with `newsdesk index build SOURCE...`"
        )
    cursor = conn.execute(f"SELECT {', '.join(_STATE_COLUMNS)} FROM state WHERE id = 1")
    row = cursor.fetchone()
    if row is None:
        return None
    state = dict(zip(_STATE_COLUMNS, row, strict=True))
    state["sources"] = json.loads(state["sources"])
    state["lexical_segments"] = json.loads(state["lexical_segments"])
    state["includes_demo"] = bool(state["includes_demo"])
    state["state"] = state.pop("version")
    articles = {
        article_id: ArticleEntry(h, blob)
        for article_id, h, blob in conn.execute("SELECT id, hash, chunk_spans FROM articles")
    }
    duplicates = dict(conn.execute("SELECT article_id, canonical FROM duplicates").fetchall())
    return Manifest.model_construct(**state, articles=articles, duplicates=duplicates)


def _rows(
    conn: sqlite3.Connection, query: str, ids: Collection[str] | None
) -> list[tuple[Any, ...]]:
    """The rows `query` selects (id first) of the articles in `ids`, else all: one
    lookup per id for a few, one scan for many."""
    where = " AND" if " WHERE " in query else " WHERE"
    if ids is not None and len(ids) <= _LOOKUPS:
        return [r for i in ids for r in conn.execute(f"{query}{where} id = ?", (i,))]
    wanted = None if ids is None else set(ids)
    return [r for r in conn.execute(query) if wanted is None or r[0] in wanted]


def _articles(conn: sqlite3.Connection, ids: Collection[str] | None) -> dict[str, Article]:
    found = {}
    rows = _rows(conn, f"SELECT {_ARTICLE_COLUMNS} FROM articles", ids)
    for article_id, h, title, text, url, date, source, author, metadata, origin in rows:
        found[article_id] = Article(
            id=article_id,
            title=title,
            text=text,
            url=url,
            date=date,
            source=source,
            author=author,
            metadata=json.loads(metadata),
            origin=origin,
            hash=h,
        )
    return found


def _sentences(
    conn: sqlite3.Connection, ids: Collection[str] | None = None
) -> dict[str, SentenceRows]:
    query = (
        "SELECT id, sentence_spans, sentence_counts, vector_row, splitter FROM articles "
        "WHERE vector_row IS NOT NULL"
    )
    return {
        article_id: SentenceRows(spans, counts, row, splitter)
        for article_id, spans, counts, row, splitter in _rows(conn, query, ids)
    }


def _article_row(
    article: Article, entry: ArticleEntry, sentences: SentenceRows | None
) -> tuple[object, ...]:
    return (
        article.id,
        article.hash,
        article.title,
        article.text,
        article.url,
        article.date,
        article.source,
        article.author,
        json.dumps(dict(article.metadata), ensure_ascii=False),
        article.origin,
        entry.packed,
        sentences.packed_spans if sentences else None,
        sentences.packed_counts if sentences else None,
        sentences.row if sentences else None,
        sentences.splitter if sentences else None,
    )


def read_manifest(index_dir: Path) -> Manifest | None:
    """The live state of the index in `index_dir`, or None when none was built there."""
    return IndexDB(index_dir).read_manifest()


def read_texts(index_dir: Path) -> tuple[str, dict[str, Article]] | None:
    """The live state's name and article texts, from one snapshot."""
    return IndexDB(index_dir).read_texts()


def read_articles(index_dir: Path, ids: Collection[str] | None = None) -> dict[str, Article]:
    """The live state's article texts (those in `ids`, else all)."""
    return IndexDB(index_dir).read_articles(ids)
