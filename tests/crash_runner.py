"""Runs `newsdesk` commands for the crash test, each in a child forked from this process.

The crash test runs the CLI dozens of times. A fresh interpreter spends about six
seconds importing torch, transformers and Chroma before it does anything; this
process imports them once, starts no threads, and forks a child per command, so
each run starts at the CLI's entry point. The child is a separate process running
the real command (real model, real Chroma, real files) and dies by a real SIGKILL.

Protocol: one JSON object per line on stdin, {"argv": [...], "out": path,
"err": path, "kill_at": n or null, "events": path or null}; for each, this prints {"pid": n}
when the child started and {"status": n} when it ended (-9 for a SIGKILL).

Kill points: in the child, the functions that write an index (below) report an
event before and after each call; with `kill_at` n, the child SIGKILLs itself at
event n, and with `events` it appends every event's name to that file, so a test
can first record a run's events and then kill at points spread over all of them.
The slab of chunks embedded per step is made small so that a small collection
still goes through many Chroma writes and sentence-vector appends.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import chromadb  # noqa: F401 (imported before forking)
import sentence_transformers  # noqa: F401
import torch  # noqa: F401

import index.build
import index.db
import index.postings
import index.store
import index.update
import index.vectors
import index.write
import newsdesk.cli
import rag.cli  # noqa: F401

SLAB = 16
WRITERS: list[tuple[Any, str]] = [
    (index.store.ChunkStore, "create"),
    (index.store.ChunkStore, "add"),
    (index.store.ChunkStore, "delete"),
    (index.vectors.VectorFile, "append"),
    (index.vectors.VectorFile, "sync"),
    (index.postings.Segment, "save"),
    (index.db.IndexDB, "commit"),
    (index.build, "drop_collection"),
    (index.build, "remove_leftovers"),
    (index.update, "remove_leftovers"),
]


def _tripwires(kill_at: int | None, events: str | None) -> None:
    count = 0

    def event(name: str) -> None:
        nonlocal count
        count += 1
        if events:
            with open(events, "a", encoding="utf-8") as log:
                log.write(f"{count} {name}\n")
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            event(f"before {name}")
            result = func(*args, **kwargs)
            event(f"after {name}")
            return result

        return wrapper

    for owner, attr in WRITERS:
        name = f"{getattr(owner, '__name__', owner)}.{attr}"
        static = inspect.getattr_static(owner, attr)
        if isinstance(static, classmethod):
            setattr(owner, attr, classmethod(wrap(name, static.__func__)))
        else:
            setattr(owner, attr, wrap(name, static))


def _run(command: dict[str, Any]) -> None:
    """In the child: output to a file, tripwires set, the CLI run, never returning."""
    for fd, name in ((1, "out"), (2, "err")):
        os.dup2(os.open(command[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    code = 1
    try:
        index.write._SLAB = SLAB
        _tripwires(command.get("kill_at"), command.get("events"))
        sys.argv = ["newsdesk", *command["argv"]]
        newsdesk.cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # reported in the error file
        print(f"crash runner: {exc!r}", file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run(command)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
