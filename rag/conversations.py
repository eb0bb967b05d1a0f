"""Saved conversations: questions and their answer records, kept per index in SQLite.

One file beside the index (`conversations.sqlite`) so a conversation stays with the
collection it was asked of. WAL lets the chat, the CLI and another process read while
one of them writes; each write is one transaction, so a crash never leaves half a turn.
A saved answer keeps the index version it came from: reopened after the index changed,
it says so, and each quote is looked up again in the article's current text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from index.db import read_texts
from index.types import Article
from newsdesk.errors import NewsdeskError
from rag.types import Answer, Citation

CONVERSATIONS_FILE = "conversations.sqlite"
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    index_version TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (conversation_id, position)
);
"""
_TITLE_CHARS = 80
_BUSY_SECONDS = 30.0  # how long a write waits for another process's write to finish


class UnknownConversation(NewsdeskError, LookupError):
    """No saved conversation has this id (deleted, or saved with another index)."""


class ConversationsUnreadable(NewsdeskError, RuntimeError):
    """The conversations file cannot be read or written; the message names it."""


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    created: str
    updated: str
    turns: int


@dataclass(frozen=True)
class Turn:
    """One question and the answer record it got, as saved."""

    conversation_id: int
    position: int  # 1, 2, … in the order asked
    question: str
    answer: Answer
    index_version: str  # the index state the answer came from (IndexReader.version)
    created: str


QuoteStatus = Literal["unchanged", "moved", "gone"]


@dataclass(frozen=True)
class QuoteCheck:
    """Citation n of a saved answer looked up in the article's current text. `start`,
    `end` are where the quote is now (moved), else the saved span."""

    n: int
    article_id: str
    status: QuoteStatus
    start: int
    end: int

    @property
    def note(self) -> str | None:
        """What a reader must be told, or None for a quote still where it was."""
        if self.status == "moved":
            return (
                f"[{self.n}] the quote has moved in article {self.article_id}: "
                f"now characters {self.start}-{self.end}"
            )
        if self.status == "gone":
            return f"[{self.n}] the quote is gone from article {self.article_id}"
        return None


@dataclass(frozen=True)
class Reopened:
    """A saved turn checked against the live index: `answer` is the saved record with
    notes added when the index has changed since."""

    turn: Turn
    answer: Answer
    live_version: str | None
    checks: list[QuoteCheck]

    @property
    def index_changed(self) -> bool:
        return self.live_version != self.turn.index_version


class ConversationStore:
    """The conversations of one index directory. Each call opens its own connection, so
    one store may be shared by threads, and any number of processes may open the file."""

    def __init__(self, index_dir: Path) -> None:
        self.path = index_dir / CONVERSATIONS_FILE

    def conversations(self) -> list[Conversation]:
        """Every conversation, the most recently updated first."""
        with self._read() as db:
            rows = db.execute(
                "SELECT c.id, c.title, c.created, c.updated, COUNT(t.position) "
                "FROM conversations c LEFT JOIN turns t ON t.conversation_id = c.id "
                "GROUP BY c.id ORDER BY c.updated DESC, c.id DESC"
            ).fetchall()
        return [Conversation(*row) for row in rows]

    def get(self, conversation_id: int) -> Conversation:
        for conversation in self.conversations():
            if conversation.id == conversation_id:
                return conversation
        raise self._unknown(conversation_id)

    def turns(self, conversation_id: int) -> list[Turn]:
        """The turns of a conversation in the order asked."""
        with self._read() as db:
            if not _exists(db, conversation_id):
                raise self._unknown(conversation_id)
            rows = db.execute(
                "SELECT position, question, answer, index_version, created FROM turns "
                "WHERE conversation_id = ? ORDER BY position",
                (conversation_id,),
            ).fetchall()
        return [self._turn(conversation_id, *row) for row in rows]

    def save_turn(self, conversation_id: int | None, question: str, answer: Answer) -> Turn:
        """Add a question and its answer to a conversation; None starts a new one,
        titled by the question."""
        now = _now()
        record = answer.model_dump_json()  # what `newsdesk ask --json` prints, unindented
        with self._write() as db:
            if conversation_id is None:
                title = _title(question)
                cursor = db.execute(
                    "INSERT INTO conversations (title, created, updated) VALUES (?, ?, ?)",
                    (title, now, now),
                )
                assert cursor.lastrowid is not None
                conversation_id = cursor.lastrowid
            elif not _exists(db, conversation_id):
                raise self._unknown(conversation_id)
            (position,) = db.execute(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM turns WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
            db.execute(
                "INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, position, question, record, answer.index_version, now),
            )
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))
        return Turn(conversation_id, position, question, answer, answer.index_version, now)

    def rename(self, conversation_id: int, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            raise NewsdeskError(f"conversation {conversation_id}: the new title is empty")
        with self._write() as db:
            cursor = db.execute(
                "UPDATE conversations SET title = ?, updated = ? WHERE id = ?",
                (title, _now(), conversation_id),
            )
            if cursor.rowcount == 0:
                raise self._unknown(conversation_id)

    def delete(self, conversation_id: int) -> None:
        """Remove a conversation and all its turns."""
        with self._write() as db:
            db.execute("DELETE FROM turns WHERE conversation_id = ?", (conversation_id,))
            cursor = db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            if cursor.rowcount == 0:
                raise self._unknown(conversation_id)

    def questions(self, conversation_id: int) -> list[str]:
        """The questions asked so far, oldest first: the history of a follow-up."""
        return [turn.question for turn in self.turns(conversation_id)]

    def _unknown(self, conversation_id: int) -> UnknownConversation:
        return UnknownConversation(
            f"no saved conversation {conversation_id} in {self.path}; "
            "`newsdesk conversations list` shows the saved ones"
        )

    def _turn(
        self,
        conversation_id: int,
        position: int,
        question: str,
        record: str,
        index_version: str,
        created: str,
    ) -> Turn:
        try:
            answer = Answer.model_validate_json(record)
        except ValidationError as exc:
            raise ConversationsUnreadable(
                f"{self.path}: conversation {conversation_id}, turn {position}: "
                f"the saved answer record is unreadable ({exc})"
            ) from exc
        return Turn(conversation_id, position, question, answer, index_version, created)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A connection that sees one snapshot per statement; a missing file reads as empty."""
        if not self.path.exists():
            with self._connect(":memory:") as db:
                db.executescript(_SCHEMA)
                yield db
            return
        with self._connect(str(self.path)) as db:
            if db.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
                db.executescript(_SCHEMA)  # made by another process that has not written yet
            yield db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, taken for writing at the start (BEGIN IMMEDIATE) so two
        writers never both read the same next turn position."""
        with self._connect(str(self.path)) as db:
            db.execute("BEGIN IMMEDIATE")
            try:  # the tables are made by the first write, inside its transaction
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _connect(self, where: str) -> Iterator[sqlite3.Connection]:
        try:
            with closing(sqlite3.connect(where, timeout=_BUSY_SECONDS, isolation_level=None)) as db:
                if where != ":memory:":
                    db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA foreign_keys = ON")
                yield db
        except sqlite3.Error as exc:
            raise ConversationsUnreadable(f"{self.path}: {exc}") from exc


def _now() -> str:
    """UTC to the microsecond, so the list's order follows the order of writes."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _exists(db: sqlite3.Connection, conversation_id: int) -> bool:
    row = db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    return row is not None


def _title(question: str) -> str:
    title = " ".join(question.split())
    return title if len(title) <= _TITLE_CHARS else title[: _TITLE_CHARS - 1].rstrip() + "…"


def live_index(index_dir: Path) -> tuple[str | None, dict[str, Article]]:
    """The live index version and its article texts, from the index database alone (no
    model, no Chroma): what a reopened answer is checked against. (None, {}) without an
    index."""
    found = read_texts(index_dir)
    return found if found is not None else (None, {})


def reopen(turn: Turn, live_version: str | None, articles: Mapping[str, Article]) -> Reopened:
    """A saved turn against the live index (`IndexReader.version` and `.articles`, or
    `live_index`): each quote checked, and notes when the index has changed since."""
    answer = turn.answer
    checks = [check_quote(citation, articles) for citation in answer.citations]
    if live_version == turn.index_version:
        return Reopened(turn, answer, live_version, checks)
    now = "there is no index now" if live_version is None else "the index has changed since"
    notes = [f"answered from index version {turn.index_version}; {now}"]
    notes += [check.note for check in checks if check.note]
    checked = answer.model_copy(update={"notes": [*answer.notes, *notes]})
    return Reopened(turn, checked, live_version, checks)


def check_quote(citation: Citation, articles: Mapping[str, Article]) -> QuoteCheck:
    """Where the citation's quote is in the article's current text: at its span, at
    the nearest other place it occurs, or nowhere (the article too may be gone)."""
    start, end, quote = citation.start, citation.end, citation.text
    article = articles.get(citation.article_id)
    text = article.text if article is not None else ""
    if article is not None and text[start:end] == quote:
        return QuoteCheck(citation.n, citation.article_id, "unchanged", start, end)
    found, at = [], text.find(quote) if quote else -1
    while at >= 0:
        found.append(at)
        at = text.find(quote, at + 1)
    if not found:
        return QuoteCheck(citation.n, citation.article_id, "gone", start, end)
    moved = min(found, key=lambda place: abs(place - start))
    return QuoteCheck(citation.n, citation.article_id, "moved", moved, moved + len(quote))
