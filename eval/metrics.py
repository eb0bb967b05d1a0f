"""Evaluation metrics: retrieval, citations, answer text, abstention and latency.

Pure functions over small frozen records: no I/O, no model, no global state, so
every number in a report can be recomputed by hand from the definitions here.

Spans are half-open character intervals `[start, end)` in an article's text. Two
spans overlap when they share at least one character, so spans that only touch
(`a.end == b.start`) do not overlap. A gold evidence item with `start=None` and
`end=None` stands for its article as a whole (a MultiHop-RAG fact that is not
found verbatim): any span in that article covers it.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eval.dataset import Question
    from rag.types import Answer

Report = dict[str, dict[str, float | int | None]]


@dataclass(frozen=True, slots=True)
class Span:
    """A retrieved or cited passage: `[start, end)` in one article's text."""

    article_id: str
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"bad span [{self.start}, {self.end})")


@dataclass(frozen=True, slots=True)
class Evidence:
    """A gold evidence item: `[start, end)` in an article, or the whole article (both None)."""

    article_id: str
    start: int | None
    end: int | None

    def __post_init__(self) -> None:
        if (self.start is None) != (self.end is None):
            raise ValueError("evidence needs both offsets or neither")
        if self.start is not None and self.end is not None and not 0 <= self.start <= self.end:
            raise ValueError(f"bad evidence span [{self.start}, {self.end})")


@dataclass(frozen=True, slots=True)
class Gold:
    """What a question should get: whether it is answerable, its answers, its evidence."""

    answerable: bool
    answers: tuple[str, ...]
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class CitedSpan:
    """One citation the system emitted: where it points and the text it quotes."""

    span: Span
    text: str


@dataclass(frozen=True, slots=True)
class QuestionResult:
    """Everything the metrics need about one question: the gold and what the system did.

    `ranked` is the retrieved chunks, best first; `citations` the quoted spans in the
    answer; `answer` the answer text (ignored when `abstained`).
    """

    gold: Gold
    ranked: tuple[Span, ...]
    citations: tuple[CitedSpan, ...]
    answer: str
    abstained: bool
    latency_ms: float


# --- Overlap -------------------------------------------------------------------


def covers(span: Span, item: Evidence) -> bool:
    """The span lies in the item's article and shares a character with its interval.

    Article-level evidence (no offsets) is covered by any span in its article. An
    empty span (start == end) holds no character, so it covers nothing.
    """
    if span.article_id != item.article_id or span.start == span.end:
        return False
    if item.start is None or item.end is None:
        return True
    return span.start < item.end and item.start < span.end


def is_relevant(span: Span, evidence: Sequence[Evidence]) -> bool:
    """The span covers at least one gold evidence item (see `covers`)."""
    return any(covers(span, item) for item in evidence)


def _covered_fraction(spans: Sequence[Span], evidence: Sequence[Evidence]) -> float:
    """Fraction of the evidence items that some span covers; 0.0 when there is no evidence."""
    if not evidence:
        return 0.0
    found = sum(any(covers(span, item) for span in spans) for item in evidence)
    return found / len(evidence)


# --- Retrieval -----------------------------------------------------------------


def _top(ranked: Sequence[Span], k: int) -> Sequence[Span]:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return ranked[:k]


def hit_at(ranked: Sequence[Span], evidence: Sequence[Evidence], k: int) -> bool:
    """Hit@k: at least one of the first k spans is relevant."""
    return any(is_relevant(span, evidence) for span in _top(ranked, k))


def reciprocal_rank(ranked: Sequence[Span], evidence: Sequence[Evidence], k: int) -> float:
    """1 / (1-based rank of the first relevant span within the top k), or 0.0 if none is."""
    for rank, span in enumerate(_top(ranked, k), start=1):
        if is_relevant(span, evidence):
            return 1.0 / rank
    return 0.0


def _novel_gains(ranked: Sequence[Span], evidence: Sequence[Evidence]) -> list[int]:
    """Binary gain per rank: 1 when the span covers an evidence item no earlier span covered."""
    seen: set[int] = set()
    gains = []
    for span in ranked:
        new = {i for i, item in enumerate(evidence) if i not in seen and covers(span, item)}
        seen |= new
        gains.append(1 if new else 0)
    return gains


def _dcg(gains: Sequence[int]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def ndcg_at(ranked: Sequence[Span], evidence: Sequence[Evidence], k: int) -> float:
    """nDCG@k with binary gains, DCG = sum over ranks r <= k of gain_r / log2(r + 1).

    A span gains 1 only when it covers a gold evidence item that no higher-ranked span
    already covered. Without that rule overlapping chunks, or several chunks of an
    article-level evidence article, would each count again and push nDCG above 1.
    The ideal DCG puts min(len(evidence), k) relevant spans at ranks 1, 2, ...: one
    span per evidence item, as many as fit in k. Since every gaining span covers at
    least one new item, DCG <= ideal DCG and the score is in [0, 1]. A span that covers
    two items at once gains only 1, so it scores below a ranking that finds them apart.
    0.0 when there is no evidence.
    """
    ideal = _dcg([1] * min(len(evidence), k))
    if ideal == 0:
        return 0.0
    return _dcg(_novel_gains(_top(ranked, k), evidence)) / ideal


def evidence_recall_at(ranked: Sequence[Span], evidence: Sequence[Evidence], k: int) -> float:
    """Fraction of gold evidence items covered by some span in the top k (0.0 if no evidence)."""
    return _covered_fraction(_top(ranked, k), evidence)


# --- Answer text ---------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """The official SQuAD normalisation (v1.1 and v2.0 evaluation scripts).

    Lower-case, drop ASCII punctuation, replace the articles a/an/the with a space,
    then collapse whitespace. So "The Eiffel Tower!" becomes "eiffel tower".
    """
    text = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _contains_tokens(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    """The needle tokens occur contiguously in the haystack; an empty needle never does."""
    width = len(needle)
    if width == 0:
        return False
    return any(
        list(haystack[i : i + width]) == list(needle) for i in range(len(haystack) - width + 1)
    )


def contains_gold(answer_text: str, answers: Sequence[str]) -> bool:
    """Some gold answer, normalised, occurs in the normalised text as a whole-token run.

    Matching whole tokens, not substrings, keeps "shock" from matching "shockwave" and
    "1981" from matching "19812". A gold answer that normalises to nothing matches nothing.
    """
    tokens = normalize_answer(answer_text).split()
    return any(_contains_tokens(tokens, normalize_answer(gold).split()) for gold in answers)


def _token_f1(prediction: Sequence[str], gold: Sequence[str]) -> float:
    common = Counter(prediction) & Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(prediction)
    recall = same / len(gold)
    return 2 * precision * recall / (precision + recall)


def f1(answer_text: str, answers: Sequence[str]) -> float:
    """SQuAD token F1: the best over gold answers of the normalised bag-of-tokens F1.

    Per gold answer, with c = the multiset intersection of the two token lists:
    precision = |c| / |answer tokens|, recall = |c| / |gold tokens|, F1 their harmonic
    mean, 0.0 when nothing is shared (the v1.1 script; the v2.0 one scores an empty
    prediction against an empty gold as 1, which cannot arise from a real answer).
    0.0 when there are no gold answers.
    """
    prediction = normalize_answer(answer_text).split()
    return max((_token_f1(prediction, normalize_answer(g).split()) for g in answers), default=0.0)


# --- Citations -----------------------------------------------------------------


def citation_correct(span: Span, cited_text: str, gold: Gold) -> bool:
    """A citation is correct when it covers a gold evidence item, or when it lies in a
    gold evidence article and its quoted text contains a gold answer (see `contains_gold`).

    The second clause accepts a sentence that states the answer but falls outside the
    heuristic gold sentence boundaries. An unanswerable question has no gold evidence,
    so no citation on it is ever correct.
    """
    if is_relevant(span, gold.evidence):
        return True
    in_gold_article = any(item.article_id == span.article_id for item in gold.evidence)
    return in_gold_article and contains_gold(cited_text, gold.answers)


def citation_recall(cited: Sequence[Span], evidence: Sequence[Evidence]) -> float:
    """Fraction of gold evidence items that some citation covers (0.0 if no evidence)."""
    return _covered_fraction(cited, evidence)


# --- Latency -------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0 <= q <= 100) by linear interpolation between closest ranks.

    This is numpy's default ("linear", Hyndman & Fan type 7, Excel PERCENTILE.INC): on
    the sorted values x[0..n-1], position p = (n - 1) * q / 100 and the result is
    x[floor(p)] + (p - floor(p)) * (x[floor(p) + 1] - x[floor(p)]). None for no values.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


# --- Aggregation ---------------------------------------------------------------


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _mean(rows: Sequence[QuestionResult], score: Callable[[QuestionResult], float]) -> float | None:
    return sum(score(row) for row in rows) / len(rows) if rows else None


def _retrieval(answerable: Sequence[QuestionResult]) -> dict[str, float | int | None]:
    multi = [row for row in answerable if len(row.gold.evidence) >= 2]
    return {
        "hit@1": _mean(answerable, lambda r: float(hit_at(r.ranked, r.gold.evidence, 1))),
        "hit@5": _mean(answerable, lambda r: float(hit_at(r.ranked, r.gold.evidence, 5))),
        "hit@10": _mean(answerable, lambda r: float(hit_at(r.ranked, r.gold.evidence, 10))),
        "mrr@10": _mean(answerable, lambda r: reciprocal_rank(r.ranked, r.gold.evidence, 10)),
        "ndcg@10": _mean(answerable, lambda r: ndcg_at(r.ranked, r.gold.evidence, 10)),
        "evidence_recall@10": _mean(
            multi, lambda r: evidence_recall_at(r.ranked, r.gold.evidence, 10)
        ),
    }


def _cited_recall(row: QuestionResult) -> float:
    if row.abstained:
        return 0.0
    return citation_recall([c.span for c in row.citations], row.gold.evidence)


def _citation(answerable: Sequence[QuestionResult]) -> dict[str, float | int | None]:
    emitted = [(c, row.gold) for row in answerable for c in row.citations]
    correct = sum(citation_correct(c.span, c.text, gold) for c, gold in emitted)
    return {"precision": _ratio(correct, len(emitted)), "recall": _mean(answerable, _cited_recall)}


def _answer(answerable: Sequence[QuestionResult]) -> dict[str, float | int | None]:
    def scored(metric: Callable[[str, Sequence[str]], float]) -> float | None:
        return _mean(
            answerable,
            lambda r: 0.0 if r.abstained else float(metric(r.answer, r.gold.answers)),
        )

    return {
        "answered_rate": _mean(answerable, lambda r: 0.0 if r.abstained else 1.0),
        "contains_gold": scored(contains_gold),
        "f1": scored(f1),
    }


def _abstention(rows: Sequence[QuestionResult]) -> dict[str, float | int | None]:
    unanswerable = [row for row in rows if not row.gold.answerable]
    abstained = [row for row in rows if row.abstained]
    right = sum(row.abstained != row.gold.answerable for row in rows)
    return {
        "recall": _ratio(sum(row.abstained for row in unanswerable), len(unanswerable)),
        "precision": _ratio(sum(not row.gold.answerable for row in abstained), len(abstained)),
        "accuracy": _ratio(right, len(rows)),
    }


def summarize(rows: Sequence[QuestionResult]) -> Report:
    """The evaluation report, one section per concern; every fraction is in [0, 1].

    - retrieval (answerable questions): hit@1/5/10, mrr@10, ndcg@10 averaged per
      question; evidence_recall@10 only over answerable questions with >= 2 evidence
      items, since with one item it equals hit@10.
    - citation: precision = correct citations / all citations emitted on answerable
      questions (citations on unanswerable ones are judged by abstention instead);
      recall = mean over answerable questions of citation_recall, an abstention 0.
    - answer (answerable questions): answered_rate, and the means of contains_gold and
      f1 with an abstention scoring 0.
    - abstention: recall = abstained unanswerable / unanswerable; precision =
      unanswerable / abstentions; accuracy = (answered answerable + abstained
      unanswerable) / all questions.
    - latency_ms: p50 and p95 over all questions (see `percentile`).
    - counts: questions, answerable, unanswerable.

    A metric whose subset is empty is None, never a division by zero. An answerable
    question without gold evidence scores 0 on every retrieval and recall metric.
    """
    answerable = [row for row in rows if row.gold.answerable]
    latencies = [row.latency_ms for row in rows]
    return {
        "retrieval": _retrieval(answerable),
        "citation": _citation(answerable),
        "answer": _answer(answerable),
        "abstention": _abstention(rows),
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "counts": {
            "questions": len(rows),
            "answerable": len(answerable),
            "unanswerable": len(rows) - len(answerable),
        },
    }


def threshold_curve(
    points: Sequence[tuple[float, bool]], thresholds: Sequence[float]
) -> list[dict[str, float | None]]:
    """The abstention trade-off: for each threshold t, abstain when the best score < t.

    `points` holds one (best answer score, answerable) pair per question; a question
    with no candidate at all should pass -inf. Each row gives `threshold`,
    `answered_rate` = answerable questions with score >= t / answerable questions, and
    `abstention_recall` = unanswerable questions with score < t / unanswerable
    questions; None when that subset is empty.
    """
    answerable = [score for score, ok in points if ok]
    unanswerable = [score for score, ok in points if not ok]
    return [
        {
            "threshold": t,
            "answered_rate": _ratio(sum(s >= t for s in answerable), len(answerable)),
            "abstention_recall": _ratio(sum(s < t for s in unanswerable), len(unanswerable)),
        }
        for t in thresholds
    ]


# --- Adapters from the project's records ------------------------------------------


def gold_of(question: Question) -> Gold:
    """The scoring view of a loaded question (see eval.dataset)."""
    return Gold(
        answerable=question.answerable,
        answers=question.answers,
        evidence=tuple(Evidence(e.article_id, e.start, e.end) for e in question.evidence),
    )


def question_result(answer: Answer, gold: Gold, latency_ms: float | None = None) -> QuestionResult:
    """A QuestionResult from the system's Answer record and the question's gold.

    Latency defaults to the answer's own `timings_ms["total"]`.
    """
    return QuestionResult(
        gold=gold,
        ranked=tuple(Span(r.article_id, r.start, r.end) for r in answer.retrieved),
        citations=tuple(
            CitedSpan(Span(c.article_id, c.start, c.end), c.text) for c in answer.citations
        ),
        answer=answer.answer,
        abstained=answer.abstained,
        latency_ms=answer.timings_ms["total"] if latency_ms is None else latency_ms,
    )
