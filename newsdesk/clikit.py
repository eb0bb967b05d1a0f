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

from newsdesk.errors import NewsdeskError
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


def answerer_options(func: F) -> F:
    """--answerer and the --llm-* flags; `settings_from(..., **those)` applies them."""
    options = [
        click.option(
            "--answerer",
            type=click.Choice(["extractive", "llm"]),
            help="Quote sentences (extractive, the default) or generate a checked answer (llm).",
        ),
        click.option("--llm-base-url", help="An OpenAI-compatible endpoint, e.g. .../v1."),
        click.option("--llm-model", help="The model name that endpoint serves."),
        click.option(
            "--llm-gguf",
            type=click.Path(dir_okay=False, path_type=Path),
            help="A local GGUF model instead (needs newsdesk[local-llm]).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def settings_from(
    index_dir: Path | None,
    answerer: str | None = None,
    llm_base_url: str | None = None,
    llm_model: str | None = None,
    llm_gguf: Path | None = None,
) -> Settings:
    """Settings with the command's flags on top. Any --llm-* flag implies --answerer llm
    unless --answerer says otherwise; --llm-gguf picks the llama-cpp backend."""
    llm: dict[str, Any] = {"base_url": llm_base_url, "model": llm_model, "gguf": llm_gguf}
    llm = {key: value for key, value in llm.items() if value is not None}
    if llm_gguf is not None:
        llm["backend"] = "llama-cpp"
    if llm and answerer is None:
        answerer = "llm"
    overrides: dict[str, Any] = {"index_dir": index_dir}
    if llm:
        overrides["llm"] = llm
    if answerer:
        overrides["answer"] = {"answerer": answerer}
    try:
        return load_settings(**overrides)
    except (ValidationError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(f"invalid settings: {exc}") from exc


@contextmanager
def reported() -> Iterator[None]:
    """Turn our expected failures into one clear line on stderr and their exit code.

    Expected are every `NewsdeskError` and any `OSError` (a file, folder or disk the
    user named: its message names the path); anything else is a bug and keeps its
    traceback.
    """
    try:
        yield
    except NewsdeskError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo("interrupted: the previous index is unchanged", err=True)
        sys.exit(130)
