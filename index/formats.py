"""One reader per article file format, registered by suffix: adding a format is one
function under `@reads(".suffix")`.

A reader gets a file's decoded text, turns each article it holds into a record for
`index.records.article_from_record`, and reports what it cannot read as a `Problem`
naming the file and the line, row or array index; it never raises on bad input.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml  # type: ignore[import-untyped, unused-ignore]

from index.jsonfile import JsonError, json_kind, jsonl_lines, parse_json
from index.records import TEXT_KEYS, TITLE_KEYS, article_from_record, pick
from index.types import Article, Problem

_MAX_TXT_TITLE = 200
# Some articles are longer than csv's default 128 KiB field limit.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024

_LEADING_BLANK_LINES = re.compile(r"(?:[^\S\n]*\n)+")
_MD_HEADING = re.compile(r"#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*")
_MAX_FRONT_MATTER_DEPTH = 64  # real front matter nests two or three levels
_FRONT_MATTER = re.compile(r"---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: Path
    where: str  # the path as the user would recognise it, for origins and problems
    doc_id: str  # path relative to the source argument, extension dropped


Reader = Callable[[SourceFile, str, list[Problem]], Iterator[Article]]

READERS: dict[str, Reader] = {}
"""Lower-case suffix (".jsonl") -> the reader for files with it."""


def reads(*suffixes: str) -> Callable[[Reader], Reader]:
    def register(reader: Reader) -> Reader:
        for suffix in suffixes:
            READERS[suffix] = reader
        return reader

    return register


# --- records (JSON, JSONL, CSV) ---------------------------------------------------


@reads(".jsonl", ".ndjson")
def _read_jsonl(file: SourceFile, text: str, problems: list[Problem]) -> Iterator[Article]:
    for number, line in jsonl_lines(text):
        where = f"{file.where}:{number}"
        try:
            value = parse_json(line, number)
        except JsonError as exc:
            problems.append(Problem(where, f"line {number}: {exc.in_line}"))
            continue
        if not isinstance(value, dict):
            problems.append(
                Problem(where, f"line {number}: expected a JSON object, got {json_kind(value)}")
            )
            continue
        article = article_from_record(value, where, problems)
        if article is not None:
            yield article


@reads(".json")
def _read_json(file: SourceFile, text: str, problems: list[Problem]) -> Iterator[Article]:
    try:
        value = parse_json(text)
    except JsonError as exc:
        problems.append(Problem(file.where, str(exc)))
        return
    items: list[object]
    if isinstance(value, list):
        items = value
    elif isinstance(value, dict):
        lists = [value[k] for k in ("articles", "data", "items") if isinstance(value.get(k), list)]
        if lists:
            items = lists[0]
        elif any(k in value for k in TEXT_KEYS):  # a file holding one article
            article = article_from_record(value, file.where, problems)
            if article is not None:
                yield article
            return
        else:
            problems.append(
                Problem(
                    file.where,
                    "expected an array of articles, or an object with a list under "
                    "'articles', 'data' or 'items'",
                )
            )
            return
    else:
        problems.append(
            Problem(file.where, f"expected an array of articles, got {json_kind(value)}")
        )
        return
    for index, item in enumerate(items):
        where = f"{file.where}:[{index}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, f"expected a JSON object, got {json_kind(item)}"))
            continue
        article = article_from_record(item, where, problems)
        if article is not None:
            yield article


@reads(".csv")
def _read_csv(file: SourceFile, text: str, problems: list[Problem]) -> Iterator[Article]:
    return _read_delimited(file, text, problems, ",")


@reads(".tsv")
def _read_tsv(file: SourceFile, text: str, problems: list[Problem]) -> Iterator[Article]:
    return _read_delimited(file, text, problems, "\t")


def _read_delimited(
    file: SourceFile, text: str, problems: list[Problem], delimiter: str
) -> Iterator[Article]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        problems.append(Problem(file.where, "empty file; a header row is required"))
        return
    except csv.Error as exc:
        problems.append(Problem(f"{file.where}:1", f"unreadable header ({exc})"))
        return
    if not any(key in header for key in TEXT_KEYS):
        problems.append(
            Problem(
                f"{file.where}:1",
                f"no text column in the header (expected one of {', '.join(TEXT_KEYS)})",
                field="text",
            )
        )
        return
    line = reader.line_num
    while True:
        start = line + 1  # a quoted field can span lines; name the row's first one
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(
                Problem(f"{file.where}:{start}", f"unreadable row ({exc}); rest skipped")
            )
            return
        line = reader.line_num
        where = f"{file.where}:{start}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            problems.append(
                Problem(
                    where, f"row has {len(row)} fields but the header has {len(header)}; skipped"
                )
            )
            continue
        # An empty cell is CSV's only way to say "no value".
        record = {key: cell for key, cell in zip(header, row, strict=False) if key and cell != ""}
        article = article_from_record(record, where, problems)
        if article is not None:
            yield article


# --- documents (text, Markdown, HTML) ---------------------------------------------


@reads(".txt")
def _read_txt(file: SourceFile, text: str, problems: list[Problem]) -> Iterator[Article]:
    """A short first line followed by a blank line is the headline (the seed layout)."""
    body = _strip_leading_blank_lines(text)
    first, newline, rest = body.partition("\n")
    title = file.path.stem
    followed_by_blank = bool(newline and rest) and not rest.partition("\n")[0].strip()
    if followed_by_blank and first.strip() and len(first.strip()) <= _MAX_TXT_TITLE:
        title, body = first.strip(), _strip_leading_blank_lines(rest)
    record = {"title": title, "text": body}
    article = article_from_record(record, file.where, problems, default_id=file.doc_id)
    if article is not None:
        yield article


def _flow_depth(text: str) -> int:
    """How deep YAML flow brackets nest (quotes ignored: an over-count only refuses
    sooner). The pure-Python parser takes seconds on a few thousand levels before it
    gives up, so a hostile file is refused before parsing instead."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}" and depth:
            depth -= 1
    return deepest


@reads(".md", ".markdown")
def _read_markdown(file: SourceFile, text: str, problems: list[Problem]) -> Iterator[Article]:
    front: dict[str, object] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        if _flow_depth(match.group(1) or "") > _MAX_FRONT_MATTER_DEPTH:
            problems.append(Problem(file.where, "front matter nested too deeply; skipped"))
            return
        try:
            loaded = yaml.safe_load(match.group(1) or "")
        except yaml.YAMLError as exc:
            problems.append(Problem(file.where, f"invalid front matter ({exc}); skipped"))
            return
        except RecursionError:
            problems.append(Problem(file.where, "front matter nested too deeply; skipped"))
            return
        if loaded is not None and not isinstance(loaded, dict):
            problems.append(
                Problem(file.where, f"front matter is {json_kind(loaded)}, not a mapping; skipped")
            )
            return
        front = {str(key): value for key, value in (loaded or {}).items()}
        text = text[match.end() :]
    body = _strip_leading_blank_lines(text)
    record: dict[str, object] = {**front, "text": body}
    if pick(front, TITLE_KEYS) is None:
        first, _, rest = body.partition("\n")
        heading = _MD_HEADING.fullmatch(first)
        if heading:
            record["title"] = heading.group(1).strip()
            record["text"] = _strip_leading_blank_lines(rest)
        else:
            record["title"] = file.path.stem
    article = article_from_record(record, file.where, problems, default_id=file.doc_id)
    if article is not None:
        yield article


@reads(".html", ".htm")
def _read_html(file: SourceFile, text: str, problems: list[Problem]) -> Iterator[Article]:
    page = main_text(text)
    body = (page["text"] or "").strip()
    if not body:
        problems.append(Problem(file.where, "no main text found in the HTML; skipped", "text"))
        return
    title = page["title"] or _html_title(text) or file.path.stem
    first, _, rest = body.partition("\n")
    if first.strip() == title and rest.strip():  # the headline repeated as the first line
        body = _strip_leading_blank_lines(rest)
    record = {
        "title": title,
        "text": body,
        "url": page["url"],
        "date": page["date"],
        "author": page["author"],
        "source": page["sitename"],
    }
    article = article_from_record(record, file.where, problems, default_id=file.doc_id)
    if article is not None:
        yield article


def main_text(page: str, url: str | None = None) -> dict[str, str | None]:
    """An HTML page's main text and metadata (text, title, url, date, author, sitename;
    None where missing), for files and for feed items alike. Only the main text is
    kept: markup, scripts, menus and comments would pollute answers and citations.
    Dates come from page metadata only; trafilatura's wider search picks up copyright
    years and the like."""
    import trafilatura  # slow to import; only HTML needs it

    document = trafilatura.bare_extraction(
        page,
        url=url,
        with_metadata=True,
        include_comments=False,
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    names = ("text", "title", "url", "date", "author", "sitename")
    return {name: _doc_field(document, name) for name in names}


def _doc_field(document: object, name: str) -> str | None:
    """trafilatura returns a Document (2.x), a dict (older versions, as_dict) or None."""
    value = document.get(name) if isinstance(document, dict) else getattr(document, name, None)
    return value if isinstance(value, str) and value.strip() else None


def _html_title(text: str) -> str | None:
    match = _HTML_TITLE.search(text)
    if match is None:
        return None
    title = " ".join(html.unescape(match.group(1)).split())
    return title or None


def _strip_leading_blank_lines(text: str) -> str:
    match = _LEADING_BLANK_LINES.match(text)
    return text[match.end() :] if match else text
