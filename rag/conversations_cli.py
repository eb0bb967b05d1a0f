"""`newsdesk conversations list|show|rename|delete|export`: saved conversations.

None of these loads the embedding model or opens Chroma: a reopened answer is
checked against the article texts the manifest names.
"""

from __future__ import annotations

from pathlib import Path

import click

from index.manifest import write_atomic
from newsdesk.clikit import index_dir_option, reported, settings_from
from rag.cli import render
from rag.conversations import ConversationStore, Reopened, live_index, reopen
from rag.export import FORMATS, Format, export, export_turn


@click.group("conversations")
def conversations_group() -> None:
    """Saved conversations (`newsdesk ask --save`): list, show, rename, delete, export."""


@conversations_group.command("list")
@index_dir_option
def list_command(index_dir: Path | None) -> None:
    """The saved conversations, the most recently updated first."""
    store = ConversationStore(settings_from(index_dir).index_dir)
    with reported():
        saved = store.conversations()
    if not saved:
        click.echo("No saved conversations yet: `newsdesk ask --save QUESTION` saves one.")
    for c in saved:
        turns = f"{c.turns} answer" + ("" if c.turns == 1 else "s")
        click.echo(f"{c.id:>4}  {c.updated[:16].replace('T', ' ')}  {turns:>10}  {c.title}")


@conversations_group.command("show")
@click.argument("conversation_id", metavar="ID", type=int)
@index_dir_option
def show_command(conversation_id: int, index_dir: Path | None) -> None:
    """Each question and answer of conversation ID, checked against the index as it is now."""
    store = ConversationStore(settings_from(index_dir).index_dir)
    with reported():
        conversation = store.get(conversation_id)
        turns = _reopened(store, conversation_id)
    click.echo(f"Conversation {conversation.id}: {conversation.title}")
    for reopened in turns:
        turn = reopened.turn
        click.echo(f"\nQ{turn.position}: {turn.question}  (saved {turn.created[:19]})\n")
        click.echo(render(reopened.answer))


@conversations_group.command("rename")
@click.argument("conversation_id", metavar="ID", type=int)
@click.argument("title")
@index_dir_option
def rename_command(conversation_id: int, title: str, index_dir: Path | None) -> None:
    """Give conversation ID a new TITLE."""
    with reported():
        ConversationStore(settings_from(index_dir).index_dir).rename(conversation_id, title)
    click.echo(f"Renamed conversation {conversation_id}.")


@conversations_group.command("delete")
@click.argument("conversation_id", metavar="ID", type=int)
@index_dir_option
def delete_command(conversation_id: int, index_dir: Path | None) -> None:
    """Delete conversation ID and all its answers."""
    with reported():
        ConversationStore(settings_from(index_dir).index_dir).delete(conversation_id)
    click.echo(f"Deleted conversation {conversation_id}.")


@conversations_group.command("export")
@click.argument("conversation_id", metavar="ID", type=int)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="md", show_default=True)
@click.option("--turn", type=click.IntRange(1), help="Export only this answer (1 = the first).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@index_dir_option
def export_command(
    conversation_id: int,
    fmt: Format,
    turn: int | None,
    output: Path | None,
    index_dir: Path | None,
) -> None:
    """Conversation ID as Markdown (each citation a footnote) or JSON (the answer records)."""
    store = ConversationStore(settings_from(index_dir).index_dir)
    with reported():
        conversation = store.get(conversation_id)
        turns = _reopened(store, conversation_id)
        if turn is None:
            text = export(conversation, turns, fmt)
        else:
            chosen = [r for r in turns if r.turn.position == turn]
            if not chosen:
                raise click.BadParameter(
                    f"conversation {conversation_id} has {len(turns)} answers", param_hint="--turn"
                )
            text = export_turn(chosen[0], fmt)
        if output is None:
            click.echo(text, nl=False)
        else:
            write_atomic(output, text)
            click.echo(f"Wrote {output}.", err=True)


def _reopened(store: ConversationStore, conversation_id: int) -> list[Reopened]:
    version, articles = live_index(store.path.parent)
    return [reopen(turn, version, articles) for turn in store.turns(conversation_id)]
