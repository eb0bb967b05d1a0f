"""What the feed poller and the folder watcher remember, in one SQLite file per index.

The feed list, each feed's conditional-GET validators and last poll, the items already
indexed (and the version the feed gave them), and the size and mtime of each watched
file. A poll's new state is written in one transaction, and only after the index
update it describes has gone live: a crash in between makes the next poll fetch the
same items again, which the update then finds unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

FEEDS_DB = "feeds.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    added_at TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    polled_at TEXT,
    status TEXT NOT NULL DEFAULT 'not polled yet',
    error TEXT
);
CREATE TABLE IF NOT EXISTS items (
    feed TEXT NOT NULL,
    item TEXT NOT NULL,
    version TEXT NOT NULL,
    article_id TEXT NOT NULL,
    PRIMARY KEY (feed, item)
);
CREATE TABLE IF NOT EXISTS files (
    folder TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    PRIMARY KEY (folder, path)
);
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A feed as `feeds list` and the chat show it."""

    url: str
    title: str
    polled_at: str | None
    status: str  # "not polled yet", "ok: 3 new or changed", "not modified", "error"
    error: str | None
    etag: str | None = None
    last_modified: str | None = None
    in_settings: bool = False  # listed in feeds.urls: removed there, not by `feeds remove`


@dataclass(frozen=True, slots=True)
class Polled:
    """One feed's new state, written once its items are in the live index."""

    url: str
    title: str
    etag: str | None
    last_modified: str | None
    status: str
    items: Sequence[tuple[str, str, str]] = ()  # (item key, version, article id)


class FeedStore:
    def __init__(self, index_dir: Path) -> None:
        self.path = index_dir / FEEDS_DB
        self.index_dir = index_dir

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.executescript(_SCHEMA)
            with db:
                yield db

    def feeds(self, configured: Iterable[str] = ()) -> list[FeedRow]:
        """Added feeds and those in the settings, in the order first added."""
        configured = list(dict.fromkeys(configured))
        with self._db() as db:
            rows = db.execute(
                "SELECT url, title, polled_at, status, error, etag, last_modified "
                "FROM feeds ORDER BY rowid"
            ).fetchall()
        found = {
            url: FeedRow(url, title, polled, status, error, etag, modified, url in configured)
            for url, title, polled, status, error, etag, modified in rows
        }
        for url in configured:
            if url not in found:
                found[url] = FeedRow(url, "", None, "not polled yet", None, in_settings=True)
        return list(found.values())

    def add(self, url: str) -> bool:
        """Add a feed; False if it was already there."""
        with self._db() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO feeds (url, added_at) VALUES (?, ?)", (url, now_iso())
            )
            return cursor.rowcount == 1

    def remove(self, url: str) -> bool:
        """Forget a feed and its items; False if it was not there."""
        with self._db() as db:
            db.execute("DELETE FROM items WHERE feed = ?", (url,))
            return db.execute("DELETE FROM feeds WHERE url = ?", (url,)).rowcount == 1

    def versions(self, url: str) -> dict[str, str]:
        """Item key -> the version last indexed, for one feed."""
        with self._db() as db:
            rows = db.execute("SELECT item, version FROM items WHERE feed = ?", (url,))
            return dict(rows.fetchall())

    def failed(self, url: str, error: str) -> None:
        """Record a failed poll; validators and items stay as they were."""
        with self._db() as db:
            self._ensure(db, url)
            db.execute(
                "UPDATE feeds SET polled_at = ?, status = 'error', error = ? WHERE url = ?",
                (now_iso(), error, url),
            )

    def polled(self, results: Sequence[Polled]) -> None:
        """Record successful polls, all in one transaction."""
        with self._db() as db:
            for result in results:
                self._ensure(db, result.url)
                db.execute(
                    "UPDATE feeds SET title = ?, etag = ?, last_modified = ?, polled_at = ?, "
                    "status = ?, error = NULL WHERE url = ?",
                    (
                        result.title,
                        result.etag,
                        result.last_modified,
                        now_iso(),
                        result.status,
                        result.url,
                    ),
                )
                db.executemany(
                    "INSERT OR REPLACE INTO items (feed, item, version, article_id) "
                    "VALUES (?, ?, ?, ?)",
                    [(result.url, *item) for item in result.items],
                )

    def files(self, folder: Path) -> dict[str, tuple[int, int]]:
        """Relative path -> (size, mtime_ns) of the files of `folder` last indexed."""
        with self._db() as db:
            rows = db.execute(
                "SELECT path, size, mtime_ns FROM files WHERE folder = ?", (str(folder),)
            )
            return {path: (size, mtime) for path, size, mtime in rows.fetchall()}

    def set_files(self, folder: Path, files: dict[str, tuple[int, int]]) -> None:
        """Replace what is remembered of `folder` with `files`."""
        with self._db() as db:
            db.execute("DELETE FROM files WHERE folder = ?", (str(folder),))
            db.executemany(
                "INSERT INTO files (folder, path, size, mtime_ns) VALUES (?, ?, ?, ?)",
                [(str(folder), path, size, mtime) for path, (size, mtime) in files.items()],
            )

    @staticmethod
    def _ensure(db: sqlite3.Connection, url: str) -> None:
        """Feeds named in the settings get a row on their first poll."""
        db.execute("INSERT OR IGNORE INTO feeds (url, added_at) VALUES (?, ?)", (url, now_iso()))
