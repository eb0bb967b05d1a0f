"""The `newsdesk` command: a root that loads each layer's commands only when named.

Commands live with the layer they drive (`index.cli`, `rag.cli`, …); importing
them lazily keeps `newsdesk --help` and `newsdesk index status` fast, since
sentence-transformers and llama-index take seconds to import.
"""

from __future__ import annotations

import importlib
import logging

import click

from newsdesk import __version__

COMMANDS = {
    "index": ("index.cli", "index_group"),
    "ask": ("rag.cli", "ask"),
    "conversations": ("rag.conversations_cli", "conversations_group"),
    "eval": ("eval.cli", "eval_group"),
    "chat": ("ui.cli", "chat"),
    "serve": ("ui.cli", "serve"),
    "feeds": ("index.feeds_cli", "feeds_group"),
    "watch": ("index.feeds_cli", "watch"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="newsdesk")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens, for debugging.")
def cli(verbose: bool) -> None:
    """Ask questions of an article collection; get answers that cite their passages."""
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.root.handlers:  # libraries may set their loggers' levels on import
        handler.setLevel(level)


def main() -> None:
    cli(prog_name="newsdesk")
