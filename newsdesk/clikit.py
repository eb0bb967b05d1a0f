"""Pieces every command shares: the settings flags, error reporting and exit codes.

Exit codes: 0 done; 1 failed, nothing changed; 2 usage error (click's);
3 done, but some input was skipped (see the messages).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from newsdesk.settings import Settings, load_settings

EXIT_FAILED = 1
EXIT_SKIPPED = 3

F = TypeVar("F", bound=Callable[..., Any])


def index_dir_option(func: F) -> F:
    return click.option(
        "--index-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Index directory (default: NEWSDESK_INDEX_DIR, newsdesk.toml, or the user data dir).",
    )(func)


def settings_from(index_dir: Path | None) -> Settings:
    try:
        return load_settings(index_dir=index_dir)
    except (ValidationError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(f"invalid settings: {exc}") from exc


@contextmanager
def reported(*errors: type[BaseException]) -> Iterator[None]:
    """Turn our expected failures into one clear line on stderr and exit code 1."""
    try:
        yield
    except errors as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo("interrupted: the previous index is unchanged", err=True)
        sys.exit(130)
