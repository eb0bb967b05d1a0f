"""The chat server under bad requests, over HTTP: each one refused (or handled) with a
clear message, nothing written where it should not be, and the next ordinary
question answered correctly.

The server is a real `newsdesk chat` over a copy of the demo index, with uploads
limited to 1 MB (NEWSDESK_CHAT__MAX_UPLOAD_MB=1). Requests are crafted by hand
(multipart bodies with hostile file names, Gradio's `/gradio_api/call/...` events),
since a well-behaved client would not send them.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from index.db import IndexDB
from index.demo import DEMO_QUESTION
from tests.chat_server import (
    DEMO_ARTICLE,
    Server,
    api_client,
    ask,
    citation_problems,
    live_articles,
    reply_of,
    start_chat,
    stop,
)

# A real `newsdesk chat` process over HTTP.
pytestmark = [pytest.mark.process, pytest.mark.server]

LIMIT_BYTES = 1_000_000  # NEWSDESK_CHAT__MAX_UPLOAD_MB=1: decimal megabytes


@pytest.fixture(scope="module")
def chat(demo_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("requests")
    shutil.copytree(demo_index, base / "ix")
    server = start_chat(base / "ix", base / "chat.log", env={"NEWSDESK_CHAT__MAX_UPLOAD_MB": "1"})
    yield server
    stop(server)


def record(article_id: str, text: str) -> bytes:
    line = {"id": article_id, "title": article_id.title(), "date": "2024-05-01", "text": text}
    return (json.dumps(line) + "\n").encode()


def upload(server: Server, filename: str, data: bytes) -> httpx.Response:
    """POST one file to Gradio's upload route, the file name sent exactly as given."""
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return httpx.post(
        f"{server.url}gradio_api/upload",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=60,
    )


def uploaded(server: Server, filename: str, data: bytes) -> str:
    response = upload(server, filename, data)
    assert response.status_code == 200, response.text
    [path] = response.json()
    assert isinstance(path, str)
    return path


def call(server: Server, api: str, data: list[Any]) -> tuple[str, Any]:
    """Run a named event as the page would, to the end: ("complete", outputs) or
    ("error", the message Gradio shows)."""
    base = f"{server.url}gradio_api/call/{api}"
    started = httpx.post(base, json={"data": data}, timeout=60)
    assert started.status_code == 200, started.text
    event_id = started.json()["event_id"]
    last = ("", None)
    with httpx.stream("GET", f"{base}/{event_id}", timeout=300) as stream:
        event = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event in ("complete", "error"):
                last = (event, json.loads(line.removeprefix("data: ")))
    return last


def add_files(server: Server, *paths: str) -> tuple[str, Any]:
    files = [{"path": p, "meta": {"_type": "gradio.FileData"}} for p in paths]
    return call(server, "add_files", [files])


class _Text(HTMLParser):
    text = ""

    def handle_data(self, data: str) -> None:
        self.text += data + " "


def report_text(outputs: Any) -> str:
    """The add-files report (its one output) as plain text."""
    parser = _Text(convert_charrefs=True)
    parser.feed(outputs[0])
    return " ".join(parser.text.split())


def assert_still_answers(server: Server) -> None:
    client = api_client(server)
    try:
        reply = ask(client, DEMO_QUESTION)
    finally:
        client.close()
    state, articles = live_articles(server.index_dir)
    assert reply.kind == "answer", reply.text
    assert reply.index_version == state
    assert reply.quotes and reply.quotes[0].article == DEMO_ARTICLE
    assert citation_problems(reply, articles) == []


def manifest_bytes(server: Server) -> str | None:
    """Names the live index state: a write that changed anything switches it."""
    return IndexDB(server.index_dir).version()


def uploads_of(server: Server) -> set[str]:
    folder = server.index_dir / "uploads"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_an_oversized_upload_is_refused_naming_the_limit(chat: Server) -> None:
    before, stored = manifest_bytes(chat), uploads_of(chat)
    # Over 1 MB but under 1 MiB: the limit is the megabytes the setting says.
    text = "The ferry timetable was printed again. " * 26_000
    data = record("huge", text)
    assert LIMIT_BYTES < len(data) < 1_048_576
    response = upload(chat, "huge.jsonl", data)
    assert response.status_code == 413
    assert f"maximum allowed size of {LIMIT_BYTES} bytes" in response.text
    assert manifest_bytes(chat) == before
    assert uploads_of(chat) == stored
    # Gradio streams an upload to a temporary file in its folder (DIR/.gradio) first.
    big = [
        p
        for folder in (".gradio", "uploads")
        for p in (chat.index_dir / folder).rglob("*")
        if p.is_file() and (p.stat().st_size >= LIMIT_BYTES or "huge" in p.name)
    ]
    assert big == [], "the refused upload left a file behind"
    assert_still_answers(chat)


@pytest.mark.parametrize(
    ("filename", "name", "stored_as"),
    [
        ("../../evil.jsonl", "evil", "evil.jsonl"),
        ("/tmp/../../abs.jsonl", "abs", "abs.jsonl"),
        # Gradio keeps "....x.jsonl" (backslashes dropped), a dot-file it will not hand on.
        ("..\\..\\x.jsonl", "x", None),
    ],
)
def test_a_path_in_the_file_name_stays_inside_the_uploads_folder(
    chat: Server, filename: str, name: str, stored_as: str | None
) -> None:
    before, stored = manifest_bytes(chat), uploads_of(chat)
    article_id = f"traversal-{name}"
    path = uploaded(chat, filename, record(article_id, f"The {article_id} lamp was lit."))
    assert Path(path).resolve().is_relative_to(chat.index_dir.resolve() / ".gradio")
    event, outputs = add_files(chat, path)
    if stored_as is None:
        assert event == "error"
        assert "cannot be moved to the cache for security reasons" in outputs["error"]
        assert (manifest_bytes(chat), uploads_of(chat)) == (before, stored)
    else:
        assert event == "complete", outputs
        report = report_text(outputs)
        assert f"stored: {stored_as}" in report and "1 added" in report
        assert uploads_of(chat) == {*stored, stored_as}
        assert article_id in live_articles(chat.index_dir)[1]
    root = chat.index_dir.parent  # this module's folder; the chat runs in it
    allowed = [(chat.index_dir / d).resolve() for d in ("uploads", ".gradio")]
    written = [p for p in root.rglob(f"*{name}.jsonl") if p.is_file()]
    assert all(any(p.resolve().is_relative_to(a) for a in allowed) for p in written), written
    for folder in (root.parent, root.parent.parent):  # where "../../" would lead
        assert not list(folder.glob(f"*{name}.jsonl"))
    assert_still_answers(chat)


def test_a_file_the_client_did_not_upload_is_refused(chat: Server) -> None:
    before, stored = manifest_bytes(chat), uploads_of(chat)
    for path in ("/etc/hostname", str(chat.index_dir / "index.sqlite"), "chat.log"):
        event, message = add_files(chat, path)
        assert event == "error"
        assert "not uploaded by a user" in str(message), message
    assert manifest_bytes(chat) == before
    assert uploads_of(chat) == stored
    assert_still_answers(chat)


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        (
            "latin.jsonl",
            '{"id": "café", "text": "The café served crème brûlée."}\n'.encode("latin-1"),
        ),
        ("wide.txt", "Harbour notes\n\nThe café opened on Monday.".encode("utf-16")),
    ],
)
def test_a_file_not_in_utf8_is_named_and_changes_nothing(
    chat: Server, filename: str, data: bytes
) -> None:
    before = manifest_bytes(chat)
    event, outputs = add_files(chat, uploaded(chat, filename, data))
    assert event == "complete", outputs
    report = report_text(outputs)
    assert f"uploads/{filename}: not valid UTF-8" in report, report
    assert "save it as UTF-8" in report and "0 added" in report
    assert manifest_bytes(chat) == before
    assert_still_answers(chat)


def test_a_100_kb_question_gets_a_message_not_an_answer(chat: Server) -> None:
    before = manifest_bytes(chat)
    question = "Why " + "did the harbour bridge close and " * 3200 + "when?"
    assert len(question) > 100_000
    client = api_client(chat)
    try:
        began = time.monotonic()
        result = client.predict(question, [], [], "", "", api_name="/ask")
        seconds = time.monotonic() - began
    finally:
        client.close()
    reply = reply_of(result)
    assert reply.kind == "error"
    assert f"{len(question):,} characters" in reply.text
    assert "up to 2,000 (chat.max_question_chars)" in reply.text
    assert len(json.dumps(result[0])) < 2000  # the chat shows the start of it, not all
    assert seconds < 10
    assert manifest_bytes(chat) == before
    assert_still_answers(chat)
