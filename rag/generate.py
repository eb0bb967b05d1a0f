"""Generated answers whose every cited sentence is checked before it is shown.

The model sees the retrieved passages under keys and writes sentences ending in keys
(rag.prompt). Each sentence is then judged against the passages it cites
(rag.support): a supported or partly supported sentence cites the exact sentences of
the passage that back it, so the exact-span contract of the extractive answerer
holds; an unsupported one is shown marked, without citations, or left out
(`llm.unsupported`). When no sentence survives, or the model fails, the extractive
answer is given instead, with a note saying why.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Protocol

from index.reader import IndexReader
from newsdesk.settings import Settings
from rag.answer import ExtractiveAnswerer
from rag.followup import standalone_question
from rag.llm_backend import LlmUnavailable, make_llm, stream_reply
from rag.prompt import is_refusal, messages, read_reply
from rag.retrieve import Filters, Passage
from rag.support import RANK, Evidence, Judgement, NliModel, Verdict, judge
from rag.types import Answer, AnswerSentence, Citation

if TYPE_CHECKING:  # llama-index costs seconds to import: only when an LLM is made
    from llama_index.core.llms import LLM

_BADGE = {"partial": " (partly supported)", "unsupported": " (not supported by its sources)"}


class AnswersQuestions(Protocol):
    """What the CLI, chat and eval need of an answerer, extractive or generating."""

    reader: IndexReader
    settings_hash: str

    def ask(
        self,
        question: str,
        history: Sequence[str] = (),
        filters: Filters | None = None,
        k: int | None = None,
    ) -> Answer: ...


def open_answerer(settings: Settings) -> AnswersQuestions:
    """The answerer `answer.answerer` names, over the index the settings name."""
    if settings.answer.answerer == "llm":
        llm = make_llm(settings.llm)  # fails now on a missing url, model, file or extra
        return LlmAnswerer.open(settings, llm)
    return ExtractiveAnswerer.open(settings)


class LlmAnswerer:
    """Questions in, verified generated Answers out; quoting is the fallback."""

    @classmethod
    def open(cls, settings: Settings, llm: LLM | None = None) -> LlmAnswerer:
        """An answerer over the index the settings name; the model is made on first use."""
        return cls(IndexReader(settings), settings, llm)

    def __init__(self, reader: IndexReader, settings: Settings, llm: LLM | None = None) -> None:
        self.reader = reader
        self.settings = settings
        # retrieval, sentence vectors and the fallback answer
        self.extractive = ExtractiveAnswerer(reader, settings)
        self.retriever = self.extractive.retriever
        self.settings_hash = self.extractive.settings_hash
        self._llm = llm
        nli = settings.llm.nli_model
        self.nli = NliModel(nli) if nli else None

    @property
    def llm(self) -> LLM:
        if self._llm is None:
            self._llm = make_llm(self.settings.llm)
        return self._llm

    def ask(
        self,
        question: str,
        history: Sequence[str] = (),
        filters: Filters | None = None,
        k: int | None = None,
    ) -> Answer:
        for part in self.stream(question, history, filters, k):
            if isinstance(part, Answer):
                return part
        raise AssertionError("stream() always ends with an Answer")

    def stream(
        self,
        question: str,
        history: Sequence[str] = (),
        filters: Filters | None = None,
        k: int | None = None,
    ) -> Iterator[str | Answer]:
        """The reply's text as the model writes it, then the checked Answer (which may
        differ: sentences marked or removed, or the extractive fallback)."""
        question = question.strip()
        if not question:
            raise ValueError("the question is empty")
        began = time.perf_counter()
        query = standalone_question(question, history)
        placed = self.extractive.place(question, query, filters)  # dates in it, answer.as_of
        passages = self.retriever.retrieve(placed.query, placed.filters, k)
        if not passages:
            yield self._fallback(question, history, filters, k, "nothing was retrieved", began)
            return
        prompt = messages(query, passages, self.settings.answer.max_sentences)
        retrieved_at = time.perf_counter()
        reply: list[str] = []
        try:
            for delta in stream_reply(self.llm, prompt):
                reply.append(delta)
                yield delta
        except LlmUnavailable as exc:
            note = f"the language model failed ({exc}); quoting the articles instead"
            yield self._fallback(question, history, filters, k, note, began)
            return
        generated_at = time.perf_counter()
        answer = self._checked(question, query, "".join(reply), passages)
        if answer is None:
            note = "no sentence of the model's answer is supported by the passages it cites"
            yield self._fallback(question, history, filters, k, note, began)
            return
        answer.time_reading = placed.reading
        answer.notes = [*placed.notes, *answer.notes]
        answer.timings_ms.update(
            retrieve=_ms(retrieved_at - began),
            generate=_ms(generated_at - retrieved_at),
            check=_ms(time.perf_counter() - generated_at),
            total=_ms(time.perf_counter() - began),
        )
        yield answer

    def _checked(
        self, question: str, query: str, reply: str, passages: Sequence[Passage]
    ) -> Answer | None:
        """The reply as an Answer with verdicts and exact citations; None when nothing in
        it is supported (a refusal is an answer: the abstention)."""
        base = self.extractive.compose(question, query, [], passages)
        base.answerer = "llm"
        if is_refusal(reply):
            return base
        claims = read_reply(reply, len(passages))
        if not claims:
            return None
        vectors = self.reader.embedder.embed([c.text for c in claims], truncation_ok=True)
        numbers: dict[tuple[str, int, int], int] = {}
        citations: list[Citation] = []
        sentences: list[AnswerSentence] = []
        notes: list[str] = []
        for claim, vector in zip(claims, vectors, strict=True):
            judgements = [
                judge(claim.text, vector, self._runs(passages[key - 1]), nli=self.nli)
                for key in claim.keys
            ]
            verdict: Verdict = max(
                (j.verdict for j in judgements), key=RANK.__getitem__, default="unsupported"
            )
            if claim.stripped:
                notes.append(f"removed citation keys the model was never shown: {claim.stripped}")
            if verdict == "unsupported":
                if self.settings.llm.unsupported == "remove":
                    notes.append(f"left out, not supported by its sources: {claim.text!r}")
                    continue
                sentences.append(AnswerSentence(text=claim.text, cites=[], verdict=verdict))
                continue
            cites = []
            for judgement in judgements:
                if judgement.verdict == verdict and judgement.evidence is not None:
                    cites.append(self._number(judgement, numbers, citations))
            sentences.append(
                AnswerSentence(text=claim.text, cites=sorted(set(cites)), verdict=verdict)
            )
        if not any(s.verdict in ("supported", "partial") for s in sentences):
            return None
        base.sentences = sentences
        base.citations = citations
        base.abstained = False
        base.answer = " ".join(_flat(s) for s in sentences)
        base.notes = notes
        return base

    def _runs(self, passage: Passage) -> list[Evidence]:
        """Runs of one and two whole sentences within the passage: what a claim may rest on."""
        article = passage.article
        spans = [
            (s, e)
            for s, e in self.reader.sentences(article.id)
            if e > passage.start and s < passage.end
        ]
        keys = [(article.id, s, e) for s, e in spans]
        keys += [(article.id, a[0], b[1]) for a, b in pairwise(spans)]
        if not keys:
            return []
        vectors = self.extractive.span_vectors(keys)
        return [
            Evidence(a, s, e, article.text[s:e], vector)
            for (a, s, e), vector in zip(keys, vectors, strict=True)
        ]

    def _number(
        self,
        judgement: Judgement,
        numbers: dict[tuple[str, int, int], int],
        citations: list[Citation],
    ) -> int:
        evidence = judgement.evidence
        assert evidence is not None
        key = (evidence.article_id, evidence.start, evidence.end)
        if key not in numbers:
            numbers[key] = len(citations) + 1
            article = self.reader.articles[evidence.article_id]
            citation = Citation.of(
                numbers[key], article, evidence.start, evidence.end, judgement.score
            )
            also = self.extractive.also(article, evidence.start, evidence.end)
            citations.append(citation.model_copy(update={"also": also}) if also else citation)
            for copy in also:  # a claim resting on another copy cites this same quote
                numbers.setdefault((copy.article_id, copy.start, copy.end), numbers[key])
        return numbers[key]

    def _fallback(
        self,
        question: str,
        history: Sequence[str],
        filters: Filters | None,
        k: int | None,
        note: str,
        began: float,
    ) -> Answer:
        """The extractive answer, with the note and the time the model took counted in."""
        answer = self.extractive.ask(question, history, filters, k)
        answer.notes.append(note)
        answer.timings_ms["total"] = _ms(time.perf_counter() - began)
        return answer


def _flat(sentence: AnswerSentence) -> str:
    marks = "".join(f"[{n}]" for n in sentence.cites)
    badge = _BADGE.get(sentence.verdict or "", "")
    return f"{sentence.text} {marks}{badge}".replace("  ", " ").strip()


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
