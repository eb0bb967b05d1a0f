"""One writer per index directory: a second build or update, in this process or another,
is refused at once with the holder's pid; a killed holder leaves no lock behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index.build import Indexer
from index.db import read_manifest
from index.embed import Embedder
from index.lock import LOCK_FILE, IndexBusy, write_lock
from tests.conftest import NEWS, make_settings, write_jsonl

HOLD = """
import sys, time
from pathlib import Path
from index.lock import write_lock
with write_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def hold_in_another_process(index_dir: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(index_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    return process


@pytest.mark.process
def test_a_second_writer_is_refused_with_the_holders_pid(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = make_settings(tmp_path / "ix")
    source = write_jsonl(tmp_path / "news.jsonl", NEWS)
    holder = hold_in_another_process(settings.index_dir)
    try:
        for write in (Indexer(settings, embedder).build, Indexer(settings, embedder).update):
            with pytest.raises(
                IndexBusy, match=f"another build or update is running .*pid {holder.pid}"
            ):
                write([source])
        assert read_manifest(settings.index_dir) is None  # nothing was written
    finally:
        holder.kill()
        holder.wait()
    # The holder was killed (SIGKILL): the kernel dropped its lock; the file alone is no lock.
    assert (settings.index_dir / LOCK_FILE).exists()
    report = Indexer(settings, embedder).update([source])
    assert report.manifest is not None and report.manifest.article_count == len(NEWS)


def test_the_lock_is_not_reentrant_across_writers_in_one_process(tmp_path: Path) -> None:
    with (
        write_lock(tmp_path),
        pytest.raises(IndexBusy, match=str(os.getpid())),
        write_lock(tmp_path),
    ):
        pass
    with write_lock(tmp_path):  # released when the block ended
        pass


@pytest.mark.process
def test_the_cli_says_another_build_is_running(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "news.jsonl", NEWS)
    holder = hold_in_another_process(tmp_path / "ix")
    try:
        began = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "newsdesk", "index", "update", str(source), "--index-dir", "ix"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1
        assert f"another build or update is running on ix (pid {holder.pid})" in result.stderr
        assert time.monotonic() - began < 60  # refused at once, not after waiting
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait()
