"""`newsdesk serve`'s HTTP API over real HTTP: a uvicorn server on 127.0.0.1 (in a
thread, over one small index built with the bundled model), driven with httpx and the
`openai` client; every citation checked against the article texts of the index."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from index.build import Indexer
from index.embed import Embedder
from newsdesk.settings import load_settings
from rag.types import Answer
from tests.chat_server import NEWSDESK, free_port, live_articles
from tests.conftest import NEWS, make_settings, write_jsonl
from ui.api import create_app
from ui.cli import is_loopback
from ui.service import ChatService

TOKEN = "test-token-5f3a9c"
QUESTION = "Why is the harbour bridge closing?"
TUNNEL = {
    "id": "tunnel",
    "title": "Rail tunnel opens under the river",
    "date": "2024-05-06",
    "source": "Coast Times",
    "text": "The new rail tunnel under the river opened to passengers on Friday morning.",
}


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` on a free loopback port in a thread; its base url until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the API server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def gradio_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        patch.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        yield


@pytest.fixture(scope="module")
def url(service: ChatService, gradio_env: None) -> Iterator[str]:
    """The API with no token (loopback), the chat mounted at /."""
    with serving(create_app(service, token=None)) as base:
        yield base


@pytest.fixture(scope="module")
def locked_url(service: ChatService, gradio_env: None) -> Iterator[str]:
    """The same, with a token: API calls need it, the chat asks for it."""
    with serving(create_app(service, token=TOKEN)) as base:
        yield base


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=120) as client:
        yield client


def exact(citations: list[dict[str, Any]], index_dir: Path) -> None:
    """Every citation (and each copy it names) is its article's text[start:end]."""
    _, articles = live_articles(index_dir)
    assert citations
    for citation in citations:
        for quote in [citation, *citation.get("also", [])]:
            text = articles[quote["article_id"]].text
            assert text[quote["start"] : quote["end"]] == quote["text"], quote


@pytest.mark.server
def test_ask_returns_the_answer_record(http: httpx.Client, service: ChatService) -> None:
    reply = http.post("/v1/ask", json={"question": QUESTION})
    assert reply.status_code == 200, reply.text
    answer = Answer.model_validate_json(reply.text)  # the record `newsdesk ask --json` prints
    assert not answer.abstained and answer.citations[0].article_id == "harbour"
    exact(reply.json()["citations"], service.index_dir)
    direct = service.ask(QUESTION, [], None)
    assert answer.model_dump(exclude={"timings_ms"}) == direct.model_dump(exclude={"timings_ms"})


@pytest.mark.server
def test_ask_takes_the_cli_filters_and_history(http: httpx.Client) -> None:
    only = {"question": QUESTION, "sources": ["Valley Post"], "since": "2023-01-01"}
    filtered = http.post("/v1/ask", json=only).json()
    assert filtered["retrieved"] and {p["article_id"] for p in filtered["retrieved"]} == {"orchard"}
    followup = {"question": "Who runs the ferries?", "history": [QUESTION]}
    assert http.post("/v1/ask", json=followup).status_code == 200


@pytest.mark.server
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "question"),
        ({"question": "   "}, "question"),
        ({"question": QUESTION, "as_of": "March 2024"}, "as_of"),
        ({"question": QUESTION, "sorces": ["x"]}, "sorces"),
        ({"question": "why " * 1000}, "question"),
    ],
)
def test_bad_asks_get_422_naming_the_field(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    reply = http.post("/v1/ask", json=body)
    assert reply.status_code == 422, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == [field]
    assert reply.json()["detail"].startswith(f"{field}: ")


@pytest.mark.server
def test_article_span_and_paragraph(http: httpx.Client, service: ChatService) -> None:
    answer = http.post("/v1/ask", json={"question": QUESTION}).json()
    citation = answer["citations"][0]
    whole = http.get(f"/v1/articles/{citation['article_id']}").json()
    assert whole["text"] == NEWS[0]["text"] and whole["index_version"] == answer["index_version"]
    start, end = citation["start"], citation["end"]
    found = http.get(f"/v1/articles/{citation['article_id']}", params={"start": start, "end": end})
    assert found.status_code == 200, found.text
    span, paragraph = found.json()["span"], found.json()["paragraph"]
    assert span == {"start": start, "end": end, "text": citation["text"]}
    text = whole["text"]
    assert text[paragraph["start"] : paragraph["end"]] == paragraph["text"]
    assert paragraph["start"] <= start < end <= paragraph["end"]
    assert "\n" not in paragraph["text"] and found.json()["text"] is None


@pytest.mark.server
def test_article_errors(http: httpx.Client) -> None:
    missing = http.get("/v1/articles/no-such-article")
    assert missing.status_code == 404 and "no-such-article" in missing.json()["detail"]
    for params, field in [
        ({"start": 3}, "end"),
        ({"start": 0, "end": 10_000}, "end"),
        ({"start": 9, "end": 9}, "end"),
        ({"start": -1, "end": 4}, "start"),
    ]:
        reply = http.get("/v1/articles/harbour", params=params)
        assert reply.status_code == 422, (params, reply.text)
        assert reply.json()["errors"][0]["field"] == field


@pytest.mark.server
def test_status_and_update(http: httpx.Client, service: ChatService, tmp_path: Path) -> None:
    before = http.get("/v1/index/status").json()
    assert before["ready"] and before["status"]["articles"] >= len(NEWS)
    more = write_jsonl(tmp_path / "more.jsonl", [TUNNEL])
    missing = http.post("/v1/index/update", json={"paths": [str(more), "nowhere.jsonl"]})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "paths.1"
    with service._write_lock():  # another write is running
        busy = http.post("/v1/index/update", json={"paths": [str(more)]})
    assert busy.status_code == 409 and "already running" in busy.json()["detail"]
    done = http.post("/v1/index/update", json={"paths": [str(more)]})
    assert done.status_code == 200, done.text
    assert done.json()["added"] == 1 and done.json()["problems"] == []
    after = http.get("/v1/index/status").json()
    assert after["status"]["articles"] == before["status"]["articles"] + 1
    assert after["index_version"] == done.json()["index_version"] != before["index_version"]
    answer = http.post("/v1/ask", json={"question": "When did the rail tunnel open?"}).json()
    assert answer["citations"][0]["article_id"] == "tunnel"
    assert answer["index_version"] == after["index_version"]
    exact(answer["citations"], service.index_dir)


@pytest.mark.server
def test_openai_client_gets_the_cited_answer(url: str, service: ChatService) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    messages: Any = [
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": QUESTION},
    ]
    completion = client.chat.completions.create(model="newsdesk", messages=messages)
    content = completion.choices[0].message.content or ""
    citations = (completion.model_extra or {})["citations"]
    exact(citations, service.index_dir)
    assert content.startswith("The harbour bridge") and "[1]" in content
    for citation in citations:  # each quote verbatim, with its span
        start, end = citation["start"], citation["end"]
        assert f"“{citation['text']}” (article harbour, characters {start}-{end})" in content
    assert [m.id for m in client.models.list()] == ["newsdesk"]
    stream = client.chat.completions.create(model="newsdesk", messages=messages, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == content
    assert (chunks[-1].model_extra or {})["citations"] == citations


@pytest.mark.server
def test_streaming_is_sse_ending_with_done(http: httpx.Client, service: ChatService) -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}]}
    plain = http.post("/v1/chat/completions", json=body).json()
    with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = [line for line in reply.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["citations"] == plain["citations"]
    exact(chunks[-1]["citations"], service.index_dir)


@pytest.mark.server
def test_chat_completions_needs_a_user_message(http: httpx.Client) -> None:
    too_long = {"messages": [{"role": "user", "content": "why " * 1000}]}
    for body in [
        {"messages": [{"role": "system", "content": "hi"}]},
        {"messages": []},
        {},
        too_long,
    ]:
        reply = http.post("/v1/chat/completions", json=body)
        assert reply.status_code == 422, reply.text
        assert reply.json()["errors"][0]["field"] == "messages"


@pytest.mark.server
def test_docs_and_the_chat_share_the_port(http: httpx.Client) -> None:
    assert http.get("/docs").status_code == 200
    paths = http.get("/openapi.json").json()["paths"]
    for path in ["/v1/ask", "/v1/articles/{article_id}", "/v1/index/status", "/v1/index/update"]:
        assert path in paths
    assert "/v1/chat/completions" in paths
    page = http.get("/")
    assert page.status_code == 200 and "gradio" in page.text.lower()


@pytest.mark.server
def test_a_token_is_required_once_set(locked_url: str, service: ChatService) -> None:
    with httpx.Client(base_url=locked_url, timeout=120) as http:
        assert http.get("/v1/index/status").status_code == 401
        wrong = http.get("/v1/index/status", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        right = {"Authorization": f"Bearer {TOKEN}"}
        assert http.get("/v1/index/status", headers=right).status_code == 200
        assert http.post("/v1/ask", json={"question": QUESTION}).status_code == 401
        asked = http.post("/v1/ask", json={"question": QUESTION}, headers=right)
        assert asked.status_code == 200 and TOKEN not in asked.text
    with httpx.Client(base_url=locked_url, timeout=120) as browser:  # the chat: a login
        assert browser.get("/config").status_code == 401
        refused = browser.post("/login", data={"username": "me", "password": "nope"})
        assert refused.status_code >= 400 and browser.get("/config").status_code == 401
        login = browser.post("/login", data={"username": "me", "password": TOKEN})
        assert login.status_code == 200, login.text
        assert "components" in browser.get("/config").json()
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{locked_url}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        *[("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True)],
        *[("0.0.0.0", False), ("192.168.1.5", False), ("::", False), ("example.org", False)],
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.process
@pytest.mark.parametrize("command", ["serve", "chat"])
def test_no_listening_beyond_loopback_without_a_token(command: str, tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "NEWSDESK_TOKEN"}
    done = subprocess.run(
        [*NEWSDESK, command, "--host", "0.0.0.0", "--index-dir", str(tmp_path / "ix")],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )
    assert done.returncode == 1
    assert "0.0.0.0" in done.stderr and "NEWSDESK_TOKEN" in done.stderr
    assert not (tmp_path / "ix").exists()


@pytest.mark.server
@pytest.mark.process
@pytest.mark.slow
def test_serve_command_serves_the_api_with_the_env_token(
    embedder: Embedder, tmp_path: Path
) -> None:
    """The command itself, in its own process over its own index (Chroma's embedded
    store is not shared between processes)."""
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, embedder).build([write_jsonl(tmp_path / "news.jsonl", NEWS)])
    port = free_port()
    log = tmp_path / "serve.log"
    environ = {**os.environ, "NEWSDESK_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    command = [*NEWSDESK, "serve", "--index-dir", str(settings.index_dir), "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environ)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                status = httpx.get(f"{base}/v1/index/status", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert status.status_code == 401
        headers = {"Authorization": f"Bearer {TOKEN}"}
        asked = httpx.post(f"{base}/v1/ask", json={"question": QUESTION}, headers=headers)
        assert asked.status_code == 200, asked.text
        exact(asked.json()["citations"], settings.index_dir)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert TOKEN not in log.read_text()


def test_the_token_comes_from_the_env_and_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSDESK_TOKEN", TOKEN)
    settings = load_settings()
    assert settings.chat.token is not None and settings.chat.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in settings.model_dump_json()
    monkeypatch.setenv("NEWSDESK_CHAT__TOKEN", "nested-wins")
    assert load_settings().chat.token.get_secret_value() == "nested-wins"  # type: ignore[union-attr]
