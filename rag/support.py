"""Does a passage support a sentence? An offline check, run on every generated sentence.

A model can cite a passage that does not say what its sentence claims. Each cited
sentence is compared with every run of one or two sentences of the passage it cites:

- facts: the numbers (digits or number words) and names (capitalised words, months and
  weekdays included) of the claim must appear in the evidence. A missing fact where the
  evidence has another of the same kind reads as a contradiction ("unsupported"); with
  none to contradict it, as an added detail ("partial");
- overlap: the share of the claim's content terms (stemmed, no stopwords) found in the
  evidence, and the cosine between the claim's embedding and the evidence's vector.

What it does not catch: a reversed meaning with the same words ("rose"/"fell" can pass
on overlap alone) and claims assembled from two passages. The thresholds are calibrated
on tests/data/support_pairs.jsonl (see docs/support-check.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from index.lexical import STOPWORDS, tokenize

Verdict = Literal["supported", "partial", "unsupported"]
RANK: dict[Verdict, int] = {"unsupported": 0, "partial": 1, "supported": 2}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """score = dense_weight * cosine + (1 - dense_weight) * term overlap. Defaults
    calibrated on tests/data/support_pairs.jsonl (docs/support-check.md)."""

    dense_weight: float = 0.6
    supported_at: float = 0.7
    partial_at: float = 0.525


_SMALL_NUMBERS = """zero one two three four five six seven eight nine ten eleven twelve
    thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"""
_NUMBER_WORDS = {word: str(n) for n, word in enumerate(_SMALL_NUMBERS.split())}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_][\w'-]*")


@dataclass(frozen=True, slots=True)
class Evidence:
    """A run of whole sentences of the cited article."""

    article_id: str
    start: int
    end: int
    text: str
    vector: npt.NDArray[np.float32] | None


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    evidence: Evidence | None  # the best run of the passage, when any
    score: float  # overlap score of that run
    missing: tuple[str, ...]  # facts of the claim the evidence lacks


def judge(
    claim: str,
    claim_vector: npt.NDArray[np.float32],
    runs: Sequence[Evidence],
    thresholds: Thresholds = Thresholds(),
) -> Judgement:
    """The verdict for `claim` against the best of `runs` (runs of one cited passage)."""
    best: Judgement | None = None
    claim_facts = facts(claim)
    claim_terms = set(tokenize(claim))
    for run in runs:
        judgement = _judge_run(claim_facts, claim_terms, claim_vector, run, thresholds)
        if best is None or (RANK[judgement.verdict], judgement.score) > (
            RANK[best.verdict],
            best.score,
        ):
            best = judgement
    return best or Judgement("unsupported", None, 0.0, ())


def _judge_run(
    claim_facts: dict[str, set[str]],
    claim_terms: set[str],
    claim_vector: npt.NDArray[np.float32],
    run: Evidence,
    thresholds: Thresholds,
) -> Judgement:
    run_facts = facts(run.text)
    run_words = _words(run.text)
    missing: list[str] = []
    contradicted = False
    for kind, values in claim_facts.items():
        absent = sorted(v for v in values if v not in run_facts[kind] and v not in run_words)
        missing += absent
        if absent and run_facts[kind] - values:
            contradicted = True
    coverage = len(claim_terms & set(tokenize(run.text))) / len(claim_terms) if claim_terms else 0
    cosine = float(claim_vector @ run.vector) if run.vector is not None else coverage
    weight = thresholds.dense_weight
    score = weight * cosine + (1 - weight) * coverage
    verdict: Verdict
    if score < thresholds.partial_at or (missing and contradicted):
        verdict = "unsupported"
    elif missing or score < thresholds.supported_at:
        verdict = "partial"
    else:
        verdict = "supported"
    return Judgement(verdict, run, round(score, 4), tuple(missing))


def facts(text: str) -> dict[str, set[str]]:
    """Numbers (normalised: "1,200" and "1200", "two" and "2" meet) and names (capitalised
    words that do not start a sentence and are not stopwords), casefolded."""
    text = text.replace("\u2019", "'")
    numbers = {n.replace(",", "") for n in _NUMBER.findall(text)}
    names: set[str] = set()
    for match in _WORD.finditer(text):
        word = match.group(0)
        folded = word.casefold()
        if folded in _NUMBER_WORDS:
            numbers.add(_NUMBER_WORDS[folded])
            continue
        before = text[: match.start()].rstrip()
        starts_sentence = not before or before[-1] in '.!?:"“'
        if word[0].isupper() and not starts_sentence and folded not in STOPWORDS:
            names.add(folded.removesuffix("'s"))
    return {"number": numbers, "name": names}


def _words(text: str) -> set[str]:
    """Every word and number of the text, casefolded: where a claim's facts are looked for."""
    text = text.replace("\u2019", "'")
    found = {w.casefold().removesuffix("'s") for w in _WORD.findall(text)}
    return found | {n.replace(",", "") for n in _NUMBER.findall(text)}
