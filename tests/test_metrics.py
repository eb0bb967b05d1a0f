"""eval.metrics on hand-made cases whose right values are worked out in the test."""

from __future__ import annotations

import math

import pytest

from eval.dataset import EvidenceItem, Question
from eval.metrics import (
    CitedSpan,
    Evidence,
    Gold,
    QuestionResult,
    Span,
    answer_correct,
    bootstrap_ci,
    citation_correct,
    citation_correct_lenient,
    contains_gold,
    covers,
    evidence_recall_at,
    f1,
    gold_evidence_recall,
    gold_of,
    hit_at,
    is_relevant,
    ndcg_at,
    normalize_answer,
    percentile,
    question_result,
    reciprocal_rank,
    summarize,
    threshold_curve,
)
from rag.types import CANNOT_ANSWER, Answer, Citation, Retrieved

GOLD_SPAN = Evidence("a", 100, 200)
MISS = Span("a", 0, 50)


# --- Overlap -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (Span("a", 150, 160), True),  # inside
        (Span("a", 50, 101), True),  # shares character 100
        (Span("a", 199, 300), True),  # shares character 199
        (Span("a", 0, 300), True),  # contains the gold span
        (Span("a", 0, 100), False),  # touches the start: [0,100) and [100,200) share nothing
        (Span("a", 200, 250), False),  # touches the end
        (Span("a", 150, 150), False),  # empty span holds no character
        (Span("b", 100, 200), False),  # same offsets, other article
    ],
)
def test_overlap_edge_cases(span: Span, expected: bool) -> None:
    assert covers(span, GOLD_SPAN) is expected
    assert is_relevant(span, [GOLD_SPAN]) is expected


def test_article_level_evidence_covers_any_span_in_its_article_only() -> None:
    whole = Evidence("b", None, None)
    assert is_relevant(Span("b", 0, 1), [whole])
    assert is_relevant(Span("b", 9000, 9100), [whole])
    assert not is_relevant(Span("b", 5, 5), [whole])  # empty: no character in the article
    assert not is_relevant(Span("a", 0, 1), [whole])


def test_relevant_to_any_of_several_items_and_never_to_none() -> None:
    evidence = [GOLD_SPAN, Evidence("c", 0, 10)]
    assert is_relevant(Span("c", 5, 6), evidence)
    assert not is_relevant(Span("c", 10, 20), evidence)
    assert not is_relevant(Span("a", 100, 200), [])


def test_bad_offsets_are_rejected() -> None:
    with pytest.raises(ValueError):
        Span("a", 10, 5)
    with pytest.raises(ValueError):
        Span("a", -1, 5)
    with pytest.raises(ValueError):
        Evidence("a", 3, None)
    with pytest.raises(ValueError):
        Evidence("a", 9, 3)


# --- Retrieval -----------------------------------------------------------------


def test_first_relevant_at_rank_3() -> None:
    ranked = [MISS, Span("b", 100, 200), Span("a", 150, 250), Span("a", 120, 130)]
    evidence = [GOLD_SPAN]
    assert not hit_at(ranked, evidence, 1)
    assert not hit_at(ranked, evidence, 2)
    assert hit_at(ranked, evidence, 3)
    assert reciprocal_rank(ranked, evidence, 10) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranked, evidence, 2) == 0.0
    # One gold item: ideal DCG = 1/log2(2) = 1; DCG = 1/log2(3 + 1) = 0.5. The rank-4
    # span re-covers the same item and gains nothing.
    assert ndcg_at(ranked, evidence, 10) == pytest.approx(0.5)
    assert ndcg_at(ranked, evidence, 2) == 0.0


def test_ndcg_two_evidence_items() -> None:
    evidence = [Evidence("a", 0, 10), Evidence("b", 0, 10)]
    ranked = [Span("a", 0, 5), MISS, Span("b", 5, 8)]
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3).
    assert ndcg_at(ranked, evidence, 10) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert evidence_recall_at(ranked, evidence, 1) == 0.5
    assert evidence_recall_at(ranked, evidence, 3) == 1.0


def test_ndcg_redundant_chunks_stay_within_one() -> None:
    # Overlapping chunks of one gold sentence, then three chunks of an article-level
    # evidence article: only the first chunk per evidence item gains.
    assert ndcg_at([Span("a", 90, 150), Span("a", 140, 210)], [GOLD_SPAN], 10) == 1.0
    whole = [Evidence("b", None, None)]
    ranked = [MISS, Span("b", 0, 10), Span("b", 10, 20), Span("b", 20, 30)]
    assert ndcg_at(ranked, whole, 10) == pytest.approx(1 / math.log2(3))


def test_ndcg_ideal_is_capped_at_k() -> None:
    evidence = [Evidence("a", 0, 10), Evidence("b", 0, 10), Evidence("c", 0, 10)]
    # k = 2: the ideal has 2 relevant spans, and this ranking is ideal.
    assert ndcg_at([Span("a", 0, 10), Span("b", 0, 10)], evidence, 2) == pytest.approx(1.0)
    # One span covering two items gains once: 1 / (1 + 1/log2 3).
    both = [Evidence("a", 0, 10), Evidence("a", 10, 20)]
    assert ndcg_at([Span("a", 0, 20)], both, 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_retrieval_with_nothing_retrieved_or_no_evidence() -> None:
    assert not hit_at([], [GOLD_SPAN], 10)
    assert reciprocal_rank([], [GOLD_SPAN], 10) == 0.0
    assert ndcg_at([], [GOLD_SPAN], 10) == 0.0
    assert ndcg_at([Span("a", 0, 10)], [], 10) == 0.0
    assert evidence_recall_at([Span("a", 0, 10)], [], 10) == 0.0


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError):
        hit_at([MISS], [GOLD_SPAN], 0)


# --- Answer text ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("eiffel tower", "eiffel tower"),
        ("  An   apple,  a day ", "apple day"),
        ("Theatre the", "theatre"),  # only whole-word articles go
        ("U.S.-led", "usled"),  # punctuation is dropped, not replaced by a space
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, normal: str) -> None:
    assert normalize_answer(raw) == normal


def test_contains_gold_matches_whole_tokens() -> None:
    assert contains_gold("It was The Eiffel Tower!", ["eiffel tower"])
    assert contains_gold("ended in 1981.", ["1979", "1981"])
    assert not contains_gold("a shockwave followed", ["shock"])
    assert not contains_gold("in 19812", ["1981"])
    assert not contains_gold("tower eiffel", ["eiffel tower"])
    assert not contains_gold("the end", ["The"])  # normalises to nothing
    assert not contains_gold("anything", [])


def test_f1_partial_overlap() -> None:
    # pred [quick, brown, fox], gold [brown, fox, jumps]: 2 shared, P = R = 2/3.
    assert f1("The quick brown fox", ["brown fox jumps"]) == pytest.approx(2 / 3)
    # vs "broncos": P 1/3, R 1 -> 0.5; vs "denver broncos": P 2/3, R 1 -> 0.8; max 0.8.
    assert f1("Denver Broncos won", ["Broncos", "Denver Broncos"]) == pytest.approx(0.8)
    # Repeated tokens count as a multiset: pred [a1, a1], gold [a1]: P 1/2, R 1 -> 2/3.
    assert f1("a1 a1", ["a1"]) == pytest.approx(2 / 3)
    assert f1("The Eiffel Tower!", ["eiffel tower"]) == 1.0
    assert f1("nothing shared", ["eiffel tower"]) == 0.0
    assert f1("anything", []) == 0.0


# --- Citations -----------------------------------------------------------------

GOLD = Gold(answerable=True, answers=("Denver Broncos",), evidence=(GOLD_SPAN,))


def test_citation_correct_is_strict() -> None:
    assert citation_correct(Span("a", 150, 160), "whatever", GOLD)
    # Outside the gold sentence, though in its article and stating the answer: wrong.
    assert not citation_correct(Span("a", 300, 340), "The Denver Broncos won.", GOLD)
    # Touching is not overlapping.
    assert not citation_correct(Span("a", 200, 240), "Rain fell.", GOLD)
    unanswerable = Gold(answerable=False, answers=(), evidence=())
    assert not citation_correct(Span("a", 150, 160), "The Denver Broncos won.", unanswerable)


def test_citation_correct_by_the_answer_offset() -> None:
    # Our sentence boundaries differ from the gold's: the answer's offset still decides.
    offset = Gold(True, ("Denver",), (Evidence("a", 100, 200, answer_start=150),))
    assert citation_correct(Span("a", 140, 160), "x", offset)
    # Gold known only by its article and the answer's offset.
    whole = Gold(True, ("Denver",), (Evidence("x", None, None, answer_start=500),))
    assert citation_correct(Span("x", 490, 510), "Denver", whole)
    assert not citation_correct(Span("x", 0, 100), "Denver won.", whole)  # not at the offset
    assert not citation_correct(Span("x", 500, 500), "", whole)  # an empty span shows nothing


def test_citation_correct_for_article_level_gold_needs_the_answer() -> None:
    whole = Gold(True, ("Denver Broncos",), (Evidence("x", None, None),))
    assert citation_correct(Span("x", 0, 40), "The Denver Broncos won.", whole)
    assert not citation_correct(Span("x", 0, 40), "Rain fell.", whole)  # in the article only
    assert not citation_correct(Span("z", 0, 40), "The Denver Broncos won.", whole)


def test_citation_correct_lenient_is_the_old_rule() -> None:
    assert citation_correct_lenient(Span("a", 300, 340), "The Denver Broncos won.", GOLD)
    assert not citation_correct_lenient(Span("a", 300, 340), "Rain fell.", GOLD)
    assert not citation_correct_lenient(Span("z", 0, 40), "The Denver Broncos won.", GOLD)
    whole = Gold(True, ("Denver Broncos",), (Evidence("x", None, None),))
    assert citation_correct_lenient(Span("x", 0, 40), "Rain fell.", whole)


def test_gold_evidence_recall() -> None:
    gold = Gold(
        True, ("Denver Broncos",), (GOLD_SPAN, Evidence("b", 0, 10), Evidence("c", None, None))
    )
    cited = [
        CitedSpan(Span("a", 190, 210), "x"),
        CitedSpan(Span("c", 500, 600), "the Denver Broncos"),
        CitedSpan(Span("b", 10, 20), "touches b's item only"),
    ]
    assert gold_evidence_recall(cited, gold) == pytest.approx(2 / 3)
    assert gold_evidence_recall([], gold) == 0.0
    assert gold_evidence_recall(cited, Gold(False, (), ())) == 0.0


# --- The headline and its intervals ----------------------------------------------


def test_answer_correct() -> None:
    right = (CitedSpan(Span("a", 120, 180), "The Denver Broncos won."),)
    wrong = (CitedSpan(Span("a", 300, 350), "The Denver Broncos won."),)
    assert answer_correct(_row(GOLD, citations=right))
    assert answer_correct(_row(GOLD, citations=(*wrong, *right)))  # one correct is enough
    assert not answer_correct(_row(GOLD, citations=wrong))  # answered, not from the evidence
    assert not answer_correct(_row(GOLD, abstained=True))
    assert answer_correct(_row(UNANSWERABLE, abstained=True))
    assert not answer_correct(_row(UNANSWERABLE, citations=wrong))
    # The same question with its gold articles hidden: only a refusal is right.
    assert answer_correct(_row(GOLD, abstained=True, not_in_collection=True))
    assert not answer_correct(_row(GOLD, citations=right, not_in_collection=True))


def test_bootstrap_ci() -> None:
    halves = [0.0, 1.0] * 50
    low, high = bootstrap_ci(halves) or (0.0, 0.0)
    assert 0.35 < low < 0.5 < high < 0.65
    assert bootstrap_ci(halves) == [low, high]  # a fixed seed: the same to the digit
    assert bootstrap_ci([1.0] * 10) == [1.0, 1.0]
    assert bootstrap_ci([]) is None
    assert bootstrap_ci([0.0, 0.0], [0.0, 0.0]) is None  # no citations: no precision
    # A ratio of sums: 3 correct of 4 citations, and a question without citations.
    low, high = bootstrap_ci([3.0, 0.0], [4.0, 0.0]) or (0.0, 0.0)
    assert low == high == 0.75


# --- Latency -------------------------------------------------------------------


def test_percentile_linear_interpolation() -> None:
    values = [40.0, 10.0, 30.0, 20.0]
    assert percentile(values, 50) == pytest.approx(25.0)  # position 1.5 -> 20 + 0.5 * 10
    assert percentile(values, 95) == pytest.approx(38.5)  # position 2.85 -> 30 + 0.85 * 10
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


# --- Aggregation ---------------------------------------------------------------


def _row(
    gold: Gold,
    *,
    ranked: tuple[Span, ...] = (),
    citations: tuple[CitedSpan, ...] = (),
    answer: str = CANNOT_ANSWER,
    abstained: bool = False,
    latency_ms: float = 1.0,
    not_in_collection: bool = False,
) -> QuestionResult:
    return QuestionResult(gold, ranked, citations, answer, abstained, latency_ms, not_in_collection)


UNANSWERABLE = Gold(answerable=False, answers=(), evidence=())


def _mixed_rows() -> list[QuestionResult]:
    return [
        # Answerable; first relevant at rank 3; one right and one wrong citation.
        _row(
            GOLD,
            ranked=(Span("a", 0, 100), Span("b", 100, 200), Span("a", 150, 250)),
            citations=(
                CitedSpan(Span("a", 120, 180), "The Denver Broncos won."),
                CitedSpan(Span("a", 300, 350), "Rain fell."),
            ),
            answer="The Denver Broncos won.",
            latency_ms=100,
        ),
        # Answerable, two evidence items (one article-level); first relevant at rank 2;
        # the citation misses both items but quotes the answer in a gold article.
        _row(
            Gold(True, ("1981",), (Evidence("x", None, None), Evidence("y", 10, 20))),
            ranked=(Span("y", 0, 10), Span("x", 5, 9)),
            citations=(CitedSpan(Span("y", 0, 8), "ended in 1981"),),
            answer="It ended in 1981.",
            latency_ms=200,
        ),
        # Answerable, abstained, nothing retrieved.
        _row(Gold(True, ("x",), (Evidence("a", 0, 10),)), abstained=True, latency_ms=300),
        # Unanswerable, abstained.
        _row(UNANSWERABLE, ranked=(Span("a", 0, 10),), abstained=True, latency_ms=400),
        # Unanswerable, answered: its citation counts against precision.
        _row(
            UNANSWERABLE,
            citations=(CitedSpan(Span("a", 0, 10), "Rain fell."),),
            answer="Rain fell.",
            latency_ms=500,
        ),
        # Row 1's question with its gold article hidden, answered from the gold span
        # anyway (a filter that leaked): still wrong, and so is its citation.
        _row(
            GOLD,
            citations=(CitedSpan(Span("a", 120, 180), "The Denver Broncos won."),),
            answer="The Denver Broncos won.",
            latency_ms=600,
            not_in_collection=True,
        ),
        # Hidden gold, refused: right.
        _row(GOLD, abstained=True, latency_ms=700, not_in_collection=True),
    ]


def test_summarize_mixed_set() -> None:
    report = summarize(_mixed_rows())
    ndcg_row2 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert report["retrieval"] == pytest.approx(
        {
            "hit@1": 0.0,
            "hit@5": 2 / 3,
            "hit@10": 2 / 3,
            "mrr@10": (1 / 3 + 1 / 2 + 0) / 3,
            "ndcg@10": (0.5 + ndcg_row2 + 0) / 3,
            "evidence_recall@10": 0.5,  # only row 2 has >= 2 items; it finds x, not y
        }
    )
    # Right: rows 1 (a correct citation), 4 and 7 (refused). Wrong: 2 (its citation
    # misses the evidence), 3 (abstained), 5 and 6 (answered what should be refused).
    # F1: row 1 "denver broncos won" vs "denver broncos" = 0.8; row 2 [it, ended, in,
    # 1981] vs [1981]: P 1/4, R 1 -> 0.4; row 3 abstained -> 0.
    assert report["answer"] == pytest.approx(
        {
            "correct": 3 / 7,
            "correct_answerable": 1 / 3,
            "correct_unanswerable": 1 / 2,
            "correct_not_in_collection": 1 / 2,
            "answered_rate": 2 / 3,
            "contains_gold": 2 / 3,
            "f1": (0.8 + 0.4 + 0) / 3,
        }
    )
    # 5 citations, on every question; only row 1's first is correct. Gold-evidence
    # recall per answerable question: 1, 0, 0 (abstained). The lenient rule, over
    # answerable questions only, also takes row 2's (a gold article, stating 1981).
    assert report["citation"] == pytest.approx(
        {"precision": 1 / 5, "gold_evidence_recall": 1 / 3, "precision_lenient": 2 / 3}
    )
    # To refuse: rows 4-7, refused 4 and 7. Abstentions: 3, 4, 7, two of them right.
    assert report["abstention"] == pytest.approx(
        {
            "recall": 2 / 4,
            "recall_unanswerable": 1 / 2,
            "recall_not_in_collection": 1 / 2,
            "precision": 2 / 3,
        }
    )
    assert report["latency_ms"] == pytest.approx({"p50": 400.0, "p95": 670.0})
    assert report["counts"] == {
        "questions": 7,
        "answerable": 3,
        "unanswerable": 2,
        "not_in_collection": 2,
        "citations": 5,
    }
    ci = report["ci95"]
    assert set(ci) == {
        "answer.correct",
        "answer.correct_answerable",
        "answer.correct_unanswerable",
        "answer.correct_not_in_collection",
        "abstention.recall",
        "citation.precision",
    }
    low, high = ci["answer.correct"]
    assert 0.0 <= low <= 3 / 7 <= high <= 1.0
    assert summarize(_mixed_rows())["ci95"] == ci  # seeded: reproducible


def test_abstention_on_a_tiny_mixed_set() -> None:
    answerable = Gold(True, ("x",), (Evidence("a", 0, 10),))
    flags = [  # (answerable, abstained)
        (True, False),
        (True, True),
        (False, True),
        (False, False),
        (False, True),
        (True, False),
        (True, False),
    ]
    rows = [_row(answerable if ok else UNANSWERABLE, abstained=ab) for ok, ab in flags]
    report = summarize(rows)
    assert report["abstention"]["recall"] == pytest.approx(2 / 3)  # 2 of 3 abstained
    assert report["abstention"]["precision"] == pytest.approx(2 / 3)  # 2 of 3 abstentions
    assert report["answer"]["answered_rate"] == pytest.approx(3 / 4)
    # No answer cites anything, so answering earns nothing: only the 2 refusals are right.
    assert report["answer"]["correct"] == pytest.approx(2 / 7)


def test_summarize_empty_input_gives_none_everywhere() -> None:
    report = summarize([])
    for section in ("retrieval", "citation", "answer", "abstention", "latency_ms", "ci95"):
        assert all(value is None for value in report[section].values()), section
    assert report["counts"] == {
        "questions": 0,
        "answerable": 0,
        "unanswerable": 0,
        "not_in_collection": 0,
        "citations": 0,
    }


def test_summarize_empty_subsets_give_none() -> None:
    only_unanswerable = summarize([_row(UNANSWERABLE, abstained=True)])
    assert all(v is None for v in only_unanswerable["retrieval"].values())
    assert all(v is None for v in only_unanswerable["citation"].values())
    assert only_unanswerable["answer"]["correct"] == 1.0
    assert only_unanswerable["answer"]["correct_unanswerable"] == 1.0
    assert only_unanswerable["answer"]["answered_rate"] is None
    assert only_unanswerable["abstention"] == {
        "recall": 1.0,
        "recall_unanswerable": 1.0,
        "recall_not_in_collection": None,
        "precision": 1.0,
    }

    # Answerable, single evidence, no citations, nothing abstained.
    report = summarize([_row(GOLD, ranked=(Span("a", 100, 110),), answer="Denver Broncos")])
    assert report["retrieval"]["hit@1"] == 1.0
    assert report["retrieval"]["evidence_recall@10"] is None
    assert report["citation"] == {
        "precision": None,
        "gold_evidence_recall": 0.0,
        "precision_lenient": None,
    }
    assert report["answer"]["correct"] == 0.0
    assert report["abstention"] == {
        "recall": None,
        "recall_unanswerable": None,
        "recall_not_in_collection": None,
        "precision": None,
    }


def test_threshold_curve() -> None:
    points = [(0.9, True), (0.4, True), (0.5, False), (0.1, False)]
    assert threshold_curve(points, [0.0, 0.5, 1.0]) == [
        {"threshold": 0.0, "answered_rate": 1.0, "abstention_recall": 0.0},
        # 0.5 is not below 0.5, so that unanswerable question is answered.
        {"threshold": 0.5, "answered_rate": 0.5, "abstention_recall": 0.5},
        {"threshold": 1.0, "answered_rate": 0.0, "abstention_recall": 1.0},
    ]
    assert threshold_curve([(float("-inf"), True)], [0.0]) == [
        {"threshold": 0.0, "answered_rate": 0.0, "abstention_recall": None}
    ]
    assert threshold_curve([], [0.3]) == [
        {"threshold": 0.3, "answered_rate": None, "abstention_recall": None}
    ]


# --- Adapters ------------------------------------------------------------------


def test_gold_of_a_loaded_question() -> None:
    question = Question(
        id="q1",
        question="q",
        answers=("captive import policy", "captive import"),
        answerable=True,
        evidence=(
            EvidenceItem("1973_oil_crisis", 15280, 15440, "…", answer_start=15418),
            EvidenceItem("news-7", None, None, "a fact"),
        ),
        kind="test",
    )
    assert gold_of(question) == Gold(
        answerable=True,
        answers=("captive import policy", "captive import"),
        evidence=(
            Evidence("1973_oil_crisis", 15280, 15440, answer_start=15418),
            Evidence("news-7", None, None),
        ),
    )


def test_question_result_from_answer() -> None:
    answer = Answer(
        question="q",
        standalone_question="q",
        answer="The Denver Broncos won.",
        abstained=False,
        best_score=0.9,
        citations=[
            Citation(
                n=1,
                article_id="a",
                title="t",
                url="u",
                date=None,
                source="s",
                start=120,
                end=143,
                text="The Denver Broncos won.",
                score=0.9,
            )
        ],
        retrieved=[
            Retrieved(
                chunk_id="a:0",
                article_id="a",
                title="t",
                date=None,
                start=0,
                end=300,
                score=0.8,
                dense_score=None,
                lexical_score=None,
            )
        ],
        index_version="v",
        settings_hash="h",
        timings_ms={"total": 12.5},
    )
    row = question_result(answer, GOLD)
    assert row == QuestionResult(
        gold=GOLD,
        ranked=(Span("a", 0, 300),),
        citations=(CitedSpan(Span("a", 120, 143), "The Denver Broncos won."),),
        answer="The Denver Broncos won.",
        abstained=False,
        latency_ms=12.5,
    )
    assert question_result(answer, GOLD, latency_ms=3.0).latency_ms == 3.0
    # Retrieval scored on a ranked list of its own; the question asked with gold hidden.
    other = question_result(answer, GOLD, ranked=[Span("b", 0, 5)], not_in_collection=True)
    assert other.ranked == (Span("b", 0, 5),) and other.group == "not_in_collection"
    assert not other.should_answer
