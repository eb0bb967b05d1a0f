"""The article texts an index was built from, kept beside Chroma.

Citations quote `article.text[start:end]` and show the paragraph around it, so
the full texts live here, one JSON object per line, one file per index state
(the manifest names the live one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

from index.manifest import UnusableIndex, write_atomic
from index.types import Article

ARTICLES_DIR = "articles"

# Every line starts with the article's id (Article.to_record puts it first), so an
# update can tell lines apart without parsing whole articles.
_ID_RE = re.compile(r'\{"id": ("(?:[^"\\]|\\.)*")')


def write_articles(path: Path, articles: Iterable[Article]) -> None:
    lines = (json.dumps(a.to_record(), ensure_ascii=False) for a in articles)
    write_atomic(path, "".join(line + "\n" for line in lines))


def read_articles(path: Path) -> dict[str, Article]:
    try:
        # Split on "\n" only: texts may hold U+2028 and the like, which splitlines() breaks on.
        lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    except FileNotFoundError as exc:
        raise UnusableIndex(f"{path}: article file named by the manifest is missing") from exc
    articles: dict[str, Article] = {}
    for number, line in enumerate(lines, start=1):
        article = _parse(path, number, line)
        articles[article.id] = article
    return articles


def read_some(path: Path, ids: Collection[str]) -> dict[str, Article]:
    """Only the articles named by `ids`: an update needs the old versions of the few it
    changes, and parsing every article of a large archive cost it half a second."""
    return {
        article_id: _parse(path, number, line)
        for number, article_id, line in _lines(path)
        if article_id in ids
    }


def rewrite_articles(
    old: Path, new: Path, replace: Iterable[Article], remove: Collection[str]
) -> None:
    """Write the next state's file: the old lines of untouched articles as they were (not
    parsed and encoded again), then `replace` (new and changed articles)."""
    replace = list(replace)
    skip = set(remove) | {a.id for a in replace}
    kept = (line + "\n" for _, article_id, line in _lines(old) if article_id not in skip)
    fresh = (json.dumps(a.to_record(), ensure_ascii=False) + "\n" for a in replace)
    write_atomic(new, "".join([*kept, *fresh]))


def _lines(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line number, article id, line) of an article file."""
    try:
        # Split on "\n" only: texts may hold U+2028 and the like, which splitlines() breaks on.
        lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    except FileNotFoundError as exc:
        raise UnusableIndex(f"{path}: article file named by the manifest is missing") from exc
    for number, line in enumerate(lines, start=1):
        match = _ID_RE.match(line)
        try:
            article_id = json.loads(match.group(1)) if match else None
        except ValueError:
            article_id = None
        if not isinstance(article_id, str):
            raise UnusableIndex(f"{path}:{number}: corrupt article record (no id first)")
        yield number, article_id, line


def _parse(path: Path, number: int, line: str) -> Article:
    try:
        return Article.from_record(json.loads(line))
    except (ValueError, KeyError, AssertionError) as exc:
        raise UnusableIndex(f"{path}:{number}: corrupt article record ({exc})") from exc
