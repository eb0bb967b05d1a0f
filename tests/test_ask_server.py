"""`newsdesk ask` asks a running `newsdesk serve` on the same index instead of loading
the model itself, and works alone when there is none, or only a stale record of one."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import rag.generate
from index.build import Indexer
from index.embed import Embedder
from newsdesk.cli import cli
from newsdesk.server import RECORD, advertise, running, withdraw
from rag.answer import ExtractiveAnswerer
from rag.retrieve import Filters
from tests.chat_server import NEWSDESK, free_port
from tests.conftest import NEWS, make_settings, write_jsonl
from tests.test_api import QUESTION, TUNNEL, exact, serving
from ui.api import create_app
from ui.service import ChatService

DEAD_PID = 2**22 + 1  # above Linux's pid_max default: never a live process


def test_no_record_or_a_stale_one_means_no_server(tmp_path: Path) -> None:
    assert running(tmp_path, None) is None
    (tmp_path / RECORD).write_text("{not json")
    assert running(tmp_path, None) is None
    (tmp_path / RECORD).write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": DEAD_PID}))
    assert running(tmp_path, None) is None


def test_a_server_removes_only_its_own_record(tmp_path: Path) -> None:
    record = advertise(tmp_path, "0.0.0.0", 8123)
    assert json.loads(record.read_text()) == {"url": "http://127.0.0.1:8123", "pid": os.getpid()}
    record.write_text(json.dumps({"url": "http://127.0.0.1:8124", "pid": DEAD_PID}))
    withdraw(record)  # a newer server's record: left alone
    assert record.exists()
    advertise(tmp_path, "127.0.0.1", 8123)
    withdraw(record)
    assert not record.exists()


@pytest.mark.server
def test_ask_uses_the_running_server(
    service: ChatService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_local_answerer(*_: object) -> None:
        raise AssertionError("ask loaded an answerer though a server was up")

    monkeypatch.setattr(rag.generate, "open_answerer", no_local_answerer)
    with serving(create_app(service, chat=False)) as base:
        record = advertise(service.index_dir, "127.0.0.1", int(base.rsplit(":", 1)[1]))
        try:
            with caplog.at_level(logging.INFO):
                done = CliRunner().invoke(
                    cli, ["-v", "ask", QUESTION, "--json", "--index-dir", str(service.index_dir)]
                )
        finally:
            withdraw(record)
    assert done.exit_code == 0, done.output
    assert f"asking the newsdesk server at {base}" in caplog.text
    answer = json.loads(done.stdout)
    assert answer["citations"] and not answer["abstained"]
    exact(answer["citations"], service.index_dir)
    here = service.ask(QUESTION, [], None)
    assert [(c["article_id"], c["start"], c["end"]) for c in answer["citations"]] == [
        (c.article_id, c.start, c.end) for c in here.citations
    ]


@pytest.mark.server
def test_a_server_refusal_is_the_error_not_a_silent_fallback(
    service: ChatService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rag.generate, "open_answerer", None)  # must not be reached
    too_long = "why " * service.settings.chat.max_question_chars
    with serving(create_app(service, chat=False)) as base:
        record = advertise(service.index_dir, "127.0.0.1", int(base.rsplit(":", 1)[1]))
        try:
            done = CliRunner().invoke(cli, ["ask", too_long, "--index-dir", str(service.index_dir)])
        finally:
            withdraw(record)
    assert done.exit_code == 1
    assert f"the server at {base} refused: 422" in done.output
    assert "chat.max_question_chars" in done.output


@pytest.mark.slow  # opens an answerer in-process: the model loads again
def test_with_only_a_stale_record_ask_answers_in_process(
    service: ChatService, tmp_path: Path
) -> None:
    (service.index_dir / RECORD).write_text(
        json.dumps({"url": f"http://127.0.0.1:{free_port()}", "pid": DEAD_PID})
    )
    try:
        done = CliRunner().invoke(
            cli, ["ask", QUESTION, "--json", "--index-dir", str(service.index_dir)]
        )
    finally:
        (service.index_dir / RECORD).unlink()
    assert done.exit_code == 0, done.output
    exact(json.loads(done.stdout)["citations"], service.index_dir)


@pytest.mark.server
@pytest.mark.process
@pytest.mark.slow
def test_ask_against_serve_in_other_processes(embedder: Embedder, tmp_path: Path) -> None:
    """The commands themselves: `serve` leaves its record while it runs and removes it
    when stopped; `ask` in a fresh process answers through it. Both wall times are
    printed (shared machine: not asserted)."""
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, embedder).build([write_jsonl(tmp_path / "news.jsonl", NEWS)])
    port, log = free_port(), tmp_path / "serve.log"
    environ = {**os.environ, "PYTHONUNBUFFERED": "1"}
    index = ["--index-dir", str(settings.index_dir)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*NEWSDESK, "serve", *index, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environ,
        )
    try:
        deadline = time.monotonic() + 180
        while running(settings.index_dir, None) is None:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        walls = {}
        for how in ("server", "local"):
            flags = ["--local"] if how == "local" else []
            started = time.monotonic()
            done = subprocess.run(
                [*NEWSDESK, "-v", "ask", QUESTION, "--json", *flags, *index],
                capture_output=True,
                text=True,
                env=environ,
                timeout=300,
            )
            walls[how] = time.monotonic() - started
            assert done.returncode == 0, done.stderr
            assert ("asking the newsdesk server" in done.stderr) is (how == "server")
            exact(json.loads(done.stdout)["citations"], settings.index_dir)
        print(f"newsdesk ask wall seconds: {walls}")
        assert httpx.get(f"http://127.0.0.1:{port}/v1/index/status").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert not (settings.index_dir / RECORD).exists()


@pytest.mark.server
def test_index_update_goes_through_the_running_server(
    embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server writes, so its own vector search sees the new article at once (an
    embedded Chroma does not show one process another's writes)."""
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, embedder).build([write_jsonl(tmp_path / "news.jsonl", NEWS)])
    service = ChatService(settings, embedder)
    monkeypatch.setattr("index.cli.Indexer", None)  # a local write would fail loudly
    added = write_jsonl(tmp_path / "tunnel.jsonl", [TUNNEL])
    with serving(create_app(service, chat=False)) as base:
        record = advertise(settings.index_dir, "127.0.0.1", int(base.rsplit(":", 1)[1]))
        try:
            done = CliRunner().invoke(
                cli, ["index", "update", str(added), "--index-dir", str(settings.index_dir)]
            )
        finally:
            withdraw(record)
    assert done.exit_code == 0, done.output
    assert f"updating through the newsdesk server at {base}" in done.output
    assert "1 added" in done.output
    answer = service.ask("When did the rail tunnel open to passengers?", [], None)
    assert [c.article_id for c in answer.citations][:1] == ["tunnel"]
    found = service.answerer()
    assert isinstance(found, ExtractiveAnswerer)
    dense = found.retriever._dense("rail tunnel under the river", Filters())
    assert any(found.reader.chunk_span(chunk)[0] == "tunnel" for chunk in dense)


@pytest.mark.process
def test_an_update_written_by_another_process_reaches_the_vector_search(
    embedder: Embedder, tmp_path: Path
) -> None:
    """`index update --local` (or `watch`) beside a running service: once the state
    switches, the service's dense leg finds the new article, not only its BM25 leg."""
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, embedder).build([write_jsonl(tmp_path / "news.jsonl", NEWS)])
    service = ChatService(settings, embedder)
    assert service.ask(QUESTION, [], None).citations  # the vectors are loaded here
    added = write_jsonl(tmp_path / "tunnel.jsonl", [TUNNEL])
    done = subprocess.run(
        [
            *NEWSDESK,
            "index",
            "update",
            str(added),
            "--local",
            "--index-dir",
            str(settings.index_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    found = service.answerer()
    assert isinstance(found, ExtractiveAnswerer)
    dense = found.retriever._dense("rail tunnel under the river", Filters())
    assert any(found.reader.chunk_span(chunk)[0] == "tunnel" for chunk in dense)
