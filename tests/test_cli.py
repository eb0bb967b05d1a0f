"""The `newsdesk` command as users run it: real processes, real model, real Chroma."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from index.build import Indexer
from index.db import read_manifest
from index.device import gpu_possible
from index.embed import Embedder
from tests.conftest import NEWS, make_settings, shared_data, write_jsonl

# Every test runs `python -m newsdesk` in a subprocess.
pytestmark = [pytest.mark.process]


def newsdesk(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsdesk", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = newsdesk("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "index" in result.stdout and "ask" in result.stdout


def test_demo_build_status_and_seed_question(tmp_path: Path) -> None:
    built = newsdesk("index", "build", "--demo", "--index-dir", "ix", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert "CC BY 2.5" in built.stdout

    status = newsdesk("index", "status", "--json", "--index-dir", "ix", cwd=tmp_path)
    info = json.loads(status.stdout)
    assert info["articles"] == 44 and info["chunks"] > 44
    assert info["model"] == "all-MiniLM-L6-v2"

    found = newsdesk(
        "ask",
        "What did the Secretary General warn about?",
        "--index-dir",
        "ix",
        cwd=tmp_path,
    )
    assert found.returncode == 0, found.stderr
    assert "[1]" in found.stdout and "Sources:" in found.stdout
    assert "fatal" in found.stdout.lower()  # Rutte's warning, from the seed article
    assert "CC BY 2.5" in found.stdout

    as_json = newsdesk(
        "ask",
        "Who won?",
        "--json",
        "--source",
        "English Wikinews (via GUM corpus)",
        "--index-dir",
        "ix",
        cwd=tmp_path,
    )
    assert as_json.returncode == 0, as_json.stderr
    record = json.loads(as_json.stdout)
    assert set(record) >= {
        "question",
        "answer",
        "abstained",
        "citations",
        "retrieved",
        "index_version",
        "settings_hash",
        "timings_ms",
    }


def test_ask_refuses_bad_requests_clearly(tmp_path: Path) -> None:
    empty = newsdesk("ask", "  ", "--index-dir", "ix", cwd=tmp_path)
    assert empty.returncode == 2 and "question is empty" in empty.stderr
    missing = newsdesk("ask", "Who won?", "--index-dir", "nowhere", cwd=tmp_path)
    assert missing.returncode == 1 and "newsdesk index build" in missing.stderr
    bad_date = newsdesk("ask", "Who won?", "--since", "someday", "--index-dir", "ix", cwd=tmp_path)
    assert bad_date.returncode == 2 and "--since" in bad_date.stderr
    assert "Traceback" not in empty.stderr + missing.stderr + bad_date.stderr


def test_bad_input_is_named_and_the_rest_indexed(tmp_path: Path) -> None:
    source = tmp_path / "mixed.jsonl"
    lines = [json.dumps(NEWS[0]), "{broken", json.dumps({"id": "x", "title": "t", "text": ""})]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = newsdesk("index", "build", str(source), "--index-dir", "ix", cwd=tmp_path)
    assert result.returncode == 3
    assert "mixed.jsonl:2" in result.stderr and "mixed.jsonl:3" in result.stderr
    assert "Traceback" not in result.stderr
    status = json.loads(
        newsdesk("index", "status", "--json", "--index-dir", "ix", cwd=tmp_path).stdout
    )
    assert status["articles"] == 1


def test_status_without_index_says_how_to_build(tmp_path: Path) -> None:
    result = newsdesk("index", "status", "--index-dir", "nothing-here", cwd=tmp_path)
    assert result.returncode == 1
    assert "newsdesk index build" in result.stderr


def test_index_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_jsonl(tmp_path / "news.jsonl", NEWS[:1])
    monkeypatch.setenv("NEWSDESK_INDEX_DIR", str(tmp_path / "from-env"))
    assert newsdesk("index", "build", str(source), cwd=tmp_path).returncode == 0
    assert (tmp_path / "from-env" / "index.sqlite").is_file()


@pytest.mark.slow
def test_interrupted_rebuild_keeps_the_previous_index(tmp_path: Path) -> None:
    small = write_jsonl(tmp_path / "news.jsonl", NEWS)
    assert newsdesk("index", "build", str(small), "--index-dir", "ix", cwd=tmp_path).returncode == 0
    before = read_manifest(tmp_path / "ix")

    big = shared_data("squad-dev-subset/articles.jsonl")
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsdesk", "index", "build", str(big), "--index-dir", "ix"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal delivers it, even when this test runs under a shell that
        # started it in the background: such a shell ignores SIGINT, children inherit
        # that, and Python then installs no handler, so the build would never stop.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    # Wait (however long a loaded machine takes) until it has written part of the new
    # collection: interrupted earlier, while imports or the model load, there is no
    # build yet to roll back, and nothing to test.
    for line in proc.stderr:
        if line.startswith("indexed "):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "previous index is unchanged" in err

    assert read_manifest(tmp_path / "ix") == before
    found = newsdesk(
        "ask", "ferries while the bridge is shut", "-k", "1", "--index-dir", "ix", cwd=tmp_path
    )
    assert found.returncode == 0 and "ferries" in found.stdout


# Runs the commands (a JSON list of argument lists) in one process, then says whether
# they imported torch.
IMPORTED_TORCH = """
import json, sys
from newsdesk.cli import cli
for args in json.loads(sys.argv[1]):
    try:
        cli.main(args, prog_name="newsdesk")
    except SystemExit as exit:
        assert not exit.code, exit.code
print("torch" in sys.modules)
"""


def run_in_one_process(commands: list[list[str]], cwd: Path) -> str:
    """Their output, ending in whether they imported torch."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORTED_TORCH, json.dumps(commands)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_an_unchanged_update_and_status_never_load_torch(
    tmp_path: Path, news_file: Path, embedder: Embedder
) -> None:
    """Only embedding needs torch and the model; an update that finds nothing changed
    and `index status` answer in about a second instead of waiting for them."""
    if gpu_possible():
        pytest.skip("this torch build may see a GPU, so status asks torch")
    index = str(tmp_path / "ix")
    Indexer(make_settings(tmp_path / "ix"), embedder).build([news_file])
    commands = [
        ["index", "update", str(news_file), "--index-dir", index],
        ["index", "status", "--index-dir", index],
    ]
    output = run_in_one_process(commands, tmp_path)
    assert "3 unchanged" in output and "device:" in output
    assert output.rstrip().endswith("False")


def test_a_question_and_a_small_update_never_load_torch(
    tmp_path: Path, news_file: Path, embedder: Embedder
) -> None:
    """Importing torch took 1.5-2.3 s of a 3.5 s `newsdesk ask`: a question and an
    update's few chunks run through the numpy pass (index.npencoder) instead."""
    if gpu_possible():
        pytest.skip("this torch build may see a GPU, so choosing the device asks torch")
    index = str(tmp_path / "ix")
    Indexer(make_settings(tmp_path / "ix"), embedder).build([news_file])
    tram = {
        "id": "tram",
        "title": "New tram line opens in the old town",
        "date": "2024-05-06",
        "text": "The new tram line through the old town opened on Saturday. Trams run "
        "every six minutes between the station and the university.",
    }
    more = str(write_jsonl(tmp_path / "tram.jsonl", [tram]))
    commands = [
        ["ask", "When will ferries run?", "--local", "--index-dir", index],
        ["index", "update", more, "--index-dir", index],
        ["ask", "How often do the trams run?", "--local", "--index-dir", index],
    ]
    output = run_in_one_process(commands, tmp_path)
    first, rest = output.split("added", 1)
    assert "every ten minutes" in first and "[1]" in first
    assert "every six minutes" in rest
    assert output.rstrip().endswith("False")
