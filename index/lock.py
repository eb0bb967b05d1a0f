"""One writer per index directory, across processes.

Two builds or updates at once would each switch the manifest to a state the other
never saw, and sweep files the other still writes. The lock is an flock on a file in
the index directory: the kernel drops it when its holder exits, however it exits, so
a lock left by a killed build is never mistaken for a live one (the file stays; the
lock does not). Readers never take it: they read whatever state the manifest names.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "write.lock"


class IndexBusy(RuntimeError):
    """Another process is building or updating this index."""


@contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index's write lock for the block, or raise IndexBusy at once."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise IndexBusy(
                f"another build or update is running on {index_dir} (pid {holder}); "
                "wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
