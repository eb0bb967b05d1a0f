"""The CI gate: the figures eval/floors.json names must not fall below their floors.

The floors are measured on the `report` split of the SQuAD subset, whose articles no
calibration saw, and the gate is shown to reject the trivial baselines
(eval.baselines): a floor that a system refusing everything would pass guards nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FLOORS_FILE = Path(__file__).with_name("floors.json")


def read_floors(path: Path = FLOORS_FILE) -> dict[str, Any]:
    """floors.json: `floors` (figure -> minimum), the question set and split they hold
    on, and `measured`: when, on which commit and settings, and what was measured."""
    floors: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return floors


def figure(report: Mapping[str, Any], key: str) -> float | None:
    """A figure by its dotted name: "answer.correct" is report["answer"]["correct"], or
    report["answer.correct"] in a flat record such as floors.json's measurements."""
    if key in report:
        value = report[key]
    else:
        section, metric = key.split(".", 1)
        value = report.get(section, {}).get(metric)
    return None if value is None else float(value)


def below_floors(report: Mapping[str, Any], floors: Mapping[str, float]) -> dict[str, float | None]:
    """The figures under their floor, with what was measured. A figure that could not
    be measured fails too: a system that cites nothing has no precision to pass on."""
    failed = {}
    for key, floor in floors.items():
        value = figure(report, key)
        if value is None or value < floor:
            failed[key] = value
    return failed
