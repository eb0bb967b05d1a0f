"""The extractive answerer: quote the retrieved sentences that best answer, cite each.

No LLM: every sentence of the answer is a verbatim sentence of an article, so a
citation is checkable by construction (`article.text[start:end] == text`). When
no sentence scores above the calibrated threshold, the answer is the shared
CANNOT_ANSWER text with no citations.
"""

from __future__ import annotations

import hashlib
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from index.dates import epoch_seconds
from index.dedupe import Heard, Said, canonical_order, matching_span, members
from index.reader import IndexReader
from index.text import tokenize, words
from index.types import Article
from newsdesk.settings import Settings
from rag.conflicts import Conflict, find_conflict
from rag.followup import standalone_question
from rag.retrieve import Filters, Passage, Retriever
from rag.types import CANNOT_ANSWER, AlsoReported, Answer, AnswerSentence, Citation, Retrieved
from rag.when import Placed, place_in_time

_CACHE_LIMIT = 20_000  # spans' vectors (1.5 kB each; most from index.sentvecs) or terms kept

Span = tuple[str, int, int]  # (article id, start, end)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A sentence of a retrieved passage, with the features its score is made of."""

    article: Article
    start: int
    end: int
    rank: int  # best rank (1-based) of a passage containing it
    context: int  # start of the sentence before it (or its own start)
    dense: float = 0.0
    lexical: float = 0.0
    score: float = 0.0

    @property
    def text(self) -> str:
        return self.article.text[self.start : self.end]


class ExtractiveAnswerer:
    """Questions in, cited Answers out, over one open index state: the answer is
    sentences of the articles quoted verbatim, never words a model wrote."""

    @classmethod
    def open(cls, settings: Settings) -> ExtractiveAnswerer:
        """An answerer over the index the settings name (refusing a mismatched model)."""
        return cls(IndexReader(settings), settings)

    def __init__(self, reader: IndexReader, settings: Settings) -> None:
        self.reader = reader
        self.settings = settings
        self.retriever = Retriever(reader, settings.retrieval)
        self._vectors: dict[Span, np.ndarray] = {}
        self._vectors_lock = threading.Lock()  # concurrent questions share the cache
        self._terms: dict[Span, frozenset[str]] = {}  # index.text terms of spans scored
        self._copies = members(reader.manifest.duplicates)  # canonical id -> its group
        self.settings_hash = hashlib.sha256(
            settings.model_dump_json(exclude={"index_dir", "chat", "feeds"}).encode()
        ).hexdigest()[:12]

    def ask(
        self,
        question: str,
        history: Sequence[str] = (),
        filters: Filters | None = None,
        k: int | None = None,
    ) -> Answer:
        question = question.strip()
        if not question:
            raise ValueError("the question is empty")
        began = time.perf_counter()
        query = standalone_question(question, history)
        placed = self.place(question, query, filters)
        passages = self.retriever.retrieve(placed.query, placed.filters, k)
        retrieved_at = time.perf_counter()
        candidates = self.distinct(self.score(placed.query, passages))
        chosen = self.choose(candidates, newest_first=placed.recency)
        conflict = self.disagreement(question, chosen, candidates)
        if conflict is not None:
            chosen = [*chosen, *(c for c in conflict[1] if c not in chosen)]
        answered_at = time.perf_counter()
        answer = self.compose(question, query, chosen, passages)
        answer.time_reading = placed.reading
        answer.notes = [*placed.notes, *answer.notes]
        if conflict is not None:
            cited = {(c.article_id, c.start, c.end): c.n for c in answer.citations}
            answer.notes.append(conflict[0].describe(cited))
        answer.best_score = round(candidates[0].score, 4) if candidates else None
        answer.timings_ms.update(
            retrieve=_ms(retrieved_at - began),
            select=_ms(answered_at - retrieved_at),
            total=_ms(time.perf_counter() - began),
        )
        return answer

    def disagreement(
        self, question: str, chosen: Sequence[Candidate], candidates: Sequence[Candidate]
    ) -> tuple[Conflict, list[Candidate]] | None:
        """Whether the sentences good enough to answer from give different values for
        what the question asks (rag.conflicts); if so, the sentence that states each
        side, so the answer cites both."""
        if not chosen:
            return None
        floor = self.settings.answer.abstain_below
        pool = [*chosen, *(c for c in candidates if c.score >= floor and c not in chosen)]
        conflict = find_conflict(question, [(c.article, c.start, c.end) for c in pool])
        if conflict is None:
            return None
        firsts = {(said[0].article.id, said[0].start, said[0].end) for _, said in conflict.sides}
        return conflict, [c for c in pool if (c.article.id, c.start, c.end) in firsts]

    def place(self, question: str, query: str, filters: Filters | None) -> Placed:
        """The question's own dates and recency words as filters and a preference, with
        answer.as_of and retrieval.undated applied (rag.when)."""
        return place_in_time(
            question,
            query,
            filters or Filters(),
            self.reader.table,
            undated=self.settings.retrieval.undated,
            as_of=self.settings.answer.as_of,
        )

    def score(self, query: str, passages: Sequence[Passage]) -> list[Candidate]:
        """Every sentence of the passages, scored against the query, best first.

        A sentence is judged alone and together with the sentence before it, and
        keeps the better of the two: "He declared that …" answers a
        question about the Secretary General only in the light of the sentence that
        names him.
        """
        found: dict[Span, Candidate] = {}
        for rank, passage in enumerate(passages, start=1):
            article = passage.article
            spans = self.reader.sentences(article.id)
            for i, (start, end) in enumerate(spans):
                if end <= passage.start or start >= passage.end:
                    continue
                key = (article.id, start, end)
                if key not in found:
                    context = _context_start(spans, i)
                    found[key] = Candidate(article, start, end, rank, context)
        if not found:
            return []
        cands = list(found.values())
        use_context = self.settings.answer.context
        keys: list[Span] = [(c.article.id, c.start, c.end) for c in cands]
        if use_context:
            keys += [(c.article.id, c.context, c.end) for c in cands]
        cosines = self.span_vectors(keys) @ self.reader.embedder.embed_query(query)
        terms = set(tokenize(query))
        weights = self.settings.answer
        scored = []
        for i, cand in enumerate(cands):
            dense = float(cosines[i])
            lexical = self._coverage(terms, cand.article, cand.start, cand.end)
            if use_context:
                dense = max(dense, float(cosines[len(cands) + i]))
                lexical = max(lexical, self._coverage(terms, cand.article, cand.context, cand.end))
            score = (
                weights.dense_weight * dense
                + weights.lexical_weight * lexical
                + weights.rank_weight / cand.rank
            )
            scored.append(replace(cand, dense=dense, lexical=lexical, score=score))
        return sorted(scored, key=lambda c: -c.score)

    def choose(
        self, candidates: Sequence[Candidate], newest_first: bool = False
    ) -> list[Candidate]:
        """The best sentence if it clears the threshold, plus close runners-up.

        `newest_first` (the question said "latest", "currently", …): the sentences within
        `sentence_margin` of the best already count as equally good answers, so among
        them the newest article's come first, undated last. A re-ordering, not a boost:
        no new weight to calibrate, and an older sentence far better than any newer one
        still wins, so a stray "current" costs little.
        """
        cfg = self.settings.answer
        if not candidates or candidates[0].score < cfg.abstain_below:
            return []
        floor = max(cfg.abstain_below, candidates[0].score - cfg.sentence_margin)
        eligible = [c for c in candidates if c.score >= floor]
        if newest_first:
            eligible.sort(key=_newest)  # stable: by score within one publication time
        chosen = eligible[: cfg.max_sentences]
        # Read in article order: articles by their best sentence, sentences by position.
        first = {c.article.id: n for n, c in reversed(list(enumerate(chosen)))}
        return sorted(chosen, key=lambda c: (first[c.article.id], c.start))

    def distinct(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """One candidate per thing said (index.dedupe.Said): else a syndicated sentence
        is quoted once per outlet, lightly edited or not, and a lead that an article
        repeats lower down is quoted twice. Across copies of a story it is quoted from
        the canonical copy when that one was retrieved, else from the best-scoring, and
        is ranked by its best copy; `also` names the others. Within one article the
        better-scoring stays. A sentence meets only those of its own story (its copies,
        or its article alone), never all pairs: this runs on every answer."""

        groups = self.reader.manifest.duplicates
        kept: list[Candidate] = []
        heard = Heard()  # keyed by index in kept
        for cand in candidates:
            story = groups.get(cand.article.id, cand.article.id)  # a lone article: itself
            said = Said.of(cand.text)
            i = heard.find(story, said)
            if i is None:
                i = len(kept)
                kept.append(cand)
            elif cand.article.id == story and kept[i].article.id != story:
                kept[i] = replace(cand, score=kept[i].score)
            heard.add(story, said, i)
        return kept

    def also(self, article: Article, start: int, end: int) -> list[AlsoReported]:
        """What article.text[start:end] says, in the other copies of its story that say
        it (index.dedupe.matching_span), earliest first, all copies, retrieved or not.
        A copy saying it in other words is marked reworded: its span is exact, its text
        differs from the quote's."""
        canonical = self.reader.manifest.duplicates.get(article.id)
        if canonical is None:
            return []
        text = article.text[start:end]
        copies = []
        for other_id in self._copies.get(canonical, []):
            other = self.reader.articles.get(other_id)
            if other is None or other_id == article.id:
                continue
            span = matching_span(text, other, self.reader.sentences(other_id))
            if span is not None:
                copies.append((other, span))
        copies.sort(key=lambda found: canonical_order(found[0]))
        said = words(text)
        return [
            AlsoReported.of(other, s, e, reworded=words(other.text[s:e]) != said)
            for other, (s, e) in copies
        ]

    def _coverage(self, terms: set[str], article: Article, start: int, end: int) -> float:
        """Share of the question's terms that occur in article.text[start:end]. The span's
        own terms are remembered: an evaluation scores the same sentences for question
        after question (the report split tokenised 48,000 spans, most of them repeats)."""
        if not terms:
            return 0.0
        key = (article.id, start, end)
        found = self._terms.get(key)
        if found is None:
            if len(self._terms) >= _CACHE_LIMIT:
                self._terms.clear()  # without the lock: a lost entry is only tokenised again
            found = self._terms[key] = frozenset(tokenize(article.text[start:end]))
        return len(terms & found) / len(terms)

    def span_vectors(self, keys: list[Span]) -> np.ndarray:
        """Vectors of runs of whole sentences: pooled at index time where stored,
        embedded now (and remembered) otherwise."""
        with self._vectors_lock:  # one question's clear() must not empty another's keys
            return self._span_vectors(keys)

    def _span_vectors(self, keys: list[Span]) -> np.ndarray:
        if len(self._vectors) + len(keys) > _CACHE_LIMIT:
            self._vectors.clear()
        missing = [key for key in keys if key not in self._vectors]
        if missing:
            unseen = []
            for key in missing:
                vector = self._stored_vector(key)
                if vector is None:
                    unseen.append(key)
                else:
                    self._vectors[key] = vector
            if unseen:  # an index built before sentence vectors were stored
                articles = self.reader.articles
                texts = [articles[a].text[s:e] for a, s, e in unseen]
                vectors = self.reader.embedder.embed(texts, truncation_ok=True)
                self._vectors.update(zip(unseen, vectors, strict=True))
        return np.stack([self._vectors[key] for key in keys])

    def _stored_vector(self, key: Span) -> np.ndarray | None:
        article_id, start, end = key
        stored = self.reader.sentence_vectors(article_id)
        if stored is None:
            return None
        spans = stored.spans
        first = bisect_left(spans, (start, -1))
        if first == len(spans) or spans[first][0] != start:
            return None
        last = first
        while last < len(spans) - 1 and spans[last][1] < end:
            last += 1
        if spans[last][1] != end:
            return None
        return stored.vector(first, last)

    def compose(
        self,
        question: str,
        query: str,
        chosen: Sequence[Candidate],
        passages: Sequence[Passage],
    ) -> Answer:
        numbers: dict[tuple[str, int, int], int] = {}
        citations: list[Citation] = []
        sentences: list[AnswerSentence] = []
        for cand in chosen:
            key = (cand.article.id, cand.start, cand.end)
            if key not in numbers:
                numbers[key] = len(numbers) + 1
                citation = Citation.of(numbers[key], cand.article, cand.start, cand.end, cand.score)
                also = self.also(cand.article, cand.start, cand.end)
                citations.append(citation.model_copy(update={"also": also}) if also else citation)
            sentences.append(AnswerSentence(text=cand.text, cites=[numbers[key]]))
        parts = [f"{s.text} [{s.cites[0]}]" for s in sentences]
        return Answer(
            question=question,
            standalone_question=query,
            answer=" ".join(parts) if parts else CANNOT_ANSWER,
            sentences=sentences,
            abstained=not parts,
            best_score=None,
            citations=citations,
            retrieved=[_retrieved(p) for p in passages],
            index_version=self.reader.version,
            settings_hash=self.settings_hash,
            timings_ms={},
        )


def _newest(cand: Candidate) -> tuple[bool, int]:
    date = cand.article.date
    return (date is None, -epoch_seconds(date) if date else 0)


def _context_start(spans: Sequence[tuple[int, int]], i: int) -> int:
    """Start of the sentence before sentence i (news paragraphs are often one sentence
    long, so the paragraph break is no boundary here), or of sentence i itself."""
    return spans[i - 1][0] if i > 0 else spans[i][0]


def _retrieved(p: Passage) -> Retrieved:
    return Retrieved(
        chunk_id=p.chunk_id,
        article_id=p.article.id,
        title=p.article.title,
        date=p.article.date,
        start=p.start,
        end=p.end,
        score=round(p.score, 6),
        dense_score=None if p.dense_score is None else round(p.dense_score, 4),
        lexical_score=None if p.lexical_score is None else round(p.lexical_score, 4),
    )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
