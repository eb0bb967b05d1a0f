"""Read article files of several formats into `Article`s, reporting every problem.

A bad record never stops a load: it becomes a `Problem` naming the file, line and
field, and the rest is read, so one broken line in a large export costs one article,
not the whole run. Text is kept exactly as written (apart from line endings), because
chunk offsets and citations point into it.

Here: finding files, decoding them, and keeping the first article per id. Each
format's reader is in `index.formats` (by suffix); the record model that maps a
record's fields to an `Article` is `index.records`.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from index.formats import READERS, SourceFile
from index.records import unix_newlines
from index.types import Article, Problem


@dataclass
class LoadResult:
    articles: list[Article]
    problems: list[Problem]  # each names the file and line/row and field
    files: list[str]  # files read, including any then rejected (e.g. not UTF-8)


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
            read = READERS[file.path.suffix.lower()]
            for article in read(file, text, result.problems):
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


def _discover(root: Path, problems: list[Problem]) -> list[SourceFile]:
    where = root.as_posix()
    if root.is_file():
        if root.suffix.lower() not in READERS:
            kind = root.suffix or "(no extension)"
            supported = ", ".join(sorted(READERS))
            problems.append(Problem(where, f"unsupported file type {kind}; supported: {supported}"))
            return []
        return [SourceFile(root, where, root.with_suffix("").name)]
    if root.is_dir():
        return _walk(root)
    if root.exists():
        problems.append(Problem(where, "not a regular file or directory"))
    else:
        problems.append(Problem(where, "no such file or directory"))
    return []


def _walk(root: Path) -> list[SourceFile]:
    """Hidden entries are skipped because they are editor, VCS or OS clutter, and
    other extensions silently because a data folder often holds READMEs and licences."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in READERS:
                found.append(Path(dirpath, name).relative_to(root))
    found.sort(key=lambda rel: rel.parts)
    return [
        SourceFile(root / rel, (root / rel).as_posix(), rel.with_suffix("").as_posix())
        for rel in found
    ]


def _read_text(file: SourceFile, result: LoadResult) -> str | None:
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
    return unix_newlines(text)
