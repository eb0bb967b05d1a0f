"""Calibrate the extractive answerer's sentence weights and abstention threshold on
SQuAD's `train` articles only, so the `report` split stays unseen.

    python -m eval.calibrate [--questions Q.jsonl ...] [--articles A.jsonl]
                             [--splits splits.json] [--index-dir DIR]

The questions are the `train`-split ones of squad-dev-subset and every question of
squad-train (SQuAD's own on those 17 articles), each id once. The index holds the
train articles only: the report articles are not even seen as passages to refuse.
Every candidate sentence of every question is scored once, then the weights and
the threshold are searched offline. Three kinds of question are scored:

- answerable: SQuAD v1.1 questions over the train articles; a success is an
  answer that cites a gold evidence sentence (answering wrongly earns nothing);
- not in the collection: the same questions asked with their own article
  filtered out, which is what a user's off-collection question looks like; a
  success is abstaining;
- adversarial: SQuAD 2.0's unanswerable questions, written to look answerable
  from a paragraph that is in the collection; reported, not optimised.

The weights and threshold maximise the mean of the first two success rates.
Prints JSON; the method and results are written up in docs/abstention.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.dataset import Question, in_split, load_questions, load_splits
from eval.metrics import Gold, Span, gold_of, is_relevant, percentile
from index.build import Indexer
from index.load import load_sources
from newsdesk.settings import AnswerSettings, Settings, load_settings
from rag.answer import Candidate, ExtractiveAnswerer
from rag.retrieve import Filters

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SQUAD = SHARED / "squad-dev-subset"
QUESTIONS = (SQUAD / "questions.jsonl", SHARED / "squad-train" / "questions.jsonl")
SPLIT = "train"
TIMED = 200  # questions asked once more with the chosen settings, for latency


@dataclass
class Scored:
    """One question's candidate features, and which candidates are gold."""

    answerable: bool
    dense: np.ndarray
    lexical: np.ndarray
    inv_rank: np.ndarray
    gold: np.ndarray


def is_gold(cand: Candidate, gold: Gold) -> bool:
    return is_relevant(Span(cand.article.id, cand.start, cand.end), gold.evidence)


def collect(
    answerer: ExtractiveAnswerer, questions: Sequence[Question], hide_gold: bool = False
) -> list[Scored]:
    """Candidate features per question; with `hide_gold`, its gold articles are filtered out."""
    everything = sorted(answerer.reader.articles)
    rows = []
    for q in questions:
        gold = gold_of(q)
        filters = None
        if hide_gold:
            hidden = {ev.article_id for ev in gold.evidence}
            filters = Filters(article_ids=tuple(a for a in everything if a not in hidden))
        passages = answerer.retriever.retrieve(q.question, filters)
        cands = answerer.score(q.question, passages)
        rows.append(
            Scored(
                answerable=q.answerable and not hide_gold,
                dense=np.array([c.dense for c in cands]),
                lexical=np.array([c.lexical for c in cands]),
                inv_rank=np.array([1.0 / c.rank for c in cands]),
                gold=np.array([is_gold(c, gold) for c in cands], dtype=bool),
            )
        )
    return rows


def choices(rows: Sequence[Scored], cfg: AnswerSettings) -> list[list[int]]:
    """The answerer's choice rule (see ExtractiveAnswerer.choose), replayed on stored features."""
    picked: list[list[int]] = []
    for r in rows:
        if len(r.dense) == 0:
            picked.append([])
            continue
        score = (
            cfg.dense_weight * r.dense
            + cfg.lexical_weight * r.lexical
            + cfg.rank_weight * r.inv_rank
        )
        order = np.argsort(-score)
        best = score[order[0]]
        if best < cfg.abstain_below:
            picked.append([])
            continue
        floor = max(cfg.abstain_below, best - cfg.sentence_margin)
        picked.append([int(i) for i in order if score[i] >= floor][: cfg.max_sentences])
    return picked


def outcomes(groups: dict[str, Sequence[Scored]], cfg: AnswerSettings) -> dict[str, float]:
    answerable = groups["answerable"]
    chosen = choices(answerable, cfg)
    result = {
        "answerable_gold_cited": _mean(
            bool(r.gold[c].any()) for r, c in zip(answerable, chosen, strict=True)
        ),
        "answerable_answered": _mean(bool(c) for c in chosen),
    }
    for name in ("not_in_collection", "adversarial"):
        result[f"{name}_abstained"] = _mean(not c for c in choices(groups[name], cfg))
    result["objective"] = (
        result["answerable_gold_cited"] + result["not_in_collection_abstained"]
    ) / 2
    return result


def _mean(values: Iterable[bool]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def search(
    groups: dict[str, Sequence[Scored]], base: AnswerSettings
) -> tuple[AnswerSettings, dict[str, float]]:
    best: tuple[float, AnswerSettings, dict[str, float]] | None = None
    grid = itertools.product(
        [0.0, 0.15, 0.3, 0.5],  # lexical weight
        [0.0, 0.05, 0.1],  # rank weight
        [0.05, 0.1],  # sentence margin
        np.arange(0.2, 1.2, 0.02),  # threshold
    )
    for lexical, rank, margin, threshold in grid:
        cfg = base.model_copy(
            update={
                "lexical_weight": lexical,
                "rank_weight": rank,
                "sentence_margin": margin,
                "abstain_below": round(float(threshold), 2),
            }
        )
        result = outcomes(groups, cfg)
        if best is None or result["objective"] > best[0]:
            best = (result["objective"], cfg, result)
    assert best is not None
    return best[1], best[2]


def train_questions(files: Sequence[Path], articles: Path, splits: Path) -> list[Question]:
    """The train split's questions of every file, each id once (squad-train repeats
    the shared subset's train questions)."""
    loaded = {a.id: a for a in load_sources([articles]).articles}
    split = load_splits(splits)
    questions: dict[str, Question] = {}
    for path in files:
        kept, skipped = in_split(load_questions(path, loaded).questions, split, SPLIT)
        if skipped:
            raise SystemExit(f"{path}: {len(skipped)} questions in no split, e.g. {skipped[0]}")
        for q in kept:
            questions.setdefault(q.id, q)
    return list(questions.values())


def train_articles(articles: Path, splits: Path, out: Path) -> Path:
    """The train articles as a source file of their own in `out` (the shared data is
    read-only), so the index never holds a report article."""
    split = load_splits(splits)
    lines = articles.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line and split.get(json.loads(line)["id"]) == SPLIT]
    path = out / f"{articles.stem}.{SPLIT}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, nargs="+", default=list(QUESTIONS))
    parser.add_argument("--articles", type=Path, default=SQUAD / "articles.jsonl")
    parser.add_argument("--splits", type=Path, default=SQUAD / "splits.json")
    parser.add_argument("--index-dir", type=Path, default=Path(".newsdesk/squad-train-index"))
    args = parser.parse_args(argv)

    questions = train_questions(args.questions, args.articles, args.splits)
    articles = train_articles(args.articles, args.splits, args.index_dir.parent)
    settings = load_settings(index_dir=args.index_dir)
    Indexer(settings).update([articles])
    answerer = ExtractiveAnswerer.open(settings)

    answerable = [q for q in questions if q.answerable]
    began = time.perf_counter()
    groups: dict[str, Sequence[Scored]] = {
        "answerable": collect(answerer, answerable),
        "not_in_collection": collect(answerer, answerable, hide_gold=True),
        "adversarial": collect(answerer, [q for q in questions if not q.answerable]),
    }
    collect_seconds = time.perf_counter() - began
    chosen, result = search(groups, settings.answer)
    current = outcomes(groups, settings.answer)

    tuned = Settings(
        index_dir=args.index_dir,
        embedding=settings.embedding,
        chunking=settings.chunking,
        retrieval=settings.retrieval,
        answer=chosen,
    )
    timed = ExtractiveAnswerer(answerer.reader, tuned)
    latencies = []
    for q in questions[:TIMED]:
        answer = timed.ask(q.question)
        latencies.append(answer.timings_ms["total"])
    print(
        json.dumps(
            {
                "split": SPLIT,
                "questions": len(questions),
                "answerable": len(answerable),
                "gold_among_candidates": _mean(bool(r.gold.any()) for r in groups["answerable"]),
                "with_current_settings": {"answer": settings.answer.model_dump(), **current},
                "calibrated": {"answer": chosen.model_dump(), **result},
                "latency_ms_warm": {
                    "p50": percentile(latencies, 50),
                    "p95": percentile(latencies, 95),
                },
                "feature_pass_seconds": round(collect_seconds, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
