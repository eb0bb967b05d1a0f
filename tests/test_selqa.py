"""SelQA answer sentence selection as an evaluation format: reading, ranking, the command."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eval.selqa import (
    SelqaError,
    bootstrap_interval,
    cosine_scorer,
    evaluate,
    is_selqa,
    lead_scorer,
    load_selqa,
    selection,
    without_articles,
)
from index.embed import Embedder
from newsdesk.cli import cli
from tests.conftest import SHARED_DATA

SELQA = SHARED_DATA / "selqa"


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "question": "When did the harbour bridge close?",
        "article": "Harbour",
        "section": "History",
        "topic": "TRAVEL",
        "q_types": ["when"],
        "is_paraphrase": False,
        "candidates": [
            "The harbour is the oldest in the region.",
            "The bridge closed for repairs in March 2024.",
            "Ferries ran every ten minutes.",
        ],
        "answers": [1],
    }
    return base | fields


def write(path: Path, records: list[Any]) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


# --- reading -------------------------------------------------------------------


def test_the_shared_splits_load_whole_and_are_recognised() -> None:
    dev, test = load_selqa(SELQA / "selqa-ass-dev.json"), load_selqa(SELQA / "selqa-ass-test.json")
    assert (len(dev.questions), len(test.questions)) == (785, 1590)
    assert not dev.problems and not test.problems
    assert sum(len(q.candidates) for q in test.questions) == 19519  # as SOURCE.md counts
    assert is_selqa(SELQA / "selqa-ass-test.json")


def test_other_question_sets_and_unreadable_files_are_not_taken_for_selqa(tmp_path: Path) -> None:
    assert not is_selqa(SHARED_DATA / "squad-dev-subset" / "questions.jsonl")
    multihop = write(tmp_path / "multihop.json", [{"query": "q?", "evidence_list": []}])
    assert not is_selqa(multihop)
    assert not is_selqa(tmp_path / "missing.json")
    (tmp_path / "latin1.json").write_bytes(b'[{"question": "caf\xe9"}]')
    assert not is_selqa(tmp_path / "latin1.json")


def test_a_bad_record_is_skipped_naming_the_file_its_index_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path / "selqa.json",
        [
            record(),
            record(answers=[3]),
            record(answers=[]),
            record(candidates="one sentence"),
            record(question=" "),
            record(answers=[True]),
            "not an object",
            record(is_paraphrase="yes"),
        ],
    )
    loaded = load_selqa(path)
    assert len(loaded.questions) == 1
    where = [(p.where, p.field) for p in loaded.problems]
    assert where == [
        (f"{path.as_posix()}[1]", "answers"),
        (f"{path.as_posix()}[2]", "answers"),
        (f"{path.as_posix()}[3]", "candidates"),
        (f"{path.as_posix()}[4]", "question"),
        (f"{path.as_posix()}[5]", "answers"),
        (f"{path.as_posix()}[6]", None),
        (f"{path.as_posix()}[7]", "is_paraphrase"),
    ]
    assert "index 3 is out of range (0-2)" in str(loaded.problems[0])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2", "invalid JSON"),
        ("{}", "expected a JSON array"),
        ("[]", "expected a JSON array"),
        ('[{"question": ""}]', "no usable SelQA record"),
    ],
)
def test_a_file_that_is_not_selqa_at_all_fails_naming_it(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SelqaError, match=message) as caught:
        load_selqa(path)
    assert path.as_posix() in str(caught.value)


def test_excluded_articles_are_matched_without_case_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", [record(article="Doctor Who"), record(), record()])
    kept, removed = without_articles(load_selqa(path).questions, ["doctor who", "Nope"])
    assert len(kept) == 2 and removed == {"doctor who": 1, "Nope": 0}


# --- ranking -------------------------------------------------------------------


def test_selection_scores_the_ranking_by_reciprocal_rank_average_precision_and_top() -> None:
    ranked = selection([0.1, 0.9, 0.5], frozenset({0, 2}))  # order 1, 2, 0: answers at 2 and 3
    assert ranked.reciprocal_rank == pytest.approx(1 / 2)
    assert ranked.average_precision == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert not ranked.top_correct
    assert selection([0.2, 0.9], frozenset({1})).top_correct


def test_ties_keep_candidate_order_so_a_blind_scorer_is_the_lead_baseline() -> None:
    assert selection([0.0, 0.0, 0.0], frozenset({0})) == selection(
        lead_scorer("q", ["a", "b", "c"]), frozenset({0})
    )
    with pytest.raises(ValueError, match="finite"):
        selection([float("nan"), 1.0], frozenset({0}))


def test_the_bootstrap_interval_is_seeded_and_holds_the_mean() -> None:
    values = [1.0] * 70 + [0.0] * 30
    low, high = bootstrap_interval(values)
    assert low < 0.7 < high and high - low < 0.25
    assert bootstrap_interval(values) == [low, high]
    assert bootstrap_interval([1.0] * 10) == [1.0, 1.0]


def test_a_scorer_named_twice_is_run_once(tmp_path: Path) -> None:
    calls: list[str] = []

    def scorer(question: str, candidates: Any) -> list[float]:
        calls.append(question)
        return [float(len(c)) for c in candidates]

    questions = load_selqa(write(tmp_path / "s.json", [record(), record()])).questions
    results = evaluate(questions, {"a": scorer, "b": scorer, "lead": lead_scorer})
    assert len(calls) == 2 and results["b"]["same_as"] == "a"
    assert results["lead"]["accuracy@1"] == 0.0 and results["a"]["accuracy@1"] == 1.0


@pytest.mark.slow  # embeds 150 real SelQA questions' candidates: about 10 s
def test_the_cosine_baseline_beats_the_lead_sentence_on_real_questions(embedder: Embedder) -> None:
    """MiniLM cosine ranks the answer sentence well above where the lead sentence puts it
    (full-split figures: docs; here the first 40 dev questions, to stay quick)."""
    questions = load_selqa(SELQA / "selqa-ass-dev.json").questions[:40]
    results = evaluate(questions, {"cosine": cosine_scorer(embedder), "lead": lead_scorer})
    assert results["cosine"]["mrr"] > results["lead"]["mrr"] + 0.2


def test_the_lead_baseline_on_the_whole_test_split() -> None:
    """No model needed: pins the trivial baseline the report sets beside ours."""
    test = load_selqa(SELQA / "selqa-ass-test.json").questions
    lead = evaluate(test, {"lead": lead_scorer})["lead"]
    assert lead["questions"] == 1590
    assert lead["accuracy@1"] == pytest.approx(350 / 1590, abs=1e-4)  # first sentence answers


# --- the command ---------------------------------------------------------------


def test_newsdesk_eval_recognises_selqa_and_needs_no_articles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """About the format's dispatch and report: the production reader is stood in for by
    the lead baseline (the reader has its own tests), which also shows a scorer given
    twice being run once."""
    monkeypatch.setattr("eval.selqa.production_scorer", lambda *args, **kwargs: lead_scorer)
    path = write(
        tmp_path / "renamed.json",
        [record(), record(article="Doctor Who"), record(answers=[9])],
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["eval", str(path), "--out", str(out), "--exclude-article", "Doctor Who"]
    )
    assert result.exit_code == 3, result.output  # done, one record skipped
    assert f"skipped: {path.as_posix()}[2] [answers]" in result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["meta"]["questions_format"] == "selqa"
    assert report["counts"] == {
        "questions_in_file": 3, "skipped": 1, "excluded": 1, "scored": 1, "candidates": 3,
    }  # fmt: skip
    assert set(report["selection"]) == {"cosine", "lead", "production"}
    assert report["selection"]["production"]["same_as"] == "lead"
    assert report["selection"]["lead"]["mrr_ci95"] == [0.5, 0.5]
    assert "| lead | 0.500 [0.500, 0.500]" in (out / "report.md").read_text(encoding="utf-8")


def test_one_wording_for_invalid_json_across_the_readers(tmp_path: Path) -> None:
    from eval.dataset import QuestionSetError, load_questions
    from index.load import load_sources

    path = tmp_path / "bad.json"
    path.write_text('[{"question": "q"},\n  ', encoding="utf-8")
    said = "invalid JSON (line 2, column 3: Expecting value)"
    assert load_sources([path]).problems[0].message == said
    with pytest.raises(SelqaError, match=re.escape(f"{path.as_posix()}: {said}")):
        load_selqa(path)
    with pytest.raises(QuestionSetError, match=re.escape(f"{path.as_posix()}: {said}")):
        load_questions(path, {})


def test_deeply_nested_file_is_refused_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert not is_selqa(path)
    with pytest.raises(SelqaError, match="nested too deeply"):
        load_selqa(path)
