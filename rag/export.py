"""Saved answers as documents: Markdown to read and share, JSON to process.

Markdown turns each [n] into a footnote holding what a reader needs to check the
quote without newsdesk: the byline, the url, the exact quote (verbatim, as a block
quote; Markdown characters in it are left as the article has them) and its span.
JSON holds the answer records as saved, each with its question, saved time and index
version, plus what reopening found (notes and the check of each quote).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from rag.conversations import Conversation, Reopened
from rag.types import Answer, Citation

Format = Literal["md", "json"]
FORMATS: tuple[Format, ...] = ("md", "json")
_MARKER = re.compile(r"\[(\d+)\]")


def answer_markdown(answer: Answer, label: str = "", level: int = 2) -> str:
    """One answer: its question as a heading, the text with footnotes [^{label}n], the
    notes, then the footnotes. `label` keeps footnotes of several answers apart."""
    lines = [f"{'#' * level} {answer.question.strip()}", "", _body(answer, label), ""]
    lines += [f"*Note: {note}*\n" for note in answer.notes]
    for citation in answer.citations:
        lines += [_footnote(citation, label), ""]
    return "\n".join(lines).rstrip() + "\n"


def conversation_markdown(conversation: Conversation, turns: Sequence[Reopened]) -> str:
    """A whole conversation: its title, then each answer with where and when it came from."""
    parts = [f"# {conversation.title}\n"]
    parts += [turn_markdown(reopened, label=f"{reopened.turn.position}-") for reopened in turns]
    return "\n".join(parts)


def turn_markdown(reopened: Reopened, label: str = "") -> str:
    """One saved answer (with any notes reopening added), and where and when it came from."""
    turn = reopened.turn
    saved = f"Saved {turn.created} from index version {turn.index_version}.\n"
    return answer_markdown(reopened.answer, label=label) + "\n" + saved


def conversation_json(conversation: Conversation, turns: Sequence[Reopened]) -> str:
    """The conversation and its answer records as saved (each parses back into Answer)."""
    record = {
        "conversation": {
            "id": conversation.id,
            "title": conversation.title,
            "created": conversation.created,
            "updated": conversation.updated,
        },
        "turns": [turn_record(reopened) for reopened in turns],
    }
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def turn_record(reopened: Reopened) -> dict[str, Any]:
    turn = reopened.turn
    return {
        "position": turn.position,
        "question": turn.question,
        "saved": turn.created,
        "index_version": turn.index_version,
        "answer": turn.answer.model_dump(mode="json"),
        "reopened": {
            "index_version": reopened.live_version,
            "index_changed": reopened.index_changed,
            "notes": reopened.answer.notes[len(turn.answer.notes) :],
            "quotes": [
                {
                    "n": c.n,
                    "article_id": c.article_id,
                    "status": c.status,
                    "start": c.start,
                    "end": c.end,
                }
                for c in reopened.checks
            ],
        },
    }


def export(conversation: Conversation, turns: Sequence[Reopened], fmt: Format) -> str:
    if fmt == "md":
        return conversation_markdown(conversation, turns)
    return conversation_json(conversation, turns)


def export_turn(reopened: Reopened, fmt: Format) -> str:
    """One answer of a conversation on its own."""
    if fmt == "md":
        return turn_markdown(reopened)
    return json.dumps(turn_record(reopened), indent=2, ensure_ascii=False) + "\n"


def _body(answer: Answer, label: str) -> str:
    """The answer text, each citation marker a footnote reference. Built from the
    sentences, so a "[3]" inside a quoted article is never taken for a marker."""
    if answer.abstained or not answer.sentences:
        return _MARKER.sub(lambda m: f"[^{label}{m.group(1)}]", answer.answer)
    return " ".join(s.text + "".join(f"[^{label}{n}]" for n in s.cites) for s in answer.sentences)


def _footnote(citation: Citation, label: str) -> str:
    """Byline, title and url; the quote as a block quote (line by line, so a quote with
    line breaks stays exact); the span. Continuation lines are indented into the note."""
    head = f"[^{label}{citation.n}]: {citation.byline}"
    if citation.title:
        head += f", “{citation.title}”"
    lines = [head]
    if citation.url:
        lines.append(f"    {_link(citation.url)}")
    lines.append("")
    lines += [f"    > {line}" if line else "    >" for line in citation.text.split("\n")]
    lines += [
        "",
        f"    Article `{citation.article_id}`, characters {citation.start}-{citation.end}.",
    ]
    if citation.also:
        lines.append(f"    Also reported by: {', '.join(a.outlet for a in citation.also)}.")
    return "\n".join(lines)


def _link(url: str) -> str:
    """An autolink for a plain http(s) url; anything else as code, never a live link."""
    if re.fullmatch(r"https?://[^\s<>`]+", url):
        return f"<{url}>"
    return f"`{url.replace('`', '')}`"
