"""The article texts an index was built from, kept beside Chroma.

Citations quote `article.text[start:end]` and show the paragraph around it, so
the full texts live here, one JSON object per line, one file per index state
(the manifest names the live one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from pathlib import Path

from index.manifest import UnusableIndex, write_atomic
from index.types import Article

ARTICLES_DIR = "articles"

# Every line starts with the article's id (Article.to_record puts it first), so an
# update can tell lines apart without parsing whole articles.
_ID_RE = re.compile(rb'\{"id": ("(?:[^"\\]|\\.)*")')


def write_articles(path: Path, articles: Iterable[Article]) -> None:
    lines = (json.dumps(a.to_record(), ensure_ascii=False) for a in articles)
    write_atomic(path, "".join(line + "\n" for line in lines))


def read_articles(path: Path) -> dict[str, Article]:
    try:
        # Split on "\n" only: texts may hold U+2028 and the like, which splitlines() breaks on.
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError as exc:
        raise UnusableIndex(f"{path}: article file named by the manifest is missing") from exc
    except UnicodeDecodeError as exc:
        raise UnusableIndex(f"{path}: article file is not UTF-8 ({exc})") from exc
    if lines.pop():
        raise UnusableIndex(f"{path}:{len(lines) + 1}: article file is cut short mid-record")
    articles: dict[str, Article] = {}
    for number, line in enumerate(lines, start=1):
        article = _parse(path, number, line)
        articles[article.id] = article
    return articles


class ArticleLines:
    """An article file as raw lines by id, for an update: it parses only the articles it
    replaces and copies every other line as bytes (parsing, decoding and encoding every
    article of a large archive took most of a one-article update)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # Split on "\n" only: texts may hold U+2028 and the like, which JSON leaves raw.
            raw = path.read_bytes().split(b"\n")
        except FileNotFoundError as exc:
            raise UnusableIndex(f"{path}: article file named by the manifest is missing") from exc
        if raw.pop():
            raise UnusableIndex(f"{path}:{len(raw) + 1}: article file is cut short mid-record")
        self.lines: list[tuple[str, bytes]] = []
        for number, line in enumerate(raw, start=1):
            match = _ID_RE.match(line)
            try:
                article_id = json.loads(match.group(1)) if match else None
            except ValueError:
                article_id = None
            if not isinstance(article_id, str):
                raise UnusableIndex(f"{path}:{number}: corrupt article record (no id first)")
            self.lines.append((article_id, line))

    def read(self, ids: Collection[str]) -> dict[str, Article]:
        """The articles named by `ids` (those present)."""
        return {
            article_id: _parse(self.path, number, line.decode("utf-8"))
            for number, (article_id, line) in enumerate(self.lines, start=1)
            if article_id in ids
        }

    def rewrite(self, new: Path, replace: Iterable[Article], remove: Collection[str]) -> None:
        """Write the next state's file: untouched lines as they were, then `replace`."""
        replace = list(replace)
        skip = set(remove) | {a.id for a in replace}
        kept = [line + b"\n" for article_id, line in self.lines if article_id not in skip]
        fresh = [(json.dumps(a.to_record(), ensure_ascii=False) + "\n").encode() for a in replace]
        write_atomic(new, b"".join([*kept, *fresh]))


def _parse(path: Path, number: int, line: str) -> Article:
    try:
        return Article.from_record(json.loads(line))
    except (ValueError, KeyError, AssertionError) as exc:
        raise UnusableIndex(f"{path}:{number}: corrupt article record ({exc})") from exc
