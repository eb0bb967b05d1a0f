"""The answer record the CLI, the chat and the eval all share, and the one abstention text.

An Answer is also a provenance record: with `index_version` and `settings_hash`
anyone can re-check its citations later against the exact index it came from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from index.types import Article

CANNOT_ANSWER = "I cannot answer that from this collection."


class Citation(BaseModel):
    """A quoted span: `article.text[start:end] == text`, always."""

    model_config = ConfigDict(frozen=True)

    n: int
    article_id: str
    title: str
    url: str
    date: str | None
    source: str
    author: str = ""
    start: int
    end: int
    text: str
    score: float

    @classmethod
    def of(cls, n: int, article: Article, start: int, end: int, score: float) -> Citation:
        """Citation n of article.text[start:end], with the article's byline."""
        return cls(
            n=n,
            article_id=article.id,
            title=article.title,
            url=article.url,
            date=article.date,
            source=article.source,
            author=article.author,
            start=start,
            end=end,
            text=article.text[start:end],
            score=round(score, 4),
        )


class AnswerSentence(BaseModel):
    """One sentence of the answer and the citation numbers it rests on.

    Kept apart from the flat `answer` text so a renderer never has to guess
    whether a "[3]" is our marker or part of a quoted article.
    """

    model_config = ConfigDict(frozen=True)

    text: str
    cites: list[int]
    # For generated sentences only: how well the cited passages support it (rag.support).
    # An unsupported sentence carries no citations; extractive sentences are quotes (None).
    verdict: Literal["supported", "partial", "unsupported"] | None = None


class Retrieved(BaseModel):
    """A passage the retriever returned: evidence considered, not necessarily cited."""

    model_config = ConfigDict(frozen=True)

    chunk_id: str
    article_id: str
    title: str
    date: str | None
    start: int
    end: int
    score: float
    dense_score: float | None
    lexical_score: float | None


class Answer(BaseModel):
    question: str
    standalone_question: str
    answer: str
    sentences: list[AnswerSentence] = []
    abstained: bool
    best_score: float | None  # the best sentence's score, cited or not: what abstention tested
    citations: list[Citation]
    retrieved: list[Retrieved]
    index_version: str
    settings_hash: str
    timings_ms: dict[str, float]
    answerer: str = "extractive"  # "llm", or "extractive" when an llm answer fell back
    notes: list[str] = []  # what a reader should know: a fallback, sentences left out
