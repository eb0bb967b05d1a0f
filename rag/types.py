"""The answer record the CLI, the chat and the eval all share, and the one abstention text.

An Answer is also a provenance record: with `index_version` and `settings_hash`
anyone can re-check its citations later against the exact index it came from.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from index.types import Article

CANNOT_ANSWER = "I cannot answer that from this collection."


class Quote(BaseModel):
    """A span of an article with its byline: `article.text[start:end] == text`, always."""

    model_config = ConfigDict(frozen=True)

    article_id: str
    title: str
    url: str
    date: str | None
    source: str
    author: str = ""
    start: int
    end: int
    text: str

    @staticmethod
    def fields_of(article: Article, start: int, end: int) -> dict[str, Any]:
        """The quote's fields for article.text[start:end]: the one place they are read."""
        return {
            "article_id": article.id,
            "title": article.title,
            "url": article.url,
            "date": article.date,
            "source": article.source,
            "author": article.author,
            "start": start,
            "end": end,
            "text": article.text[start:end],
        }


class AlsoReported(Quote):
    """Another copy of a cited story (index.dedupe) saying what the cited sentence says,
    as checkable as the citation itself."""

    # Said in other words (index.dedupe.same_sentence: a light edit, never another number
    # or a "not"): its span holds a different text from the quote's, and the reader is told.
    reworded: bool = False

    @classmethod
    def of(cls, article: Article, start: int, end: int, reworded: bool = False) -> AlsoReported:
        return cls(reworded=reworded, **cls.fields_of(article, start, end))

    @property
    def outlet(self) -> str:
        """Who else published it, and when, for the CLI and the chat alike:
        "Outlet B (2024-03-03)", or "Outlet B (2024-03-03, reworded)"."""
        when = f"{day(self.date)}, reworded" if self.reworded else day(self.date)
        return f"{self.source or self.title or self.article_id} ({when})"


class Citation(Quote):
    """Quote number n of an answer."""

    n: int
    score: float
    # The same sentence, or a lightly reworded one, in the other copies of this story,
    # earliest first: one citation stands for them all instead of one per outlet.
    also: list[AlsoReported] = []

    @classmethod
    def of(cls, n: int, article: Article, start: int, end: int, score: float) -> Citation:
        """Citation n of article.text[start:end], with the article's byline."""
        return cls(n=n, score=round(score, 4), **cls.fields_of(article, start, end))

    @property
    def byline(self) -> str:
        """Who published the quote and when: "Reuters, 2024-03-02, by Jane Doe"."""
        return byline(self.source, self.date, self.author)


def byline(source: str, date: str | None, author: str) -> str:
    """Outlet, day, author: the one byline text of the CLI, the JSON's readers and the chat.

    The date is always there ("undated" when the article has none), since a news
    quote without its date can be read as current; a missing outlet or author is left out.
    """
    author = author.strip()
    parts = [source.strip(), day(date), f"by {author}" if author else ""]
    return ", ".join(part for part in parts if part)


def day(date: str | None) -> str:
    """The calendar day of an ISO date or timestamp, in its own offset, or "undated"."""
    return date[:10] if date else "undated"


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


class TimeReading(BaseModel):
    """How a question was placed in time (rag.when), kept so no date filter is silent."""

    model_config = ConfigDict(frozen=True)

    phrases: list[str] = []  # the words read as time and applied: "in March 2024", "latest"
    since: str | None = None  # the range taken from the question (ISO days, inclusive)
    until: str | None = None
    recency: bool = False  # newer articles first among equally good answers
    as_of: str | None = None  # the collection as it stood on this day

    @property
    def time_sensitive(self) -> bool:
        """The question asked about a time, so each quote's date matters to the reader."""
        return bool(self.phrases)


class Answer(BaseModel):
    # The record's keys stay as clients, the API and stored conversations know them:
    # `time_reading` is written and read as "time".
    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

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
    # How the question was placed in time: dates read in it, answer.as_of.
    time_reading: TimeReading | None = Field(default=None, alias="time")

    @property
    def time_sensitive(self) -> bool:
        return self.time_reading is not None and self.time_reading.time_sensitive

    def days_of(self, sentence: AnswerSentence) -> str:
        """The publication days of the articles a sentence cites: "2024-03-02", or
        several joined by ", "; shown before the sentence, never inside the quote."""
        dates = {c.n: c.date for c in self.citations}
        return ", ".join(dict.fromkeys(day(dates.get(n)) for n in sentence.cites))
