"""The CI gate: citation quality on real data must not drop below the recorded floors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.run import run_eval
from newsdesk.settings import Settings
from tests.conftest import ROOT, SHARED_DATA

SQUAD = SHARED_DATA / "squad-dev-subset"


@pytest.mark.slow
def test_squad_metrics_stay_above_floors(tmp_path: Path):
    if not SQUAD.exists():
        pytest.skip("shared squad data not beside the project")
    floors = json.loads((ROOT / "eval" / "floors.json").read_text())
    result = run_eval(
        SQUAD / "questions.jsonl",
        [SQUAD / "articles.jsonl"],
        Settings(index_dir=tmp_path / "ix"),
        limit=floors["limit"],
    )
    measured = {
        key: result.report[section][metric]
        for key in floors
        if "." in key
        for section, metric in [key.split(".", 1)]
    }
    print(json.dumps(measured))
    below = {key: value for key, value in measured.items() if value < floors[key]}
    assert not below, f"below the floors in eval/floors.json: {below}"
