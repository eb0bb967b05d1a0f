"""`newsdesk index build|update|status|check`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from index.build import Indexer, IndexReport, Progress
from index.check import CheckReport, check_index
from index.db import read_manifest
from index.demo import DEMO_ATTRIBUTION, demo_sources
from index.embed_backend import EmbedBackend
from index.status import index_status, missing_vectors_hint, with_sentence_vectors
from index.types import Problem
from newsdesk.clikit import EXIT_FAILED, EXIT_SKIPPED, index_dir_option, reported, settings_from
from newsdesk.server import Server, running
from newsdesk.settings import Settings

sources_argument = click.argument("sources", nargs=-1, type=click.Path(path_type=Path))
demo_option = click.option(
    "--demo", is_flag=True, help="Add the bundled demo collection (Wikinews, CC BY 2.5)."
)
ray_option = click.option(
    "--ray",
    "ray_address",
    metavar="auto|ADDRESS",
    help="Embed on a Ray cluster, one worker per CPU (needs newsdesk[ray]): auto = "
    "RAY_ADDRESS, else the cluster `ray start` started here, else a new local one.",
)


@click.group("index")
def index_group() -> None:
    """Build, update and inspect the article index."""


@index_group.command()
@sources_argument
@demo_option
@ray_option
@index_dir_option
def build(
    sources: tuple[Path, ...], demo: bool, ray_address: str | None, index_dir: Path | None
) -> None:
    """Index SOURCES from scratch (files or folders of JSONL, JSON, CSV, txt, md, html).

    The new index replaces the old one only once it is complete: a failure or
    Ctrl-C leaves the previous index serving.
    """
    paths = _paths(sources, demo)
    settings = settings_from(index_dir)
    with reported(), _backend(settings, ray_address) as backend, _progress() as progress:
        indexer = Indexer(settings, backend=backend)
        report = indexer.build(paths, progress)
    _finish(report, demo, indexer.index_dir)


@index_group.command()
@sources_argument
@demo_option
@click.option("--prune", is_flag=True, help="Remove indexed articles no longer in SOURCES.")
@click.option(
    "--local",
    is_flag=True,
    help="Write from this process even when `newsdesk serve` is running on this index.",
)
@ray_option
@index_dir_option
def update(
    sources: tuple[Path, ...],
    demo: bool,
    prune: bool,
    local: bool,
    ray_address: str | None,
    index_dir: Path | None,
) -> None:
    """Embed only new or changed articles from SOURCES (by content hash).

    When `newsdesk serve` is running on this index, the server does the update: it has
    the model loaded already, so the command only waits for the embedding itself
    (unless --local, or --ray: then this process writes).
    """
    paths = _paths(sources, demo)
    settings = settings_from(index_dir)
    with reported():
        token = _writer_token(settings)
        server = None if local or ray_address else running(settings.index_dir, token)
        if server is not None:
            _update_through(server, token, paths, prune, demo)
            return
    with reported(), _backend(settings, ray_address) as backend, _progress() as progress:
        indexer = Indexer(settings, backend=backend)
        report = indexer.update(paths, prune=prune, progress=progress)
    _finish(report, demo, indexer.index_dir)


@contextmanager
def _backend(settings: Settings, ray_address: str | None) -> Iterator[EmbedBackend | None]:
    """Ray workers for --ray (index.embed_ray, imported only then), ended afterwards;
    None: the indexer embeds in this process."""
    if not ray_address:
        yield None
        return
    from index.embed_ray import RayBackend

    with RayBackend(settings.embedding, ray_address) as backend:
        yield backend


def _writer_token(settings: Settings) -> str | None:
    """The token a write needs: the admin token when there is one (chat.admin_token)."""
    return settings.chat.admin_bearer or settings.chat.bearer


def _update_through(
    server: Server, token: str | None, paths: list[Path], prune: bool, demo: bool
) -> None:
    """`index update` done by the running server (POST /v1/index/update), reported as
    the local update would be."""
    click.echo(f"updating through the newsdesk server at {server.url} …", err=True)
    body = {"paths": [str(path.resolve()) for path in paths], "prune": prune}
    reply = server.post("/index/update", body, token, timeout=3600)
    problems = [Problem(**problem) for problem in reply.get("problems", [])]
    _say_problems(problems)
    click.echo(reply["summary"])
    if demo or server.attribution:
        click.echo(DEMO_ATTRIBUTION)
    if any(not problem.kept for problem in problems):
        sys.exit(EXIT_SKIPPED)


def _say_problems(problems: list[Problem]) -> None:
    for problem in problems:
        click.echo(f"{'warning' if problem.kept else 'skipped'}: {problem}", err=True)


@index_group.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@index_dir_option
def status(as_json: bool, index_dir: Path | None) -> None:
    """Counts, model, sources, last build and size of the index, and the device and
    precision this machine embeds with (embedding.device / embedding.dtype)."""
    settings = settings_from(index_dir)
    with reported():
        manifest = read_manifest(settings.index_dir)
    if manifest is None:
        click.echo(
            f"no index in {settings.index_dir}: build one with `newsdesk index build SOURCE...`",
            err=True,
        )
        sys.exit(EXIT_FAILED)
    info = index_status(settings.index_dir, manifest, settings.embedding)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    width = max(len(key) for key in info)
    for key, value in info.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        click.echo(f"{key + ':':<{width + 1}} {shown}")
    if manifest.includes_demo:
        click.echo(DEMO_ATTRIBUTION)
    hint = missing_vectors_hint(info["articles"], info["articles_with_sentence_vectors"])
    if hint:
        click.echo(hint, err=True)


@index_group.command()
@click.option("--repair", is_flag=True, help="Remove leftovers and mend damage.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@index_dir_option
def check(repair: bool, as_json: bool, index_dir: Path | None) -> None:
    """Verify the index: its live state against Chroma, the keyword index, the sentence
    vectors and the article texts (ids, hashes, spans, model, dimension).

    Exits 1 when something the index names is damaged. Leftovers of interrupted
    writes are listed but harmless; --repair removes them and embeds damaged articles
    again from the stored texts (it waits for no writer: a running one refuses it).
    """
    settings = settings_from(index_dir)
    done: list[str] = []
    with reported():
        if repair:
            found, done = Indexer(settings).repair()
            after = check_index(settings) if done else found
        else:
            found = after = check_index(settings)
    if as_json:
        click.echo(json.dumps(_check_json(found, done, after), indent=2))
    else:
        for line in found.lines():
            click.echo(line)
        for line in done:
            click.echo(f"repaired: {line}")
        click.echo(_check_summary(after, repaired=bool(done)))
    if not after.ok:
        sys.exit(EXIT_FAILED)


def _check_summary(report: CheckReport, repaired: bool) -> str:
    counts = ", ".join(f"{value} {key.replace('_', ' ')}" for key, value in report.counts.items())
    where = f"{report.index_dir}" + (f" ({counts})" if counts else "")
    if not report.ok and report.manifest is None:
        return f"{where}: DAMAGED: no index this version can read (see above)"
    if not report.ok:
        return f"{where}: DAMAGED; `newsdesk index check --repair` mends what the texts allow"
    if report.leftovers:
        return f"{where}: ok; `newsdesk index check --repair` removes the leftovers"
    return f"{where}: ok" + (" after repair" if repaired else "")


def _check_json(found: CheckReport, done: list[str], after: CheckReport) -> dict[str, Any]:
    return {
        "index_dir": str(after.index_dir),
        "ok": after.ok,
        "counts": after.counts,
        "damage": found.damage,
        "leftovers": found.leftovers.lines(),
        "notes": found.notes,
        "repaired": done,
        "damage_after": after.damage,
        "leftovers_after": after.leftovers.lines(),
    }


def _paths(sources: tuple[Path, ...], demo: bool) -> list[Path]:
    paths = list(sources) + (demo_sources() if demo else [])
    if not paths:
        raise click.UsageError("name at least one SOURCE file or folder, or --demo")
    return paths


@contextmanager
def _progress() -> Iterator[Progress]:
    """A progress bar on a terminal; a line per step otherwise, so logs show liveness."""
    from tqdm import tqdm

    bars: list[tqdm[Any]] = []

    def update(done: int, total: int) -> None:
        if not sys.stderr.isatty():
            click.echo(f"indexed {done}/{total} chunks", err=True)
            return
        if not bars:
            bars.append(tqdm(total=total, unit="chunk", desc="indexing", file=sys.stderr))
        bars[0].update(done - bars[0].n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


def _finish(report: IndexReport, demo: bool, index_dir: Path) -> None:
    _say_problems(report.problems)
    click.echo(report.summary())
    if report.manifest is not None:
        manifest = report.manifest
        hint = missing_vectors_hint(
            manifest.article_count, with_sentence_vectors(index_dir, manifest)
        )
        if hint:
            click.echo(hint, err=True)
    if demo or (report.manifest is not None and report.manifest.includes_demo):
        click.echo(DEMO_ATTRIBUTION)
    if any(not p.kept for p in report.problems):
        sys.exit(EXIT_SKIPPED)
