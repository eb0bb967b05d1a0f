"""Calibrate the extractive answerer's sentence weights and abstention threshold.

    python -m eval.calibrate [--questions Q.jsonl] [--articles A.jsonl] [--index-dir DIR]

Indexes the articles (reusing an up-to-date index), scores every candidate
sentence of every question once, then searches the weights and the threshold
offline. What it maximises is *honest accuracy*: an answerable question counts
only if it was answered AND a gold evidence sentence was cited; an unanswerable
one counts only if the answerer abstained. Answering wrongly earns nothing, so
the threshold is not pushed towards answering everything. Prints JSON; the
method and the last results are written up in docs/abstention.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.build import Indexer
from newsdesk.settings import AnswerSettings, Settings, load_settings
from rag.answer import Answerer, Candidate

SQUAD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad-dev-subset"


@dataclass
class Scored:
    """One question's candidate features, and which candidates are gold."""

    answerable: bool
    dense: np.ndarray
    lexical: np.ndarray
    inv_rank: np.ndarray
    gold: np.ndarray


def is_gold(cand: Candidate, evidence: Sequence[dict[str, object]]) -> bool:
    """The candidate sentence overlaps a gold evidence span in the gold article."""
    return any(
        cand.article.id == ev["article_id"]
        and cand.start < int(str(ev["end"]))
        and cand.end > int(str(ev["start"]))
        for ev in evidence
    )


def collect(answerer: Answerer, questions: Sequence[dict[str, object]]) -> list[Scored]:
    rows = []
    for q in questions:
        passages = answerer.retriever.retrieve(str(q["question"]))
        cands = answerer.score(str(q["question"]), passages)
        evidence = q.get("evidence") or []
        assert isinstance(evidence, list)
        rows.append(
            Scored(
                answerable=bool(q["answerable"]),
                dense=np.array([c.dense for c in cands]),
                lexical=np.array([c.lexical for c in cands]),
                inv_rank=np.array([1.0 / c.rank for c in cands]),
                gold=np.array([is_gold(c, evidence) for c in cands], dtype=bool),
            )
        )
    return rows


def outcomes(rows: Sequence[Scored], cfg: AnswerSettings) -> dict[str, float]:
    """The answerer's choice rule (see Answerer.choose), replayed on stored features."""
    cited_gold = answered = abstained_unans = 0
    answerable = sum(r.answerable for r in rows)
    for r in rows:
        if len(r.dense) == 0:
            abstained_unans += not r.answerable
            continue
        score = (
            cfg.dense_weight * r.dense
            + cfg.lexical_weight * r.lexical
            + cfg.rank_weight * r.inv_rank
        )
        order = np.argsort(-score)
        best = score[order[0]]
        if best < cfg.abstain_below:
            abstained_unans += not r.answerable
            continue
        floor = max(cfg.abstain_below, best - cfg.sentence_margin)
        chosen = [i for i in order if score[i] >= floor][: cfg.max_sentences]
        if r.answerable:
            answered += 1
            cited_gold += bool(r.gold[chosen].any())
    unanswerable = len(rows) - answerable
    return {
        "answerable_gold_cited": cited_gold / answerable,
        "answerable_answered": answered / answerable,
        "unanswerable_abstained": abstained_unans / unanswerable if unanswerable else 0.0,
        "honest_accuracy": (cited_gold + abstained_unans) / len(rows),
    }


def search(rows: Sequence[Scored], base: AnswerSettings) -> tuple[AnswerSettings, dict[str, float]]:
    best: tuple[float, AnswerSettings, dict[str, float]] | None = None
    grid = itertools.product(
        [0.0, 0.1, 0.2, 0.3, 0.5, 0.8],  # lexical weight
        [0.0, 0.05, 0.1, 0.2],  # rank weight
        [0.05, 0.1, 0.15],  # sentence margin
        np.arange(0.2, 1.2, 0.01),  # threshold
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
        result = outcomes(rows, cfg)
        if best is None or result["honest_accuracy"] > best[0]:
            best = (result["honest_accuracy"], cfg, result)
    assert best is not None
    return best[1], best[2]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=SQUAD / "questions.jsonl")
    parser.add_argument("--articles", type=Path, default=SQUAD / "articles.jsonl")
    parser.add_argument("--index-dir", type=Path, default=Path(".newsdesk/squad-index"))
    args = parser.parse_args(argv)

    settings = load_settings(index_dir=args.index_dir)
    Indexer(settings).update([args.articles])
    answerer = Answerer.open(settings)
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line]

    began = time.perf_counter()
    rows = collect(answerer, questions)
    collect_seconds = time.perf_counter() - began
    chosen, result = search(rows, settings.answer)
    current = outcomes(rows, settings.answer)

    tuned = Settings(
        index_dir=args.index_dir,
        embedding=settings.embedding,
        chunking=settings.chunking,
        retrieval=settings.retrieval,
        answer=chosen,
    )
    timed = Answerer(answerer.reader, tuned)
    latencies = []
    for q in questions:
        answer = timed.ask(str(q["question"]))
        latencies.append(answer.timings_ms["total"])
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        json.dumps(
            {
                "questions": len(questions),
                "answerable": sum(r.answerable for r in rows),
                "gold_among_candidates": sum(bool(r.gold.any()) for r in rows if r.answerable)
                / max(1, sum(r.answerable for r in rows)),
                "with_current_settings": {"answer": settings.answer.model_dump(), **current},
                "calibrated": {"answer": chosen.model_dump(), **result},
                "latency_ms_warm": {"p50": quantiles[49], "p95": quantiles[94]},
                "feature_pass_seconds": round(collect_seconds, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
