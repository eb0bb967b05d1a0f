"""`newsdesk eval` end to end on a small hand-made question set: real model, real index."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bench.scripted_llm import Plan, ScriptedLLM
from eval.cli import eval_group
from eval.gate import below_floors
from eval.run import run_eval
from newsdesk.settings import Settings
from rag.types import CANNOT_ANSWER
from tests.conftest import NEWS, write_jsonl


def _evidence(article: dict[str, str], sentence: str, answer: str) -> dict[str, object]:
    start = article["text"].index(sentence)
    return {
        "article_id": article["id"],
        "text": sentence,
        "start": start,
        "end": start + len(sentence),
        "answer_start": article["text"].index(answer),
    }


def question_set(tmp_path: Path) -> Path:
    harbour, orchard = NEWS[0], NEWS[1]
    cables = "Engineers found cracks in two of the steel cables during a routine inspection."
    crop = "A warm spring and late rain helped the crop."
    questions = write_jsonl(
        tmp_path / "questions.jsonl",
        [
            {
                "id": "q-cables",
                "question": "What did engineers find in the bridge cables?",
                "answers": ["cracks"],
                "answerable": True,
                "evidence": [_evidence(harbour, cables, "cracks")],
            },
            {
                "id": "q-crop",
                "question": "What helped the apple crop?",
                "answers": ["A warm spring and late rain"],
                "answerable": True,
                "evidence": [_evidence(orchard, crop, "A warm spring")],
            },
            {
                "id": "q-none",
                "question": "What is the airspeed velocity of an unladen swallow?",
                "answers": [],
                "answerable": False,
                "evidence": [],
            },
        ],
    )
    return questions


def test_eval_writes_reports_and_history(tmp_path: Path) -> None:
    articles = write_jsonl(tmp_path / "news.jsonl", NEWS)
    questions = question_set(tmp_path)
    out = tmp_path / "out"
    runner = CliRunner()
    args = [str(questions), "--articles", str(articles), "--out", str(out), "--json"]
    result = runner.invoke(eval_group, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    counts = {key: value for key, value in report["counts"].items() if key != "citations"}
    assert counts == {  # each answerable question asked again with its article hidden
        "questions": 5,
        "answerable": 2,
        "unanswerable": 1,
        "not_in_collection": 2,
        "articles": 3,
        "chunks": 3,
    }
    assert report["meta"]["k"] == 8 and report["meta"]["ranked_depth"] == 10
    assert report["meta"]["split"] == "all"
    assert report["retrieval"]["hit@1"] == 1.0
    assert report["abstention"]["recall_unanswerable"] == 1.0
    assert report["ci95"]["answer.correct"] is not None
    baselines = report["baselines"]
    assert set(baselines) == {"never_abstain", "always_abstain", "lead_sentence"}
    assert baselines["always_abstain"]["answer"]["correct_answerable"] == 0.0
    assert baselines["always_abstain"]["abstention"]["recall"] == 1.0
    assert baselines["never_abstain"]["abstention"]["recall"] == 0.0
    # Both gold sentences are their article's second: the closest sentence finds them,
    # the lead sentence never does.
    assert baselines["never_abstain"]["answer"]["correct_answerable"] == 1.0
    assert baselines["lead_sentence"]["answer"]["correct_answerable"] == 0.0
    assert below_floors(baselines["never_abstain"], {"abstention.recall": 0.1})
    markdown = (out / "report.md").read_text()
    assert "| answer.correct |" in markdown and "best baseline" in markdown
    for name in (
        "report.json",
        "report.md",
        "per_question.jsonl",
        "hit_at_k.png",
        "abstention_tradeoff.png",
    ):
        assert (out / name).stat().st_size > 0
    rows = [json.loads(line) for line in (out / "per_question.jsonl").read_text().splitlines()]
    assert [(r["id"], r["group"]) for r in rows] == [
        ("q-cables", "answerable"),
        ("q-crop", "answerable"),
        ("q-none", "unanswerable"),
        ("q-cables", "not_in_collection"),
        ("q-crop", "not_in_collection"),
    ]
    assert rows[0]["first_relevant_rank"] == 1
    assert rows[2]["abstained"] and rows[2]["correct"]
    assert set(rows[0]["baselines_correct"]) == set(baselines)
    # The report's figures are the per-question verdicts, counted.
    answerable = [r["correct"] for r in rows if r["group"] == "answerable"]
    assert report["answer"]["correct_answerable"] == sum(answerable) / 2
    assert report["answer"]["correct"] == sum(r["correct"] for r in rows) / 5
    cited = [c["correct"] for r in rows for c in r["citations"]]
    assert report["citation"]["precision"] == (sum(cited) / len(cited) if cited else None)

    again = runner.invoke(eval_group, args[:-1])  # reuses the index: nothing to re-embed
    assert again.exit_code == 0, again.output
    history = runner.invoke(eval_group, ["history", "--index-dir", str(out / "index")])
    lines = history.stdout.strip().splitlines()
    assert lines[0].startswith("date") and len(lines) == 3


def test_eval_rejects_a_file_that_is_not_a_question_set(tmp_path: Path) -> None:
    articles = write_jsonl(tmp_path / "news.jsonl", NEWS)
    result = CliRunner().invoke(
        eval_group, [str(articles), "--articles", str(articles), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "news.jsonl" in result.output and "question" in result.output


@pytest.mark.llm
@pytest.mark.server
def test_eval_with_a_generating_model_reports_the_support_check(tmp_path: Path) -> None:
    """A scripted model: right about the cables, citing the wrong passage about the
    crop, refusing the swallow. The report says what the check made of it."""
    articles = write_jsonl(tmp_path / "news.jsonl", NEWS)

    def reply(prompt: str) -> Plan:
        keys = {
            text: key
            for key, text in re.findall(
                r'<passage key="(\d+)"[^>]*>\n(.*?)\n</passage>', prompt, re.DOTALL
            )
        }
        cables = next((key for text, key in keys.items() if "steel cables" in text), None)
        if cables is None:  # asked with the harbour article hidden
            return Plan(text=CANNOT_ANSWER)
        if "cables" in prompt.rsplit("Question:", 1)[-1]:
            return Plan(text=f"Engineers found cracks in two steel cables [{cables}].")
        if "crop" in prompt.rsplit("Question:", 1)[-1]:
            return Plan(text=f"Cold weather ruined the apple crop [{cables}].")
        return Plan(text=CANNOT_ANSWER)

    with ScriptedLLM(responder=reply) as llm:
        questions = str(question_set(tmp_path))
        args = [
            questions, "--articles", str(articles), "--out", str(tmp_path / "out"), "--json",
            "--llm-base-url", llm.base_url, "--llm-model", "scripted",
        ]  # fmt: skip
        result = CliRunner().invoke(eval_group, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["meta"]["answerer"] == "llm" and report["meta"]["llm_model"] == "scripted"
    llm = report["llm"]
    assert llm["answers"] == 5 and llm["generated"] + llm["fell_back_to_extractive"] == 5
    assert llm["generated"] >= 1 and "supported_share" in llm
    # Generated answers and fallbacks are scored apart.
    assert llm["generated_figures"]["counts"]["questions"] == llm["generated"]
    assert llm["fallback_figures"]["counts"]["questions"] == llm["fell_back_to_extractive"]
    assert report["abstention"]["recall_unanswerable"] == 1.0
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "fell back" in markdown and "All 5 answers fell back" not in markdown


@pytest.mark.llm
@pytest.mark.server
def test_eval_whose_answers_all_fell_back_says_so_at_the_top(tmp_path: Path) -> None:
    articles = write_jsonl(tmp_path / "news.jsonl", NEWS)
    with ScriptedLLM(responder=lambda prompt: Plan(text="bad request", status=400)) as llm:
        out = str(tmp_path / "out")
        args = [
            str(question_set(tmp_path)), "--articles", str(articles), "--out", out,
            "--llm-base-url", llm.base_url, "--llm-model", "scripted",
        ]  # fmt: skip
        result = CliRunner().invoke(eval_group, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["llm"]["generated"] == 0
    assert report["llm"]["generated_figures"]["answer"]["correct"] is None
    markdown = (tmp_path / "out" / "report.md").read_text().splitlines()
    assert markdown[2].startswith("**All 5 answers fell back to the extractive answerer")


def test_eval_of_one_split_keeps_every_article_in_the_index(tmp_path: Path) -> None:
    articles = write_jsonl(tmp_path / "news.jsonl", NEWS)
    questions = question_set(tmp_path)
    splits = tmp_path / "splits.json"  # found beside the questions
    splits.write_text(json.dumps({"train": ["harbour"], "report": ["orchard", "chess"]}))
    out = tmp_path / "out"
    args = [str(questions), "--articles", str(articles), "--out", str(out), "--json"]
    result = CliRunner().invoke(eval_group, [*args, "--split", "report"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["meta"]["split"] == "report"
    assert report["counts"]["articles"] == 3  # the index holds the whole collection
    rows = [json.loads(line) for line in (out / "per_question.jsonl").read_text().splitlines()]
    assert [(r["id"], r["group"]) for r in rows] == [
        ("q-crop", "answerable"),
        ("q-crop", "not_in_collection"),
    ]
    assert "q-none" in result.output  # no article places it in a split: said, not hidden


# --- questions asked as of a day ---------------------------------------------------

BRIDGE_NEWS = [
    {
        "id": "closed",
        "title": "Harbour bridge closed",
        "date": "2024-03-05",
        "source": "Coast Times",
        "text": "The harbour bridge was closed on Tuesday after engineers found cracks "
        "in its cables. Ferries will carry commuters instead.",
    },
    {
        "id": "reopened",
        "title": "Harbour bridge reopened",
        "date": "2024-03-13",
        "source": "Coast Times",
        "text": "The harbour bridge was reopened on Wednesday after repairs to its cables "
        "were finished. The ferries stopped running extra boats.",
    },
]


def _dated(question_id: str, article: dict[str, Any], as_of: str, key: str) -> dict[str, Any]:
    sentence = article["text"].split(". ")[0] + "."
    return {
        "id": question_id,
        "question": "What happened to the harbour bridge this week?",
        "answers": [sentence],
        "evidence": [
            {"article_id": article["id"], "text": sentence, "start": 0, "end": len(sentence)}
        ],
        key: as_of,
    }


def test_dated_questions_are_answered_as_of_their_day(tmp_path: Path) -> None:
    """ "This week" means the week of the question's own date: the same words read the
    closure in the first week of March and the reopening in the second (as of the 15th
    both are published, so only "this week" can leave the closure out)."""
    articles = write_jsonl(tmp_path / "bridge.jsonl", BRIDGE_NEWS)
    questions = write_jsonl(
        tmp_path / "dated.jsonl",
        [
            _dated("first-week", BRIDGE_NEWS[0], "2024-03-08", "as_of"),
            _dated("second-week", BRIDGE_NEWS[1], "2024-03-15", "date"),
        ],
    )
    result = run_eval(questions, [articles], Settings(index_dir=tmp_path / "ix"))
    rows = {(r["id"], r["group"]): r for r in result.per_question}
    first, second = rows["first-week", "answerable"], rows["second-week", "answerable"]
    assert (first["as_of"], second["as_of"]) == ("2024-03-08", "2024-03-15")
    assert set(first["read"]) == {"closed"} and set(second["read"]) == {"reopened"}
    assert {c["article_id"] for c in first["citations"]} <= {"closed"}
    assert {c["article_id"] for c in second["citations"]} <= {"reopened"}
