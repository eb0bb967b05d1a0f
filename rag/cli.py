"""`newsdesk search`: the passages closest to a question, shown as passages, not as an answer."""

from __future__ import annotations

import textwrap
from pathlib import Path

import click

from index.demo import DEMO_ATTRIBUTION
from index.embed import ModelNotAvailable
from index.manifest import UnusableIndex
from index.store import StoreUnavailable
from newsdesk.clikit import index_dir_option, reported, settings_from
from rag.search import DenseSearch


@click.command()
@click.argument("question")
@click.option("-k", "--top", "k", default=5, show_default=True, type=click.IntRange(1, 100))
@index_dir_option
def search(question: str, k: int, index_dir: Path | None) -> None:
    """Show the indexed passages closest in meaning to QUESTION.

    This is retrieval only: it composes no answer and cites nothing.
    """
    settings = settings_from(index_dir)
    with reported(UnusableIndex, ModelNotAvailable, StoreUnavailable):
        searcher = DenseSearch(settings)
        hits = searcher.search(question, k)
    click.echo(f"Passages closest to {question!r} (retrieval only, not an answer):\n")
    for rank, hit in enumerate(hits, start=1):
        meta = hit.metadata
        when = f", {meta['date']}" if meta.get("date") else ""
        click.echo(f"{rank}. {meta.get('title') or hit.article_id}{when}")
        click.echo(
            f"   article {hit.article_id}, characters {hit.start}-{hit.end}, "
            f"similarity {1 - hit.distance:.2f}"
        )
        if meta.get("url"):
            click.echo(f"   {meta['url']}")
        excerpt = textwrap.shorten(hit.text, width=300, placeholder=" …")
        click.echo(textwrap.indent(textwrap.fill(excerpt, 88), "   ") + "\n")
    if not hits:
        click.echo("(the index holds no passages)")
    if searcher.manifest.includes_demo:
        click.echo(DEMO_ATTRIBUTION)
