"""What the chat page does, without the page: ask, report status, add files, rebuild.

Kept apart from Gradio so it can be tested directly. Reads and writes use
separate model instances: a rebuild embeds thousands of chunks while questions
keep being answered from the state the manifest named when they started; the
next question after the switch opens the new state.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from index.build import Indexer, IndexReport, NothingToIndex, Progress
from index.db import read_manifest
from index.embed import Embedder
from index.feeds import PollReport, add_feed, list_feeds, poll_feeds
from index.feeds_store import FEEDS_DB, FeedRow, FeedStore
from index.reader import IndexReader
from index.status import index_status
from index.store import StoreUnavailable
from newsdesk.errors import NewsdeskError
from newsdesk.settings import Settings
from rag.answer import ExtractiveAnswerer
from rag.conversations import Conversation, ConversationStore, Reopened, reopen
from rag.export import Format, export
from rag.generate import AnswersQuestions, LlmAnswerer
from rag.llm_backend import make_llm
from rag.retrieve import Filters
from rag.types import Answer
from ui.uploads import Upload, store_uploads

UPLOADS = "uploads"


class NoIndex(NewsdeskError, RuntimeError):
    """There is nothing to answer from yet; the message says how to make an index."""


class Busy(NewsdeskError, RuntimeError):
    """Another update or rebuild is running."""


def _stream(
    answerer: AnswersQuestions, question: str, history: Sequence[str], filters: Filters | None
) -> Iterator[str | Answer]:
    if isinstance(answerer, LlmAnswerer):
        yield from answerer.stream(question, history=history, filters=filters)
    else:
        yield answerer.ask(question, history=history, filters=filters)


ADMIN_USER = "admin"  # the chat's user name for the admin token (chat.admin_token)


class ChatService:
    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or Embedder(settings.embedding)
        self._writer_embedder = embedder  # shared only when the caller passed one (tests)
        self._kept_indexer: Indexer | None = None
        self._answerer: AnswersQuestions | None = None
        self._llm: Any = None  # made once, on the first question, when answer.answerer is llm
        self._swap = threading.Lock()
        self._writing = threading.Lock()
        self._written: str | None = None  # the state (articles file) this process last wrote
        self.saved = ConversationStore(settings.index_dir)

    @property
    def index_dir(self) -> Path:
        return self.settings.index_dir

    @property
    def admin_token(self) -> str | None:
        """chat.admin_token: when set, only it may change the index."""
        return self.settings.chat.admin_bearer

    def write_refusal(self, user: str | None) -> str | None:
        """Why the chat's signed-in `user` may not change the index (None: they may).
        With an admin token, only the chat's admin (signed in with it) may."""
        if self.admin_token is None or user == ADMIN_USER:
            return None
        return (
            f"changing the index needs the admin token: sign in as {ADMIN_USER!r} with it "
            "(chat.admin_token)"
        )

    @property
    def uploads_dir(self) -> Path:
        return self.index_dir / UPLOADS

    def answerer(self) -> AnswersQuestions | None:
        """The answerer over the live index state, reopened once a write switched it.
        Concurrent questions share it (each answers from the one state it got here);
        only the swap takes a lock, never an answer, so a slow model holds up no one."""
        with self._swap:
            current = self._answerer
            if current is not None and current.reader.is_current():
                return current
            manifest = read_manifest(self.index_dir)
            if manifest is None:
                self._answerer = None
                return None
            # A state another process wrote (`newsdesk index update --local`, `watch`)
            # needs a Chroma client that reloads the vectors from disk.
            external = manifest.state != self._written
            reader = IndexReader(self.settings, self.embedder, fresh=external)
            if self.settings.answer.answerer == "llm":
                if self._llm is None:
                    self._llm = make_llm(self.settings.llm)
                self._answerer = LlmAnswerer(reader, self.settings, self._llm)
            else:
                self._answerer = ExtractiveAnswerer(reader, self.settings)
            return self._answerer

    def warm_up(self) -> None:
        """Load the model and touch every part of the index once, so that the first
        question a user asks is not the one that pays for it (about 7 s cold). The
        language model, if any, is not asked: that would cost a generation."""
        answerer = self.answerer()
        if isinstance(answerer, LlmAnswerer):
            answerer.extractive.ask("warm up")
        elif answerer is not None:
            answerer.ask("warm up")

    def ask(self, question: str, history: Sequence[str], filters: Filters | None) -> Answer:
        for part in self.stream(question, history, filters):
            if isinstance(part, Answer):
                return part
        raise AssertionError("stream() always ends with an Answer")

    def stream(
        self, question: str, history: Sequence[str], filters: Filters | None
    ) -> Iterator[str | Answer]:
        """A generated answer's text as it comes, then the checked Answer; an extractive
        answerer yields the Answer alone."""
        answerer = self.answerer()
        if answerer is None:
            raise NoIndex(self.no_index_message())
        try:
            yield from _stream(answerer, question, history, filters)
        except StoreUnavailable:
            # A write switched states and dropped the collection mid-question: once more.
            # An unreachable server is raised as it is (same answerer: no second wait); the
            # reader is kept, as Chroma's client reconnects once the server answers again.
            fresh = self.answerer()
            if fresh is None or fresh is answerer:
                raise
            yield from _stream(fresh, question, history, filters)

    def no_index_message(self) -> str:
        return (
            f"There is no index in {self.index_dir} yet. Add article files in the "
            "Collection tab, or run `newsdesk index build SOURCE...` and reload the page."
        )

    def status(self) -> tuple[dict[str, Any] | None, bool]:
        """What `index status` reports (None: no index yet), and whether the demo
        collection, whose licence must be shown, is in the index."""
        manifest = read_manifest(self.index_dir)
        if manifest is None:
            return None, False
        return index_status(
            self.index_dir, manifest, self.settings.embedding
        ), manifest.includes_demo

    def sources(self) -> list[str]:
        """The outlets in the index, for the source filter."""
        answerer = self.answerer()
        if answerer is None:
            return []
        return sorted({a.source for a in answerer.reader.infos.values() if a.source})

    def add(
        self, uploads: Sequence[Upload], progress: Progress | None = None
    ) -> tuple[list[Path], IndexReport]:
        """Store the uploaded files and index what is new or changed in them."""
        if not uploads:
            raise NothingToIndex("choose one or more article files first")
        with self._write_lock():
            max_bytes = self.settings.chat.max_upload_bytes
            stored = store_uploads(uploads, self.uploads_dir, max_bytes)
            report = self._indexer().update(stored, progress=progress)
        self.answerer()
        return stored, report

    def update(
        self, sources: Sequence[Path], prune: bool = False, progress: Progress | None = None
    ) -> IndexReport:
        """Index what is new or changed in files already on this machine (the HTTP API's
        `/v1/index/update`), under the same one-write-at-a-time rule as uploads."""
        with self._write_lock():
            report = self._indexer().update(sources, prune=prune, progress=progress)
        self.answerer()
        return report

    def rebuild(self, progress: Progress | None = None) -> IndexReport:
        """Re-index every source the index was built from, into a fresh collection.

        Refused if a source has gone: rebuilding without it would drop its articles.
        """
        with self._write_lock():
            manifest = read_manifest(self.index_dir)
            if manifest is None:
                raise NothingToIndex("there is no index to rebuild yet: add article files first")
            missing = [s for s in manifest.sources if not Path(s).exists()]
            if missing:
                raise NothingToIndex(
                    f"not rebuilding: {', '.join(missing)} no longer exists, and its articles "
                    "would be dropped; restore it or rebuild with `newsdesk index build`"
                )
            paths = [Path(s) for s in manifest.sources]
            report = self._indexer().build(paths, progress)
        self.answerer()
        return report

    def conversations(self) -> list[Conversation]:
        """The saved conversations of this index, the most recently updated first."""
        return self.saved.conversations()

    def open_conversation(self, conversation_id: int) -> list[Reopened]:
        """A saved conversation's answers, each checked against the live index state."""
        answerer = self.answerer()
        version = answerer.reader.version if answerer is not None else None
        articles = answerer.reader.articles if answerer is not None else {}
        return [reopen(t, version, articles) for t in self.saved.turns(conversation_id)]

    def save_turn(self, conversation_id: int | None, question: str, answer: Answer) -> int:
        """Save an answer into a conversation (None: a new one); returns its id."""
        return self.saved.save_turn(conversation_id, question, answer).conversation_id

    def conversation(self, conversation_id: int) -> Conversation:
        """One saved conversation's title, times and number of questions."""
        return self.saved.get(conversation_id)

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        self.saved.rename(conversation_id, title)

    def delete_conversation(self, conversation_id: int) -> None:
        self.saved.delete(conversation_id)

    def export_conversation(self, conversation_id: int, fmt: Format) -> str:
        """The conversation as Markdown ("md") or JSON ("json"), for a download."""
        conversation = self.saved.get(conversation_id)
        return export(conversation, self.open_conversation(conversation_id), fmt)

    def feeds(self) -> list[FeedRow]:
        """The feeds polled into this index, with their last poll, status and error.
        Read without creating anything: a page load must not write into an empty folder."""
        if not (self.index_dir / FEEDS_DB).exists() and not self.settings.feeds.urls:
            return []
        return list_feeds(self.settings)

    def feed_items(self) -> dict[str, int]:
        """How many items of each feed are in the index, by feed url."""
        store = FeedStore(self.index_dir)
        if not store.path.exists():
            return {}
        return {row.url: len(store.versions(row.url)) for row in store.feeds()}

    def add_feed(self, url: str) -> FeedRow:
        """Add a feed or sitemap (FeedListError if the URL is not http(s)); polled next time."""
        return add_feed(self.settings, url)

    def poll_feeds(self) -> PollReport:
        """Poll every feed once and index what is new, as one write among the others."""
        with self._write_lock():
            report = poll_feeds(self.settings, self._writer())
        self.answerer()
        return report

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        if not self._writing.acquire(blocking=False):
            raise Busy("an update or rebuild is already running; try again when it ends")
        try:
            yield
        finally:
            manifest = read_manifest(self.index_dir)
            self._written = manifest.state if manifest is not None else None
            self._writing.release()

    def _writer(self) -> Embedder:
        if self._writer_embedder is None:
            self._writer_embedder = Embedder(self.settings.embedding)
        return self._writer_embedder

    def _indexer(self) -> Indexer:
        """One Indexer for every write this service makes (they take turns under the
        write lock): it keeps the live state and keyword segments it last read or
        wrote, so an update after the first reads one row instead of them."""
        if self._kept_indexer is None:
            self._kept_indexer = Indexer(self.settings, self._writer())
        return self._kept_indexer
