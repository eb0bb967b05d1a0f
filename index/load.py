"""Read article files of several formats into `Article`s, reporting every problem.

A bad record never stops a load: it becomes a `Problem` naming the file, line and
field, and the rest is read, so one broken line in a large export costs one article,
not the whole run. Text is kept exactly as written (apart from line endings), because
chunk offsets and citations point into it.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import html
import io
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml  # type: ignore[import-untyped, unused-ignore]

from index.dates import normalize_date
from index.types import Article, MetadataValue, Problem

ID_KEYS = ("id",)
TITLE_KEYS = ("title", "headline")
TEXT_KEYS = ("text", "body", "content")
URL_KEYS = ("url", "link")
DATE_KEYS = ("date", "published_at", "published", "pubDate")
AUTHOR_KEYS = ("author", "authors")
SOURCE_KEYS = ("source", "outlet", "publisher")
# Every alias is consumed, used or not, so metadata never repeats the body or a
# second, conflicting date under another name.
_MAPPED_KEYS = frozenset(
    ID_KEYS + TITLE_KEYS + TEXT_KEYS + URL_KEYS + DATE_KEYS + AUTHOR_KEYS + SOURCE_KEYS
)

_MAX_TXT_TITLE = 200
# Some articles are longer than csv's default 128 KiB field limit.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024

_LEADING_BLANK_LINES = re.compile(r"(?:[^\S\n]*\n)+")
_MD_HEADING = re.compile(r"#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*")
_FRONT_MATTER = re.compile(r"---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)

Record = Mapping[str, object]


@dataclass
class LoadResult:
    articles: list[Article]
    problems: list[Problem]  # each names the file and line/row and field
    files: list[str]  # files read, including any then rejected (e.g. not UTF-8)


@dataclass(frozen=True, slots=True)
class _File:
    path: Path
    where: str  # the path as the user would recognise it, for origins and problems
    doc_id: str  # path relative to the source argument, extension dropped


Loader = Callable[[_File, str, list[Problem]], Iterator[Article]]


def load_sources(paths: Sequence[str | Path]) -> LoadResult:
    """Load every article under `paths` (files or directories), never raising on bad input.

    The first article with a given id wins; a later one with other content is
    reported rather than silently replacing it, since either could be the right one.
    """
    result = LoadResult(articles=[], problems=[], files=[])
    seen_files: set[Path] = set()
    by_id: dict[str, Article] = {}
    for arg in paths:
        for file in _discover(Path(arg), result.problems):
            resolved = file.path.resolve()
            if resolved in seen_files:  # named twice, or a file inside a named directory
                continue
            seen_files.add(resolved)
            text = _read_text(file, result)
            if text is None:
                continue
            loader = _LOADERS[file.path.suffix.lower()]
            for article in loader(file, text, result.problems):
                _keep_first(article, by_id, result)
    return result


def _keep_first(article: Article, by_id: dict[str, Article], result: LoadResult) -> None:
    first = by_id.get(article.id)
    if first is None:
        by_id[article.id] = article
        result.articles.append(article)
    elif first.hash != article.hash:
        what = "text" if first.text != article.text else "content"
        result.problems.append(
            Problem(
                article.origin,
                f"duplicate id {article.id!r} with different {what}; "
                f"first seen at {first.origin}, kept that one",
                field="id",
            )
        )


# --- finding and reading files ---------------------------------------------------


def _discover(root: Path, problems: list[Problem]) -> list[_File]:
    where = root.as_posix()
    if root.is_file():
        if root.suffix.lower() not in _LOADERS:
            kind = root.suffix or "(no extension)"
            supported = ", ".join(sorted(_LOADERS))
            problems.append(Problem(where, f"unsupported file type {kind}; supported: {supported}"))
            return []
        return [_File(root, where, root.with_suffix("").name)]
    if root.is_dir():
        return _walk(root)
    if root.exists():
        problems.append(Problem(where, "not a regular file or directory"))
    else:
        problems.append(Problem(where, "no such file or directory"))
    return []


def _walk(root: Path) -> list[_File]:
    """Hidden entries are skipped because they are editor, VCS or OS clutter, and
    other extensions silently because a data folder often holds READMEs and licences."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in _LOADERS:
                found.append(Path(dirpath, name).relative_to(root))
    found.sort(key=lambda rel: rel.parts)
    return [
        _File(root / rel, (root / rel).as_posix(), rel.with_suffix("").as_posix()) for rel in found
    ]


def _read_text(file: _File, result: LoadResult) -> str | None:
    """Strict UTF-8: a guessed encoding would corrupt text silently, so say where it breaks."""
    try:
        data = file.path.read_bytes()
    except OSError as exc:
        result.problems.append(Problem(file.where, f"cannot read file: {exc.strerror or exc}"))
        return None
    result.files.append(file.where)
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        result.problems.append(
            Problem(
                file.where, f"not valid UTF-8 (byte offset {exc.start + bom}); save it as UTF-8"
            )
        )
        return None
    nul = data.find(b"\x00")
    if nul >= 0:
        result.problems.append(
            Problem(file.where, f"contains a NUL byte (byte offset {nul}); binary or UTF-16?")
        )
        return None
    return _unix_newlines(text)


def _unix_newlines(text: str) -> str:
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- records (JSON, JSONL, CSV) ---------------------------------------------------


_TOO_DEEP = "JSON nested too deeply to be an article file"


def _load_jsonl(file: _File, text: str, problems: list[Problem]) -> Iterator[Article]:
    # split("\n"), not splitlines(): JSON strings may hold U+2028, which splitlines breaks on.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{file.where}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(where, f"line {number}: invalid JSON ({exc.msg} at column {exc.colno})")
            )
            continue
        except RecursionError:
            problems.append(Problem(where, f"line {number}: {_TOO_DEEP}"))
            continue
        if not isinstance(value, dict):
            problems.append(
                Problem(where, f"line {number}: expected a JSON object, got {json_kind(value)}")
            )
            continue
        article = _article_from_record(value, where, problems)
        if article is not None:
            yield article


def _load_json(file: _File, text: str, problems: list[Problem]) -> Iterator[Article]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(
            Problem(file.where, f"invalid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
        )
        return
    except RecursionError:
        problems.append(Problem(file.where, _TOO_DEEP))
        return
    items: list[object]
    if isinstance(value, list):
        items = value
    elif isinstance(value, dict):
        lists = [value[k] for k in ("articles", "data", "items") if isinstance(value.get(k), list)]
        if lists:
            items = lists[0]
        elif any(k in value for k in TEXT_KEYS):  # a file holding one article
            article = _article_from_record(value, file.where, problems)
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
        article = _article_from_record(item, where, problems)
        if article is not None:
            yield article


def _load_csv(file: _File, text: str, problems: list[Problem]) -> Iterator[Article]:
    return _load_delimited(file, text, problems, ",")


def _load_tsv(file: _File, text: str, problems: list[Problem]) -> Iterator[Article]:
    return _load_delimited(file, text, problems, "\t")


def _load_delimited(
    file: _File, text: str, problems: list[Problem], delimiter: str
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
        article = _article_from_record(record, where, problems)
        if article is not None:
            yield article


def _article_from_record(
    record: Record, where: str, problems: list[Problem], default_id: str | None = None
) -> Article | None:
    """Map a record's fields to an Article, or report why it is skipped and return None."""
    raw_text = _pick(record, TEXT_KEYS)
    if raw_text is None:
        problems.append(
            Problem(
                where, f"missing or empty text (looked for {', '.join(TEXT_KEYS)}); skipped", "text"
            )
        )
        return None
    if not isinstance(raw_text, str):
        problems.append(
            Problem(where, f"text is {json_kind(raw_text)}, not a string; skipped", "text")
        )
        return None
    text = _unix_newlines(raw_text)
    if "\x00" in text:
        problems.append(Problem(where, "text contains a NUL character; skipped", "text"))
        return None

    raw_id = _pick(record, ID_KEYS)
    if isinstance(raw_id, str):
        article_id = raw_id.strip()
    elif isinstance(raw_id, int) and not isinstance(raw_id, bool):
        article_id = str(raw_id)
    elif raw_id is not None:
        problems.append(
            Problem(where, f"id is {json_kind(raw_id)}, not a string or integer; skipped", "id")
        )
        return None
    else:
        article_id = ""

    url = _string_field(record, URL_KEYS, "url", where, problems)
    if not article_id:
        article_id = default_id or _stable_id(url, text)
    return Article(
        id=article_id,
        title=_string_field(record, TITLE_KEYS, "title", where, problems),
        text=text,
        url=url,
        date=_date_field(record, where, problems),
        source=_string_field(record, SOURCE_KEYS, "source", where, problems),
        author=_author_field(record, where, problems),
        metadata=_metadata(record),
        origin=where,
    )


def _pick(record: Record, keys: Sequence[str]) -> object:
    """The first alias with a value; None and blank strings count as absent."""
    for key in keys:
        value = record.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        return value
    return None


def _string_field(
    record: Record, keys: Sequence[str], name: str, where: str, problems: list[Problem]
) -> str:
    value = _pick(record, keys)
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    problems.append(
        Problem(
            where, f"{name} is {json_kind(value)}, not a string; kept without it", name, kept=True
        )
    )
    return ""


def _author_field(record: Record, where: str, problems: list[Problem]) -> str:
    value = _pick(record, AUTHOR_KEYS)
    if isinstance(value, list):
        names = (str(item).strip() for item in value if item is not None)
        return ", ".join(name for name in names if name)
    return _string_field(record, AUTHOR_KEYS, "author", where, problems)


def _date_field(record: Record, where: str, problems: list[Problem]) -> str | None:
    """A bad date only loses the date: the text is still worth answering from."""
    try:
        return normalize_date(_pick(record, DATE_KEYS))
    except ValueError as exc:
        problems.append(Problem(where, f"{exc}; kept without a date", "date", kept=True))
        return None


def _metadata(record: Record) -> dict[str, MetadataValue]:
    """Chroma metadata takes only scalars, so anything else is kept as JSON text."""
    metadata: dict[str, MetadataValue] = {}
    for key, value in record.items():
        name = str(key)
        if not name or name in _MAPPED_KEYS or value is None:
            continue
        if isinstance(value, str | int | float | bool):
            metadata[name] = value
        elif isinstance(value, date):  # YAML front matter turns dates into objects
            metadata[name] = value.isoformat()
        else:
            metadata[name] = json.dumps(value, ensure_ascii=False, default=str)
    return metadata


def _stable_id(url: str, text: str) -> str:
    """Derived ids must survive a reload, so they hash content, never position."""
    if url:
        return "url-" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    return "sha-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def json_kind(value: object) -> str:
    """How a JSON value reads in an error message: "got an array", "got the number 3"."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string" if value.strip() else "a blank string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


# --- documents (text, Markdown, HTML) ---------------------------------------------


def _load_txt(file: _File, text: str, problems: list[Problem]) -> Iterator[Article]:
    """A short first line followed by a blank line is the headline (the seed layout)."""
    body = _strip_leading_blank_lines(text)
    first, newline, rest = body.partition("\n")
    title = file.path.stem
    followed_by_blank = bool(newline and rest) and not rest.partition("\n")[0].strip()
    if followed_by_blank and first.strip() and len(first.strip()) <= _MAX_TXT_TITLE:
        title, body = first.strip(), _strip_leading_blank_lines(rest)
    record = {"title": title, "text": body}
    article = _article_from_record(record, file.where, problems, default_id=file.doc_id)
    if article is not None:
        yield article


def _load_markdown(file: _File, text: str, problems: list[Problem]) -> Iterator[Article]:
    front: dict[str, object] = {}
    match = _FRONT_MATTER.match(text)
    if match:
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
    if _pick(front, TITLE_KEYS) is None:
        first, _, rest = body.partition("\n")
        heading = _MD_HEADING.fullmatch(first)
        if heading:
            record["title"] = heading.group(1).strip()
            record["text"] = _strip_leading_blank_lines(rest)
        else:
            record["title"] = file.path.stem
    article = _article_from_record(record, file.where, problems, default_id=file.doc_id)
    if article is not None:
        yield article


def _load_html(file: _File, text: str, problems: list[Problem]) -> Iterator[Article]:
    """Only the main text is kept: markup, scripts, menus and comments would pollute
    answers and citations. Dates come from page metadata only; trafilatura's wider
    search picks up copyright years and the like."""
    import trafilatura  # slow to import; only HTML needs it

    document = trafilatura.bare_extraction(
        text,
        with_metadata=True,
        include_comments=False,
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    body = (_doc_field(document, "text") or "").strip() if document is not None else ""
    if not body:
        problems.append(Problem(file.where, "no main text found in the HTML; skipped", "text"))
        return
    title = _doc_field(document, "title") or _html_title(text) or file.path.stem
    first, _, rest = body.partition("\n")
    if first.strip() == title and rest.strip():  # the headline repeated as the first line
        body = _strip_leading_blank_lines(rest)
    record = {
        "title": title,
        "text": body,
        "url": _doc_field(document, "url"),
        "date": _doc_field(document, "date"),
        "author": _doc_field(document, "author"),
        "source": _doc_field(document, "sitename"),
    }
    article = _article_from_record(record, file.where, problems, default_id=file.doc_id)
    if article is not None:
        yield article


def _doc_field(document: object, name: str) -> str | None:
    """trafilatura returns a Document (2.x) or a dict (older versions, as_dict)."""
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


_LOADERS: dict[str, Loader] = {
    ".jsonl": _load_jsonl,
    ".ndjson": _load_jsonl,
    ".json": _load_json,
    ".csv": _load_csv,
    ".tsv": _load_tsv,
    ".txt": _load_txt,
    ".md": _load_markdown,
    ".markdown": _load_markdown,
    ".html": _load_html,
    ".htm": _load_html,
}
