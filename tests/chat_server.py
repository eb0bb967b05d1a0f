"""A real `newsdesk chat` subprocess for the tests, and its HTTP API read the way a
script would read it: the chat message and the sources panel as HTML, each citation
checked against the article texts of the index."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from index.db import read_texts
from index.demo import demo_sources
from index.types import Article
from tests.conftest import ROOT

NEWSDESK = [sys.executable, "-m", "newsdesk"]
NOT_IN_DEMO = "What is the boiling point of mercury?"
DEMO_ARTICLE = demo_sources()[0].stem  # the article DEMO_QUESTION is answered from
ARTIFACTS = Path(os.environ.get("NEWSDESK_TEST_ARTIFACTS", ROOT / "test-artifacts"))


@dataclass
class Server:
    url: str
    index_dir: Path
    log: Path
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_chat(
    index_dir: Path, log: Path, *flags: str, env: Mapping[str, str] | None = None
) -> Server:
    """`newsdesk chat` on a free loopback port; returns once the page is served. It runs
    in the log's folder, so no newsdesk.toml of the developer's is read, and a path a
    request names relative to the working directory stays inside the test's folder."""
    port = free_port()
    environ = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*NEWSDESK, "chat", "--index-dir", str(index_dir), "--port", str(port), *flags],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=log.parent,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"newsdesk chat exited {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return Server(url, index_dir, log, process)
        except OSError:
            time.sleep(0.5)
    process.kill()
    pytest.fail(f"newsdesk chat did not start in 180 s:\n{log.read_text()}")


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()


def live_articles(index_dir: Path) -> tuple[str, dict[str, Article]]:
    """The state the manifest names now (as answers name it) and its article texts."""
    found = read_texts(index_dir)
    assert found is not None, f"no index in {index_dir}"
    return found


def api_client(server: Server) -> Any:
    """A gradio_client session with the chat; conftest turns its telemetry off."""
    from gradio_client import Client

    return Client(server.url, verbose=False, analytics_enabled=False, download_files=False)


def ask(client: Any, question: str) -> Reply:
    """One question through the `/ask` endpoint, as a new conversation (not a follow-up)."""
    client.reset_session()
    return reply_of(client.predict(question, [], [], "", "", api_name="/ask"))


# --- a reply of the ask endpoint ------------------------------------------------------


@dataclass
class Span:
    article: str
    start: int
    end: int
    text: str  # as the page shows it: the answer's sentence, or the card's <mark>


@dataclass
class Reply:
    """The last chat message of an `/ask` call, and the sources panel beside it."""

    kind: str  # "answer", "abstain", "error" or "" (none of those)
    index_version: str  # the index state the shown sources came from ("" if none)
    text: str  # the message as plain text
    quotes: list[Span]  # each answer sentence, with the span of each [n] after it
    cards: dict[str, Span]  # citation cards of the panel by element id ("nd-src-T-N")
    anchors: list[str]  # the card id each [n] links to, in order
    message: str
    panel: str


def reply_of(result: Any) -> Reply:
    """Parse what gradio_client's predict returned for `/ask`: (chat, question, panel)."""
    messages, _, panel = result
    content = messages[-1]["content"]
    parts = content if isinstance(content, list) else [content]
    message = "".join(p["text"] if isinstance(p, dict) else str(p) for p in parts)
    said = _Message(message)
    shown = _Panel(panel)
    quotes = [  # a [n] with no card is reported by citation_problems
        Span(card.article, card.start, card.end, sentence)
        for sentence, anchor in said.cites
        if (card := shown.cards.get(anchor)) is not None
    ]
    return Reply(
        kind=said.kind,
        index_version=shown.index_version,
        text=said.text.strip(),
        quotes=quotes,
        cards=shown.cards,
        anchors=[anchor for _, anchor in said.cites],
        message=message,
        panel=panel,
    )


def citation_problems(reply: Reply, articles: Mapping[str, Article]) -> list[str]:
    """Each way the reply's citations fail to be exact spans of `articles` (none: valid).

    A card's <mark> must be article.text[start:end] exactly; an answer sentence must be
    that span as the chat shows text (line breaks as spaces), since extractive answers
    quote whole sentences."""
    problems = []
    for anchor in reply.anchors:
        if anchor not in reply.cards:
            problems.append(f"[n] links to #{anchor}, which is not in the sources panel")
    for where, spans in (("card", list(reply.cards.values())), ("sentence", reply.quotes)):
        for span in spans:
            article = articles.get(span.article)
            if article is None:
                problems.append(f"{where} cites unknown article {span.article!r}")
                continue
            exact = article.text[span.start : span.end]
            expected = exact if where == "card" else " ".join(exact.split())
            shown = span.text if where == "card" else " ".join(span.text.split())
            if shown != expected:
                problems.append(
                    f"{where} quotes {shown!r}, but {span.article}[{span.start}:{span.end}] "
                    f"is {exact!r}"
                )
    return problems


def _classes(attrs: list[tuple[str, str | None]]) -> list[str]:
    return (dict(attrs).get("class") or "").split()


def _span_attrs(attrs: list[tuple[str, str | None]]) -> Span:
    found = dict(attrs)
    assert "data-article" in found, f"no span named in {attrs}"
    return Span(
        str(found["data-article"]), int(found["data-start"] or ""), int(found["data-end"] or ""), ""
    )


class _Message(HTMLParser):
    """Sentences of an answer and the [n] links after each; badges and notes skipped."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.kind = ""
        self.text = ""
        self.cites: list[tuple[str, str]] = []  # (sentence, the card id its [n] links to)
        self._sentence = ""  # the sentence the next [n] belongs to
        self._pending = ""  # text since the last [n]: a new sentence, or the space between marks
        self._aside = 0  # depth inside <a>, <span> or <strong>: links, badges, notes
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = _classes(attrs)
        for kind in ("answer", "abstain", "error"):
            if f"nd-{kind}" in classes and not self.kind:
                self.kind = kind
        if "nd-cite" in classes:
            if self._pending.strip():
                self._sentence = self._pending.strip()
            self._pending = ""
            self.cites.append((self._sentence, (dict(attrs).get("href") or "").lstrip("#")))
        if tag in ("a", "span", "strong"):
            self._aside += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("a", "span", "strong"):
            self._aside -= 1

    def handle_data(self, data: str) -> None:
        self.text += data
        if not self._aside:
            self._pending += data


class _Panel(HTMLParser):
    """Citation cards by id, each with its span and its <mark> text (<br> as a newline),
    and the index state of the section shown (the latest answer's)."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.index_version = ""
        self.cards: dict[str, Span] = {}
        self._card: Span | None = None
        self._in_mark = False
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = _classes(attrs)
        card_id = dict(attrs).get("id")
        if "nd-turn" in classes and "hidden" not in dict(attrs):
            self.index_version = dict(attrs).get("data-index-version") or ""
        if "nd-source" in classes and card_id:
            self._card = self.cards[card_id] = _span_attrs(attrs)
        elif tag == "mark" and self._card is not None:
            self._in_mark = True
        elif tag == "br" and self._in_mark and self._card is not None:
            self._card.text += "\n"

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self._in_mark = False

    def handle_data(self, data: str) -> None:
        if self._in_mark and self._card is not None:
            self._card.text += data
