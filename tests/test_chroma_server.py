"""Server mode for real: `chroma run` on 127.0.0.1 on a free port, then index and query it,
stop it, hang it (SIGSTOP) and bring it back on the same port with the same data."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.build import Indexer
from index.check import check_index
from index.embed import Embedder
from index.lock import LOCK_FILE
from index.manifest import UnusableIndex
from index.reader import IndexReader
from index.store import ChunkStore, StoreUnavailable, chroma_client
from newsdesk.settings import ChromaSettings, Settings
from tests.conftest import NEWS, make_settings, top_articles, write_jsonl
from ui.service import ChatService

# `chroma run` on 127.0.0.1, started, stopped and hung.
pytestmark = [pytest.mark.process, pytest.mark.server]

QUESTION = "Why is the harbour bridge closing?"
TIMEOUT = 2.0  # chroma.timeout in these tests: how long a hung server may hold a question


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChromaServer:
    """One `chroma run` that a test can stop, hang, and start again on the same port
    with the same data directory, as an operator restarting it would."""

    def __init__(self, data: Path) -> None:
        exe = shutil.which("chroma", path=str(Path(sys.executable).parent))
        assert exe, "the chroma CLI comes with the chromadb package"
        self.exe = exe
        self.data = data
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.hung = False

    def start(self) -> None:
        args = ["run", "--path", str(self.data), "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [self.exe, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("chroma server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.resume()  # a stopped process only acts on SIGTERM once continued
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc = None

    def hang(self) -> None:
        """Still accepting connections (the kernel queues them) but answering nothing."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.hung = True

    def resume(self) -> None:
        if self.proc is not None and self.hung:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.hung = False


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "server-data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def served(tmp_path: Path, server: ChromaServer) -> Settings:
    return make_settings(tmp_path / "ix", chroma=ChromaSettings(url=server.url, timeout=TIMEOUT))


def newsdesk_ask(cwd: Path, settings: Settings) -> subprocess.CompletedProcess[str]:
    """`newsdesk ask` as a user runs it, configured through the environment."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "NEWSDESK_CHROMA__URL": str(settings.chroma.url),
        "NEWSDESK_CHROMA__TIMEOUT": str(settings.chroma.timeout),
    }
    return subprocess.run(
        [sys.executable, "-m", "newsdesk", "ask", QUESTION, "--index-dir", str(settings.index_dir)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_index_and_query_through_a_chroma_server(
    tmp_path: Path, news_file: Path, embedder: Embedder, chroma_server: ChromaServer
) -> None:
    settings = make_settings(tmp_path / "ix", chroma=ChromaSettings(url=chroma_server.url))
    manifest = Indexer(settings, embedder).build([news_file]).manifest
    assert manifest is not None and manifest.chroma_url == chroma_server.url
    assert not (tmp_path / "ix" / "chroma").exists()  # nothing embedded locally

    assert top_articles(settings, embedder, "Who won the chess final?") == ["chess"]

    report = Indexer(settings, embedder).update([news_file])
    assert report.chunks_embedded == 0


def test_an_embedded_index_is_not_read_from_a_server(
    tmp_path: Path, news_file: Path, embedder: Embedder, chroma_server: ChromaServer
) -> None:
    Indexer(make_settings(tmp_path / "ix"), embedder).build([news_file])
    settings = make_settings(tmp_path / "ix", chroma=ChromaSettings(url=chroma_server.url))
    with pytest.raises(Exception, match="embedded store"):
        IndexReader(settings, embedder)


def test_a_stopped_server_is_one_clear_error_and_the_chat_recovers_when_it_returns(
    tmp_path: Path, news_file: Path, embedder: Embedder, chroma_server: ChromaServer
) -> None:
    settings = served(tmp_path, chroma_server)
    manifest = Indexer(settings, embedder).build([news_file]).manifest
    assert manifest is not None
    service = ChatService(settings, embedder)
    assert service.ask(QUESTION, [], None).citations[0].article_id == "harbour"
    answerer = service.answerer()
    assert answerer is not None
    store = answerer.reader.store

    chroma_server.stop()
    refused = f"cannot reach the Chroma server at {chroma_server.url}: connection refused"
    began = time.monotonic()
    with pytest.raises(StoreUnavailable) as failed:
        service.ask(QUESTION, [], None)
    assert str(failed.value) == f"{refused} (is it running?)"
    assert time.monotonic() - began < TIMEOUT
    for call in (store.count, lambda: store.vectors(["harbour:x:0"])):  # every store call
        with pytest.raises(StoreUnavailable, match=refused):
            call()
    with pytest.raises(StoreUnavailable, match=refused):  # opening anew: the client itself
        IndexReader(settings, embedder)

    cli = newsdesk_ask(tmp_path, settings)
    assert cli.returncode == 1
    assert cli.stderr.strip() == f"error: {refused} (is it running?)"
    assert cli.stdout == ""

    chroma_server.start()  # same port, same data
    answer = service.ask(QUESTION, [], None)  # the same chat, not restarted
    assert answer.citations[0].article_id == "harbour"
    assert answer.index_version == manifest.state


def test_a_server_hung_mid_question_fails_it_in_bounded_time_then_recovers(
    tmp_path: Path, news_file: Path, embedder: Embedder, chroma_server: ChromaServer
) -> None:
    settings = served(tmp_path, chroma_server)
    Indexer(settings, embedder).build([news_file])
    service = ChatService(settings, embedder)
    answered = threading.Event()
    failures: list[tuple[float, BaseException]] = []

    def keep_asking() -> None:  # as a chat page does, while the server hangs
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                service.ask(QUESTION, [], None)
            except Exception as exc:
                failures.append((time.monotonic(), exc))
                return
            answered.set()

    asker = threading.Thread(target=keep_asking, daemon=True)
    asker.start()
    assert answered.wait(30)
    chroma_server.hang()
    hung_at = time.monotonic()
    asker.join(timeout=30)
    assert not asker.is_alive(), "a hung server hung the question"
    [(failed_at, error)] = failures
    assert isinstance(error, StoreUnavailable)
    assert str(error) == (
        f"cannot reach the Chroma server at {chroma_server.url}: "
        f"it did not answer within {TIMEOUT:g} s (hung or overloaded?)"
    )
    assert failed_at - hung_at < TIMEOUT + 3  # one wait, not one per retry

    began = time.monotonic()
    cli = newsdesk_ask(tmp_path, settings)  # a new process: its first contact is bounded too
    assert time.monotonic() - began < TIMEOUT + 30
    assert cli.returncode == 1
    assert cli.stderr.strip() == f"error: {error}"

    chroma_server.resume()
    assert service.ask(QUESTION, [], None).citations[0].article_id == "harbour"


def test_a_collection_of_another_model_is_refused(
    tmp_path: Path, news_file: Path, embedder: Embedder, chroma_server: ChromaServer
) -> None:
    settings = served(tmp_path, chroma_server)
    manifest = Indexer(settings, embedder).build([news_file]).manifest
    assert manifest is not None and manifest.model == embedder.model_id
    client = chroma_client(settings)
    # What the server holds now disagrees with the manifest, e.g. a collection of the
    # same name written by another index that embeds with another model.
    collection = client.get_collection(manifest.collection, embedding_function=None)
    collection.modify(metadata={"model": "other-model", "dimension": embedder.dimension})

    refusal = (
        f"Chroma collection {manifest.collection!r} on the Chroma server at "
        f"{chroma_server.url} holds embeddings of 'other-model', not of "
        f"{embedder.model_id!r} as the index says: its vectors cannot be compared; "
        "rebuild with `newsdesk index build`"
    )
    with pytest.raises(UnusableIndex) as refused:
        ChunkStore.open(client, manifest.collection, model=embedder.model_id)
    assert str(refused.value) == refusal
    assert ChunkStore.open(client, manifest.collection).model == "other-model"  # no model: no check
    with pytest.raises(UnusableIndex, match="'other-model', not of 'all-MiniLM-L6-v2'"):
        IndexReader(settings, embedder)
    with pytest.raises(UnusableIndex, match="'other-model', not of 'all-MiniLM-L6-v2'"):
        ChatService(settings, embedder).ask(QUESTION, [], None)

    cli = newsdesk_ask(tmp_path, settings)
    assert cli.returncode == 1
    assert cli.stderr.strip() == f"error: {refusal}"
    edited = [dict(NEWS[0], text=NEWS[0]["text"] + " Tolls are waived.")]
    with pytest.raises(UnusableIndex, match="'other-model'"):  # nor written into
        Indexer(settings, embedder).update([write_jsonl(tmp_path / "edited.jsonl", edited)])


def test_check_and_a_killed_builds_collection_on_a_server(
    tmp_path: Path, news_file: Path, embedder: Embedder, chroma_server: ChromaServer
) -> None:
    settings = served(tmp_path, chroma_server)
    manifest = Indexer(settings, embedder).build([news_file]).manifest
    assert manifest is not None
    assert check_index(settings).ok and not check_index(settings).leftovers
    # What a build SIGKILLed half-way leaves: its collection, named in the lock file's
    # record (a server may hold other indexes' collections, so only a record names ours).
    client = chroma_client(settings)
    half = ChunkStore.create(client, "newsdesk-killed", embedder.model_id, embedder.dimension)
    assert half.count() == 0
    (settings.index_dir / LOCK_FILE).write_text("4242\ncollection newsdesk-killed\n")
    client.create_collection("newsdesk-someone-elses")

    Indexer(settings, embedder).update([news_file])
    names = {str(getattr(c, "name", c)) for c in client.list_collections()}
    assert "newsdesk-killed" not in names
    assert {manifest.collection, "newsdesk-someone-elses"} <= names
    assert check_index(settings).ok
