"""The manifest: what an index holds and how it was built, swapped in atomically.

Readers trust only what the manifest names (collection, article file, article
hashes), so a build that dies half-way leaves the previous state serving.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

MANIFEST_FILE = "manifest.json"
FORMAT = 1


class UnusableIndex(RuntimeError):
    """The index is missing, unreadable or does not fit the settings."""


class ArticleEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hash: str
    chunks: int


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = FORMAT
    newsdesk_version: str
    collection: str
    articles_file: str
    chroma_url: str | None
    model: str
    dimension: int
    chunk_tokens: int
    overlap_tokens: int
    title_tokens: int
    sources: list[str]
    includes_demo: bool = False
    created_at: str
    updated_at: str
    articles: dict[str, ArticleEntry]

    @property
    def article_count(self) -> int:
        return len(self.articles)

    @property
    def chunk_count(self) -> int:
        return sum(entry.chunks for entry in self.articles.values())


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def read_manifest(index_dir: Path) -> Manifest | None:
    """The index's manifest, or None when nothing has been built there yet."""
    path = index_dir / MANIFEST_FILE
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return Manifest.model_validate(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise UnusableIndex(f"{path}: unreadable manifest ({exc})") from exc


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    write_atomic(index_dir / MANIFEST_FILE, manifest.model_dump_json(indent=1))


def write_atomic(path: Path, text: str) -> None:
    """Write to a temp file beside `path`, fsync, then rename over it: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
