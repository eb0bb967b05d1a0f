"""Feeds, sitemaps and watched folders (index.feeds, index.watch): parsing and state without
a server, then polls against a real HTTP server on 127.0.0.1 into a real index."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from index.db import read_manifest
from index.embed import Embedder
from index.feeds import FeedListError, add_feed, archive_path, list_feeds, poll_feeds, remove_feed
from index.feeds_fetch import FeedError, Fetcher, parse, user_agent
from index.feeds_store import FeedStore, Polled
from index.reader import IndexReader
from index.watch import poll_folders
from newsdesk.cli import cli
from newsdesk.settings import FeedSettings, Settings
from tests.conftest import make_settings, top_articles, write_jsonl

# --- pages and feeds ---------------------------------------------------------------

LIGHTHOUSE = (
    "The old lighthouse on Gull Point will be restored next spring, the harbour trust "
    "announced on Tuesday. Volunteers raised forty thousand pounds for new glass and a "
    "copper roof over the lamp room.\n\n"
    "The keeper's cottage beside the tower will open as a small museum about the "
    "shipwrecks of the bay once the work is finished."
)
LIGHTHOUSE_EDITED = (
    "The old lighthouse on Gull Point will be restored next summer, the harbour trust "
    "said on Wednesday after the tender came in over budget. Donations reached sixty "
    "thousand pounds for glass, a copper roof and a new staircase.\n\n"
    "The keeper's cottage will stay closed until the restoration ends."
)
TRAMS = (
    "Electric trams returned to the hill district on Monday after eleven years. The "
    "first car left the depot at six in the morning carrying the mayor and a brass band.\n\n"
    "Fares are the same as on the buses, and trams run every eight minutes at peak times."
)
BEES = (
    "Beekeepers in the northern valleys counted twice as many hives this summer as last "
    "year. A mild winter and fields of clover planted along the motorway helped colonies "
    "survive.\n\n"
    "Honey prices at the Saturday market fell by a third as a result."
)
OWLS = (
    "A pair of snowy owls has nested on the roof of the central library for the first "
    "time since the building opened. Staff have closed the reading garden until the "
    "chicks fledge in late July.\n\n"
    "A webcam on the roof streams the nest to the library's website."
)


def page(title: str, text: str, author: str = "") -> bytes:
    paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
    byline = f'<meta name="author" content="{author}">' if author else ""
    return (
        f"<html><head><title>{title}</title>{byline}</head><body>"
        f"<nav><a href='/'>Home</a> <a href='/sport'>Sport</a></nav>"
        f"<article><h1>{title}</h1>{paragraphs}</article>"
        f"<footer>Copyright the Bay Herald</footer></body></html>"
    ).encode()


def rss(base: str, items: list[tuple[str, str, str]]) -> bytes:
    """items: (path, title, pubDate)"""
    entries = "".join(
        f"<item><title>{title}</title><link>{base}{path}</link><guid>{base}{path}</guid>"
        f"<dc:creator>Ann Reporter</dc:creator><pubDate>{date}</pubDate>"
        f"<description>Summary of {title}.</description></item>"
        for path, title, date in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Bay Herald</title><link>{base}/</link><description>news</description>"
        f"{entries}</channel></rss>"
    ).encode()


def atom(base: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Valley Bulletin</title><id>urn:valley</id><updated>2024-05-02T10:00:00Z</updated>"
        f'<entry><title>Bees thrive</title><link href="{base}/bees"/><id>urn:valley:bees</id>'
        "<updated>2024-05-02T10:00:00Z</updated><published>2024-05-01T09:30:00+02:00</published>"
        "<author><name>Bea Keeper</name></author><summary>Hives doubled.</summary></entry></feed>"
    ).encode()


def sitemap(base: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{base}/owls</loc><lastmod>2024-06-01</lastmod></url></urlset>"
    ).encode()


# --- a local server ---------------------------------------------------------------


@dataclass
class Route:
    body: bytes
    status: int = 200
    etag: str | None = None
    delay: float = 0.0
    content_type: str = "application/xml"


@dataclass
class Site:
    base: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [headers for p, headers in self.requests if p == path]


@pytest.fixture
def site() -> Iterator[Site]:
    state = Site(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, dict(self.headers.items())))
            route = state.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            time.sleep(route.delay)
            if route.etag and self.headers.get("If-None-Match") == route.etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            if route.etag:
                self.send_header("ETag", route.etag)
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def html_route(title: str, text: str, author: str = "") -> Route:
    return Route(page(title, text, author), content_type="text/html; charset=utf-8")


def feed_settings(tmp_path: Path, urls: list[str], timeout: float = 2.0) -> Settings:
    return make_settings(tmp_path / "ix", feeds={"urls": urls, "min_delay": 0, "timeout": timeout})


def publish(site: Site) -> None:
    b = site.base
    site.routes["/rss"] = Route(
        rss(
            b,
            [
                ("/lighthouse", "Lighthouse to be restored", "Tue, 05 Mar 2024 08:00:00 GMT"),
                ("/trams", "Trams return to the hill", "Mon, 04 Mar 2024 07:15:00 GMT"),
            ],
        ),
        etag='"rss-1"',
    )
    site.routes["/atom"] = Route(atom(b))
    site.routes["/sitemap.xml"] = Route(sitemap(b))
    site.routes["/lighthouse"] = html_route("Lighthouse to be restored", LIGHTHOUSE, "Ann")
    site.routes["/trams"] = html_route("Trams return to the hill", TRAMS)
    site.routes["/bees"] = html_route("Bees thrive", BEES)
    site.routes["/owls"] = html_route("Owls nest on the library", OWLS)


def feed_id(key: str) -> str:
    import hashlib

    return "feed-" + hashlib.sha256(key.encode()).hexdigest()[:16]


# --- without a server -------------------------------------------------------------


def test_rss_items_carry_outlet_author_date_and_plain_summary() -> None:
    parsed = parse(
        "http://x/rss", rss("http://x", [("/a", "A &amp; B", "Tue, 05 Mar 2024 08:00:00 GMT")])
    )
    assert parsed.title == "Bay Herald" and not parsed.warnings
    [item] = parsed.items
    assert item.key == item.link == "http://x/a"
    assert (item.title, item.author) == ("A & B", "Ann Reporter")
    assert item.date == "2024-03-05T08:00:00+00:00"
    assert item.summary == "Summary of A & B."


def test_atom_entry_keeps_its_offset_and_id() -> None:
    [item] = parse("http://x/atom", atom("http://x")).items
    assert (item.key, item.link, item.author) == ("urn:valley:bees", "http://x/bees", "Bea Keeper")
    assert item.date == "2024-05-01T09:30:00+02:00"


def test_item_version_changes_with_the_entry_only() -> None:
    one = parse("u", rss("http://x", [("/a", "A", "Tue, 05 Mar 2024 08:00:00 GMT")])).items[0]
    same = parse("u", rss("http://x", [("/a", "A", "Tue, 05 Mar 2024 08:00:00 GMT")])).items[0]
    later = parse("u", rss("http://x", [("/a", "A", "Wed, 06 Mar 2024 08:00:00 GMT")])).items[0]
    assert one.version == same.version != later.version


def test_sitemap_urls_are_items_versioned_by_lastmod() -> None:
    parsed = parse("http://x/sitemap.xml", sitemap("http://x"))
    [item] = parsed.items
    assert (item.key, item.version) == ("http://x/owls", "2024-06-01")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'<rss version="2.0"><channel><title>x</title><item><title>cut', "not well-formed XML"),
        (b"<html><body>Sorry, we moved</body></html>", "not an RSS/Atom feed"),
        (b"<sitemapindex><sitemap><loc>http://x/s1.xml</loc></sitemap></sitemapindex>", "s1.xml"),
    ],
)
def test_unreadable_feeds_are_errors_naming_the_url(body: bytes, says: str) -> None:
    with pytest.raises(FeedError, match=says) as caught:
        parse("http://x/feed", body)
    assert "http://x/feed" in str(caught.value)


def test_requests_to_one_host_keep_the_least_delay() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    fetcher = Fetcher(FeedSettings(min_delay=2.0), clock=lambda: now[0], sleep=sleep)
    fetcher.wait_for("http://a.example/feed")
    now[0] += 0.5
    fetcher.wait_for("http://a.example/page")
    fetcher.wait_for("http://b.example/feed")  # another host: no wait
    assert slept == [1.5]
    fetcher.close()


def test_user_agent_names_the_tool_and_the_contact() -> None:
    agent = user_agent(FeedSettings(contact="mailto:desk@example.org"))
    assert agent.startswith("newsdesk/") and "+mailto:desk@example.org" in agent


def test_feed_list_add_remove_and_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "ix", feeds={"urls": ["https://conf.example/rss"]})
    row = add_feed(settings, " https://a.example/feed ")
    assert (row.url, row.status, row.polled_at) == (
        "https://a.example/feed",
        "not polled yet",
        None,
    )
    assert [r.url for r in list_feeds(settings)] == [
        "https://a.example/feed",
        "https://conf.example/rss",
    ]
    with pytest.raises(FeedListError, match=re.escape("ftp://a.example/feed")):
        add_feed(settings, "ftp://a.example/feed")
    with pytest.raises(FeedListError, match=r"feeds\.urls"):
        remove_feed(settings, "https://conf.example/rss")
    remove_feed(settings, "https://a.example/feed")
    with pytest.raises(FeedListError, match=re.escape("https://a.example/feed")):
        remove_feed(settings, "https://a.example/feed")


def test_feed_urls_in_settings_must_be_http(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"feeds\.urls"):
        make_settings(tmp_path, feeds={"urls": ["file:///etc/passwd"]})


def test_a_poll_is_recorded_in_one_transaction(tmp_path: Path) -> None:
    store = FeedStore(tmp_path)
    store.polled([Polled("http://a/feed", "A", '"e1"', None, "ok", [("k1", "v1", "id1")])])
    later = Polled("http://a/feed", "A", '"e2"', None, "ok", [("k2", "v2", "id2")])
    broken = Polled("http://b/feed", "B", None, None, "ok", [("k", None, "i")])  # type: ignore[list-item]
    with pytest.raises(sqlite3.IntegrityError):
        store.polled([later, broken])
    assert [(r.url, r.etag) for r in store.feeds()] == [("http://a/feed", '"e1"')]
    assert store.versions("http://a/feed") == {"k1": "v1"}


# --- against a server, into a real index -----------------------------------------


@pytest.mark.server
def test_poll_indexes_feeds_and_sitemaps_then_asks_only_for_changes(
    site: Site, tmp_path: Path, embedder: Embedder
) -> None:
    publish(site)
    b = site.base
    settings = feed_settings(tmp_path, [f"{b}/rss", f"{b}/atom", f"{b}/sitemap.xml"])
    report = poll_feeds(settings, embedder)
    assert report.problems == [] and report.items == 4
    assert [row.status for row in report.feeds] == [
        "ok: 2 new or changed",
        "ok: 1 new or changed",
        "ok: 1 new or changed",
    ]
    reader = IndexReader(settings, embedder)
    light = reader.articles[feed_id(f"{b}/lighthouse")]
    assert "forty thousand pounds" in light.text and "Home" not in light.text
    assert (light.source, light.author, light.date) == (
        "Bay Herald",
        "Ann Reporter",
        "2024-03-05T08:00:00+00:00",
    )
    assert light.url == f"{b}/lighthouse" and light.title == "Lighthouse to be restored"
    bees = reader.articles[feed_id("urn:valley:bees")]
    assert (bees.source, bees.author) == ("Valley Bulletin", "Bea Keeper")
    owls = reader.articles[feed_id(f"{b}/owls")]
    assert "snowy owls" in owls.text and owls.source == "127.0.0.1:" + b.rsplit(":", 1)[1]
    assert top_articles(settings, embedder, "When do trams run at peak times?") == [
        feed_id(f"{b}/trams")
    ]
    agents = {h.get("User-Agent", "") for _, h in site.requests}
    assert len(agents) == 1 and agents.pop().startswith("newsdesk/")

    before = read_manifest(settings.index_dir)
    fetched = len(site.requests)
    again = poll_feeds(settings, embedder)
    assert again.index is None and again.problems == []
    assert site.headers_of("/rss")[-1].get("If-None-Match") == '"rss-1"'
    rows = {row.url: row for row in again.feeds}
    assert rows[f"{b}/rss"].status == "not modified"
    assert rows[f"{b}/atom"].status == "ok: nothing new"  # no ETag: fetched, nothing new
    pages = [
        p for p, _ in site.requests[fetched:] if p in ("/lighthouse", "/trams", "/bees", "/owls")
    ]
    assert pages == []
    assert read_manifest(settings.index_dir) == before


@pytest.mark.server
def test_an_edited_item_replaces_its_old_version(
    site: Site, tmp_path: Path, embedder: Embedder
) -> None:
    publish(site)
    b = site.base
    settings = feed_settings(tmp_path, [f"{b}/rss"])
    poll_feeds(settings, embedder)
    site.routes["/rss"] = Route(
        rss(
            b,
            [
                ("/lighthouse", "Lighthouse to be restored", "Wed, 06 Mar 2024 09:00:00 GMT"),
                ("/trams", "Trams return to the hill", "Mon, 04 Mar 2024 07:15:00 GMT"),
            ],
        ),
        etag='"rss-2"',
    )
    site.routes["/lighthouse"] = html_route("Lighthouse to be restored", LIGHTHOUSE_EDITED)
    report = poll_feeds(settings, embedder)
    assert report.index is not None
    assert (report.index.added, report.index.changed, report.index.unchanged) == (0, 1, 1)
    reader = IndexReader(settings, embedder)
    light = reader.articles[feed_id(f"{b}/lighthouse")]
    assert "sixty thousand pounds" in light.text and "forty" not in light.text
    assert light.date == "2024-03-06T09:00:00+00:00"
    assert reader.lexical.search("volunteers museum shipwrecks", k=5) == []
    assert reader.store.count() == len(reader.chunk_ids(reader.manifest.articles))
    lines = archive_path(settings.index_dir, f"{b}/rss").read_text().splitlines()
    assert len(lines) == 2  # the feed's file keeps one version per item


@pytest.mark.server
def test_bad_feeds_are_reported_by_url_and_lose_nothing(
    site: Site, tmp_path: Path, embedder: Embedder
) -> None:
    publish(site)
    b = site.base
    site.routes["/broken"] = Route(b"<rss><channel><item><title>half")
    site.routes["/down"] = Route(b"oops", status=500)
    site.routes["/slow"] = Route(atom(b), delay=3.0)
    settings = feed_settings(tmp_path, [f"{b}/rss"], timeout=1.0)
    poll_feeds(settings, embedder)
    before = read_manifest(settings.index_dir)
    assert before is not None and before.article_count == 2

    site.routes["/rss"] = Route(b'<?xml version="1.0"?><rss version="2.0"><channel><item>')
    for url in (f"{b}/broken", f"{b}/down", f"{b}/slow", f"{b}/atom"):
        add_feed(settings, url)
    report = poll_feeds(settings, embedder)
    said = {p.where: p.message for p in report.problems}
    assert "not well-formed XML" in said[f"{b}/rss"]
    assert "not well-formed XML" in said[f"{b}/broken"]
    assert "HTTP 500" in said[f"{b}/down"]
    assert "no answer within 1 s (feeds.timeout)" in said[f"{b}/slow"]
    assert {row.url for row in report.failed} == {
        f"{b}/rss",
        f"{b}/broken",
        f"{b}/down",
        f"{b}/slow",
    }
    assert all(row.error and row.url in row.error for row in report.failed)
    after = read_manifest(settings.index_dir)
    assert after is not None and after.article_count == 3  # the atom feed's one item added
    assert {i: e.hash for i, e in before.articles.items()}.items() <= {
        i: e.hash for i, e in after.articles.items()
    }.items()


@pytest.mark.server
def test_a_failing_page_falls_back_to_the_feed_summary(
    site: Site, tmp_path: Path, embedder: Embedder
) -> None:
    publish(site)
    b = site.base
    site.routes["/trams"] = Route(b"gone", status=404)
    settings = feed_settings(tmp_path, [f"{b}/rss"])
    report = poll_feeds(settings, embedder)
    [problem] = report.problems
    assert problem.kept and f"{b}/trams" in problem.message and "summary" in problem.message
    reader = IndexReader(settings, embedder)
    assert reader.articles[feed_id(f"{b}/trams")].text == "Summary of Trams return to the hill."


@pytest.mark.server
def test_watch_once_from_the_command_line(site: Site, tmp_path: Path) -> None:
    publish(site)
    b = site.base
    index_dir = tmp_path / "ix"
    runner = CliRunner()
    added = runner.invoke(cli, ["feeds", "add", f"{b}/rss", "--index-dir", str(index_dir)])
    assert added.exit_code == 0, added.output
    runner.invoke(cli, ["feeds", "add", f"{b}/missing", "--index-dir", str(index_dir)])
    result = runner.invoke(
        cli,
        ["watch", "--once", "--index-dir", str(index_dir)],
        env={"NEWSDESK_FEEDS__MIN_DELAY": "0"},
    )
    assert result.exit_code == 3, result.output
    assert f"error: {b}/missing: the server answered HTTP 404" in result.stderr
    assert "2 added" in result.stdout
    listed = runner.invoke(cli, ["feeds", "list", "--index-dir", str(index_dir)])
    assert f"{b}/rss (Bay Herald): polled " in listed.stdout
    assert "ok: 2 new or changed" in listed.stdout and "error: the server answered" in listed.stdout
    removed = runner.invoke(cli, ["feeds", "remove", f"{b}/missing", "--index-dir", str(index_dir)])
    assert removed.exit_code == 0
    result = runner.invoke(
        cli,
        ["watch", "--once", "--index-dir", str(index_dir)],
        env={"NEWSDESK_FEEDS__MIN_DELAY": "0"},
    )
    assert result.exit_code == 0, result.output
    assert "not modified" in result.stdout


# --- watched folders --------------------------------------------------------------


def test_a_watched_folder_picks_up_dropped_and_edited_files(
    tmp_path: Path, embedder: Embedder
) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    settings = make_settings(tmp_path / "ix")
    assert poll_folders(settings, [folder], embedder).index is None  # empty: nothing to do
    (folder / "owls.txt").write_text("Owls nest on the library\n\n" + OWLS, encoding="utf-8")
    write_jsonl(folder / "more.jsonl", [{"id": "bees", "title": "Bees", "text": BEES}])
    first = poll_folders(settings, [folder], embedder)
    assert first.index is not None and first.index.added == 2
    assert first.changed == {folder.resolve(): ["more.jsonl", "owls.txt"]}
    assert poll_folders(settings, [folder], embedder).changed == {}
    (folder / "owls.txt").write_text("Owls nest on the library\n\n" + TRAMS, encoding="utf-8")
    edited = poll_folders(settings, [folder], embedder)
    assert edited.index is not None
    assert (edited.index.added, edited.index.changed, edited.index.unchanged) == (0, 1, 1)
    reader = IndexReader(settings, embedder)
    assert "trams" in reader.articles["owls"].text.lower()
    missing = poll_folders(settings, [tmp_path / "nowhere"], embedder)
    assert "nowhere" in missing.problems[0].where


@pytest.mark.server
def test_the_chat_service_lists_adds_and_polls_feeds(
    site: Site, tmp_path: Path, embedder: Embedder
) -> None:
    from ui.service import ChatService

    publish(site)
    service = ChatService(feed_settings(tmp_path, []), embedder)
    service.add_feed(f"{site.base}/atom")
    assert [(r.url, r.status) for r in service.feeds()] == [(f"{site.base}/atom", "not polled yet")]
    report = service.poll_feeds()
    assert report.items == 1 and report.feeds[0].polled_at is not None
    assert service.sources() == ["Valley Bulletin"]
