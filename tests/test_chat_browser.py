"""The chat in a real browser: `newsdesk chat` over a copy of the demo index, driven
through Debian's Chromium by Playwright (which never downloads a browser here).

Leaves a screenshot and the measured answer latency in test-artifacts/.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.scripted_llm import Plan, ScriptedLLM
from index.demo import DEMO_QUESTION
from newsdesk.settings import Settings
from rag.answer import ExtractiveAnswerer
from tests.chat_server import ARTIFACTS, NOT_IN_DEMO, Server, start_chat, stop
from tests.conftest import write_jsonl

# Chromium against a real `newsdesk chat` process.
pytestmark = [pytest.mark.browser, pytest.mark.process, pytest.mark.server]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EVIL = {
    "id": "evil",
    "title": '<script>window.__pwned=1</script>Tunnel <img src=x onerror="window.__pwned=2">',
    "url": "javascript:window.__pwned=3",
    "source": "<b>Night</b> Desk",
    "date": "2024-05-01",
    "text": (
        'The river tunnel will close on Friday for repairs <img src=x onerror="window.__pwned=4">, '
        "the council said.\nEngineers found <script>window.__pwned=5</script> cracks in the "
        "tunnel roof."
    ),
}
FERRY = {
    "id": "ferry",
    "title": "Ferry service resumes",
    "date": "2024-05-02",
    "source": "Night Desk",
    "url": "https://example.org/ferry",
    "text": "The night ferry across the estuary resumed service on Saturday after a refit.",
}


@dataclass
class Browser:
    page: Any
    external: list[str] = field(default_factory=list)  # requests that left 127.0.0.1


@pytest.fixture(scope="module")
def demo_chat(demo_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    index_dir = tmp_path_factory.mktemp("chat") / "ix"
    shutil.copytree(demo_index, index_dir)
    server = start_chat(index_dir, index_dir.parent / "chat.log")
    yield server
    stop(server)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Browser]:
    """A fresh page that blocks, and records, every request not to this machine."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    opened = Browser(page)

    def local_only(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            route.continue_()
        else:
            opened.external.append(url)
            route.abort()

    page.route("**/*", local_only)
    yield opened
    context.close()


def ask(page: Any, question: str) -> dict[str, float]:
    """Ask through the page; milliseconds to the first update, first answer text, full answer."""
    turns = page.locator("#nd-chat .nd-answer, #nd-chat .nd-abstain").count()
    began = send(page, question)
    first_update = time.perf_counter()
    page.locator("#nd-chat .nd-answer, #nd-chat .nd-abstain").nth(turns).wait_for()
    first_text = time.perf_counter()
    page.locator(f"#nd-turn-{turns}").wait_for(state="attached")
    done = time.perf_counter()
    return {
        "first_update_ms": round((first_update - began) * 1000),
        "first_answer_text_ms": round((first_text - began) * 1000),
        "full_answer_ms": round((done - began) * 1000),
    }


def send(page: Any, question: str) -> float:
    """Type and send a question; returns when the page shows a reply has begun."""
    bots = page.locator("#nd-chat [data-testid=bot]").count()
    page.fill("#nd-question textarea", question)
    began = time.perf_counter()
    page.keyboard.press("Enter")
    page.locator("#nd-chat [data-testid=bot]").nth(bots).wait_for()
    return began


def test_seed_question_cites_and_highlights_its_source(
    demo_chat: Server, browser: Browser, embedder: Any
) -> None:
    settings = Settings(index_dir=demo_chat.index_dir)
    from index.reader import IndexReader

    expected = ExtractiveAnswerer(IndexReader(settings, embedder), settings).ask(DEMO_QUESTION)
    first = expected.citations[0]
    page = browser.page
    page.goto(demo_chat.url)
    page.locator("#nd-question textarea").wait_for()
    page.locator("#nd-attribution .nd-attribution").wait_for()
    assert "CC BY 2.5" in page.inner_text("#nd-attribution")

    timings = [ask(page, DEMO_QUESTION)]
    answer = page.locator("#nd-chat .nd-answer").first
    assert "Mark Rutte" in answer.inner_text()
    assert answer.locator("a.nd-cite").first.inner_text() == "[1]"
    answer.locator("a.nd-cite").first.click()
    card = page.locator("#nd-src-0-1")
    assert card.is_visible()
    assert "nd-flash" in (card.get_attribute("class") or "")
    assert card.locator("mark.nd-span").inner_text() == first.text
    assert f"characters {first.start}\N{EN DASH}{first.end}" in card.inner_text()
    # the span, machine-readable on the card (the chat's sanitiser strips data-* from [n])
    span = [first.article_id, str(first.start), str(first.end)]
    assert [card.get_attribute(f"data-{k}") for k in ("article", "start", "end")] == span

    timings.append(ask(page, NOT_IN_DEMO))  # a second, warm question: abstains
    abstain = page.locator("#nd-chat .nd-abstain")
    assert "not in this collection" in abstain.inner_text().lower()
    assert page.locator("#nd-turn-1 .nd-related").count() >= 1
    assert page.locator("#nd-turn-1 .nd-related mark").count() == 0
    assert not page.locator("#nd-turn-0").is_visible()

    page.locator("#nd-chat .nd-answer a.nd-cite").nth(1).click()  # [2] of the first answer
    assert page.locator("#nd-turn-0").is_visible()
    assert "nd-flash" in (page.locator("#nd-src-0-2").get_attribute("class") or "")

    timings.append(ask(page, DEMO_QUESTION))  # asked again, warm
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat.png"))
    (ARTIFACTS / "chat-latency.json").write_text(
        json.dumps({"question": DEMO_QUESTION, "runs": timings}, indent=2) + "\n"
    )
    print("chat latency (ms):", json.dumps(timings))

    page.click("#nd-new")
    page.wait_for_function("document.querySelectorAll('#nd-chat .nd-answer').length === 0")
    assert page.locator("section.nd-turn").count() == 0
    assert browser.external == []


def test_upload_adds_articles_and_untrusted_text_stays_text(
    demo_chat: Server, browser: Browser, tmp_path: Path
) -> None:
    page = browser.page
    page.goto(demo_chat.url)
    page.get_by_role("tab", name="Collection").click()
    status = page.locator("#nd-status")
    status.get_by_text("articles").first.wait_for()
    before = article_count(status.inner_text())
    upload = write_jsonl(tmp_path / "night <desk>.jsonl", [EVIL, FERRY])
    page.set_input_files("#nd-upload input[type=file]", str(upload))
    page.get_by_text("night_desk.jsonl").or_(
        page.get_by_text("night <desk>.jsonl")
    ).first.wait_for()
    page.click("#nd-add")
    page.locator("#nd-report").get_by_text("articles").first.wait_for(timeout=120_000)
    assert "stored: night_desk.jsonl" in page.inner_text("#nd-report")
    page.wait_for_function(
        f"document.querySelector('#nd-status').innerText.includes('{before + 2}')"
    )
    assert article_count(status.inner_text()) == before + 2
    assert (demo_chat.index_dir / "uploads" / "night_desk.jsonl").is_file()

    page.get_by_role("tab", name="Chat").click()
    ask(page, "When will the river tunnel close?")
    answer = page.locator("#nd-chat .nd-answer").last
    assert 'onerror="window.__pwned=4"' in answer.inner_text()
    card = page.locator("#nd-src-0-1")
    assert "<script>window.__pwned=1</script>" in card.inner_text()
    assert "<b>Night</b> Desk" in card.inner_text()
    assert card.locator("a.nd-title").count() == 0  # a javascript: url is not a link
    for where in ("#nd-chat", "#nd-sources"):
        assert page.locator(f"{where} img, {where} script, {where} b").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.screenshot(path=str(ARTIFACTS / "chat-upload.png"))
    assert browser.external == []


def test_empty_index_says_how_to_build_one(browser: Browser, tmp_path: Path) -> None:
    server = start_chat(tmp_path / "none", tmp_path / "chat.log")
    try:
        page = browser.page
        page.goto(server.url)
        notice = page.locator(".nd-notice")
        notice.wait_for()
        assert "newsdesk index build" in notice.inner_text()
        send(page, "Anything there?")
        assert "no index" in page.locator("#nd-chat .nd-error").inner_text()
    finally:
        stop(server)
    assert "no index" in server.log.read_text()


def article_count(status_text: str) -> int:
    for line in status_text.splitlines():
        key, _, value = line.partition("\t")
        if key.strip() == "articles":
            return int(value.strip())
    raise AssertionError(f"no articles row in {status_text!r}")


@pytest.mark.llm
def test_a_generated_answer_is_checked_before_it_is_shown(
    demo_index: Path, browser: Browser, embedder: Any, tmp_path: Path
) -> None:
    from index.reader import IndexReader
    from rag.generate import LlmAnswerer
    from rag.llm_backend import make_llm

    index_dir = tmp_path / "ix"
    shutil.copytree(demo_index, index_dir)
    with ScriptedLLM() as llm:
        flags = ("--llm-base-url", llm.base_url, "--llm-model", "scripted")
        settings = Settings(
            index_dir=index_dir,
            answer={"answerer": "llm"},
            llm={"base_url": llm.base_url, "model": "scripted", "max_retries": 0},
        )
        engine = LlmAnswerer(IndexReader(settings, embedder), settings, make_llm(settings.llm))
        passages = engine.retriever.retrieve(DEMO_QUESTION)
        # The passage that holds the warning, so the first sentence below is supported.
        key = next(n for n, p in enumerate(passages, 1) if "for Moscow itself" in p.text)
        reply = (
            "NATO Secretary General Mark Rutte warned in Brussels that the next major Russian "
            f"offensive against Ukraine would prove fatal for Moscow itself [{key}]. "
            f"He said the summit would be held in Paris in 1999 [{key}]."
        )
        llm.plan(Plan(text=reply, chunks=12), when="Secretary General")
        expected = engine.ask(DEMO_QUESTION)  # the same reply, checked in-process
        server = start_chat(index_dir, tmp_path / "chat.log", *flags)
        try:
            page = browser.page
            page.goto(server.url)
            page.locator("#nd-question textarea").wait_for()
            ask(page, DEMO_QUESTION)
            answer = page.locator("#nd-chat .nd-answer").first
            assert "Mark Rutte" in answer.inner_text()
            assert answer.locator(".nd-generated").count() == 1
            assert answer.locator(".nd-verdict.nd-unsupported").count() == 1
            assert answer.locator("a.nd-cite").count() == 1  # the unsupported one cites nothing
            answer.locator("a.nd-cite").first.click()
            card = page.locator("#nd-src-0-1")
            assert card.locator("mark.nd-span").inner_text() == expected.citations[0].text
            page.screenshot(path=str(ARTIFACTS / "chat-llm.png"))
        finally:
            stop(server)
    assert browser.external == []
    # The chat asked the model once; the prompt carried the keyed passages.
    chat_requests = [r for r in llm.requests if "Secretary General" in r["messages"][-1]["content"]]
    assert len(chat_requests) == 2 and chat_requests[1]["stream"] is True


FERRY_STORY = (
    "A ferry capsized in a storm off the coast on Friday. Rescuers said 12 passengers died "
    "in the accident. The search continued overnight."
)
DEVELOPING = [
    {
        "id": "coast",
        "title": "Ferry capsizes in storm",
        "source": "Coast Times",
        "date": "2024-03-02",
        "author": "Ann Lee",
        "text": FERRY_STORY,
    },
    {
        "id": "wire",
        "title": "Ferry capsizes",
        "source": "Daily Wire",
        "date": "2024-03-03",
        "text": FERRY_STORY,
    },
    {
        "id": "valley",
        "title": "Ferry disaster toll revised",
        "source": "Valley Post",
        "date": "2024-03-09",
        "text": "A week after the ferry capsized, officials said 17 "
        "passengers died in the accident. An inquiry into the ship's safety opened on Monday.",
    },
]


def test_a_developing_story_shows_bylines_copies_disagreement_and_timeline(
    browser: Browser, embedder: Any, tmp_path: Path
) -> None:
    from index.build import Indexer

    settings = Settings(index_dir=tmp_path / "ix")
    Indexer(settings, embedder).build([write_jsonl(tmp_path / "ferry.jsonl", DEVELOPING)])
    server = start_chat(settings.index_dir, tmp_path / "chat.log")
    try:
        page = browser.page
        page.goto(server.url)
        page.locator("#nd-question textarea").wait_for()
        ask(page, "How many passengers died when the ferry capsized?")
        answer = page.locator("#nd-chat .nd-answer").last.inner_text()
        assert "Sources disagree on the number of passengers: 12 (Coast Times, 2024-03-02" in answer
        assert "vs 17 (Valley Post, 2024-03-09" in answer
        sources = page.locator("#nd-sources")
        timeline = sources.locator(".nd-timeline li").all_inner_texts()
        days = [t[:10] for t in timeline]
        assert days == sorted(days) and {days[0], days[-1]} == {"2024-03-02", "2024-03-09"}
        assert "Coast Times, 2024-03-02, by Ann Lee" in sources.inner_text()
        also = sources.locator(".nd-also").all_inner_texts()
        assert len(also) == 1 and "Daily Wire (2024-03-03)" in also[0]  # one copy, not two
        page.screenshot(path=str(ARTIFACTS / "chat-news.png"))
        assert browser.external == []
    finally:
        stop(server)


# --- a newsroom: a feed added in the chat, asked about, saved, reopened, exported ------

QUARRY = (
    "The flooded quarry at Stone Hollow will open as a public swimming lake in June, the "
    "parish council said on Thursday. Divers measured the water at thirty-one metres "
    "deep near the old crane.\n\n"
    "Lifeguards will watch the beach on weekends, and swimming stays banned after dark."
)
BELLS = (
    "The cathedral's eight bells rang together on Sunday for the first time since 1987. "
    "A foundry in the north recast the cracked tenor bell over the winter.\n\n"
    "Ringers from three villages practised for a month before the service."
)
NEWSROOM_QUESTION = "How deep is the water in the flooded quarry?"


def newsroom_page(title: str, text: str) -> bytes:
    paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
    return (
        f"<html><head><title>{title}</title></head><body><nav><a href='/'>Home</a></nav>"
        f"<article><h1>{title}</h1>{paragraphs}</article><footer>Hollow Gazette</footer>"
        "</body></html>"
    ).encode()


@pytest.fixture
def newsroom_site() -> Iterator[str]:
    """A local news site: an RSS feed of two articles and their pages. Yields the feed URL."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    routes: dict[str, tuple[bytes, str]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in routes:
                self.send_error(404)
                return
            body, kind = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    items = [
        ("/quarry", "Quarry to open as a swimming lake", "Thu, 06 Jun 2024 09:00:00 GMT"),
        ("/bells", "Cathedral bells ring again", "Sun, 02 Jun 2024 12:00:00 GMT"),
    ]
    entries = "".join(
        f"<item><title>{title}</title><link>{base}{path}</link><guid>{base}{path}</guid>"
        f"<pubDate>{date}</pubDate><description>Summary.</description></item>"
        for path, title, date in items
    )
    routes["/rss.xml"] = (
        (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Hollow Gazette</title><link>{base}/</link><description>news</description>"
            f"{entries}</channel></rss>"
        ).encode(),
        "application/rss+xml",
    )
    html = "text/html; charset=utf-8"
    routes["/quarry"] = (newsroom_page(items[0][1], QUARRY), html)
    routes["/bells"] = (newsroom_page(items[1][1], BELLS), html)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"{base}/rss.xml"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_a_feed_added_in_the_chat_is_asked_saved_reopened_and_exported(
    browser: Browser, newsroom_site: str, tmp_path: Path
) -> None:
    from tests.chat_server import live_articles
    from tests.test_ui_service import exported_quotes

    index_dir = tmp_path / "ix"  # nothing indexed yet: the feed is the whole collection
    env = {"NEWSDESK_FEEDS__MIN_DELAY": "0"}
    server = start_chat(index_dir, tmp_path / "chat.log", env=env)
    try:
        page = browser.page
        page.goto(server.url)
        page.get_by_role("tab", name="Collection").click()
        page.locator("#nd-feeds").get_by_text("No feeds yet").wait_for()
        page.fill("#nd-feed-url textarea", newsroom_site)
        page.click("#nd-add-feed")
        report = page.locator("#nd-feed-report")
        # An error in the report ends the wait at once instead of after three minutes.
        done = report.get_by_text("2 new or changed items")
        done.or_(report.locator(".nd-error")).wait_for(timeout=180_000)
        assert f"added {newsroom_site}" in report.inner_text(), report.inner_text()
        assert done.is_visible(), report.inner_text()
        row = page.locator("#nd-feeds tr.nd-feed")
        row.locator(".nd-items").get_by_text("2", exact=True).wait_for()
        assert row.locator(".nd-polled").inner_text().endswith("UTC")
        assert "Hollow Gazette" in row.inner_text() and "ok: 2 new or changed" in row.inner_text()
        listing = page.locator("#nd-articles")
        listing.get_by_text("Quarry to open as a swimming lake").wait_for()
        assert listing.locator("tr.nd-article").count() == 2
        assert "Cathedral bells ring again" in listing.inner_text()

        page.get_by_role("tab", name="Chat").click()
        ask(page, NEWSROOM_QUESTION)
        answer = page.locator("#nd-chat .nd-answer").last
        assert "thirty-one metres" in answer.inner_text()
        said = answer.inner_text()
        saved = page.locator("#nd-conversations label").filter(has_text=NEWSROOM_QUESTION)
        saved.wait_for()

        page.reload()
        # A locator's wait, not page.wait_for_selector: that one also hands back an
        # element handle, and under load it once found the visible textarea, then hung
        # 60 s adopting the handle into the reloaded page's main world (Playwright #20772).
        page.locator("#nd-question textarea").wait_for()
        saved.click()
        page.locator("#nd-chat .nd-answer").wait_for()
        assert page.locator("#nd-chat .nd-answer").inner_text() == said
        card = page.locator("#nd-src-0-1")
        assert "thirty-one metres" in card.locator("mark.nd-span").inner_text()
        assert page.input_value("#nd-title textarea") == NEWSROOM_QUESTION

        page.fill("#nd-title textarea", "Quarry lake")
        page.click("#nd-rename")
        page.locator("#nd-conversations label").filter(has_text="Quarry lake").wait_for()
        with page.expect_download() as downloading:
            page.click("#nd-export-md")
        download = downloading.value
        assert download.suggested_filename == "Quarry_lake.md"
        exported = Path(download.path()).read_text(encoding="utf-8")
        assert exported.startswith("# Quarry lake\n")
        quotes = exported_quotes(exported)
        assert quotes, exported
        _, articles = live_articles(index_dir)
        for quote, article_id, start, end in quotes:
            assert articles[article_id].text[start:end] == quote
        assert any("thirty-one metres" in quote for quote, *_ in quotes)
        page.screenshot(path=str(ARTIFACTS / "chat-newsroom.png"), full_page=True)
        assert browser.external == []
    finally:
        stop(server)
