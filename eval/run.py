"""One evaluation run: index the articles, ask every question the way `newsdesk ask`
does, and score each answer against its gold evidence."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval.dataset import Question, load_questions
from eval.metrics import (
    QuestionResult,
    citation_correct,
    contains_gold,
    f1,
    gold_of,
    is_relevant,
    question_result,
    summarize,
    threshold_curve,
)
from index.build import Indexer, source_names
from index.manifest import read_manifest
from index.types import Problem
from newsdesk.settings import Settings
from rag.generate import open_answerer
from rag.types import Answer

HISTORY_FILE = "eval_history.jsonl"
Progress = Callable[[int, int], None]


@dataclass
class EvalResult:
    report: dict[str, Any]
    per_question: list[dict[str, Any]]
    problems: list[Problem] = field(default_factory=list)


def prepare_index(settings: Settings, articles: Sequence[Path]) -> None:
    """Reuse the index when it was built from exactly these sources (updating what
    changed); otherwise build a fresh one, so scores never mix in other articles."""
    manifest = read_manifest(settings.index_dir)
    indexer = Indexer(settings)
    if manifest is not None and manifest.sources == source_names(articles):
        indexer.update(articles, prune=True)
    else:
        indexer.build(articles)


def run_eval(
    questions_file: Path,
    articles: Sequence[Path],
    settings: Settings,
    k: int = 10,
    limit: int | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    prepare_index(settings, articles)
    answerer = open_answerer(settings)
    question_set = load_questions(questions_file, answerer.reader.articles)
    questions = question_set.questions[:limit] if limit else question_set.questions
    rows: list[QuestionResult] = []
    records: list[dict[str, Any]] = []
    scores: list[tuple[float, bool]] = []
    answers: list[Answer] = []
    for done, question in enumerate(questions, start=1):
        answer = answerer.ask(question.question, k=k)
        answers.append(answer)
        row = question_result(answer, gold_of(question))
        rows.append(row)
        records.append(per_question(question, answer, row, k))
        scores.append(
            (answer.best_score if answer.best_score is not None else -math.inf, question.answerable)
        )
        if progress is not None:
            progress(done, len(questions))
    report: dict[str, Any] = dict(summarize(rows))
    report["counts"] |= {
        "articles": answerer.reader.manifest.article_count,
        "chunks": answerer.reader.manifest.chunk_count,
    }
    if settings.answer.answerer == "llm":
        report["llm"] = generation_summary(answers)
    report["curves"] = {
        "hit_at_k": hit_curve(records, k),
        "abstention_tradeoff": threshold_curve(scores, [round(t * 0.02, 2) for t in range(10, 61)]),
    }
    report["meta"] = {
        "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "questions_file": str(questions_file),
        "questions_sha256": question_set.sha256,
        "questions_format": question_set.format,
        "limit": limit,
        "k": k,
        "index_dir": str(settings.index_dir),
        "index_version": answerer.reader.version,
        "settings_hash": answerer.settings_hash,
        "model": answerer.reader.manifest.model,
        "abstain_below": settings.answer.abstain_below,
        "answerer": settings.answer.answerer,
        "llm_model": settings.llm.model if settings.answer.answerer == "llm" else None,
    }
    return EvalResult(report, records, question_set.problems)


def generation_summary(answers: Sequence[Answer]) -> dict[str, Any]:
    """How the generated answers fared in the support check (rag.support): the share of
    their sentences judged unsupported, and how often the model was not used at all."""
    generated = [a for a in answers if a.answerer == "llm"]
    verdicts = [s.verdict for a in generated for s in a.sentences]
    total = len(verdicts)
    return {
        "answers": len(answers),
        "generated": len(generated),
        "fell_back_to_extractive": len(answers) - len(generated),
        "refused": sum(a.abstained for a in generated),
        "sentences": total,
        **{
            f"{verdict}_share": round(verdicts.count(verdict) / total, 4) if total else None
            for verdict in ("supported", "partial", "unsupported")
        },
    }


def per_question(question: Question, answer: Answer, row: QuestionResult, k: int) -> dict[str, Any]:
    """What a person needs to judge one question: gold, what was cited, and whether it was right."""
    gold = row.gold
    rank = next(
        (n for n, span in enumerate(row.ranked[:k], start=1) if is_relevant(span, gold.evidence)),
        None,
    )
    return {
        "id": question.id,
        "question": question.question,
        "kind": question.kind,
        "answerable": question.answerable,
        "answers": list(question.answers),
        "evidence": [
            {"article_id": e.article_id, "start": e.start, "end": e.end, "text": e.text}
            for e in question.evidence
        ],
        "answer": answer.answer,
        "abstained": answer.abstained,
        "best_score": answer.best_score,
        "first_relevant_rank": rank,
        "citations": [
            {
                "n": cited.n,
                "article_id": c.span.article_id,
                "start": c.span.start,
                "end": c.span.end,
                "text": c.text,
                "correct": citation_correct(c.span, c.text, gold) if gold.answerable else False,
            }
            for c, cited in zip(row.citations, answer.citations, strict=True)
        ],
        "contains_gold": contains_gold(answer.answer, gold.answers)
        if not answer.abstained
        else False,
        "f1": f1(answer.answer, gold.answers) if not answer.abstained else 0.0,
        "latency_ms": row.latency_ms,
    }


def hit_curve(records: Sequence[dict[str, Any]], k: int) -> dict[str, float | None]:
    """hit@n for n = 1..k over answerable questions: the plot's data."""
    ranks = [r["first_relevant_rank"] for r in records if r["answerable"]]
    if not ranks:
        return {}
    return {
        str(n): sum(1 for x in ranks if x is not None and x <= n) / len(ranks)
        for n in range(1, k + 1)
    }


def append_history(index_dir: Path, report: dict[str, Any]) -> None:
    """One line per run, so `newsdesk eval history` shows whether a change helped."""
    meta = report["meta"]
    line = {
        "date": meta["date"],
        "index_version": meta["index_version"],
        "settings_hash": meta["settings_hash"],
        "questions_sha256": meta["questions_sha256"][:12],
        "questions": report["counts"]["questions"],
        "hit@10": report["retrieval"]["hit@10"],
        "citation_precision": report["citation"]["precision"],
        "citation_recall": report["citation"]["recall"],
        "abstention_accuracy": report["abstention"]["accuracy"],
    }
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / HISTORY_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def read_history(index_dir: Path) -> list[dict[str, Any]]:
    path = index_dir / HISTORY_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
