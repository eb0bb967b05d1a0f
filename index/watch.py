"""Watched folders: article files dropped into a folder are indexed on the next poll.

A folder is updated as a whole source (`Indexer.update`), so its articles keep the ids
`newsdesk index update FOLDER` gives them and only new or changed ones are embedded;
the size and mtime of each file, kept in the feed store, say whether there is anything
to do at all. Deleting a file does not remove its articles from the index.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from index.build import Indexer, IndexReport
from index.embed import Embedder
from index.feeds_store import FeedStore
from index.types import Problem
from newsdesk.errors import NewsdeskError
from newsdesk.settings import Settings

Stats = dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns)


@dataclass
class FolderReport:
    changed: dict[Path, list[str]] = field(default_factory=dict)  # folder -> files new or changed
    problems: list[Problem] = field(default_factory=list)
    index: IndexReport | None = None


def scan(folder: Path) -> Stats:
    """Every visible file under `folder` (hidden ones are skipped, as the loader does)."""
    found: Stats = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            path = Path(dirpath, name)
            try:
                stat = path.stat()
            except OSError:  # removed while we looked
                continue
            found[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found


def poll_folders(
    settings: Settings, folders: Sequence[Path], embedder: Embedder | None = None
) -> FolderReport:
    """Index the folders in which a file appeared or changed since the last poll."""
    store = FeedStore(settings.index_dir)
    report = FolderReport()
    stats: dict[Path, Stats] = {}
    for folder in dict.fromkeys(f.resolve() for f in folders):
        if not folder.is_dir():
            report.problems.append(Problem(str(folder), "no such folder; nothing watched there"))
            continue
        now, before = scan(folder), store.files(folder)
        changed = sorted(path for path, stat in now.items() if before.get(path) != stat)
        if changed:
            report.changed[folder] = changed
            stats[folder] = now
    if not stats:
        return report
    try:
        report.index = Indexer(settings, embedder).update(list(stats))
    except NewsdeskError as exc:  # the next poll tries these files again
        report.problems += [Problem(str(f), f"not indexed: {exc}") for f in stats]
        return report
    report.problems += report.index.problems
    for folder, now in stats.items():
        store.set_files(folder, now)
    return report
