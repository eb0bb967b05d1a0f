"""One writer per index directory, across processes, and a record of unfinished writes.

Two builds or updates at once would each commit a state built from one the other
never saw, and sweep files and chunks the other still writes (SQLite serialises their
commits, not their minutes of embedding). The lock is an flock on a file in
the index directory: the kernel drops it when its holder exits, however it exits, so
a lock left by a killed build is never mistaken for a live one (the file stays; the
lock does not). Readers never take it: they read whatever state the database names.

The file also says what its holder is doing (its pid, then what it is creating); a
write that finishes empties it. So the next writer that finds it non-empty knows the
last one died or failed half-way, and can sweep what it left (index.repair.recover).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from newsdesk.errors import NewsdeskError

LOCK_FILE = "write.lock"
_RECORD_LIMIT = 64 * 1024  # what is read back of an unfinished writer's record


class IndexBusy(NewsdeskError, RuntimeError):
    """Another process is building or updating this index."""


@dataclass
class WriteLock:
    """The held lock. `unfinished` is the record of a writer that did not finish
    (its pid first), empty when the last write completed."""

    fd: int
    unfinished: list[str]

    def record(self, line: str) -> None:
        """Note something being created, so a successor can remove it if we die."""
        os.write(self.fd, f"{line}\n".encode())
        os.fsync(self.fd)


@contextmanager
def write_lock(index_dir: Path) -> Iterator[WriteLock]:
    """Hold the index's write lock for the block, or raise IndexBusy at once. The
    record is cleared only when the block completes: an exception or a kill leaves
    it for the next writer."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = next(iter(_read(fd)), "unknown")
            raise IndexBusy(
                f"another build or update is running on {index_dir} (pid {pid}); "
                "wait for it to finish"
            ) from None
        lock = WriteLock(fd, _read(fd))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        lock.record(str(os.getpid()))
        yield lock
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def holder(index_dir: Path) -> str | None:
    """The pid of the process writing the index now, or None when nobody is."""
    path = index_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return next(iter(_read(fd)), "unknown")
        return None
    finally:
        os.close(fd)


def _read(fd: int) -> list[str]:
    text = os.pread(fd, _RECORD_LIMIT, 0).decode("utf-8", "replace")
    return [line.strip() for line in text.splitlines() if line.strip()]
