"""The article and chunk records every layer shares.

They are plain frozen dataclasses rather than llama-index objects so that the
index layer stays fast to import; `index.llama` converts them to llama-index
Documents and TextNodes where its ecosystem is wanted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

MetadataValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class ArticleInfo:
    """What date and source filters read of an article (rag.retrieve.Filters, rag.when).
    An index reader keeps one per article in memory and reads texts only when a passage
    needs them: at archive size the texts alone would take gigabytes."""

    id: str
    date: str | None
    source: str


@dataclass(frozen=True, slots=True)
class Article:
    """One article as loaded from a source.

    `text` is the body every offset refers to; `hash` changes whenever anything we
    index (text or metadata) changes, so an update knows what to re-embed.
    """

    id: str
    title: str
    text: str
    url: str = ""
    date: str | None = None  # ISO 8601: "YYYY-MM-DD" or a full timestamp
    source: str = ""
    author: str = ""
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)
    origin: str = ""  # where it was read, e.g. "articles.jsonl:12"; not hashed
    hash: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.hash:
            object.__setattr__(self, "hash", content_hash(self))

    def to_record(self) -> dict[str, object]:
        """A JSON-ready dict; `from_record` reads it back."""
        return {
            "id": self.id,
            "title": self.title,
            "text": self.text,
            "url": self.url,
            "date": self.date,
            "source": self.source,
            "author": self.author,
            "metadata": dict(self.metadata),
            "origin": self.origin,
            "hash": self.hash,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> Article:
        metadata = record.get("metadata") or {}
        assert isinstance(metadata, dict)
        date = record.get("date")
        return cls(
            id=str(record["id"]),
            title=str(record.get("title") or ""),
            text=str(record["text"]),
            url=str(record.get("url") or ""),
            date=str(date) if date else None,
            source=str(record.get("source") or ""),
            author=str(record.get("author") or ""),
            metadata=metadata,
            origin=str(record.get("origin") or ""),
            hash=str(record.get("hash") or ""),
        )


def content_hash(article: Article) -> str:
    """sha256 over every indexed field, so a changed date or title also re-indexes."""
    payload = json.dumps(
        [
            article.id,
            article.title,
            article.text,
            article.url,
            article.date,
            article.source,
            article.author,
            sorted(article.metadata.items()),
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Chunk:
    """A span of an article: `article.text[start:end] == text` always holds."""

    article_id: str
    index: int  # position of the chunk within its article
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in the input that was skipped or repaired, said so a person can fix it.

    `where` names the file and, when there is one, the line or row ("a.jsonl:12");
    `field` names the field at fault, if one is; `kept` is True when the article
    was indexed anyway (a warning, such as an unreadable date) rather than skipped.
    """

    where: str
    message: str
    field: str | None = None
    kept: bool = False

    def __str__(self) -> str:
        at = f"{self.where} [{self.field}]" if self.field else self.where
        return f"{at}: {self.message}"
