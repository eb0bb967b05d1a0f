"""The article texts an index was built from, kept beside Chroma.

Citations quote `article.text[start:end]` and show the paragraph around it, so
the full texts live here, one JSON object per line, one file per index state
(the manifest names the live one).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from index.manifest import UnusableIndex, write_atomic
from index.types import Article

ARTICLES_DIR = "articles"


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
        try:
            article = Article.from_record(json.loads(line))
        except (ValueError, KeyError, AssertionError) as exc:
            raise UnusableIndex(f"{path}:{number}: corrupt article record ({exc})") from exc
        articles[article.id] = article
    return articles
