"""One evaluation run: index the articles, ask every question the way `newsdesk ask`
does, score each answer against its gold evidence, and score the baselines
(eval.baselines) on the very passages the answerer read.

What is measured is what ships: answers read `retrieval.k` passages, as in the
product. Retrieval metrics (hit@1/5/10, MRR@10) are computed on a separate ranked
list of RANKED_DEPTH passages under the same filters, so they do not depend on k.

Each answerable question is asked a second time with its gold articles filtered
out: that is what a question about something not in the collection looks like, and
it should be refused ("not_in_collection"). A question with `as_of` is asked as of
that day (Filters.as_of), which also anchors "this week" in it.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval.baselines import BASELINES, answered_with, quotes
from eval.dataset import ALL, Question, in_split, load_questions, load_splits
from eval.metrics import (
    QuestionResult,
    Report,
    Span,
    answer_correct,
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
from index.db import IndexDB
from index.types import Problem
from newsdesk.settings import Settings
from rag.generate import open_answerer
from rag.retrieve import Filters, Retriever
from rag.types import Answer

HISTORY_FILE = "eval_history.jsonl"
RANKED_DEPTH = 10
ROOT = Path(__file__).resolve().parents[1]
Progress = Callable[[int, int], None]


@dataclass
class EvalResult:
    report: dict[str, Any]
    per_question: list[dict[str, Any]]
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class Ask:
    """One question as asked: under which filters, and whether its gold is hidden."""

    question: Question
    filters: Filters
    not_in_collection: bool = False


def prepare_index(settings: Settings, articles: Sequence[Path]) -> None:
    """Reuse the index when it was built from exactly these sources (updating what
    changed); otherwise build a fresh one, so scores never mix in other articles (an
    index in the old layout is rebuilt: eval's index is its own)."""
    db = IndexDB(settings.index_dir)
    manifest = None if db.legacy() else db.read_manifest()
    indexer = Indexer(settings)
    if manifest is not None and manifest.sources == source_names(articles):
        indexer.update(articles, prune=True)
    else:
        indexer.build(articles)


def select(
    questions: Sequence[Question], questions_file: Path, split: str, splits_file: Path | None
) -> tuple[list[Question], list[Problem]]:
    """The questions of one split (eval.dataset.in_split); the index keeps every article."""
    if split == ALL:
        return list(questions), []
    path = splits_file or questions_file.with_name("splits.json")
    return in_split(questions, load_splits(path), split, path.as_posix())


def asks(questions: Sequence[Question], article_ids: Sequence[str]) -> list[Ask]:
    """Every question as is, then every answerable one with its gold articles hidden."""
    plain = [Ask(q, Filters(as_of=q.as_of)) for q in questions]
    hidden = []
    for q in questions:
        if q.answerable and q.evidence:
            gold = {e.article_id for e in q.evidence}
            others = tuple(a for a in article_ids if a not in gold)
            hidden.append(Ask(q, Filters(article_ids=others, as_of=q.as_of), True))
    return plain + hidden


def run_eval(
    questions_file: Path,
    articles: Sequence[Path],
    settings: Settings,
    split: str = ALL,
    splits_file: Path | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    prepare_index(settings, articles)
    answerer = open_answerer(settings)
    reader = answerer.reader
    ranker = Retriever(reader, settings.retrieval)
    question_set = load_questions(questions_file, reader.articles)
    questions, skipped = select(question_set.questions, questions_file, split, splits_file)
    questions = questions[:limit] if limit else questions
    todo = asks(questions, sorted(reader.articles))
    rows: list[QuestionResult] = []
    answers: list[Answer] = []
    records: list[dict[str, Any]] = []
    baselines: dict[str, list[QuestionResult]] = {name: [] for name in BASELINES}
    for done, ask in enumerate(todo, start=1):
        text = ask.question.question
        answer = answerer.ask(text, filters=ask.filters)
        ranked = ranker.retrieve(text, ask.filters, RANKED_DEPTH)
        row = question_result(
            answer,
            gold_of(ask.question),
            ranked=[Span(p.article.id, p.start, p.end) for p in ranked],
            not_in_collection=ask.not_in_collection,
        )
        quoted = quotes(reader, answer.retrieved, reader.embedder.embed_query(text))
        for name, quote in quoted.items():
            baselines[name].append(answered_with(row, quote))
        rows.append(row)
        answers.append(answer)
        records.append(per_question(ask, answer, row, [b[-1] for b in baselines.values()]))
        if progress is not None:
            progress(done, len(todo))
    report: dict[str, Any] = dict(summarize(rows))
    report["baselines"] = {name: answering(baselines[name]) for name in BASELINES}
    report["counts"] |= {
        "articles": reader.manifest.article_count,
        "chunks": reader.manifest.chunk_count,
    }
    if settings.answer.answerer == "llm":
        report["llm"] = llm_summary(rows, answers)
    scores = [
        (a.best_score if a.best_score is not None else -math.inf, r.should_answer)
        for a, r in zip(answers, rows, strict=True)
    ]
    report["curves"] = {
        "hit_at_k": hit_curve(records),
        "abstention_tradeoff": threshold_curve(scores, [round(t * 0.02, 2) for t in range(10, 61)]),
    }
    report["meta"] = {
        "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "questions_file": str(questions_file),
        "questions_sha256": question_set.sha256,
        "questions_format": question_set.format,
        "split": split,
        "limit": limit,
        "k": settings.retrieval.k,
        "ranked_depth": RANKED_DEPTH,
        "index_dir": str(settings.index_dir),
        "index_version": reader.version,
        "settings_hash": answerer.settings_hash,
        **git_commit(),
        "model": reader.manifest.model,
        "abstain_below": settings.answer.abstain_below,
        "answerer": settings.answer.answerer,
        "llm_model": settings.llm.model if settings.answer.answerer == "llm" else None,
    }
    return EvalResult(report, records, [*question_set.problems, *skipped])


def answering(rows: Sequence[QuestionResult]) -> Report:
    """The sections that judge answers, for rows whose retrieval is reported elsewhere
    (a baseline's, or a subset's)."""
    report = summarize(rows)
    return {key: report[key] for key in ("answer", "citation", "abstention", "ci95", "counts")}


def llm_summary(rows: Sequence[QuestionResult], answers: Sequence[Answer]) -> dict[str, Any]:
    """Generated answers and extractive fallbacks scored apart, so a model that mostly
    failed is not credited with the quoting answerer's figures."""
    generated = [r for r, a in zip(rows, answers, strict=True) if a.answerer == "llm"]
    fell_back = [r for r, a in zip(rows, answers, strict=True) if a.answerer != "llm"]
    return {
        **generation_summary(answers),
        "generated_figures": answering(generated),
        "fallback_figures": answering(fell_back),
    }


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


def per_question(
    ask: Ask, answer: Answer, row: QuestionResult, baselines: Sequence[QuestionResult]
) -> dict[str, Any]:
    """What a person needs to judge one question: gold, what was cited, and whether it was right."""
    question, gold = ask.question, row.gold
    rank = next(
        (n for n, span in enumerate(row.ranked, start=1) if is_relevant(span, gold.evidence)),
        None,
    )
    right = row.should_answer
    answered = right and not answer.abstained
    return {
        "id": question.id,
        "question": question.question,
        "group": row.group,
        "kind": question.kind,
        "as_of": question.as_of,
        "answers": list(question.answers),
        "evidence": [
            {"article_id": e.article_id, "start": e.start, "end": e.end, "text": e.text}
            for e in question.evidence
        ],
        "read": [r.article_id for r in answer.retrieved],  # the passages' articles, in order
        "answer": answer.answer,
        "answerer": answer.answerer,
        "abstained": answer.abstained,
        "correct": answer_correct(row),
        "best_score": answer.best_score,
        "first_relevant_rank": rank if right else None,
        "citations": [
            {
                "n": cited.n,
                "article_id": c.span.article_id,
                "start": c.span.start,
                "end": c.span.end,
                "text": c.text,
                "correct": right and citation_correct(c.span, c.text, gold),
            }
            for c, cited in zip(row.citations, answer.citations, strict=True)
        ],
        "contains_gold": answered and contains_gold(answer.answer, gold.answers),
        "f1": f1(answer.answer, gold.answers) if answered else 0.0,
        "baselines_correct": {
            name: answer_correct(b) for name, b in zip(BASELINES, baselines, strict=True)
        },
        "latency_ms": row.latency_ms,
    }


def hit_curve(records: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """hit@n for n = 1..RANKED_DEPTH over answerable questions: the plot's data."""
    ranks = [r["first_relevant_rank"] for r in records if r["group"] == "answerable"]
    if not ranks:
        return {}
    return {
        str(n): sum(1 for x in ranks if x is not None and x <= n) / len(ranks)
        for n in range(1, RANKED_DEPTH + 1)
    }


def git_commit() -> dict[str, Any]:
    """The commit the code was run from, and whether the work tree differed from it
    (None for both outside a git checkout). Read-only: no lock, no index refresh."""
    git = ["git", "--no-optional-locks", "-C", str(ROOT)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit, "git_dirty": bool(status.strip())}


def append_history(index_dir: Path, report: dict[str, Any]) -> None:
    """One line per run, so `newsdesk eval history` shows whether a change helped."""
    meta = report["meta"]
    line = {
        "date": meta["date"],
        "index_version": meta["index_version"],
        "settings_hash": meta["settings_hash"],
        "questions_sha256": meta["questions_sha256"][:12],
        "split": meta["split"],
        "k": meta["k"],
        "questions": report["counts"]["questions"],
        "answer_correct": report["answer"]["correct"],
        "citation_precision": report["citation"]["precision"],
        "gold_evidence_recall": report["citation"]["gold_evidence_recall"],
        "abstention_recall": report["abstention"]["recall"],
        "hit@10": report["retrieval"]["hit@10"],
    }
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / HISTORY_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def read_history(index_dir: Path) -> list[dict[str, Any]]:
    path = index_dir / HISTORY_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
