"""Server mode for real: `chroma run` on 127.0.0.1 on a free port, then index and query it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.build import Indexer
from index.embed import Embedder
from index.reader import IndexReader
from newsdesk.settings import ChromaSettings
from tests.conftest import make_settings, top_articles


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent))
    assert exe, "the chroma CLI comes with the chromadb package"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            exe,
            "run",
            "--path",
            str(tmp_path / "server-data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("chroma server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_index_and_query_through_a_chroma_server(
    tmp_path: Path, news_file: Path, embedder: Embedder, chroma_server: str
):
    settings = make_settings(tmp_path / "ix", chroma=ChromaSettings(url=chroma_server))
    manifest = Indexer(settings, embedder).build([news_file]).manifest
    assert manifest is not None and manifest.chroma_url == chroma_server
    assert not (tmp_path / "ix" / "chroma").exists()  # nothing embedded locally

    assert top_articles(settings, embedder, "Who won the chess final?") == ["chess"]

    report = Indexer(settings, embedder).update([news_file])
    assert report.chunks_embedded == 0


def test_an_embedded_index_is_not_read_from_a_server(
    tmp_path: Path, news_file: Path, embedder: Embedder, chroma_server: str
):
    Indexer(make_settings(tmp_path / "ix"), embedder).build([news_file])
    served = make_settings(tmp_path / "ix", chroma=ChromaSettings(url=chroma_server))
    with pytest.raises(Exception, match="embedded store"):
        IndexReader(served, embedder)
