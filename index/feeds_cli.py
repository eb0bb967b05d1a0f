"""`newsdesk feeds add|list|remove` and `newsdesk watch`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from index.embed import Embedder
from index.feeds import PollReport, add_feed, list_feeds, poll_feeds, remove_feed
from index.feeds_store import FeedRow
from index.types import Problem
from index.watch import FolderReport, poll_folders
from newsdesk.clikit import EXIT_FAILED, EXIT_SKIPPED, index_dir_option, reported, settings_from
from newsdesk.settings import Settings


@click.group("feeds")
def feeds_group() -> None:
    """The RSS/Atom feeds and sitemaps `newsdesk watch` polls."""


@feeds_group.command()
@click.argument("url")
@index_dir_option
def add(url: str, index_dir: Path | None) -> None:
    """Poll URL (an RSS or Atom feed, or a sitemap) from the next `newsdesk watch` on."""
    with reported():
        row = add_feed(settings_from(index_dir), url)
    click.echo(f"added {row.url}; `newsdesk watch --once` polls it now")


@feeds_group.command("list")
@index_dir_option
def list_command(index_dir: Path | None) -> None:
    """Every feed with its last poll and how it went."""
    with reported():
        rows = list_feeds(settings_from(index_dir))
    if not rows:
        click.echo("no feeds yet: add one with `newsdesk feeds add URL`")
    for row in rows:
        click.echo(_row_line(row))


@feeds_group.command()
@click.argument("url")
@index_dir_option
def remove(url: str, index_dir: Path | None) -> None:
    """Stop polling URL. Articles already indexed from it stay in the index."""
    with reported():
        remove_feed(settings_from(index_dir), url)
    click.echo(f"removed {url}; its articles stay in the index")


@click.command()
@click.option("--once", is_flag=True, help="Poll once and exit (for cron and tests).")
@click.option(
    "--interval", type=click.FloatRange(min=1), help="Seconds between polls (feeds.interval)."
)
@click.option(
    "--folder",
    "folders",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Also index files dropped into this folder (repeatable; feeds.folders too).",
)
@index_dir_option
def watch(
    once: bool, interval: float | None, folders: tuple[Path, ...], index_dir: Path | None
) -> None:
    """Poll the feeds and watched folders, indexing new and changed articles.

    Exits, with --once, 0 when all went well, 3 when something was skipped or a feed
    failed (every problem is printed with its URL or path), 1 when every feed failed.
    """
    settings = settings_from(index_dir)
    watched = [*settings.feeds.folders, *folders]
    embedder = Embedder(settings.embedding)  # loaded on the first update, then kept
    with reported():
        while True:
            code = _poll(settings, watched, embedder)
            if once:
                sys.exit(code)
            time.sleep(interval or settings.feeds.interval)


def _poll(settings: Settings, folders: list[Path], embedder: Embedder) -> int:
    """One round of feeds, then folders; the exit code it deserves."""
    feeds = poll_feeds(settings, embedder)
    files = poll_folders(settings, folders, embedder) if folders else FolderReport()
    _print(feeds, files)
    problems: list[Problem] = feeds.problems + files.problems
    if feeds.feeds and len(feeds.failed) == len(feeds.feeds) and not files.changed:
        return EXIT_FAILED
    return EXIT_SKIPPED if any(not p.kept for p in problems) else 0


def _print(feeds: PollReport, files: FolderReport) -> None:
    for row in feeds.feeds:
        click.echo(_row_line(row))
    for folder, changed in files.changed.items():
        click.echo(f"{folder}: {len(changed)} files new or changed")
    for problem in feeds.problems + files.problems:
        click.echo(f"{'warning' if problem.kept else 'error'}: {problem}", err=True)
    for report in (feeds.index, files.index):
        if report is not None:
            click.echo(report.summary())
    if not feeds.feeds and not files.changed and not files.problems:
        click.echo("nothing to poll: add a feed (`newsdesk feeds add URL`) or pass --folder DIR")


def _row_line(row: FeedRow) -> str:
    title = f" ({row.title})" if row.title else ""
    when = f"polled {row.polled_at}" if row.polled_at else "never polled"
    error = (row.error or "").removeprefix(f"{row.url}: ")
    status = f"error: {error}" if row.status == "error" else row.status
    return f"{row.url}{title}: {when}; {status}"
