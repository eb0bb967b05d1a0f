"""A scripted OpenAI-compatible chat-completions server, for the tests and bench/llm_eval.py.

Tests that exercise an LLM client need a real socket to talk to: mocking the client hides the
very failures worth testing (timeouts, error statuses, streams cut off halfway). This module
serves canned replies over real HTTP on 127.0.0.1, using only the standard library so it works
wherever the test suite does. It lives here, not in tests/, because the LLM benchmark runs
its scripted policy on it too, and a benchmark must not depend on the test suite.

Streamed replies use HTTP/1.1 chunked framing, as the real API does. That is what lets a
`disconnect_after` reply look like a dropped connection to the client (an incomplete chunked
body is an error) rather than like a short but complete stream.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["Plan", "ScriptedLLM"]

_ERROR_KINDS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("not_found_error", "not_found"),
    408: ("timeout_error", "timeout"),
    409: ("conflict_error", "conflict"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}

# Socket errors that only mean the client went away (or stop() cut it off); nothing to report.
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


@dataclass
class Plan:
    """One planned reply."""

    text: str = ""
    """The assistant message content; for an error status, the error message (if non-empty)."""
    chunks: int = 4
    """When streamed, split `text` into about this many deltas, so clients must reassemble."""
    status: int = 200
    """Anything but 200 replies with this status and an OpenAI-style error body instead."""
    delay: float = 0.0
    """Seconds to wait before replying, to provoke client timeouts."""
    disconnect_after: int | None = None
    """When streamed, drop the connection after this many content deltas, with no [DONE]."""


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind, code = _ERROR_KINDS.get(status, ("server_error" if status >= 500 else "api_error", ""))
    return {"error": {"message": message, "type": kind, "code": code or f"http_{status}"}}


def _split(text: str, pieces: int) -> list[str]:
    """Roughly equal pieces, never empty ones: an empty delta would not exercise reassembly."""
    if not text:
        return []
    count = max(1, min(pieces, len(text)))
    size, extra = divmod(len(text), count)
    out: list[str] = []
    start = 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def _content_text(content: Any) -> str:
    """Message content is either a string or a list of typed parts; only the text matters here."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _rough_tokens(text: str) -> int:
    """Word count: clients only need plausible integers, not a real tokenizer's numbers."""
    return len(text.split())


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck on a slow client must never keep the process alive

    def __init__(self, llm: ScriptedLLM) -> None:
        self.llm = llm
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay silent: tests assert on what clients see, and stray tracebacks only add noise."""


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so streams can use chunked framing; every response still says Connection: close.
    protocol_version = "HTTP/1.1"
    server_version = "ScriptedLLM/1"

    @property
    def llm(self) -> ScriptedLLM:
        assert isinstance(self.server, _Server)
        return self.server.llm

    def setup(self) -> None:
        super().setup()
        self.llm._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.llm._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Never write to stderr: it would interleave with pytest's own output."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests rejected by http.server itself still get an OpenAI-style body."""
        if self.command == "HEAD" or code < 200 or code in (204, 304):
            super().send_error(code, message, explain)  # these must not carry a body
            return
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._send_json(code, _error_body(code, message or explain or "bad request"))

    # -- routing ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        if self._path() == "/v1/models":
            models = [{"id": "scripted", "object": "model", "owned_by": "tests"}]
            self._send_json(200, {"object": "list", "data": models})
        else:
            self._not_found()

    def do_POST(self) -> None:
        if self._path() != "/v1/chat/completions":
            self._drain_body()
            self._not_found()
            return
        try:
            self._chat_completions()
        except _GONE:
            self.close_connection = True
        except Exception as exc:  # surface bugs in the double to the client, not to stderr
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._send_json(500, _error_body(500, f"scripted server bug: {exc!r}"))

    def _not_found(self) -> None:
        self._send_json(404, _error_body(404, f"no route for {self.command} {self.path}"))

    def _unrouted(self) -> None:
        self._drain_body()
        self._not_found()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _unrouted

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    # -- chat completions ------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return None
        if length < 0:
            return None
        return self.rfile.read(length)

    def _drain_body(self) -> None:
        """Read what the client sent so closing the socket does not turn into a reset."""
        with contextlib.suppress(OSError):
            self._read_body()

    def _chat_completions(self) -> None:
        raw = self._read_body()
        if raw is None:
            self._send_json(400, _error_body(400, "a Content-Length header is required"))
            return
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._send_json(400, _error_body(400, f"could not parse the JSON body: {exc}"))
            return
        if not isinstance(body, dict):
            self._send_json(400, _error_body(400, "the JSON body must be an object"))
            return
        llm = self.llm
        llm._record(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._send_json(400, _error_body(400, "'messages' must be a non-empty list"))
            return

        plan = llm._next_plan(_last_user_text(messages))
        if plan.delay > 0 and llm._stopping.wait(plan.delay):
            self.close_connection = True  # stopping: leave without a reply
            return
        if plan.status != 200:
            message = plan.text or f"scripted error (HTTP {plan.status})"
            self._send_json(plan.status, _error_body(plan.status, message))
            return

        model = str(body.get("model") or "scripted")
        reply_id = f"chatcmpl-{llm._next_id()}"
        prompt_tokens = sum(
            _rough_tokens(_content_text(m.get("content"))) for m in messages if isinstance(m, dict)
        )
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": _rough_tokens(plan.text),
            "total_tokens": prompt_tokens + _rough_tokens(plan.text),
        }
        if body.get("stream") is True:
            options = body.get("stream_options")
            with_usage = isinstance(options, dict) and options.get("include_usage") is True
            self._stream(plan, reply_id, model, usage if with_usage else None)
            return
        self._send_json(
            200,
            {
                "id": reply_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": plan.text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
        )

    def _stream(self, plan: Plan, reply_id: str, model: str, usage: dict[str, int] | None) -> None:
        created = int(time.time())
        stopping = self.llm._stopping

        def chunk(delta: dict[str, str], finish: str | None) -> dict[str, Any]:
            return {
                "id": reply_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()

        self._event(chunk({"role": "assistant", "content": ""}, None))
        for sent, piece in enumerate(_split(plan.text, plan.chunks)):
            if stopping.is_set():
                return
            if plan.disconnect_after is not None and sent >= plan.disconnect_after:
                self._drop()
                return
            self._event(chunk({"content": piece}, None))
        if plan.disconnect_after is not None:
            self._drop()  # asked to cut off after at least as many deltas as there are
            return
        self._event(chunk({}, "stop"))
        if usage is not None:
            self._event({**chunk({}, None), "choices": [], "usage": usage})
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")  # the terminating zero-length chunk

    def _event(self, payload: dict[str, Any]) -> None:
        self._write_chunk(b"data: " + json.dumps(payload).encode("utf-8") + b"\n\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _drop(self) -> None:
        """Cut the connection mid-body, the way a crashed upstream or a proxy timeout does."""
        self.close_connection = True
        try:
            self.wfile.flush()
            # No terminating chunk and no [DONE]; socketserver closes the socket right after.
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class ScriptedLLM:
    """An OpenAI-compatible endpoint that answers from a script instead of a model.

    Usable as a context manager or from a pytest fixture (`with ScriptedLLM() as llm: yield llm`).
    """

    def __init__(self, responder: Callable[[str], Plan] | None = None) -> None:
        """`responder`, given the last user message, makes a reply when no queued plan
        applies: a scripted policy for runs of many questions (bench, eval)."""
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._default: deque[Plan] = deque()
        self._routed: dict[str, deque[Plan]] = {}
        self._ids = 0
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ScriptedLLM:
        """Bind to a free port now, so base_url is known before any client is built."""
        if self._server is not None:
            raise RuntimeError("ScriptedLLM is already running")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # keeps stop() quick
            name="scripted-llm",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop even with clients mid-stream: their sockets are cut so neither side waits."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # wakes a handler blocked on a slow client
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as `base_url`; the port only exists once started."""
        if self._server is None:
            raise RuntimeError("ScriptedLLM is not running; call start() first")
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/v1"

    def plan(self, *plans: Plan, when: str | None = None) -> None:
        """Queue replies, optionally only for questions mentioning `when`.

        Routed replies let one script serve several questions asked in any order. The last
        routed reply is kept rather than used up, so asking the same question again (a retry,
        a second run) gets the same answer instead of silently falling to the default queue.
        The default queue is used up; once empty it answers with an empty message.
        """
        with self._lock:
            if when is None:
                self._default.extend(plans)
            else:
                self._routed.setdefault(when, deque()).extend(plans)

    # -- used by the handler ---------------------------------------------------------------

    def _next_plan(self, question: str) -> Plan:
        with self._lock:
            for needle, queue in self._routed.items():
                if queue and needle in question:
                    return queue.popleft() if len(queue) > 1 else queue[0]
            if self._default:
                return self._default.popleft()
        return self.responder(question) if self.responder is not None else Plan(text="")

    def _record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)

    def _next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)
