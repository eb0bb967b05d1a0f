"""The one model of an article record, as any source file gives it, and how a record's
validation errors become messages that name the field.

Every format reader (index.formats) turns what it read into a mapping and hands it
to `article_from_record`; `ArticleRecord` maps the field aliases, checks the types and
says what is wrong. A bad text or id skips the record; a bad title, url, source, author
or date only loses that field (a `kept` problem), since the text is still worth
answering from. Text is kept exactly as written, apart from line endings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from index.dates import normalize_date
from index.jsonfile import json_kind
from index.types import Article, MetadataValue, Problem

ID_KEYS = ("id",)
TITLE_KEYS = ("title", "headline")
TEXT_KEYS = ("text", "body", "content")
URL_KEYS = ("url", "link")
DATE_KEYS = ("date", "published_at", "published", "pubDate")
AUTHOR_KEYS = ("author", "authors")
SOURCE_KEYS = ("source", "outlet", "publisher")
# Field -> its aliases, in the order the fields are checked (and problems reported).
_ALIASES = {
    "text": TEXT_KEYS,
    "id": ID_KEYS,
    "url": URL_KEYS,
    "title": TITLE_KEYS,
    "date": DATE_KEYS,
    "source": SOURCE_KEYS,
    "author": AUTHOR_KEYS,
}
# Every alias is consumed, used or not, so metadata never repeats the body or a
# second, conflicting date under another name.
_MAPPED_KEYS = frozenset(key for keys in _ALIASES.values() for key in keys)

Record = Mapping[str, object]


def invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as is (pydantic would prefix its own)."""
    return PydanticCustomError("newsdesk", "{message}", {"message": message})


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The first error's field, as a person would write it ("evidence[0].start"), and message."""
    error = exc.errors()[0]
    field = ""
    for part in error["loc"]:
        field += f"[{part}]" if isinstance(part, int) else f".{part}" if field else str(part)
    return field, error["msg"]


class ArticleRecord(BaseModel):
    """An article record after alias mapping and type checks.

    Validate with `context={"kept": []}`: a field that is only dropped (title, url,
    source, author, date) appends `(field, message)` there instead of failing.
    """

    model_config = ConfigDict(frozen=True)

    text: str
    id: str = ""
    url: str = ""
    title: str = ""
    date: str | None = None
    source: str = ""
    author: str = ""
    metadata: dict[str, MetadataValue] = {}

    @model_validator(mode="before")
    @classmethod
    def _map_aliases(cls, record: Any) -> Any:
        """The first alias with a value wins; text is always passed on, to be checked."""
        if not isinstance(record, Mapping):
            return record
        picked = {name: pick(record, keys) for name, keys in _ALIASES.items()}
        fields = {name: value for name, value in picked.items() if value is not None}
        return {"text": None, **fields, "metadata": _metadata(record)}

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, value: object) -> str:
        if value is None:
            raise invalid(f"missing or empty text (looked for {', '.join(TEXT_KEYS)}); skipped")
        if not isinstance(value, str):
            raise invalid(f"text is {json_kind(value)}, not a string; skipped")
        text = unix_newlines(value)
        if "\x00" in text:
            raise invalid("text contains a NUL character; skipped")
        if bad := surrogate(text):
            raise invalid(f"text contains {bad}; skipped")
        return text

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: object) -> str:
        if isinstance(value, str) and (bad := surrogate(value)):
            raise invalid(f"id contains {bad}; skipped")
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise invalid(f"id is {json_kind(value)}, not a string or integer; skipped")

    @field_validator("url", "title", "source", "author", mode="before")
    @classmethod
    def _string(cls, value: object, info: ValidationInfo) -> str:
        if info.field_name == "author" and isinstance(value, list):
            names = (str(item).strip() for item in value if item is not None)
            return ", ".join(name for name in names if name)
        if isinstance(value, str) and (bad := surrogate(value)):
            _kept(info).append(
                (str(info.field_name), f"{info.field_name} contains {bad}; kept without it")
            )
            return ""
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        message = f"{info.field_name} is {json_kind(value)}, not a string; kept without it"
        _kept(info).append((str(info.field_name), message))
        return ""

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, value: object, info: ValidationInfo) -> str | None:
        try:
            return normalize_date(value)
        except ValueError as exc:
            _kept(info).append(("date", f"{exc}; kept without a date"))
            return None

    def to_article(self, origin: str, default_id: str | None = None) -> Article:
        """Derived ids must survive a reload, so they hash content, never position."""
        return Article(
            id=self.id or default_id or _stable_id(self.url, self.text),
            title=self.title,
            text=self.text,
            url=self.url,
            date=self.date,
            source=self.source,
            author=self.author,
            metadata=self.metadata,
            origin=origin,
        )


def article_from_record(
    record: Record, where: str, problems: list[Problem], default_id: str | None = None
) -> Article | None:
    """The record as an Article, or None with the reason it is skipped in `problems`."""
    kept: list[tuple[str, str]] = []
    try:
        parsed = ArticleRecord.model_validate(record, context={"kept": kept})
    except ValidationError as exc:
        field, message = first_error(exc)
        problems.append(Problem(where, message, field or None))
        return None
    problems.extend(Problem(where, message, field, kept=True) for field, message in kept)
    return parsed.to_article(where, default_id)


def unix_newlines(text: str) -> str:
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def pick(record: Record, keys: Sequence[str]) -> object:
    """The first alias with a value; None and blank strings count as absent."""
    for key in keys:
        value = record.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        return value
    return None


def surrogate(text: str) -> str | None:
    """A lone UTF-16 surrogate in `text` (JSON's "\\ud800" escape decodes to one), named;
    such a string is not Unicode text, and storing or hashing it as UTF-8 would fail."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"an unpaired surrogate ({text[exc.start]!r} at character {exc.start})"
    return None


def _kept(info: ValidationInfo) -> list[tuple[str, str]]:
    kept: list[tuple[str, str]] = info.context["kept"] if info.context else []
    return kept


def _metadata(record: Record) -> dict[str, MetadataValue]:
    """Chroma metadata takes only scalars, so anything else is kept as JSON text."""
    metadata: dict[str, MetadataValue] = {}
    for key, value in record.items():
        name = str(key)
        if not name or name in _MAPPED_KEYS or value is None or surrogate(name):
            continue
        if isinstance(value, str | int | float | bool):
            metadata[name] = value
        elif isinstance(value, date):  # YAML front matter turns dates into objects
            metadata[name] = value.isoformat()
        else:
            metadata[name] = json.dumps(value, ensure_ascii=False, default=str)
        if isinstance(metadata[name], str) and surrogate(str(metadata[name])):
            del metadata[name]  # not Unicode text: metadata is extra, the article stays
    return metadata


def _stable_id(url: str, text: str) -> str:
    if url:
        return "url-" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    return "sha-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
