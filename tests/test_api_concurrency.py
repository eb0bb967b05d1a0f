"""Many users at once over `newsdesk serve`'s HTTP API (issue 18, parts 4 and 5).

Questions are answered concurrently: an extractive answer is not held up by a
generated one waiting for its model, eight threads asking together all get exact
citations, and the caches concurrent questions share survive being emptied under
them. With chat.admin_token set, only that token may change the index, and it is
never written to a log or an answer.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import rag.answer
from bench.scripted_llm import Plan, ScriptedLLM
from index.build import Indexer
from index.embed import Embedder
from index.reader import IndexReader
from newsdesk.errors import NewsdeskError
from rag.answer import ExtractiveAnswerer
from tests.conftest import NEWS, ROOT, make_settings, write_jsonl
from tests.test_api import QUESTION, TUNNEL, exact, serving
from ui.api import create_app
from ui.service import ChatService

TOKEN = "reader-token-8d41"
ADMIN = "admin-token-c7e2b9"
SLOWLY = "(take your time)"  # in a question, the scripted model holds its reply back
QUESTIONS = [
    (QUESTION, "harbour"),
    ("How long will the harbour bridge be closed?", "harbour"),
    ("What did engineers find in the steel cables?", "harbour"),
    ("How often will the ferries run?", "harbour"),
    ("Why was the apple harvest a record?", "orchard"),
    ("Why may apple prices rise?", "orchard"),
    ("Who won the national chess championship?", "chess"),
    ("How long did the final chess game last?", "chess"),
]


@pytest.fixture(scope="module")
def index_dir(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("concurrent")
    settings = make_settings(folder / "ix")
    Indexer(settings, embedder).build([write_jsonl(folder / "news.jsonl", NEWS)])
    return settings.index_dir


def asking(base: str, question: str, **headers: str) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=120, headers=headers) as http:
        reply = http.post("/v1/ask", json={"question": question})
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


@pytest.mark.server
@pytest.mark.llm
def test_an_extractive_answer_does_not_wait_for_a_generating_one(
    index_dir: Path, embedder: Embedder
) -> None:
    """The model answers every question but the slow one with an error at once, so
    those fall back to quoting; the slow one is held until the quoted answer is in."""
    release = threading.Event()

    def respond(prompt: str) -> Plan:
        if SLOWLY in prompt:
            release.wait(60)
            return Plan(status=400, text="scripted: gave up")
        return Plan(status=400, text="scripted: no")

    with ScriptedLLM(respond) as llm:
        llm_cfg = {"base_url": llm.base_url, "model": "scripted", "timeout": 90, "max_retries": 0}
        settings = make_settings(index_dir, answer={"answerer": "llm"}, llm=llm_cfg)
        service = ChatService(settings, embedder)
        with serving(create_app(service, chat=False)) as base, ThreadPoolExecutor(2) as pool:
            slow = pool.submit(asking, base, f"{QUESTION} {SLOWLY}")
            while not any(SLOWLY in str(r) for r in llm.requests):  # its model call is open
                assert not slow.done(), slow.result()
                threading.Event().wait(0.05)
            quick = asking(base, "Who won the national chess championship?")
            assert not slow.done()  # still waiting for its model
            release.set()
            held = slow.result(timeout=120)
    assert quick["answerer"] == "extractive" and quick["citations"][0]["article_id"] == "chess"
    assert held["citations"][0]["article_id"] == "harbour"
    exact(quick["citations"] + held["citations"], index_dir)


@pytest.mark.server
def test_eight_threads_asking_together_get_exact_citations(
    index_dir: Path, embedder: Embedder
) -> None:
    service = ChatService(make_settings(index_dir), embedder)
    with serving(create_app(service, chat=False)) as base, ThreadPoolExecutor(8) as pool:
        rounds = [q for q, _ in QUESTIONS] * 3
        answers = list(pool.map(lambda q: asking(base, q), rounds))
    expected = dict(QUESTIONS)
    for question, answer in zip(rounds, answers, strict=True):
        assert answer["citations"][0]["article_id"] == expected[question], answer
        exact(answer["citations"], index_dir)


def test_shared_caches_survive_being_emptied_under_concurrent_questions(
    index_dir: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny caches, so every question empties them while others read them."""
    monkeypatch.setattr(rag.answer, "_CACHE_LIMIT", 4)
    settings = make_settings(index_dir)
    answerer = ExtractiveAnswerer(IndexReader(settings, embedder), settings)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(answerer.ask, [q for q, _ in QUESTIONS] * 4))
    expected = [article for _, article in QUESTIONS] * 4
    assert [a.citations[0].article_id for a in answers] == expected
    for answer in answers:
        exact([c.model_dump() for c in answer.citations], index_dir)


def test_a_dense_hit_is_judged_live_by_its_id_alone(index_dir: Path, embedder: Embedder) -> None:
    """Another process's update deletes replaced chunks while this process's embedded
    Chroma still returns them, without metadata (found by bench/load.py): the chunk id
    says whether the hit belongs to the reader's state."""
    reader = IndexReader(make_settings(index_dir), embedder)
    entry = reader.manifest.articles["harbour"]
    live = f"harbour:{entry.hash[:12]}:0"
    assert reader.is_live_chunk(live)
    assert not reader.is_live_chunk(f"harbour:{'0' * 12}:0")  # another version
    assert not reader.is_live_chunk(f"harbour:{entry.hash[:12]}:{entry.chunks}")
    assert not reader.is_live_chunk(f"gone:{entry.hash[:12]}:0")


# --- the admin token ----------------------------------------------------------------


@pytest.fixture
def admin_url(index_dir: Path, embedder: Embedder, tmp_path: Path) -> Iterator[str]:
    """Its own copy of the index: these tests write."""
    settings = make_settings(tmp_path / "ix", chat={"token": TOKEN, "admin_token": ADMIN})
    Indexer(settings, embedder).build([write_jsonl(tmp_path / "news.jsonl", NEWS)])
    with serving(create_app(ChatService(settings, embedder), token=TOKEN, chat=False)) as base:
        yield base


@pytest.mark.server
def test_only_the_admin_token_updates_the_index(
    admin_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"paths": [str(write_jsonl(tmp_path / "more.jsonl", [TUNNEL]))]}
    statuses = []
    with httpx.Client(base_url=admin_url, timeout=120) as http:
        for given in (None, TOKEN, ADMIN):
            headers = {"Authorization": f"Bearer {given}"} if given else {}
            reply = http.post("/v1/index/update", json=body, headers=headers)
            statuses.append(reply.status_code)
            assert ADMIN not in reply.text
        assert statuses == [401, 401, 200], reply.text
        reader = {"Authorization": f"Bearer {TOKEN}"}
        refused = http.post("/v1/index/update", json=body, headers=reader)
        assert "the admin token (chat.admin_token) is required" in refused.json()["detail"]
    answer = asking(admin_url, "When did the rail tunnel open?", Authorization=f"Bearer {TOKEN}")
    assert answer["citations"][0]["article_id"] == "tunnel"
    by_admin = asking(admin_url, QUESTION, Authorization=f"Bearer {ADMIN}")
    assert ADMIN not in str(answer) + str(by_admin)
    assert caplog.records and ADMIN not in caplog.text


def test_an_admin_token_equal_to_the_token_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "ix", chat={"token": TOKEN, "admin_token": TOKEN})
    with pytest.raises(NewsdeskError, match="restrict nothing") as refused:
        create_app(ChatService(settings), token=TOKEN, chat=False)
    assert TOKEN not in str(refused.value)


def test_the_admin_token_comes_from_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from newsdesk.settings import ADMIN_TOKEN_ENV, load_settings

    monkeypatch.setenv(ADMIN_TOKEN_ENV, ADMIN)
    chat = load_settings().chat
    assert chat.admin_token is not None and chat.admin_token.get_secret_value() == ADMIN
    assert ADMIN not in repr(chat) and ADMIN not in str(chat)


# --- the load benchmark ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.process
@pytest.mark.server
def test_the_load_benchmark_runs_tiny(demo_index: Path, tmp_path: Path) -> None:
    """bench/load.py at 1 and 2 clients for 3 s each, another process writing: it
    runs and reports no errors (it measures nothing this small)."""
    copy = tmp_path / "ix"
    shutil.copytree(demo_index, copy)
    command = [sys.executable, str(ROOT / "bench" / "load.py"), "--index-dir", str(copy)]
    done = subprocess.run(
        [*command, "--clients", "1", "2", "--seconds", "3"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert [r["clients"] for r in report["runs"]] == [1, 2]
    for run in report["runs"]:
        assert run["requests"] > 0 and run["errors"] == 0, run
        assert run["quotes_checked_live"] + run["quotes_checked_from_their_state"] > 0
    assert report["writes"]["done"] >= 2 and report["writes"]["failed"] == []
