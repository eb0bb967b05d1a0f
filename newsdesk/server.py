"""Finding a running `newsdesk serve`, so a command can ask it instead of starting up.

`newsdesk ask` in a fresh process spends seconds importing the model stack and loading
the model; a server has done that already. `serve` leaves a small record beside the
index it serves (`server.json`: its URL and process id) and removes it when it stops;
a command reads the record, checks the server answers, and otherwise works in-process.
A stale record (the server was killed) costs one refused connection, never a wrong
answer: the record is only a hint, the live server is the authority.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsdesk.errors import NewsdeskError

RECORD = "server.json"
_PROBE_SECONDS = 1.0  # a live server on this machine answers its status in milliseconds


class ServerError(NewsdeskError):
    """The running server refused or failed a request (its message is in the error)."""


@dataclass(frozen=True)
class Server:
    """A running `newsdesk serve` for one index directory."""

    url: str  # e.g. http://127.0.0.1:7860, without a trailing slash
    pid: int
    attribution: str | None = None  # the licence line its demo articles need, if any

    def post(self, path: str, body: dict[str, Any], token: str | None, timeout: float) -> Any:
        """POST JSON to the API and return the decoded reply; a refusal is a ServerError
        with the server's own explanation (the API answers errors as {"detail": …})."""
        request = urllib.request.Request(
            f"{self.url}/v1{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **_auth(token)},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return json.load(reply)
        except urllib.error.HTTPError as exc:
            raise ServerError(f"the server at {self.url} refused: {_detail(exc)}") from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            raise ServerError(f"the server at {self.url} did not answer: {exc}") from exc


def advertise(index_dir: Path, host: str, port: int) -> Path:
    """Record that this process serves `index_dir` on host:port; returns the record's
    path for `withdraw`. Written whole or not at all, so a reader never sees half."""
    reach = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in reach:  # an IPv6 address in a URL goes in brackets
        reach = f"[{reach}]"
    path = index_dir / RECORD
    index_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{RECORD}.{os.getpid()}")
    temporary.write_text(json.dumps({"url": f"http://{reach}:{port}", "pid": os.getpid()}))
    os.replace(temporary, path)
    return path


def withdraw(path: Path) -> None:
    """Remove this process's record (and only its own: a newer server may have replaced it)."""
    found = _read(path)
    if found is not None and found.pid == os.getpid():
        path.unlink(missing_ok=True)


def running(index_dir: Path, token: str | None) -> Server | None:
    """The server that serves `index_dir` with an index in it, if one is up and answers;
    None otherwise (no record, a dead process, a refusal, another index, no index yet)."""
    server = _read(index_dir / RECORD)
    if server is None or not _alive(server.pid):
        return None
    request = urllib.request.Request(f"{server.url}/v1/index/status", headers=_auth(token))
    try:
        with urllib.request.urlopen(request, timeout=_PROBE_SECONDS) as reply:
            status = json.load(reply)
    except (OSError, ValueError):  # refused, timed out, 401 (HTTPError is an OSError)
        return None
    if not status.get("ready") or not _same_dir(status.get("index_dir"), index_dir):
        return None
    return Server(server.url, server.pid, status.get("attribution"))


def _same_dir(served: object, index_dir: Path) -> bool:
    return isinstance(served, str) and Path(served).resolve() == index_dir.resolve()


def _read(path: Path) -> Server | None:
    try:
        record = json.loads(path.read_text())
        return Server(url=str(record["url"]).rstrip("/"), pid=int(record["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.load(error).get("detail")
    except (ValueError, AttributeError, OSError):
        detail = None
    return f"{error.code} {detail if isinstance(detail, str) else error.reason}"
