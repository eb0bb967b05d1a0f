"""The Gradio page: a chat with a sources panel, and a collection tab.

Only wiring lives here: what an event does is in `ui.service`, how things look
in `ui.render`. Conversation state (the answers so far) is per browser tab.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from index.build import IndexReport
from index.demo import DEMO_ATTRIBUTION
from index.feeds import PollReport
from index.feeds_store import FEEDS_DB
from newsdesk.errors import NewsdeskError
from rag.conversations import Conversation
from rag.export import FORMATS
from rag.retrieve import Filters
from rag.types import Answer
from ui.render import (
    answer_html,
    articles_html,
    conversation_label,
    error_html,
    escape,
    feeds_html,
    pending_html,
    sources_html,
    status_html,
    streaming_html,
)
from ui.service import ChatService
from ui.uploads import SUFFIXES, Upload, safe_name

Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class Page:
    """Everything `launch` needs besides the Blocks: the page's own CSS and script."""

    blocks: gr.Blocks
    css: str
    js: str


def build_page(service: ChatService) -> Page:
    """Lay out the components and wire their events to `ChatHandlers`."""
    # Uploads wait in DIR/.gradio until indexed; Gradio sweeps files older than an hour.
    with gr.Blocks(title="newsdesk", analytics_enabled=False, delete_cache=(3600, 3600)) as blocks:
        answers = gr.State([])  # list[Answer] of this conversation
        conversation = gr.State(None)  # its id once saved: int | None
        gr.HTML("<h2>newsdesk</h2>")
        with gr.Tab("Chat"):
            notice = gr.HTML()
            with gr.Row():
                with gr.Column(scale=3):
                    chat = gr.Chatbot(
                        elem_id="nd-chat",
                        label="Answers quote the articles; [n] opens the source",
                        height=520,
                        latex_delimiters=[],
                        feedback_options=None,
                        buttons=["copy"],
                        placeholder="Ask a question about the articles in this collection.",
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            elem_id="nd-question",
                            show_label=False,
                            placeholder="e.g. What did the Secretary General warn about?",
                            scale=5,
                            autofocus=True,
                        )
                        ask = gr.Button("Ask", variant="primary", scale=1, elem_id="nd-ask")
                    with gr.Accordion("Filters: apply to the next question", open=False):
                        source_filter = gr.Dropdown(
                            label="Sources", multiselect=True, choices=[], elem_id="nd-source"
                        )
                        with gr.Row():
                            since = gr.Textbox(label="From date", placeholder="YYYY-MM-DD")
                            until = gr.Textbox(label="Until date", placeholder="YYYY-MM-DD")
                            as_of = gr.Textbox(
                                label="As of",
                                placeholder="YYYY-MM-DD: the collection as it stood then",
                                elem_id="nd-as-of",
                            )
                    new_chat = gr.Button("New conversation", elem_id="nd-new", size="sm")
                    with gr.Accordion("Saved conversations", open=True, elem_id="nd-saved"):
                        saved = gr.Radio(
                            label="Every answer is saved; choose one to reopen it",
                            choices=[],
                            elem_id="nd-conversations",
                        )
                        with gr.Row():
                            title = gr.Textbox(
                                label="Title of this conversation", elem_id="nd-title", scale=4
                            )
                            rename = gr.Button("Rename", elem_id="nd-rename", scale=1)
                            delete = gr.Button(
                                "Delete", variant="stop", elem_id="nd-delete", scale=1
                            )
                        with gr.Row():
                            export_md = gr.DownloadButton(
                                "Export Markdown", elem_id="nd-export-md", interactive=False
                            )
                            export_json = gr.DownloadButton(
                                "Export JSON", elem_id="nd-export-json", interactive=False
                            )
                        saved_note = gr.HTML(elem_id="nd-saved-note")
                with gr.Column(scale=2):
                    panel = gr.HTML(sources_html([], None, {}), elem_id="nd-sources")
        with gr.Tab("Collection"):
            status = gr.HTML(elem_id="nd-status")
            files = gr.File(
                label="Article files (JSONL, JSON, CSV, TSV, txt, md, html)",
                file_count="multiple",
                file_types=list(SUFFIXES),
                type="filepath",
                elem_id="nd-upload",
            )
            with gr.Row():
                add = gr.Button("Add to index", variant="primary", elem_id="nd-add")
                rebuild = gr.Button("Rebuild from scratch", elem_id="nd-rebuild")
            report = gr.HTML(elem_id="nd-report")
            gr.HTML("<h3>Feeds</h3>")
            feeds = gr.HTML(elem_id="nd-feeds")
            with gr.Row():
                feed_url = gr.Textbox(
                    label="Feed URL: RSS, Atom or a sitemap",
                    placeholder="https://example.org/rss.xml",
                    elem_id="nd-feed-url",
                    scale=4,
                )
                add_feed = gr.Button("Add feed", variant="primary", elem_id="nd-add-feed", scale=1)
                poll = gr.Button("Poll feeds now", elem_id="nd-poll", scale=1)
            feed_report = gr.HTML(elem_id="nd-feed-report")
            gr.HTML("<h3>Articles</h3>")
            listing = gr.HTML(elem_id="nd-articles")
        attribution = gr.HTML(elem_id="nd-attribution")

        on = ChatHandlers(service)
        index_outputs = [notice, status, source_filter, attribution, feeds, listing]
        blocks.load(on.refresh, outputs=index_outputs)
        listed = [saved, title, export_md, export_json, saved_note]
        blocks.load(on.show_saved, [conversation], listed)
        asked = [question, chat, answers, source_filter, since, until, as_of, conversation]
        shown = [chat, question, panel, answers, conversation]
        # Named, so scripts and tests can ask over HTTP (gradio_client, /gradio_api/call/ask).
        asking = gr.on(
            [question.submit, ask.click],
            on.respond,
            asked,
            shown,
            api_name="ask",
            concurrency_limit=service.settings.chat.concurrency,
        )
        asking.then(on.show_saved, [conversation], listed)
        chat.select(on.select, [answers], [panel])
        new_chat.click(clear, outputs=[chat, answers, panel, question])
        new_chat.click(on.new_conversation, outputs=[conversation, *listed])
        reopened = [chat, answers, panel, conversation, *listed]
        saved.input(on.open_saved, [saved], reopened)
        rename.click(on.rename, [conversation, title], listed)
        delete.click(on.delete, [conversation], reopened)
        add.click(on.add_files, [files], [report], api_name="add_files").then(
            on.refresh, outputs=index_outputs
        )
        rebuild.click(on.rebuild_all, outputs=[report], api_name="rebuild").then(
            on.refresh, outputs=index_outputs
        )
        add_feed.click(on.add_feed, [feed_url], [feed_report, feed_url]).then(
            on.refresh, outputs=index_outputs
        )
        poll.click(on.poll_feeds, outputs=[feed_report]).then(on.refresh, outputs=index_outputs)
    assets = resources.files("ui") / "assets"
    return Page(
        blocks=blocks,
        css=(assets / "chat.css").read_text(encoding="utf-8"),
        js=(assets / "chat.js").read_text(encoding="utf-8"),
    )


@dataclass(frozen=True)
class ChatHandlers:
    """What the page's events do, over one service: methods rather than closures in
    `build_page`, so the layout reads on its own and each handler can be read alone.
    Bound methods (not `functools.partial`) because Gradio reads their signatures and
    type hints to pass `gr.Progress` and `gr.SelectData`."""

    service: ChatService

    def refresh(self) -> tuple[str, str, Any, str, str, str]:
        """What depends on the index: notice, status, filter choices, attribution, the
        feeds and the article list."""
        info, demo = self.service.status()
        notice = escape(self.service.no_index_message())
        return (
            "" if info is not None else f'<div class="nd-notice">{notice}</div>',
            status_html(info, str(self.service.index_dir)),
            gr.Dropdown(choices=self.service.sources()),
            f'<div class="nd-attribution">{escape(DEMO_ATTRIBUTION)}</div>' if demo else "",
            self.feed_table(),
            articles_html(_articles(self.service)),
        )

    def feed_table(self) -> str:
        try:
            return feeds_html(self.service.feeds(), self.service.feed_items())
        except (NewsdeskError, OSError, sqlite3.Error) as exc:
            return error_html(f"{self.service.index_dir / FEEDS_DB}: {exc}")

    def respond(
        self,
        text: str | None,
        messages: Messages,
        turns: list[Answer],
        chosen: list[str] | None,
        low: str | None,
        high: str | None,
        day: str | None = None,
        conversation: int | None = None,
    ) -> Iterator[tuple[Messages, str, str, list[Answer], int | None]]:
        """Answer the question, showing it as it comes, and save it to the conversation
        (the first answer starts one)."""
        text = (text or "").strip()
        if not text:
            return
        articles = _articles(self.service)
        shown = sources_html(turns, None, articles)
        refused = _too_long(text, self.service.settings.chat.max_question_chars)
        if refused:
            # The box keeps the text (gr.skip), so it can be shortened rather than retyped.
            messages = [*messages, _user(_clipped(text)), _bot(error_html(refused))]
            yield messages, gr.skip(), shown, turns, conversation
            return
        try:
            filters = Filters.parse(
                tuple(chosen or ()), _given(low), _given(high), as_of=_given(day)
            )
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        messages = [*messages, _user(text), _bot(pending_html("Searching the collection…"))]
        yield messages, "", shown, turns, conversation
        history = [t.standalone_question for t in turns]
        answer: Answer | None = None
        written = ""
        try:
            for part in self.service.stream(text, history, filters):
                if isinstance(part, Answer):
                    answer = part
                    break
                written += part  # a model writing: show it, marked as not yet checked
                messages[-1] = _bot(streaming_html(written))
                yield messages, "", shown, turns, conversation
        except (NewsdeskError, OSError) as exc:  # the user can fix it: shown on the page
            messages[-1] = _bot(error_html(str(exc)))
            yield messages, "", shown, turns, conversation
            return
        assert answer is not None
        turn = len(turns)
        note = _note(answer, filters)
        for shown_sentences in range(1, len(answer.sentences)):  # progressively
            partial = answer.model_copy(update={"sentences": answer.sentences[:shown_sentences]})
            messages[-1] = _bot(answer_html(partial, turn))
            yield messages, "", shown, turns, conversation
        turns = [*turns, answer]
        try:
            conversation = self.service.save_turn(conversation, text, answer)
        except NewsdeskError as exc:  # the answer is still shown, said to be unsaved
            note = "; ".join(filter(None, [note, f"not saved: {exc}"]))
        messages[-1] = _bot(answer_html(answer, turn, note))
        panel = sources_html(turns, turn, _articles(self.service))
        yield messages, "", panel, turns, conversation

    def select(self, turns: list[Answer], event: gr.SelectData) -> str:
        index = event.index[0] if isinstance(event.index, list) else event.index
        turn = min(int(index) // 2, len(turns) - 1)
        return sources_html(turns, turn, _articles(self.service))

    def add_files(
        self,
        paths: list[str] | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio finds it so)
    ) -> str:
        if refused := self.service.write_refusal(request.username):
            return error_html(refused)
        uploads = [Upload(name=Path(p).name, path=Path(p)) for p in paths or []]
        try:
            stored, done = self.service.add(uploads, _progress(progress))
        except (NewsdeskError, OSError) as exc:
            return error_html(str(exc))
        return _report(done, [p.name for p in stored])

    def rebuild_all(
        self,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio finds it so)
    ) -> str:
        if refused := self.service.write_refusal(request.username):
            return error_html(refused)
        try:
            done = self.service.rebuild(_progress(progress))
        except (NewsdeskError, OSError) as exc:
            return error_html(str(exc))
        return _report(done, [])

    def add_feed(self, url: str | None, request: gr.Request) -> tuple[str, str]:
        """Add a feed and poll it (with the others) at once, so its articles show now."""
        if refused := self.service.write_refusal(request.username):
            return error_html(refused), gr.skip()
        try:
            row = self.service.add_feed(url or "")
        except (NewsdeskError, OSError, sqlite3.Error) as exc:
            return error_html(str(exc)), gr.skip()
        return self.poll_feeds(request, f"added {row.url}"), ""

    def poll_feeds(self, request: gr.Request, done: str = "") -> str:
        """Poll every feed now, as one write among the others; each problem names its URL."""
        if refused := self.service.write_refusal(request.username):
            return error_html(refused)
        try:
            report = self.service.poll_feeds()
        except (NewsdeskError, OSError, sqlite3.Error) as exc:
            return error_html("; ".join(filter(None, [done, f"not polled: {exc}"])))
        return _poll_report(report, done)

    def show_saved(self, conversation: int | None = None) -> tuple[Any, str, Any, Any, str]:
        """The saved conversations (the current one chosen), its title and export files."""
        try:
            listed = self.service.conversations()
            current = next((c for c in listed if c.id == conversation), None)
            md, js = self._exports(current)
        except (NewsdeskError, OSError) as exc:
            off = gr.DownloadButton(value=None, interactive=False)
            return gr.Radio(choices=[], value=None), "", off, off, error_html(str(exc))
        choices = [(conversation_label(c), c.id) for c in listed]
        return (
            gr.Radio(choices=choices, value=current.id if current else None),
            current.title if current else "",
            md,
            js,
            "",
        )

    def new_conversation(self) -> tuple[None, Any, str, Any, Any, str]:
        """No conversation chosen: the next answer starts a new saved one."""
        return None, *self.show_saved(None)

    def open_saved(
        self, conversation: int | None
    ) -> tuple[Messages, list[Answer], str, int | None, Any, str, Any, Any, str]:
        """A saved conversation back in the chat, each answer as it was shown live, with
        notes where the index has changed since (its quotes checked against the texts)."""
        if conversation is None:
            return *clear()[:3], None, *self.show_saved(None)
        try:
            reopened = self.service.open_conversation(conversation)
        except (NewsdeskError, OSError) as exc:
            *listed, _ = self.show_saved(None)
            return *clear()[:3], None, *listed, error_html(str(exc))
        messages: Messages = []
        for turn, saved in enumerate(reopened):
            messages += [_user(saved.turn.question), _bot(answer_html(saved.answer, turn))]
        turns = [saved.answer for saved in reopened]
        panel = sources_html(turns, None, _articles(self.service))
        return messages, turns, panel, conversation, *self.show_saved(conversation)

    def rename(self, conversation: int | None, title: str | None) -> tuple[Any, str, Any, Any, str]:
        if conversation is None:
            *listed, _ = self.show_saved(None)
            return *listed, error_html("Ask a question first: there is no conversation to rename.")
        try:
            self.service.rename_conversation(conversation, title or "")
        except (NewsdeskError, OSError) as exc:
            *listed, _ = self.show_saved(conversation)
            return *listed, error_html(str(exc))
        return self.show_saved(conversation)

    def delete(
        self, conversation: int | None
    ) -> tuple[Messages, list[Answer], str, int | None, Any, str, Any, Any, str]:
        """Delete the conversation shown, and clear the chat for a new one."""
        if conversation is not None:
            try:
                self.service.delete_conversation(conversation)
            except (NewsdeskError, OSError) as exc:
                *listed, _ = self.show_saved(conversation)
                return gr.skip(), gr.skip(), gr.skip(), conversation, *listed, error_html(str(exc))
        return *clear()[:3], None, *self.show_saved(None)

    def _exports(self, conversation: Conversation | None) -> tuple[Any, Any]:
        """The download buttons: the conversation as Markdown and as JSON, written now
        (so the files hold every answer so far)."""
        if conversation is None:
            off = gr.DownloadButton(value=None, interactive=False)
            return off, off
        md, js = (
            _cached(
                safe_name(f"{conversation.title}.{fmt}"),
                self.service.export_conversation(conversation.id, fmt),
            )
            for fmt in FORMATS
        )
        return gr.DownloadButton(value=md, interactive=True), gr.DownloadButton(
            value=js, interactive=True
        )


def clear() -> tuple[Messages, list[Answer], str, str]:
    return [], [], sources_html([], None, {}), ""


def _articles(service: ChatService) -> Mapping[str, Any]:
    answerer = service.answerer()
    return {} if answerer is None else answerer.reader.articles


def _given(text: str | None) -> str | None:
    return (text or "").strip() or None


def _too_long(question: str, limit: int) -> str | None:
    if len(question) <= limit:
        return None
    return (
        f"This question is {len(question):,} characters long; the chat takes up to "
        f"{limit:,} (chat.max_question_chars). Ask it in a sentence or two."
    )


def _clipped(text: str, shown: int = 200) -> str:
    return text if len(text) <= shown else text[:shown] + "…"


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": escape(text)}


def _bot(content: str) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def _note(answer: Answer, filters: Filters) -> str:
    parts = []
    if answer.standalone_question != answer.question:
        parts.append(f"read as: {answer.standalone_question}")
    if filters.sources:
        parts.append(f"sources: {', '.join(filters.sources)}")
    if filters.since:
        parts.append(f"from {filters.since}")
    if filters.until:
        parts.append(f"until {filters.until}")
    return "; ".join(parts)


def _progress(progress: gr.Progress) -> Any:
    def update(done: int, total: int) -> None:
        progress((done, total), desc="Embedding chunks", unit="chunks")

    return update


def _cached(name: str, text: str) -> str:
    """A file written straight into Gradio's cache (DIR/.gradio), in a folder named by
    its content as Gradio names its own copies: the page may serve it, the hourly sweep
    removes it, and no other copy is left behind. Written aside and renamed into place,
    so a download never reads half a file."""
    data = text.encode("utf-8")
    folder = Path(get_upload_folder()) / f"export-{hashlib.sha256(data).hexdigest()[:32]}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists():
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".", delete=False) as staging:
            staging.write(data)
        os.replace(staging.name, path)
    return str(path)


def _poll_report(report: PollReport, done: str) -> str:
    """What a poll did: the feeds polled, the items indexed, and every problem with
    the URL of its feed."""
    failed = len(report.failed)
    lines = [done] if done else []
    lines.append(
        f"polled {len(report.feeds)} feed{'s' if len(report.feeds) != 1 else ''}"
        + (f" ({failed} failed)" if failed else "")
        + f": {report.items} new or changed item{'s' if report.items != 1 else ''}"
    )
    if report.index is not None:
        lines.append(report.index.summary())
    shown = "".join(f"<div>{escape(line)}</div>" for line in lines)
    if report.problems:
        items = "".join(
            f"<li>{'warning' if p.kept else 'problem'}: {escape(str(p))}</li>"
            for p in report.problems
        )
        shown += f"<ul>{items}</ul>"
    return f'<div class="nd-report nd-poll-report">{shown}</div>'


def _report(done: IndexReport, stored: list[str]) -> str:
    lines = [f"<div>{escape(done.summary())}</div>"]
    if stored:
        lines.append(f"<div>stored: {escape(', '.join(stored))}</div>")
    if done.problems:
        items = "".join(
            f"<li>{'warning' if p.kept else 'skipped'}: {escape(str(p))}</li>"
            for p in done.problems
        )
        lines.append(f"<ul>{items}</ul>")
    return f'<div class="nd-report">{"".join(lines)}</div>'
