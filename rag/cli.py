"""`newsdesk ask`: a cited answer from the command line."""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path
from typing import Any

import click

from index.demo import DEMO_ATTRIBUTION
from newsdesk.clikit import (
    EXIT_FAILED,
    answerer_options,
    index_dir_option,
    reported,
    settings_from,
)
from newsdesk.server import running
from newsdesk.settings import Settings
from rag.conversations import ConversationStore
from rag.retrieve import Filters
from rag.types import Answer


@click.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the full answer record as JSON.")
@click.option("-k", "--k", "k", type=click.IntRange(1, 100), help="Passages to draw on.")
@click.option("--since", help="Only articles published on or after this date.")
@click.option("--until", help="Only articles published on or before this date.")
@click.option("--source", "sources", multiple=True, help="Only articles from this source.")
@click.option(
    "--as-of",
    "as_of",
    help="Answer from the collection as it stood on this date (default: answer.as_of, today).",
)
@click.option(
    "--after",
    "history",
    multiple=True,
    help="An earlier question of the conversation (repeat, oldest first).",
)
@click.option("--save", is_flag=True, help="Save the question and answer as a conversation.")
@click.option(
    "--conversation",
    "conversation_id",
    type=int,
    help="Add to this saved conversation (implies --save; its questions are the history).",
)
@click.option(
    "--local",
    is_flag=True,
    help="Answer in this process even when `newsdesk serve` is running on this index.",
)
@answerer_options
@index_dir_option
def ask(
    question: str,
    as_json: bool,
    k: int | None,
    since: str | None,
    until: str | None,
    sources: tuple[str, ...],
    as_of: str | None,
    history: tuple[str, ...],
    save: bool,
    conversation_id: int | None,
    local: bool,
    index_dir: Path | None,
    **answerer: Any,
) -> None:
    """Answer QUESTION from the index, quoting and citing the sentences it rests on.

    When `newsdesk serve` is running on the same index, the question goes to it (no
    model to load: an answer in well under a second); --local, -k or an answerer flag
    answers in this process instead.
    """
    if not question.strip():
        raise click.UsageError("the question is empty")
    try:
        filters = Filters.parse(sources=sources, since=since, until=until, as_of=as_of)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    settings = settings_from(index_dir, **answerer)
    store = ConversationStore(settings.index_dir)
    with reported():
        if conversation_id is not None:  # an unknown id fails before the answer is sought
            history = history or tuple(store.questions(conversation_id))
        asked = (question, history, sources, since, until, as_of)
        use_server = not local and k is None and not any(answerer.values())
        served = _ask_server(settings, *asked) if use_server else None
        answer, attribution = (
            served if served is not None else _ask_here(settings, filters, k, *asked[:2])
        )
        saved = None
        if save or conversation_id is not None:
            saved = store.save_turn(conversation_id, question, answer)
    if as_json:
        click.echo(answer.model_dump_json(indent=2))
    else:
        click.echo(render(answer))
        if attribution:
            click.echo(f"\n{attribution}")
    if saved is not None:  # on stderr under --json, which keeps stdout one JSON document
        click.echo(
            f"\nSaved as answer {saved.position} of conversation {saved.conversation_id}.",
            err=as_json,
        )


def _ask_here(
    settings: Settings, filters: Filters, k: int | None, question: str, history: tuple[str, ...]
) -> tuple[Answer, str | None]:
    """The answer from an answerer opened in this process (seconds: imports, the model)."""
    from rag.generate import open_answerer

    engine = open_answerer(settings)
    if not engine.reader.articles:
        click.echo("error: the index is empty; add articles with `newsdesk index update`", err=True)
        sys.exit(EXIT_FAILED)
    answer = engine.ask(question, history=history, filters=filters, k=k)
    return answer, DEMO_ATTRIBUTION if engine.reader.manifest.includes_demo else None


def _ask_server(
    settings: Settings,
    question: str,
    history: tuple[str, ...],
    sources: tuple[str, ...],
    since: str | None,
    until: str | None,
    as_of: str | None,
) -> tuple[Answer, str | None] | None:
    """The answer from `newsdesk serve` on this index, if one is up (None otherwise).
    Once a server has been found, its refusal is the answer's error: falling back would
    hide a real problem (a bad token, a question too long) behind a slow start."""
    token = settings.chat.bearer or settings.chat.admin_bearer
    server = running(settings.index_dir, token)
    if server is None:
        return None
    logging.getLogger(__name__).info("asking the newsdesk server at %s", server.url)
    body: dict[str, object] = {"question": question, "history": list(history)}
    body |= {"sources": list(sources), "since": since, "until": until, "as_of": as_of}
    reply = server.post("/ask", body, token, timeout=settings.llm.timeout + 30)
    return Answer.model_validate(reply), server.attribution


def render(answer: Answer) -> str:
    """The answer, then its numbered sources: what a reader needs to check each quote."""
    lines = [textwrap.fill(_dated(answer), 88), ""]
    lines += [f"Note: {note}" for note in answer.notes]
    if answer.notes:
        lines.append("")
    if answer.abstained:
        if answer.retrieved:
            lines.append("Related passages (not cited):")
            for passage in answer.retrieved[:3]:
                when = f", {passage.date}" if passage.date else ""
                lines.append(
                    f"  - {passage.title or passage.article_id}{when} "
                    f"(article {passage.article_id}, characters {passage.start}-{passage.end})"
                )
        return "\n".join(lines)
    lines.append("Sources:")
    for c in answer.citations:
        lines.append(f"[{c.n}] {c.title or c.article_id}")
        lines.append(f"    {c.byline}")
        if c.url:
            lines.append(f"    {c.url}")
        lines.append(f"    article {c.article_id}, characters {c.start}-{c.end}:")
        lines.append(textwrap.indent(textwrap.fill(f"“{c.text}”", 84), "    "))
        if c.also:  # copies of the story (index.dedupe); their spans are in --json
            copies = "also reported by: " + ", ".join(a.outlet for a in c.also)
            lines.append(textwrap.indent(textwrap.fill(copies, 84), "    "))
    return "\n".join(lines)


def _dated(answer: Answer) -> str:
    """The answer text; for a question about time, each cited sentence is preceded by the
    day its article was published, outside the quote: "(2024-03-02) The bridge …"."""
    if not answer.time_sensitive or answer.abstained:
        return answer.answer
    text, at = answer.answer, 0
    for sentence in answer.sentences:
        found = text.find(sentence.text, at)
        if not sentence.cites or found < 0:
            continue
        prefix = f"({answer.days_of(sentence)}) "
        text = text[:found] + prefix + text[found:]
        at = found + len(prefix) + len(sentence.text)
    return text
