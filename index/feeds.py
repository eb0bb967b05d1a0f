"""Polling RSS/Atom feeds and sitemaps into the index.

Each feed's items are kept as one JSONL file under DIR/feeds/ (every item ever read
from it, the newest version of each), and that file is what the index is updated
from: `Indexer.update` then embeds only the new or changed items, and a rebuild finds
the feed's articles among the index's sources like any other file. One feed failing
(unreachable, an HTTP error, not a feed, too slow) is reported with its URL and never
stops the others or touches what is indexed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from index.build import Indexer, IndexReport
from index.embed import Embedder
from index.feeds_fetch import FeedError, Fetcher, Item, Page, extract_page, parse
from index.feeds_store import FeedRow, FeedStore, Polled
from index.types import Problem
from newsdesk.errors import NewsdeskError
from newsdesk.settings import Settings, http_url

ARCHIVE_DIR = "feeds"


class FeedListError(NewsdeskError, ValueError):
    """A feed URL that cannot be added or removed; the message names it."""


@dataclass
class PollReport:
    """What a poll did: per feed, and the index update of all their new items."""

    feeds: list[FeedRow] = field(default_factory=list)  # each feed's state after the poll
    problems: list[Problem] = field(default_factory=list)  # `where` is the feed's URL
    index: IndexReport | None = None
    items: int = 0  # new or changed items sent to the index

    @property
    def failed(self) -> list[FeedRow]:
        return [row for row in self.feeds if row.status == "error"]


def list_feeds(settings: Settings) -> list[FeedRow]:
    return FeedStore(settings.index_dir).feeds(settings.feeds.urls)


def add_feed(settings: Settings, url: str) -> FeedRow:
    """Add a feed or sitemap to poll; it is fetched on the next poll."""
    url = url.strip()
    try:
        http_url("a feed URL", url)
    except ValueError as exc:
        raise FeedListError(str(exc)) from None
    if not urlsplit(url).netloc:
        raise FeedListError(f"a feed URL needs a host, got {url!r}")
    store = FeedStore(settings.index_dir)
    store.add(url)
    return next(row for row in store.feeds(settings.feeds.urls) if row.url == url)


def remove_feed(settings: Settings, url: str) -> None:
    """Stop polling a feed. Its articles stay in the index (and in its file under
    DIR/feeds/, so a rebuild keeps them too)."""
    if url in settings.feeds.urls:
        raise FeedListError(f"{url} is listed in the settings (feeds.urls): remove it there")
    if not FeedStore(settings.index_dir).remove(url):
        raise FeedListError(
            f"{url} is not a feed of {settings.index_dir}; see `newsdesk feeds list`"
        )


def poll_feeds(settings: Settings, embedder: Embedder | None = None) -> PollReport:
    """Fetch every feed once, index their new and changed items in one update, and only
    then record the feeds' new state (so a crash or a failed update loses nothing)."""
    store = FeedStore(settings.index_dir)
    report = PollReport()
    done: list[tuple[Polled, list[dict[str, Any]]]] = []
    fetcher = Fetcher(settings.feeds)
    try:
        for row in store.feeds(settings.feeds.urls):
            try:
                done.append(_poll_one(row, store.versions(row.url), fetcher, report.problems))
            except FeedError as exc:
                store.failed(row.url, str(exc))
                report.problems.append(_problem(row.url, str(exc)))
    finally:
        fetcher.close()
    archives = [_archive(settings.index_dir, p.url, records) for p, records in done if records]
    report.items = sum(len(records) for _, records in done)
    try:
        if archives:
            report.index = Indexer(settings, embedder).update(archives)
            report.problems += report.index.problems
    except NewsdeskError as exc:  # busy, store down: the next poll fetches these items again
        for polled, _ in done:
            store.failed(polled.url, f"{polled.url}: fetched, but not indexed: {exc}")
        report.problems.append(Problem(str(settings.index_dir), f"not indexed: {exc}"))
    else:
        store.polled([polled for polled, _ in done])
    report.feeds = store.feeds(settings.feeds.urls)
    return report


def _poll_one(
    row: FeedRow, seen: dict[str, str], fetcher: Fetcher, problems: list[Problem]
) -> tuple[Polled, list[dict[str, Any]]]:
    fetched = fetcher.get(row.url, row.etag, row.last_modified)
    if fetched is None:
        return Polled(row.url, row.title, row.etag, row.last_modified, "not modified"), []
    parsed = parse(row.url, fetched.body)
    problems += [_problem(row.url, warning, kept=True) for warning in parsed.warnings]
    records, items = [], []
    for item in parsed.items:
        if seen.get(item.key) == item.version:
            continue
        record = _record(row.url, parsed.title, item, fetcher, problems)
        if record is not None:
            records.append(record)
            items.append((item.key, item.version, str(record["id"])))
    status = f"ok: {len(records)} new or changed" if records else "ok: nothing new"
    polled = Polled(row.url, parsed.title, fetched.etag, fetched.last_modified, status, items)
    return polled, records


def _record(
    feed: str, outlet: str, item: Item, fetcher: Fetcher, problems: list[Problem]
) -> dict[str, Any] | None:
    """The item as an article record: the page's main text, else the feed's own text."""
    page: Page | None = None
    failure = f"{item.key}: no link to an article page"
    if item.link:
        try:
            fetched = fetcher.get(item.link)
            if fetched is not None:
                page = extract_page(fetched.url, fetched.body)
        except FeedError as exc:
            failure = str(exc)
    text = page.text if page is not None else item.summary
    if not text:
        problems.append(_problem(feed, f"{failure}; the feed has no text for it either: skipped"))
        return None
    if page is None:
        problems.append(_problem(feed, f"{failure}; indexed the feed's summary instead", True))
    title = item.title or (page.title if page else "")
    if page is not None and title:
        first, _, rest = text.partition("\n")
        if first.strip() == title and rest.strip():  # the headline repeated as the body's start
            text = rest.lstrip("\n")
    return {
        "id": "feed-" + hashlib.sha256(item.key.encode("utf-8")).hexdigest()[:16],
        "title": title,
        "text": text,
        "url": item.link,
        "date": item.date or (page.date if page else None),
        "author": item.author or (page.author if page else ""),
        "source": outlet or (page.site if page else "") or urlsplit(item.link or feed).netloc,
        "feed": feed,
    }


def archive_path(index_dir: Path, url: str) -> Path:
    host = "".join(c if c.isalnum() or c in ".-" else "_" for c in urlsplit(url).netloc)
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:10]
    return index_dir / ARCHIVE_DIR / f"{host or 'feed'}-{digest}.jsonl"


def _archive(index_dir: Path, url: str, records: Sequence[dict[str, Any]]) -> Path:
    """Merge `records` into the feed's file (replacing older versions by id), atomically."""
    path = archive_path(index_dir, url)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                kept[str(json.loads(line)["id"])] = line
    for record in records:
        kept[str(record["id"])] = json.dumps(record, ensure_ascii=False)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text("".join(line + "\n" for line in kept.values()), encoding="utf-8")
    os.replace(temp, path)
    return path


def _problem(url: str, message: str, kept: bool = False) -> Problem:
    """A Problem whose `where` is the feed; the message drops a repeat of its URL."""
    prefix = f"{url}: "
    return Problem(url, message.removeprefix(prefix), kept=kept)
