"""Fetching feeds, sitemaps and article pages politely, and reading them into items.

Politeness is what keeps a poller welcome on small sites: a User-Agent that says who
is asking, conditional requests (an unchanged feed costs the site a 304), a bounded
wait and a least delay between two requests to one host.
"""

from __future__ import annotations

import hashlib
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit
from xml.sax import SAXParseException

import feedparser  # type: ignore[import-untyped]
import httpx

from index.dates import normalize_date
from index.formats import main_text
from newsdesk import __version__
from newsdesk.errors import NewsdeskError
from newsdesk.settings import FeedSettings

MAX_BYTES = 10_000_000  # a feed or page larger than this is refused, not read into memory
_SITEMAP = re.compile(rb"<(?:[\w-]+:)?(urlset|sitemapindex)[\s>]")


class FeedError(NewsdeskError, RuntimeError):
    """A feed, sitemap or page could not be fetched or read; the message names its URL."""


def user_agent(cfg: FeedSettings) -> str:
    contact = f"; +{cfg.contact}" if cfg.contact else ""
    return f"newsdesk/{__version__} (feed reader{contact})"


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str  # after redirects
    body: bytes
    etag: str | None
    last_modified: str | None


class Fetcher:
    """HTTP GETs with the User-Agent, the timeout and the per-host delay of the settings."""

    def __init__(
        self,
        cfg: FeedSettings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = cfg
        self._clock = clock
        self._sleep = sleep
        self._last: dict[str, float] = {}  # host -> when its last request was sent
        self._client = httpx.Client(
            timeout=cfg.timeout,
            follow_redirects=True,
            headers={"User-Agent": user_agent(cfg)},
        )

    def close(self) -> None:
        self._client.close()

    def wait_for(self, url: str) -> None:
        """Sleep until `min_delay` has passed since the last request to the url's host."""
        host = urlsplit(url).netloc.lower()
        last = self._last.get(host)
        if last is not None:
            remaining = self.cfg.min_delay - (self._clock() - last)
            if remaining > 0:
                self._sleep(remaining)
        self._last[host] = self._clock()

    def get(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> Fetched | None:
        """The body, or None when the server says it has not changed (304)."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        self.wait_for(url)
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                if response.status_code == 304:
                    return None
                if response.status_code >= 400:
                    reason = response.reason_phrase or "error"
                    raise FeedError(
                        f"{url}: the server answered HTTP {response.status_code} {reason}"
                    )
                body = bytearray()
                for part in response.iter_bytes():
                    body += part
                    if len(body) > MAX_BYTES:
                        raise FeedError(f"{url}: larger than {MAX_BYTES // 1_000_000} MB; not read")
                return Fetched(
                    url=str(response.url),
                    body=bytes(body),
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                )
        except httpx.TimeoutException:
            raise FeedError(
                f"{url}: no answer within {self.cfg.timeout:g} s (feeds.timeout)"
            ) from None
        except httpx.HTTPError as exc:
            raise FeedError(f"{url}: {exc or type(exc).__name__}") from None


@dataclass(frozen=True, slots=True)
class Item:
    """One entry of a feed or sitemap, as the feed describes it."""

    key: str  # guid, else link: identifies the item across polls
    version: str  # changes whenever the feed says the item changed
    link: str
    title: str = ""
    author: str = ""
    date: str | None = None  # ISO 8601 (index.dates)
    summary: str = ""  # plain text: indexed when the page cannot be fetched


@dataclass(frozen=True, slots=True)
class Parsed:
    title: str
    items: list[Item]
    warnings: list[str]


def parse(url: str, body: bytes) -> Parsed:
    """A feed (RSS, Atom, via feedparser) or a sitemap (urlset), or FeedError naming `url`."""
    found = _SITEMAP.search(body[:2048])
    if found:
        return _parse_sitemap(url, body, found.group(1).decode())
    return _parse_feed(url, body)


def _parse_feed(url: str, body: bytes) -> Parsed:
    feed: Any = feedparser.parse(body)
    broken = feed.get("bozo_exception")
    if isinstance(broken, SAXParseException):  # a cut-off feed reads as fewer items: refuse it
        where = f"line {broken.getLineNumber()}, column {broken.getColumnNumber()}"
        raise FeedError(
            f"{url}: not well-formed XML ({where}: {broken.getMessage()}); nothing read from it"
        )
    if not feed.version and not feed.entries:
        reason = broken or "no RSS or Atom elements"
        raise FeedError(f"{url}: not an RSS/Atom feed or sitemap ({reason})")
    warnings = []
    if feed.bozo:
        warnings.append(f"{url}: the feed is not well-formed ({feed.bozo_exception}); read anyway")
    items = []
    for entry in feed.entries:
        link = str(entry.get("link") or "")
        key = str(entry.get("id") or link)
        if not key:
            warnings.append(f"{url}: an entry without id or link was skipped")
            continue
        summary = _entry_html(entry)
        fields = [key, link, entry.get("title"), _own(entry, "updated"), _own(entry, "published")]
        items.append(
            Item(
                key=key,
                version=_digest([*map(str, fields), summary]),
                link=link,
                title=_plain(str(entry.get("title") or "")),
                author=str(entry.get("author") or ""),
                date=_entry_date(entry),
                summary=_plain(summary),
            )
        )
    title = _plain(str(feed.feed.get("title") or ""))
    return Parsed(title or urlsplit(url).netloc, items, warnings)


def _parse_sitemap(url: str, body: bytes, kind: str) -> Parsed:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise FeedError(f"{url}: not a readable sitemap ({exc})") from None
    if kind == "sitemapindex":
        children = [loc.text.strip() for loc in root.iterfind(".//{*}loc") if loc.text][:3]
        raise FeedError(
            f"{url}: a sitemap index; add the sitemaps it lists instead (e.g. "
            f"{', '.join(children)})"
        )
    items, warnings = [], []
    for node in root.iterfind(".//{*}url"):
        loc = (node.findtext("{*}loc") or "").strip()
        if not loc:
            continue
        lastmod = (node.findtext("{*}lastmod") or "").strip()
        published = (node.findtext(".//{*}publication_date") or "").strip()
        date = None
        try:
            date = normalize_date(published or None)
        except ValueError as exc:
            warnings.append(f"{url}: {loc}: {exc}")
        items.append(
            Item(
                key=loc,
                version=lastmod or published,
                link=loc,
                title=(node.findtext(".//{*}title") or "").strip(),
                date=date,
            )
        )
    return Parsed(urlsplit(url).netloc, items, warnings)


@dataclass(frozen=True, slots=True)
class Page:
    text: str
    title: str
    author: str
    date: str | None
    site: str


def extract_page(url: str, body: bytes) -> Page:
    """The main text of an article page, or FeedError naming `url`."""
    page = main_text(body.decode("utf-8", "replace"), url=url)
    text = (page["text"] or "").strip()
    if not text:
        raise FeedError(f"{url}: no article text found on the page")
    try:
        date = normalize_date(page["date"])
    except ValueError:
        date = None
    return Page(
        text=text,
        title=(page["title"] or "").strip(),
        author=(page["author"] or "").strip(),
        date=date,
        site=(page["sitename"] or "").strip(),
    )


def _entry_html(entry: Any) -> str:
    """The fullest body the feed gives: content:encoded / atom content, else the summary."""
    contents = entry.get("content") or []
    values = [str(c.get("value") or "") for c in contents]
    best = max(values, key=len, default="")
    summary = str(entry.get("summary") or "")
    return best if len(best) > len(summary) else summary


def _entry_date(entry: Any) -> str | None:
    for name in ("published", "updated"):
        try:
            date = normalize_date(_own(entry, name))
        except ValueError:
            parsed = _own(entry, f"{name}_parsed")  # feedparser reads more forms, as UTC
            date = datetime(*parsed[:6]).replace(tzinfo=UTC).isoformat() if parsed else None
        if date:
            return date
    return None


def _own(entry: Any, key: str) -> Any:
    """The entry's own value: feedparser's `updated` falls back to `published`, warning."""
    return dict.get(entry, key)


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


class _Text(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "li", "h1", "h2", "h3", "h4", "blockquote", "tr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _plain(markup: str) -> str:
    """Feed HTML as text: paragraphs kept as blank-line breaks, other spacing collapsed."""
    if "<" not in markup and "&" not in markup:
        return " ".join(markup.split())
    parser = _Text()
    parser.feed(markup)
    parser.close()
    paragraphs = "".join(parser.parts).split("\n\n")
    return "\n\n".join(p for p in (" ".join(part.split()) for part in paragraphs) if p)
