"""The scripted LLM server, checked over real sockets with stdlib clients and the openai client.

Other tests lean on this double to stand in for a model endpoint, so it has to behave like one
on the wire: if it drifted from what real clients accept, tests built on it would prove nothing.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest

from bench.scripted_llm import Plan, ScriptedLLM

# The scripted OpenAI-compatible server itself, over real HTTP.
pytestmark = [pytest.mark.llm, pytest.mark.server]

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's proxy settings must not route 127.0.0.1 traffic elsewhere."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


# -- stdlib clients ------------------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _port(llm: ScriptedLLM) -> int:
    port = urlsplit(llm.base_url).port
    assert port is not None
    return port


def _ask(question: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m-test", "messages": [{"role": "user", "content": question}], **extra}


def call(
    llm: ScriptedLLM,
    path: str,
    body: dict[str, Any] | bytes | None = None,
    *,
    method: str | None = None,
    timeout: float = 2.0,
) -> tuple[int, dict[str, Any]]:
    """One request through urllib; error statuses come back as values, not exceptions."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    url = llm.base_url.removesuffix("/v1") + path
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def chat(llm: ScriptedLLM, question: str, **extra: Any) -> str:
    status, reply = call(llm, "/v1/chat/completions", _ask(question, **extra))
    assert status == 200, reply
    content = reply["choices"][0]["message"]["content"]
    assert isinstance(content, str)
    return content


def open_stream(
    llm: ScriptedLLM, body: dict[str, Any], timeout: float = 2.0
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", _port(llm), timeout=timeout)
    conn.request(
        "POST",
        "/v1/chat/completions",
        body=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    return conn, conn.getresponse()


def read_events(response: http.client.HTTPResponse) -> tuple[list[Any], BaseException | None]:
    """SSE data payloads in order ("[DONE]" kept as a string) and whatever ended the read.

    Reads with read(), not line by line: http.client's readline() on a chunked body reports a
    truncated stream as a clean end, which would hide exactly the drop these tests look for.
    """
    error: BaseException | None = None
    try:
        raw = response.read()
    except http.client.IncompleteRead as exc:
        raw, error = exc.partial, exc
    except (http.client.HTTPException, OSError) as exc:
        raw, error = b"", exc
    events: list[Any] = []
    for line in raw.decode().splitlines():
        if line.startswith("data: "):
            payload = line.removeprefix("data: ")
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events, error


def stream(llm: ScriptedLLM, question: str, **extra: Any) -> tuple[list[Any], BaseException | None]:
    conn, response = open_stream(llm, _ask(question, stream=True, **extra))
    try:
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/event-stream"
        return read_events(response)
    finally:
        conn.close()


def deltas(events: list[Any]) -> list[str]:
    return [
        e["choices"][0]["delta"]["content"]
        for e in events[1:]
        if isinstance(e, dict) and e["choices"] and "content" in e["choices"][0]["delta"]
    ]


# -- lifecycle -----------------------------------------------------------------------------


def test_base_url_is_loopback_on_a_real_port_and_only_exists_while_running() -> None:
    server = ScriptedLLM()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    assert server.start() is server
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", server.base_url)
        assert _port(server) > 0
    finally:
        server.stop()
    server.stop()  # a second stop is harmless, as fixture teardown after a failure may do
    with pytest.raises(RuntimeError):
        _ = server.base_url


def test_models_lists_the_scripted_model(llm: ScriptedLLM) -> None:
    status, body = call(llm, "/v1/models")
    assert status == 200
    assert body == {
        "object": "list",
        "data": [{"id": "scripted", "object": "model", "owned_by": "tests"}],
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/nothing"), ("POST", "/v1/completions"), ("GET", "/v1/chat/completions")],
)
def test_unknown_routes_get_404_with_an_openai_error(
    llm: ScriptedLLM, method: str, path: str
) -> None:
    body = _ask("hi") if method == "POST" else None
    status, reply = call(llm, path, body, method=method)
    assert status == 404
    assert set(reply["error"]) == {"message", "type", "code"}
    assert reply["error"]["type"] == "not_found_error"
    assert llm.requests == []


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_a_malformed_body_gets_400(llm: ScriptedLLM, raw: bytes) -> None:
    status, reply = call(llm, "/v1/chat/completions", raw, method="POST")
    assert status == 400
    assert reply["error"]["type"] == "invalid_request_error"
    assert reply["error"]["message"]
    assert llm.requests == []


def test_nothing_is_written_to_stderr(llm: ScriptedLLM, capfd: pytest.CaptureFixture[str]) -> None:
    llm.plan(Plan(text="ok"), Plan(status=500), Plan(text="abcd", disconnect_after=1))
    chat(llm, "a")
    call(llm, "/v1/chat/completions", _ask("b"))
    stream(llm, "c")
    call(llm, "/nope")
    call(llm, "/v1/chat/completions", b"{", method="POST")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


# -- replies -------------------------------------------------------------------------------


def test_non_streaming_reply_is_a_standard_chat_completion(llm: ScriptedLLM) -> None:
    llm.plan(Plan(text="Paris is the capital."))
    status, reply = call(llm, "/v1/chat/completions", _ask("Capital of France?"))
    assert status == 200
    assert re.fullmatch(r"chatcmpl-\d+", reply["id"])
    assert reply["object"] == "chat.completion"
    assert isinstance(reply["created"], int)
    assert reply["model"] == "m-test"
    assert reply["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris is the capital."},
            "finish_reason": "stop",
        }
    ]
    usage = reply["usage"]
    assert all(isinstance(usage[k], int) for k in usage)
    assert usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_an_empty_default_queue_answers_with_empty_text(llm: ScriptedLLM) -> None:
    llm.plan(Plan(text="only once"))
    assert chat(llm, "q") == "only once"
    assert chat(llm, "q") == ""
    assert chat(llm, "q") == ""


def test_streaming_reply_reassembles_from_roughly_equal_deltas(llm: ScriptedLLM) -> None:
    text = "The harbour bridge reopens on Monday after repairs."
    llm.plan(Plan(text=text, chunks=4))
    events, error = stream(llm, "When does the bridge reopen?")
    assert error is None
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert {c["model"] for c in chunks} == {"m-test"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    pieces = deltas(events)
    assert "".join(pieces) == text
    assert len(pieces) == 4
    assert max(map(len, pieces)) - min(map(len, pieces)) <= 1
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_streaming_never_sends_empty_content_deltas(llm: ScriptedLLM) -> None:
    llm.plan(Plan(text="ab", chunks=10), Plan(text="", chunks=3))
    first, _ = stream(llm, "q")
    assert deltas(first) == ["a", "b"]
    second, _ = stream(llm, "q")
    assert deltas(second) == []
    assert second[-1] == "[DONE]"


def test_stream_options_include_usage_adds_a_usage_chunk(llm: ScriptedLLM) -> None:
    llm.plan(Plan(text="three little words"))
    events, _ = stream(llm, "q", stream_options={"include_usage": True})
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 3


def test_when_routes_by_last_user_message_and_reuses_its_last_plan(llm: ScriptedLLM) -> None:
    llm.plan(Plan(text="d1"), Plan(text="d2"))
    llm.plan(Plan(text="w1"), Plan(text="w2"), when="weather")
    assert chat(llm, "What's the weather?") == "w1"
    assert chat(llm, "hello") == "d1"
    assert chat(llm, "weather again") == "w2"
    assert chat(llm, "weather, once more") == "w2"
    # Only the last user message counts, not earlier turns or the system prompt.
    history = [
        {"role": "system", "content": "You know the weather."},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "Sunny."},
        {"role": "user", "content": "and tomorrow?"},
    ]
    status, reply = call(llm, "/v1/chat/completions", {"model": "m", "messages": history})
    assert status == 200
    assert reply["choices"][0]["message"]["content"] == "d2"
    parts = [{"type": "text", "text": "the weather in parts"}]
    status, reply = call(
        llm,
        "/v1/chat/completions",
        {"model": "m", "messages": [{"role": "user", "content": parts}]},
    )
    assert reply["choices"][0]["message"]["content"] == "w2"
    assert chat(llm, "bye") == ""


def test_requests_are_recorded_in_order(llm: ScriptedLLM) -> None:
    first = _ask("one", temperature=0.1, max_tokens=5)
    second = _ask("two", stream=True, stream_options={"include_usage": True})
    call(llm, "/v1/chat/completions", first)
    stream(llm, "two", stream_options={"include_usage": True})
    assert llm.requests == [first, second]


def test_concurrent_requests_are_all_answered_and_recorded(llm: ScriptedLLM) -> None:
    llm.plan(*(Plan(text=f"r{i}", delay=0.05) for i in range(8)))
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: chat(llm, f"q{i}"), range(8)))
    assert sorted(answers) == sorted(f"r{i}" for i in range(8))
    assert sorted(r["messages"][0]["content"] for r in llm.requests) == [f"q{i}" for i in range(8)]


# -- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
def test_error_status_replies_with_an_openai_error_body(llm: ScriptedLLM, streamed: bool) -> None:
    llm.plan(Plan(text="the model is overloaded", status=500), Plan(status=429))
    status, reply = call(llm, "/v1/chat/completions", _ask("q", stream=streamed))
    assert status == 500
    assert reply["error"]["message"] == "the model is overloaded"
    assert reply["error"]["type"] == "server_error"
    assert "code" in reply["error"]
    status, reply = call(llm, "/v1/chat/completions", _ask("q"))
    assert status == 429
    assert reply["error"]["type"] == "rate_limit_error"
    assert reply["error"]["message"]


def test_delay_provokes_a_client_timeout(llm: ScriptedLLM) -> None:
    llm.plan(Plan(text="too late", delay=1.0))
    started = time.monotonic()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        call(llm, "/v1/chat/completions", _ask("q"), timeout=0.3)
    assert time.monotonic() - started < 0.9


@pytest.mark.parametrize(("after", "expected"), [(0, []), (2, ["ab", "cd"]), (9, list("abcd"))])
def test_disconnect_cuts_the_stream_without_done(
    llm: ScriptedLLM, after: int, expected: list[str]
) -> None:
    text = "abcd" if after == 9 else "abcdefgh"
    llm.plan(Plan(text=text, chunks=4, disconnect_after=after))
    events, error = stream(llm, "q")
    assert isinstance(error, http.client.IncompleteRead)
    assert "[DONE]" not in events
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert deltas(events) == expected
    assert all(e["choices"][0]["finish_reason"] is None for e in events)


def test_stop_while_a_client_is_mid_stream_does_not_hang() -> None:
    server = ScriptedLLM().start()
    # Far more than the socket buffers hold, so the handler is stuck writing when stop() comes.
    server.plan(Plan(text="x" * 24_000_000, chunks=48))
    conn, response = open_stream(server, _ask("q", stream=True))
    try:
        assert response.readline().startswith(b"data: ")
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.0
        events, error = read_events(response)
        assert error is not None
        assert "[DONE]" not in events
    finally:
        conn.close()


def test_stop_during_a_delay_does_not_wait_it_out() -> None:
    server = ScriptedLLM().start()
    server.plan(Plan(text="late", delay=5.0))
    outcome: list[BaseException | tuple[int, dict[str, Any]]] = []

    def client() -> None:
        try:
            outcome.append(call(server, "/v1/chat/completions", _ask("q"), timeout=3.0))
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 2.0
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    thread.join(timeout=2.0)
    assert time.monotonic() - started < 1.0
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], BaseException)


# -- the real openai client ----------------------------------------------------------------


@pytest.fixture
def openai_client(llm: ScriptedLLM) -> Iterator[Any]:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0, timeout=2.0)
    try:
        yield client
    finally:
        client.close()


def test_openai_non_streaming(llm: ScriptedLLM, openai_client: Any) -> None:
    llm.plan(Plan(text="Paris."))
    completion = openai_client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "Capital of France?"}],
        temperature=0,
        max_tokens=20,
    )
    assert completion.choices[0].message.content == "Paris."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-test"
    assert completion.usage.total_tokens > 0
    assert llm.requests[0]["temperature"] == 0
    assert llm.requests[0]["max_tokens"] == 20


def test_openai_streaming_reassembles(llm: ScriptedLLM, openai_client: Any) -> None:
    text = "The bridge reopens on Monday."
    llm.plan(Plan(text=text, chunks=5))
    chunks = list(
        openai_client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "bridge?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage is not None


def test_openai_when_routing(llm: ScriptedLLM, openai_client: Any) -> None:
    llm.plan(Plan(text="default"))
    llm.plan(Plan(text="routed"), when="bridge")

    def ask(question: str) -> Any:
        return openai_client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": question}]
        )

    assert ask("is the bridge open?").choices[0].message.content == "routed"
    assert ask("is the bridge still open?").choices[0].message.content == "routed"
    assert ask("anything else?").choices[0].message.content == "default"


def test_openai_sees_error_status(llm: ScriptedLLM, openai_client: Any) -> None:
    openai = pytest.importorskip("openai")
    llm.plan(Plan(text="upstream exploded", status=500))
    with pytest.raises(openai.InternalServerError) as caught:
        openai_client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "q"}]
        )
    assert caught.value.status_code == 500
    assert "upstream exploded" in caught.value.message
    assert caught.value.type == "server_error"
    assert len(llm.requests) == 1  # max_retries=0: one attempt only


def test_openai_times_out(llm: ScriptedLLM, openai_client: Any) -> None:
    openai = pytest.importorskip("openai")
    llm.plan(Plan(text="late", delay=1.0))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        openai_client.with_options(timeout=0.3).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "q"}]
        )
    assert time.monotonic() - started < 0.9


def test_openai_sees_a_dropped_stream_as_an_error(llm: ScriptedLLM, openai_client: Any) -> None:
    openai = pytest.importorskip("openai")
    httpx = pytest.importorskip("httpx")
    llm.plan(Plan(text="abcdefgh", chunks=4, disconnect_after=2))
    received: list[str] = []
    with pytest.raises((openai.APIError, httpx.HTTPError)):
        for chunk in openai_client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "q"}], stream=True
        ):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "abcd"


def test_openai_models_and_missing_routes(openai_client: Any) -> None:
    openai = pytest.importorskip("openai")
    assert [m.id for m in openai_client.models.list()] == ["scripted"]
    with pytest.raises(openai.NotFoundError):
        openai_client.completions.create(model="m", prompt="legacy endpoint")
