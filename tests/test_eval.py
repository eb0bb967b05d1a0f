"""`newsdesk eval` end to end on a small hand-made question set: real model, real index."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from eval.cli import eval_group
from rag.types import CANNOT_ANSWER
from tests.conftest import NEWS, write_jsonl
from tests.llm_server import Plan, ScriptedLLM


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


def test_eval_writes_reports_and_history(tmp_path: Path):
    articles = write_jsonl(tmp_path / "news.jsonl", NEWS)
    questions = question_set(tmp_path)
    out = tmp_path / "out"
    runner = CliRunner()
    args = [str(questions), "--articles", str(articles), "--out", str(out), "--json"]
    result = runner.invoke(eval_group, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["counts"] == {
        "questions": 3,
        "answerable": 2,
        "unanswerable": 1,
        "articles": 3,
        "chunks": 3,
    }
    assert report["retrieval"]["hit@1"] == 1.0
    assert report["citation"]["recall"] == 1.0
    assert report["abstention"]["recall"] == 1.0
    for name in (
        "report.json",
        "report.md",
        "per_question.jsonl",
        "hit_at_k.png",
        "abstention_tradeoff.png",
    ):
        assert (out / name).stat().st_size > 0
    rows = [json.loads(line) for line in (out / "per_question.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q-cables", "q-crop", "q-none"]
    assert rows[0]["first_relevant_rank"] == 1 and rows[2]["abstained"]

    again = runner.invoke(eval_group, args[:-1])  # reuses the index: nothing to re-embed
    assert again.exit_code == 0, again.output
    history = runner.invoke(eval_group, ["history", "--index-dir", str(out / "index")])
    lines = history.stdout.strip().splitlines()
    assert lines[0].startswith("date") and len(lines) == 3


def test_eval_rejects_a_file_that_is_not_a_question_set(tmp_path: Path):
    articles = write_jsonl(tmp_path / "news.jsonl", NEWS)
    result = CliRunner().invoke(
        eval_group, [str(articles), "--articles", str(articles), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "news.jsonl" in result.output and "question" in result.output


def test_eval_with_a_generating_model_reports_the_support_check(tmp_path: Path):
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
        cables = next(key for text, key in keys.items() if "steel cables" in text)
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
    assert report["llm"] == {
        "answers": 3,
        "generated": 2,
        "fell_back_to_extractive": 1,
        "refused": 1,
        "sentences": 1,
        "supported_share": 1.0,
        "partial_share": 0.0,
        "unsupported_share": 0.0,
    }
    assert report["citation"]["recall"] == 1.0 and report["abstention"]["recall"] == 1.0
