"""Evaluation metrics: retrieval, citations, answers, abstention and latency.

Pure functions over small frozen records: no I/O, no model, no global state, so
every number in a report can be recomputed by hand from the definitions here.

Spans are half-open character intervals `[start, end)` in an article's text. Two
spans overlap when they share at least one character, so spans that only touch
(`a.end == b.start`) do not overlap. A gold evidence item with `start=None` and
`end=None` stands for its article as a whole (a MultiHop-RAG fact that is not
found verbatim).

Every question falls in one group: `answerable`, `unanswerable` (SQuAD 2.0's
adversarial questions: no answer in the collection), or `not_in_collection` (an
answerable question asked again with its gold articles filtered out). The headline,
`answer.correct`, is one verdict per question (`answer_correct`): the last two
groups are right when refused, the first when answered with a correct citation.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from eval.dataset import Question
    from rag.types import Answer

Report = dict[str, dict[str, Any]]

ANSWERABLE = "answerable"
UNANSWERABLE = "unanswerable"
NOT_IN_COLLECTION = "not_in_collection"
GROUPS = (ANSWERABLE, UNANSWERABLE, NOT_IN_COLLECTION)
RESAMPLES = 1000
SEED = 20261206


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
    """A gold evidence item: `[start, end)` in an article, or the whole article (both
    None); `answer_start` is the gold answer's offset in the article, when known."""

    article_id: str
    start: int | None
    end: int | None
    answer_start: int | None = None

    def __post_init__(self) -> None:
        if (self.start is None) != (self.end is None):
            raise ValueError("evidence needs both offsets or neither")
        if self.start is not None and self.end is not None and not 0 <= self.start <= self.end:
            raise ValueError(f"bad evidence span [{self.start}, {self.end})")
        if self.answer_start is not None and self.answer_start < 0:
            raise ValueError(f"bad answer offset {self.answer_start}")


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
    answer; `answer` the answer text (ignored when `abstained`). `not_in_collection`
    marks an answerable question asked with its gold articles filtered out: it should
    be refused, and its gold stays only so a person can see what was hidden.
    """

    gold: Gold
    ranked: tuple[Span, ...]
    citations: tuple[CitedSpan, ...]
    answer: str
    abstained: bool
    latency_ms: float
    not_in_collection: bool = False

    @property
    def group(self) -> str:
        if self.not_in_collection:
            return NOT_IN_COLLECTION
        return ANSWERABLE if self.gold.answerable else UNANSWERABLE

    @property
    def should_answer(self) -> bool:
        return self.group == ANSWERABLE


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
    """A citation is correct when it shows a gold evidence item (see `shows`).

    An unanswerable question has no gold evidence, so no citation on it is ever correct.
    """
    return any(shows(span, cited_text, item, gold.answers) for item in gold.evidence)


def shows(span: Span, cited_text: str, item: Evidence, answers: Sequence[str]) -> bool:
    """The cited span shows this piece of gold evidence.

    A located item (offsets given) is shown by a span that shares a character with it
    or that contains its `answer_start`: the answer's offset still holds where the
    heuristic gold sentence boundaries differ from ours. An item known only by its
    article is shown by a span containing its `answer_start` when one is given, else
    by a quote in that article that contains a gold answer (`contains_gold`): nothing
    better can be checked, and "anything in the article" would flatter long articles.
    """
    if span.article_id != item.article_id or span.start == span.end:
        return False
    if item.answer_start is not None and span.start <= item.answer_start < span.end:
        return True
    if item.start is not None:
        return covers(span, item)
    return item.answer_start is None and contains_gold(cited_text, answers)


def citation_correct_lenient(span: Span, cited_text: str, gold: Gold) -> bool:
    """The old rule, kept for comparison only: `covers` a gold item (any span in an
    article-level item's article), or quotes a gold answer anywhere in a gold article,
    whether or not that sentence is the evidence."""
    if is_relevant(span, gold.evidence):
        return True
    in_gold_article = any(item.article_id == span.article_id for item in gold.evidence)
    return in_gold_article and contains_gold(cited_text, gold.answers)


def gold_evidence_recall(cited: Sequence[CitedSpan], gold: Gold) -> float:
    """Fraction of gold evidence items that some citation shows (0.0 if no evidence)."""
    if not gold.evidence:
        return 0.0
    found = sum(
        any(shows(c.span, c.text, item, gold.answers) for c in cited) for item in gold.evidence
    )
    return found / len(gold.evidence)


# --- Answers -------------------------------------------------------------------


def answer_correct(row: QuestionResult) -> bool:
    """The headline verdict on one question (SQuAD 2.0 / answer-triggering style).

    A question that should be refused is right when abstained; an answerable one when
    answered with at least one correct citation. Answering alone earns nothing, so a
    system that never abstains cannot score by volume.
    """
    if not row.should_answer:
        return row.abstained
    return not row.abstained and _correct_citations(row) > 0


def _correct_citations(row: QuestionResult) -> int:
    """On a question that should be refused, every citation is wrong, whatever it quotes."""
    if not row.should_answer:
        return 0
    return sum(citation_correct(c.span, c.text, row.gold) for c in row.citations)


# --- Intervals -----------------------------------------------------------------


def bootstrap_ci(
    numerators: Sequence[float],
    denominators: Sequence[float] | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> list[float] | None:
    """95% percentile-bootstrap interval of sum(numerators) / sum(denominators).

    One pair per question, resampled with replacement `resamples` times with a fixed
    seed, so a report is reproducible to the digit. Questions, not citations, are the
    unit: citations of one answer stand or fall together. Denominators default to 1
    (a mean); a resample whose denominator is 0 has no value and is dropped. None
    when there is nothing to resample.
    """
    if not numerators:
        return None
    num = np.asarray(numerators, dtype=float)
    den = np.ones(len(num)) if denominators is None else np.asarray(denominators, dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(num), size=(resamples, len(num)))
    totals = den[picks].sum(axis=1)
    kept = totals > 0
    if not kept.any():
        return None
    values = num[picks].sum(axis=1)[kept] / totals[kept]
    low, high = np.percentile(values, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


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


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _mean(rows: Sequence[QuestionResult], score: Callable[[QuestionResult], float]) -> float | None:
    return sum(score(row) for row in rows) / len(rows) if rows else None


def _in(rows: Sequence[QuestionResult], *groups: str) -> list[QuestionResult]:
    return [row for row in rows if row.group in groups]


def _correct(row: QuestionResult) -> float:
    return float(answer_correct(row))


def _refused(row: QuestionResult) -> float:
    return float(row.abstained)


def _retrieval(answerable: Sequence[QuestionResult]) -> dict[str, float | None]:
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


def _answer(rows: Sequence[QuestionResult]) -> dict[str, float | None]:
    answerable = _in(rows, ANSWERABLE)

    def text_score(metric: Callable[[str, Sequence[str]], float]) -> float | None:
        return _mean(
            answerable,
            lambda r: 0.0 if r.abstained else float(metric(r.answer, r.gold.answers)),
        )

    return {
        "correct": _mean(rows, _correct),
        **{f"correct_{group}": _mean(_in(rows, group), _correct) for group in GROUPS},
        "answered_rate": _mean(answerable, lambda r: 1.0 - _refused(r)),
        "contains_gold": text_score(contains_gold),
        "f1": text_score(f1),
    }


def _citation(rows: Sequence[QuestionResult]) -> dict[str, float | None]:
    answerable = _in(rows, ANSWERABLE)
    lenient = [(c, row.gold) for row in answerable for c in row.citations]
    return {
        "precision": _ratio(
            sum(_correct_citations(row) for row in rows), sum(len(row.citations) for row in rows)
        ),
        "gold_evidence_recall": _mean(
            answerable, lambda r: 0.0 if r.abstained else gold_evidence_recall(r.citations, r.gold)
        ),
        "precision_lenient": _ratio(
            sum(citation_correct_lenient(c.span, c.text, gold) for c, gold in lenient),
            len(lenient),
        ),
    }


def _abstention(rows: Sequence[QuestionResult]) -> dict[str, float | None]:
    abstained = [row for row in rows if row.abstained]
    return {
        "recall": _mean(_in(rows, UNANSWERABLE, NOT_IN_COLLECTION), _refused),
        "recall_unanswerable": _mean(_in(rows, UNANSWERABLE), _refused),
        "recall_not_in_collection": _mean(_in(rows, NOT_IN_COLLECTION), _refused),
        "precision": _ratio(sum(not row.should_answer for row in abstained), len(abstained)),
    }


def _intervals(rows: Sequence[QuestionResult]) -> dict[str, list[float] | None]:
    """95% bootstrap intervals of the headline figures (see `bootstrap_ci`)."""

    def of(
        subset: Sequence[QuestionResult], score: Callable[[QuestionResult], float]
    ) -> list[float] | None:
        return bootstrap_ci([score(row) for row in subset])

    return {
        "answer.correct": of(rows, _correct),
        **{f"answer.correct_{group}": of(_in(rows, group), _correct) for group in GROUPS},
        "abstention.recall": of(_in(rows, UNANSWERABLE, NOT_IN_COLLECTION), _refused),
        "citation.precision": bootstrap_ci(
            [_correct_citations(row) for row in rows], [len(row.citations) for row in rows]
        ),
    }


def summarize(rows: Sequence[QuestionResult]) -> Report:
    """The evaluation report, one section per concern; every fraction is in [0, 1].

    - retrieval (answerable questions): hit@1/5/10, mrr@10, ndcg@10 averaged per
      question; evidence_recall@10 only over answerable questions with >= 2 evidence
      items, since with one item it equals hit@10.
    - answer: correct = mean of `answer_correct` over all questions, and per group
      (correct_answerable, correct_unanswerable, correct_not_in_collection);
      answered_rate, contains_gold and f1 over answerable questions, an abstention 0.
    - citation: precision = correct citations / every citation emitted, on every
      question (on one that should be refused each is wrong); gold_evidence_recall =
      mean over answerable questions of `gold_evidence_recall`, an abstention 0;
      precision_lenient = the old, flattering rule (`citation_correct_lenient`) over
      answerable questions only, kept for comparison.
    - abstention: recall = refused / questions that should be refused (unanswerable
      and not in collection), and per group; precision = of the abstentions, those
      on questions that should be refused.
    - latency_ms: p50 and p95 over all questions (see `percentile`).
    - counts: questions per group and citations emitted.
    - ci95: 95% bootstrap intervals of answer.correct (overall and per group),
      abstention.recall and citation.precision.

    A metric whose subset is empty is None, never a division by zero. An answerable
    question without gold evidence scores 0 on every retrieval and recall metric.
    """
    latencies = [row.latency_ms for row in rows]
    return {
        "answer": _answer(rows),
        "citation": _citation(rows),
        "abstention": _abstention(rows),
        "retrieval": _retrieval(_in(rows, ANSWERABLE)),
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "counts": {
            "questions": len(rows),
            **{group: len(_in(rows, group)) for group in GROUPS},
            "citations": sum(len(row.citations) for row in rows),
        },
        "ci95": _intervals(rows),
    }


def threshold_curve(
    points: Sequence[tuple[float, bool]], thresholds: Sequence[float]
) -> list[dict[str, float | None]]:
    """The abstention trade-off: for each threshold t, abstain when the best score < t.

    `points` holds one (best answer score, should be answered) pair per question; a
    question with no candidate at all should pass -inf. Each row gives `threshold`,
    `answered_rate` = answerable questions with score >= t / answerable questions, and
    `abstention_recall` = questions to refuse with score < t / questions to refuse;
    None when that subset is empty.
    """
    answerable = [score for score, ok in points if ok]
    refuse = [score for score, ok in points if not ok]
    return [
        {
            "threshold": t,
            "answered_rate": _ratio(sum(s >= t for s in answerable), len(answerable)),
            "abstention_recall": _ratio(sum(s < t for s in refuse), len(refuse)),
        }
        for t in thresholds
    ]


# --- Adapters from the project's records ------------------------------------------


def gold_of(question: Question) -> Gold:
    """The scoring view of a loaded question (see eval.dataset)."""
    return Gold(
        answerable=question.answerable,
        answers=question.answers,
        evidence=tuple(
            Evidence(e.article_id, e.start, e.end, e.answer_start) for e in question.evidence
        ),
    )


def question_result(
    answer: Answer,
    gold: Gold,
    latency_ms: float | None = None,
    ranked: Sequence[Span] | None = None,
    not_in_collection: bool = False,
) -> QuestionResult:
    """A QuestionResult from the system's Answer record and the question's gold.

    `ranked` defaults to the passages the answer read (`answer.retrieved`), latency to
    the answer's own `timings_ms["total"]`.
    """
    if ranked is None:
        ranked = [Span(r.article_id, r.start, r.end) for r in answer.retrieved]
    return QuestionResult(
        gold=gold,
        ranked=tuple(ranked),
        citations=tuple(
            CitedSpan(Span(c.article_id, c.start, c.end), c.text) for c in answer.citations
        ),
        answer=answer.answer,
        abstained=answer.abstained,
        latency_ms=answer.timings_ms["total"] if latency_ms is None else latency_ms,
        not_in_collection=not_in_collection,
    )
