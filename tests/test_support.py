"""The support check on hand-labelled pairs (tests/data/support_pairs.jsonl), and its parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.support_check import LABELS, judged, load_pairs, scores
from index.embed import Embedder
from index.reader import IndexReader
from rag.answer import Answerer
from rag.support import Thresholds, facts
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def report(demo_index: Path, embedder: Embedder) -> dict[str, object]:
    settings = make_settings(demo_index)
    answerer = Answerer(IndexReader(settings, embedder), settings)
    pairs = load_pairs()
    (verdicts,) = judged(pairs, answerer, [Thresholds()])
    return scores(pairs, verdicts)


def test_the_labelled_pairs_are_well_formed() -> None:
    pairs = load_pairs()
    assert len(pairs) == 90 and {p.label for p in pairs} == set(LABELS)
    assert len({p.id for p in pairs}) == len(pairs)


def test_the_check_meets_its_floors_on_the_labelled_pairs(report: dict[str, object]) -> None:
    """Floors a little under the calibrated figures (docs/support-check.md): a change
    that makes the check worse fails here."""
    assert report["accuracy"] >= 0.78  # type: ignore[operator]
    assert report["supported_precision"] >= 0.83  # type: ignore[operator]
    assert report["unsupported_shown_as_supported"] <= 3  # type: ignore[operator]
    assert report["unsupported_recall"] >= 0.8  # type: ignore[operator]


def test_facts_normalise_numbers_and_find_names() -> None:
    found = facts("On Monday, Mark Rutte said two of the 1,200 troops left Brussels.")
    assert found["number"] == {"2", "1200"}
    assert {"monday", "mark", "rutte", "brussels"} <= found["name"]
    assert "on" not in found["name"]  # a capital only because it starts the sentence
