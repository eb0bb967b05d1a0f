"""The CI gate: answers on the held-out `report` split must not fall below eval/floors.json,
and the gate must reject what a trivial system scores (eval.baselines)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from eval.gate import below_floors, read_floors
from eval.run import run_eval
from newsdesk.settings import Settings
from tests.conftest import shared_data

GATED = {"answer.correct", "citation.precision", "abstention.recall"}


def test_floors_say_what_they_were_measured_on() -> None:
    floors = read_floors()
    assert floors["split"] == "report"
    assert set(floors["floors"]) >= GATED
    measured = floors["measured"]
    assert measured["date"] and measured["commit"] and measured["settings_hash"]
    # A floor sits at or below what was measured, never above it.
    assert not below_floors(measured["figures"], floors["floors"])


@pytest.mark.parametrize("baseline", ["never_abstain", "always_abstain"])
def test_the_gate_rejects_the_recorded_baselines(baseline: str) -> None:
    """Measured in the same run as the floors, on the same retrieved passages."""
    floors = read_floors()
    assert below_floors(floors["measured"]["baselines"][baseline], floors["floors"])


def test_an_unmeasured_figure_fails_the_gate() -> None:
    """A system that cites nothing has no citation precision to pass on."""
    failed = below_floors({"citation": {"precision": None}}, {"citation.precision": 0.1})
    assert failed == {"citation.precision": None}
    assert below_floors({"answer": {"correct": 0.5}}, {"answer.correct": 0.5}) == {}


@pytest.mark.slow
def test_report_split_stays_above_floors(tmp_path: Path) -> None:
    squad = shared_data("squad-dev-subset")
    floors = read_floors()
    began = time.perf_counter()
    result = run_eval(
        squad / "questions.jsonl",
        [squad / "articles.jsonl"],
        Settings(index_dir=tmp_path / "ix"),
        split=floors["split"],
    )
    report = result.report
    assert result.problems == []  # no question skipped, none only partly located
    counts = report["counts"]
    assert counts["answerable"] + counts["unanswerable"] == floors["measured"]["questions"]
    assert counts["not_in_collection"] == counts["answerable"]
    measured = {key: report[key.split(".")[0]][key.split(".")[1]] for key in floors["floors"]}
    print(json.dumps({"measured": measured, "seconds": round(time.perf_counter() - began)}))
    assert not below_floors(report, floors["floors"]), f"below eval/floors.json: {measured}"
    for baseline in ("never_abstain", "always_abstain"):
        assert below_floors(report["baselines"][baseline], floors["floors"]), baseline
