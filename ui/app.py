"""The Gradio page: a chat with a sources panel, and a collection tab.

Only wiring lives here: what an event does is in `ui.service`, how things look
in `ui.render`. Conversation state (the answers so far) is per browser tab.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import gradio as gr

from index.build import IndexReport
from index.demo import DEMO_ATTRIBUTION
from newsdesk.errors import NewsdeskError
from rag.retrieve import Filters
from rag.types import Answer
from ui.render import (
    answer_html,
    error_html,
    escape,
    pending_html,
    sources_html,
    status_html,
    streaming_html,
)
from ui.service import ChatService
from ui.uploads import SUFFIXES, Upload

Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class Page:
    """Everything `launch` needs besides the Blocks: the page's own CSS and script."""

    blocks: gr.Blocks
    css: str
    js: str


def build_page(service: ChatService) -> Page:
    # Uploads wait in DIR/.gradio until indexed; Gradio sweeps files older than an hour.
    with gr.Blocks(title="newsdesk", analytics_enabled=False, delete_cache=(3600, 3600)) as blocks:
        answers = gr.State([])  # list[Answer] of this conversation
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
        attribution = gr.HTML(elem_id="nd-attribution")

        def refresh() -> tuple[str, str, Any, str]:
            """What depends on the index: notice, status, filter choices, attribution."""
            info, demo = service.status()
            notice = escape(service.no_index_message())
            return (
                "" if info is not None else f'<div class="nd-notice">{notice}</div>',
                status_html(info, str(service.index_dir)),
                gr.Dropdown(choices=service.sources()),
                f'<div class="nd-attribution">{escape(DEMO_ATTRIBUTION)}</div>' if demo else "",
            )

        def respond(
            text: str | None,
            messages: Messages,
            turns: list[Answer],
            chosen: list[str] | None,
            low: str | None,
            high: str | None,
            day: str | None = None,
        ) -> Iterator[tuple[Messages, str, str, list[Answer]]]:
            text = (text or "").strip()
            if not text:
                return
            articles = _articles(service)
            shown = sources_html(turns, None, articles)
            refused = _too_long(text, service.settings.chat.max_question_chars)
            if refused:
                # The box keeps the text (gr.skip), so it can be shortened rather than retyped.
                messages = [*messages, _user(_clipped(text)), _bot(error_html(refused))]
                yield messages, gr.skip(), shown, turns
                return
            try:
                filters = Filters.parse(
                    tuple(chosen or ()), _given(low), _given(high), as_of=_given(day)
                )
            except ValueError as exc:
                raise gr.Error(str(exc)) from exc
            messages = [*messages, _user(text), _bot(pending_html("Searching the collection…"))]
            yield messages, "", shown, turns
            history = [t.standalone_question for t in turns]
            answer: Answer | None = None
            written = ""
            try:
                for part in service.stream(text, history, filters):
                    if isinstance(part, Answer):
                        answer = part
                        break
                    written += part  # a model writing: show it, marked as not yet checked
                    messages[-1] = _bot(streaming_html(written))
                    yield messages, "", shown, turns
            except (NewsdeskError, OSError) as exc:  # the user can fix it: shown on the page
                messages[-1] = _bot(error_html(str(exc)))
                yield messages, "", shown, turns
                return
            assert answer is not None
            turn = len(turns)
            note = _note(answer, filters)
            for shown_sentences in range(1, len(answer.sentences)):  # progressively
                partial = answer.model_copy(
                    update={"sentences": answer.sentences[:shown_sentences]}
                )
                messages[-1] = _bot(answer_html(partial, turn))
                yield messages, "", shown, turns
            turns = [*turns, answer]
            messages[-1] = _bot(answer_html(answer, turn, note))
            yield messages, "", sources_html(turns, turn, _articles(service)), turns

        def select(turns: list[Answer], event: gr.SelectData) -> str:
            index = event.index[0] if isinstance(event.index, list) else event.index
            turn = min(int(index) // 2, len(turns) - 1)
            return sources_html(turns, turn, _articles(service))

        def clear() -> tuple[Messages, list[Answer], str, str]:
            return [], [], sources_html([], None, {}), ""

        def add_files(paths: list[str] | None, progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008 (Gradio finds it so)
            uploads = [Upload(name=Path(p).name, path=Path(p)) for p in paths or []]
            try:
                stored, done = service.add(uploads, _progress(progress))
            except (NewsdeskError, OSError) as exc:
                return error_html(str(exc))
            return _report(done, [p.name for p in stored])

        def rebuild_all(progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008 (Gradio finds it so)
            try:
                done = service.rebuild(_progress(progress))
            except (NewsdeskError, OSError) as exc:
                return error_html(str(exc))
            return _report(done, [])

        index_outputs = [notice, status, source_filter, attribution]
        blocks.load(refresh, outputs=index_outputs)
        asked = [question, chat, answers, source_filter, since, until, as_of]
        shown = [chat, question, panel, answers]
        # Named, so scripts and tests can ask over HTTP (gradio_client, /gradio_api/call/ask).
        gr.on([question.submit, ask.click], respond, asked, shown, api_name="ask")
        chat.select(select, [answers], [panel])
        new_chat.click(clear, outputs=[chat, answers, panel, question])
        add.click(add_files, [files], [report], api_name="add_files").then(
            refresh, outputs=index_outputs
        )
        rebuild.click(rebuild_all, outputs=[report], api_name="rebuild").then(
            refresh, outputs=index_outputs
        )
    assets = resources.files("ui") / "assets"
    return Page(
        blocks=blocks,
        css=(assets / "chat.css").read_text(encoding="utf-8"),
        js=(assets / "chat.js").read_text(encoding="utf-8"),
    )


def _articles(service: ChatService) -> dict[str, Any]:
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
