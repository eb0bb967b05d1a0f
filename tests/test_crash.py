"""Crash safety, for real: `newsdesk index update` and `build` SIGKILLed at points
spread over the whole run, each followed by `index check`, a question, and the
`update` that resumes, which must reach the state an uninterrupted run reaches.

Kill points come two ways (see tests/crash_runner.py): at the events the index's
writing functions report (before and after every Chroma write, sentence-vector
append and flush, keyword segment, the database commit that switches the state, and
clean-up), spread evenly
over a recorded run; and at random times, which land inside those calls too
(Chroma's own writes included). CI runs 24 points with a fixed seed, two at a time;
`NEWSDESK_CRASH_POINTS=200 NEWSDESK_CRASH_SEED=random pytest tests/test_crash.py`
is the full size. Every point is written to test-artifacts/crash.json.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from index.db import read_articles, read_manifest
from index.demo import demo_sources
from tests.conftest import ROOT, write_jsonl

# A fork server SIGKILLs index writes at two dozen points.
pytestmark = [pytest.mark.process, pytest.mark.slow]

POINTS = int(os.environ.get("NEWSDESK_CRASH_POINTS", "24"))
SEED = os.environ.get("NEWSDESK_CRASH_SEED", "0")
ARTIFACTS = Path(os.environ.get("NEWSDESK_TEST_ARTIFACTS", ROOT / "test-artifacts"))
KEPT = ["asylum", "crane", "stampede", "flag", "korea", "imprisoned"]
REMOVED = ["worship", "ie9"]
ADDED = ["lanterns", "hackers"]
QUESTION = "How many people were killed when the crane collapsed in Mecca?"
KILLED = -signal.SIGKILL


@dataclass
class Runner:
    """The fork server of tests/crash_runner.py, and a folder for the runs' output."""

    process: subprocess.Popen[bytes]
    logs: Path
    runs: int = 0
    seconds: dict[str, list[float]] = field(default_factory=dict)  # by command

    def run(
        self,
        argv: list[str],
        kill_at: int | None = None,
        events: Path | None = None,
        kill_after: float | None = None,
    ) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) of one command; -9 when it was killed."""
        self.runs += 1
        out, err = self.logs / f"{self.runs}.out", self.logs / f"{self.runs}.err"
        command = {
            "argv": argv,
            "out": str(out),
            "err": str(err),
            "kill_at": kill_at,
            "events": str(events) if events else None,
        }
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        self.process.stdin.flush()
        began = time.monotonic()
        pid = self._read()["pid"]
        if kill_after is not None and not self._ready(kill_after):
            os.kill(pid, signal.SIGKILL)  # not reaped yet: the runner waits on our reply
        status = int(self._read()["status"])
        self.seconds.setdefault(" ".join(argv[:2]), []).append(time.monotonic() - began)
        return status, out.read_text(), err.read_text()

    def _ready(self, timeout: float) -> bool:
        assert self.process.stdout is not None
        return bool(select.select([self.process.stdout], [], [], timeout)[0])

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = b""
        while not line.endswith(b"\n"):  # unbuffered: select must see what is unread
            byte = self.process.stdout.read(1)
            if not byte:
                raise RuntimeError(f"crash runner died; see {self.logs}")
            line += byte
        reply: dict[str, Any] = json.loads(line)
        return reply


@pytest.fixture(scope="module")
def runners(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Runner]]:
    """Two, one per core: a run spends much of its time not computing."""
    started = []
    for _ in range(2):
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "crash_runner.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            bufsize=0,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
        )
        started.append(Runner(process, tmp_path_factory.mktemp("crash-logs")))
    for runner in started:
        assert runner._read() == {"ready": True}
    yield started
    for runner in started:
        assert runner.process.stdin is not None
        runner.process.stdin.close()
        runner.process.wait(timeout=30)


@dataclass
class State:
    """What an index holds, as far as its live state says: article ids and hashes, chunks."""

    hashes: dict[str, str]
    chunks: int

    @classmethod
    def of(cls, index_dir: Path) -> State | None:
        manifest = read_manifest(index_dir)
        if manifest is None:
            return None
        entries = manifest.articles.items()
        return cls({i: e.hash for i, e in entries}, sum(e.chunks for _, e in entries))


@dataclass
class Collections:
    """The two article sets, the index of the first, and the state the second reaches."""

    v1: Path
    v2: Path
    before: Path  # an index of v1, copied for every kill point
    first: State
    final: State
    events: dict[str, int] = field(default_factory=dict)  # per command: events in a clean run
    seconds: dict[str, float] = field(default_factory=dict)


def _demo() -> dict[str, dict[str, Any]]:
    jsonl = next(p for p in demo_sources() if p.name == "wikinews.jsonl")
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    return {r["id"].removeprefix("GUM_news_"): r for r in records}


@pytest.fixture(scope="module")
def collections(runners: list[Runner], tmp_path_factory: pytest.TempPathFactory) -> Collections:
    root = tmp_path_factory.mktemp("crash")
    demo = _demo()
    v1 = write_jsonl(root / "v1.jsonl", [demo[name] for name in KEPT + REMOVED])
    crane = dict(demo["crane"], text=demo["crane"]["text"] + "\nCleanup crews worked overnight.")
    korea = dict(demo["korea"], text=demo["korea"]["text"].replace("North", "The North", 1))
    edited = {"crane": crane, "korea": korea}
    v2 = write_jsonl(root / "v2.jsonl", [edited.get(name, demo[name]) for name in KEPT + ADDED])
    runner = runners[0]
    before = root / "before"
    status, _, err = runner.run(["index", "build", str(v1), "--index-dir", str(before)])
    assert status == 0, err
    first = State.of(before)
    assert first is not None
    found = Collections(v1, v2, before, first, first)
    for name, argv in _commands(found, root / "reference").items():
        index_dir = Path(argv[-1])
        shutil.copytree(before, index_dir)
        events = root / f"{name}.events"
        began = time.monotonic()
        status, _, err = runner.run(argv, events=events)
        found.seconds[name] = time.monotonic() - began
        assert status == 0, err
        found.events[name] = len(events.read_text().splitlines())
        state = State.of(index_dir)
        assert state is not None
        if name == "update":
            found.final = state
        else:  # the build reaches what the update reaches
            assert state == found.final
    assert found.final != first
    return found


def _commands(c: Collections, index_dir: Path) -> dict[str, list[str]]:
    """What is killed: an update (edits, additions, removals) and a full rebuild."""
    return {
        "update": ["index", "update", str(c.v2), "--prune", "--index-dir", f"{index_dir}-update"],
        "build": ["index", "build", str(c.v2), "--index-dir", f"{index_dir}-build"],
    }


def _kill_points(c: Collections, rng: random.Random) -> list[tuple[str, int | None, float]]:
    """(command, event, fraction): two thirds at events spread evenly over a recorded run
    (jittered); one third at a random fraction of a clean run's duration."""
    points: list[tuple[str, int | None, float]] = []
    for number in range(POINTS):
        name = ("update", "build")[number % 2]
        nth, per_command = number // 2, (POINTS + 1 - number % 2) // 2
        if nth % 3 == 2:
            points.append((name, None, rng.uniform(0.1, 0.9)))
            continue
        step = c.events[name] / per_command
        points.append((name, min(int((nth + rng.random()) * step) + 1, c.events[name]), 0.0))
    return points


def _survive(
    runner: Runner, c: Collections, index_dir: Path, name: str, event: int | None, fraction: float
) -> dict[str, Any]:
    """One kill point: the command killed there, then the index checked, asked and
    resumed. A timed kill that came after the run ended is tried again earlier."""
    point: dict[str, Any] = {"command": name, "event": event}
    for attempt in range(4):
        shutil.copytree(c.before, index_dir)
        argv = [*_commands(c, index_dir)[name][:-1], str(index_dir)]
        seconds = None if event else fraction * c.seconds[name] / 2**attempt
        status, _, err = runner.run(argv, kill_at=event, kill_after=seconds)
        assert status in (0, KILLED), err
        point.update(seconds=seconds, killed=status == KILLED)
        if point["killed"]:
            break
        shutil.rmtree(index_dir)
    assert point["killed"], point
    state = State.of(index_dir)  # what serves is the state before or after, never a mix
    assert state in (c.first, c.final), point
    point["switched"] = state == c.final
    point["leftovers"] = _check(runner, index_dir)
    _ask(runner, index_dir)
    status, _, err = runner.run(["index", "update", str(c.v2), "--prune", *argv[-2:]])
    assert status == 0, err
    assert State.of(index_dir) == c.final, point
    assert _check(runner, index_dir) == [], point
    shutil.rmtree(index_dir)
    return point


def test_killed_writes_leave_a_working_index_and_resume_to_the_same_state(
    runners: list[Runner], collections: Collections, tmp_path: Path
) -> None:
    rng = random.Random(None if SEED == "random" else int(SEED))
    points = _kill_points(collections, rng)

    def work(lane: int) -> list[dict[str, Any]]:
        return [
            _survive(runners[lane], collections, tmp_path / f"ix-{n}", *point)
            for n, point in enumerate(points)
            if n % len(runners) == lane
        ]

    with ThreadPoolExecutor(len(runners)) as pool:
        record = [p for done in pool.map(work, range(len(runners))) for p in done]
    seconds: dict[str, list[float]] = {}
    for runner in runners:
        for command, times in runner.seconds.items():
            seconds.setdefault(command, []).extend(times)
    summary = {
        "kill_points": len(record),
        "survived": len(record),  # every assertion in _survive held for each
        "killed_after_the_switch": sum(p["switched"] for p in record),
        "left_leftovers": sum(bool(p["leftovers"]) for p in record),
        "events_in_a_clean_run": collections.events,
        "seconds_of_a_clean_run": collections.seconds,
        "seconds_per_run": {k: round(sum(v) / len(v), 2) for k, v in seconds.items()},
        "points": record,
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "crash.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "points"}))


def _check(runner: Runner, index_dir: Path) -> list[str]:
    """`index check` passes (leftovers are allowed); returns the leftovers it lists."""
    status, out, err = runner.run(["index", "check", "--json", "--index-dir", str(index_dir)])
    found = json.loads(out)
    assert status == 0 and found["ok"], (out, err)
    leftovers: list[str] = found["leftovers"]
    return leftovers


def _ask(runner: Runner, index_dir: Path) -> None:
    """The index answers, citing exact spans of the texts of the state it serves."""
    status, out, err = runner.run(["ask", QUESTION, "--json", "--index-dir", str(index_dir)])
    assert status == 0, err
    answer = json.loads(out)
    texts = {i: a.text for i, a in read_articles(index_dir).items()}
    assert answer["citations"], answer
    for citation in answer["citations"]:
        article = texts[citation["article_id"]]
        assert article[citation["start"] : citation["end"]] == citation["text"], citation
