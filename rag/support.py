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

A user who has a sentence-transformers CrossEncoder trained for NLI (entailment /
contradiction / neutral) can name it in `llm.nli_model`: it then replaces the overlap
score, which is what catches reversed meanings; the fact check still applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from index.text import NUMBER, NUMBER_WORDS, TERM_STOPWORDS, WORD, numbers_in, tokenize
from rag.llm_backend import LlmNotConfigured

Verdict = Literal["supported", "partial", "unsupported"]
RANK: dict[Verdict, int] = {"unsupported": 0, "partial": 1, "supported": 2}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """score = dense_weight * cosine + (1 - dense_weight) * term overlap. Defaults
    calibrated on tests/data/support_pairs.jsonl (docs/support-check.md)."""

    dense_weight: float = 0.6
    supported_at: float = 0.7
    partial_at: float = 0.525


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


class NliModel:
    """A CrossEncoder trained for NLI, loaded from this machine only (never downloaded)."""

    def __init__(self, name: str) -> None:
        from sentence_transformers import CrossEncoder

        try:
            self.model = CrossEncoder(name, device="cpu", local_files_only=True)
        except OSError as exc:
            raise LlmNotConfigured(
                f"llm.nli_model {name!r} is not on this machine and newsdesk never downloads "
                "models: give a directory holding a sentence-transformers CrossEncoder"
            ) from exc
        labels = {int(i): str(label).casefold() for i, label in self.model.config.id2label.items()}
        entail = [i for i, label in labels.items() if label.startswith("entail")]
        contradict = [i for i, label in labels.items() if label.startswith("contradict")]
        if len(entail) != 1 or len(contradict) != 1:
            raise LlmNotConfigured(
                f"llm.nli_model {name!r} is not an NLI model: its labels are "
                f"{sorted(labels.values())}, not entailment / contradiction / neutral"
            )
        self.entail, self.contradict = entail[0], contradict[0]

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> npt.NDArray[np.float32]:
        """(entailment, contradiction) probabilities per (premise, hypothesis) pair."""
        logits = np.asarray(self.model.predict(list(pairs), convert_to_numpy=True), np.float32)
        logits = logits.reshape(len(pairs), -1)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = shifted / shifted.sum(axis=1, keepdims=True)
        chosen: npt.NDArray[np.float32] = probs[:, [self.entail, self.contradict]]
        return chosen


def judge(
    claim: str,
    claim_vector: npt.NDArray[np.float32],
    runs: Sequence[Evidence],
    thresholds: Thresholds = Thresholds(),
    nli: NliModel | None = None,
) -> Judgement:
    """The verdict for `claim` against the best of `runs` (runs of one cited passage)."""
    best: Judgement | None = None
    claim_facts = facts(claim)
    claim_terms = set(tokenize(claim))
    entailment = nli.probabilities([(run.text, claim) for run in runs]) if nli and runs else None
    for number, run in enumerate(runs):
        judgement = _judge_run(claim_facts, claim_terms, claim_vector, run, thresholds)
        if entailment is not None:
            judgement = _by_nli(judgement, *entailment[number])
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


def _by_nli(judgement: Judgement, entail: float, contradict: float) -> Judgement:
    """The NLI model decides, except that contradicted facts stay unsupported and
    missing ones stay at most partial."""
    verdict: Verdict = (
        "supported" if entail >= 0.5 else "unsupported" if contradict >= 0.5 else "partial"
    )
    if judgement.missing:
        verdict = (
            "unsupported"
            if judgement.verdict == "unsupported"
            else min(verdict, "partial", key=RANK.__getitem__)
        )
    return Judgement(verdict, judgement.evidence, round(float(entail), 4), judgement.missing)


def facts(text: str) -> dict[str, set[str]]:
    """Numbers (normalised: "1,200" and "1200", "two" and "2" meet) and names (capitalised
    words that do not start a sentence and are not stopwords), casefolded."""
    text = text.replace("\u2019", "'")
    numbers = {value for _, value in numbers_in(text)}
    names: set[str] = set()
    for match in WORD.finditer(text):
        word = match.group(0)
        folded = word.casefold()
        if folded in NUMBER_WORDS:
            continue
        before = text[: match.start()].rstrip()
        starts_sentence = not before or before[-1] in '.!?:"“'
        if word[0].isupper() and not starts_sentence and folded not in TERM_STOPWORDS:
            names.add(folded.removesuffix("'s"))
    return {"number": numbers, "name": names}


def _words(text: str) -> set[str]:
    """Every word and number of the text, casefolded: where a claim's facts are looked for."""
    text = text.replace("\u2019", "'")
    found = {w.casefold().removesuffix("'s") for w in WORD.findall(text)}
    return found | {n.replace(",", "") for n in NUMBER.findall(text)}
