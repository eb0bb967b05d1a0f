"""Trivial systems scored beside every evaluation, over the passages the answerer read.

A figure means something only by its margin over what no thought at all would get
from the same retrieved passages (`answer.retrieved`), scored by the same metric
functions (eval.metrics):

- never_abstain: quote the sentence of the top passage closest to the question (the
  cosine of the question vector and the sentence's stored vector, index.sentvecs);
- always_abstain: refuse every question;
- lead_sentence: quote the first sentence of the top passage.

With nothing retrieved, the quoting baselines have nothing to quote and abstain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from eval.metrics import CitedSpan, QuestionResult, Span
from index.reader import IndexReader
from rag.types import CANNOT_ANSWER, Retrieved

BASELINES = ("never_abstain", "always_abstain", "lead_sentence")


def quotes(
    reader: IndexReader, retrieved: Sequence[Retrieved], question: npt.NDArray[np.float32]
) -> dict[str, CitedSpan | None]:
    """What each baseline quotes for one question (None: it abstains)."""
    if not retrieved:
        return dict.fromkeys(BASELINES)
    top = retrieved[0]
    text = reader.articles[top.article_id].text
    spans = reader.sentences(top.article_id)
    inside = [i for i, (start, end) in enumerate(spans) if start < top.end and end > top.start]
    if not inside:
        return dict.fromkeys(BASELINES)
    stored = reader.sentence_vectors(top.article_id)

    def cosine(index: int) -> float:
        vector = stored.vector(index, index) if stored is not None else None
        return -np.inf if vector is None else float(vector @ question)

    def quote(index: int) -> CitedSpan:
        start, end = spans[index]
        return CitedSpan(Span(top.article_id, start, end), text[start:end])

    best = max(inside, key=cosine)  # the first of equals: the lead, if no vectors
    return {
        "never_abstain": quote(best),
        "always_abstain": None,
        "lead_sentence": quote(inside[0]),
    }


def answered_with(row: QuestionResult, quote: CitedSpan | None) -> QuestionResult:
    """The system's row with a baseline's answer in place of the system's: same gold,
    same retrieval, so only the answering differs."""
    if quote is None:
        return replace(row, citations=(), answer=CANNOT_ANSWER, abstained=True, latency_ms=0.0)
    return replace(row, citations=(quote,), answer=quote.text, abstained=False, latency_ms=0.0)
