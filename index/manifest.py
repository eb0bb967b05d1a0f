"""The manifest: what the live index state holds and how it was built.

It is the in-memory record of one state, read from and committed to the index
database (index.db) as a whole; readers trust only what it names (collection,
article versions and their chunks, keyword segments, sentence-vector rows), so a
build that dies half-way leaves the previous state serving.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from newsdesk.errors import NewsdeskError
from newsdesk.settings import Settings


class UnusableIndex(NewsdeskError, RuntimeError):
    """The index is missing, unreadable or does not fit the settings."""


@dataclass(slots=True)
class ArticleEntry:
    """One indexed article version and the spans of its chunks, in chunk order, kept
    packed as the index database stores them (int32 start, end pairs). A plain
    dataclass, packed: opening an index makes one per article, a pydantic model cost
    9 µs each, and a million chunks' spans as Python tuples took 130 MB and 0.5 s."""

    hash: str
    packed: bytes

    @classmethod
    def of(cls, article_hash: str, spans: Iterable[tuple[int, int]]) -> ArticleEntry:
        return cls(article_hash, pack_spans(spans))

    @property
    def spans(self) -> list[tuple[int, int]]:
        return unpack_spans(self.packed)

    @property
    def chunks(self) -> int:
        return len(self.packed) // 8

    def span(self, number: int) -> tuple[int, int]:
        start, end = np.frombuffer(self.packed, dtype="<i4", count=2, offset=8 * number)
        return int(start), int(end)


def pack_spans(spans: Iterable[tuple[int, int]]) -> bytes:
    return np.asarray(list(spans), dtype="<i4").reshape(-1, 2).tobytes()


def unpack_spans(blob: bytes) -> list[tuple[int, int]]:
    flat = np.frombuffer(blob, dtype="<i4").tolist()
    return list(zip(flat[0::2], flat[1::2], strict=True))


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: str  # names this state; new with every switch (the "index version")
    newsdesk_version: str
    collection: str
    # Names of the BM25 segments under lexical/, oldest first.
    lexical_segments: list[str] = []
    # The sentence-vector array (index.vectors) and how many rows of it were written
    # when this state committed; rows past that are a dead writer's.
    vectors_file: str
    vector_rows: int
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
    # Near-duplicate groups (index.dedupe): article id -> the canonical id of its group,
    # for members of groups of two or more. `dedupe_threshold` is the threshold they were
    # found with, None when they were not looked for (dedupe off, or an older index), so
    # an update knows when to look again.
    duplicates: dict[str, str] = {}
    dedupe_threshold: float | None = None

    @property
    def article_count(self) -> int:
        return len(self.articles)

    @property
    def duplicate_groups(self) -> int:
        return len(set(self.duplicates.values()))

    @property
    def chunk_count(self) -> int:
        return sum(entry.chunks for entry in self.articles.values())


def check_compatible(
    manifest: Manifest,
    settings: Settings,
    model_id: str,
    chunking: tuple[int, int, int] | None = None,
) -> None:
    """Refuse to mix embeddings or chunkings: results would be silently wrong."""
    if manifest.model != model_id:
        raise UnusableIndex(
            f"the index in {settings.index_dir} was built with the embedding model "
            f"{manifest.model!r} but the settings name {model_id!r}; either set "
            f"NEWSDESK_EMBEDDING__MODEL={manifest.model} or rebuild with `newsdesk index build`"
        )
    if manifest.chroma_url != settings.chroma.url:
        raise UnusableIndex(
            f"the index in {settings.index_dir} lives in Chroma at "
            f"{manifest.chroma_url or 'the embedded store'}, but the settings say "
            f"{settings.chroma.url or 'embedded'}; rebuild with `newsdesk index build`"
        )
    if chunking is not None and chunking != (
        manifest.chunk_tokens,
        manifest.overlap_tokens,
        manifest.title_tokens,
    ):
        raise UnusableIndex(
            "the chunking settings differ from those the index was built with "
            f"({manifest.chunk_tokens}/{manifest.overlap_tokens}/{manifest.title_tokens} "
            "tokens); run `newsdesk index build` to rebuild with the new ones"
        )


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write to a temp file beside `path`, fsync, then rename over it: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or new file in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
