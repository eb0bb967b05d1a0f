"""`newsdesk ask`: a cited answer from the command line."""

from __future__ import annotations

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
from rag.generate import open_answerer
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
    index_dir: Path | None,
    **answerer: Any,
) -> None:
    """Answer QUESTION from the index, quoting and citing the sentences it rests on."""
    if not question.strip():
        raise click.UsageError("the question is empty")
    try:
        filters = Filters.parse(sources=sources, since=since, until=until, as_of=as_of)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    settings = settings_from(index_dir, **answerer)
    with reported():
        engine = open_answerer(settings)
        if not engine.reader.articles:
            click.echo(
                "error: the index is empty; add articles with `newsdesk index update`", err=True
            )
            sys.exit(EXIT_FAILED)
        answer = engine.ask(question, history=history, filters=filters, k=k)
    if as_json:
        click.echo(answer.model_dump_json(indent=2))
        return
    click.echo(render(answer))
    if engine.reader.manifest.includes_demo:
        click.echo(f"\n{DEMO_ATTRIBUTION}")


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
