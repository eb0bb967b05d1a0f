"""What `index status` reports, read from the index database alone so it answers instantly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from index.db import IndexDB
from index.device import DeviceUnavailable, place
from index.manifest import Manifest
from index.sentences import SPLITTER
from newsdesk.settings import EmbeddingSettings


def index_status(
    index_dir: Path, manifest: Manifest, embedding: EmbeddingSettings | None = None
) -> dict[str, Any]:
    """Top-level `articles` and `chunks` counts first; the rest describes the build.

    Given the embedding settings, also where this machine would run the model (which
    asks torch about GPUs, so it is not from the manifest alone)."""
    return {
        "articles": manifest.article_count,
        "chunks": manifest.chunk_count,
        "articles_with_sentence_vectors": with_sentence_vectors(index_dir, manifest),
        # syndicated copies and re-publications (index.dedupe); threshold None: not looked for
        "duplicate_groups": manifest.duplicate_groups,
        "articles_in_duplicate_groups": len(manifest.duplicates),
        "dedupe_threshold": manifest.dedupe_threshold,
        "index_dir": str(index_dir),
        "model": manifest.model,
        "dimension": manifest.dimension,
        **(placement_status(embedding) if embedding is not None else {}),
        "chunk_tokens": manifest.chunk_tokens,
        "overlap_tokens": manifest.overlap_tokens,
        "store": manifest.chroma_url or "embedded",
        "collection": manifest.collection,
        "sources": manifest.sources,
        "created_at": manifest.created_at,
        "updated_at": manifest.updated_at,
        "disk_bytes": disk_size(index_dir),
        "newsdesk_version": manifest.newsdesk_version,
    }


def placement_status(embedding: EmbeddingSettings) -> dict[str, str]:
    """The device and dtype questions and updates embed with here, and why; a setting
    this machine cannot honour is shown, not raised: status is where one looks for it."""
    try:
        placement = place(embedding.device, embedding.dtype)
    except DeviceUnavailable as exc:
        return {"device": "unavailable", "dtype": embedding.dtype, "device_reason": exc.message}
    return {
        "device": placement.device,
        "dtype": placement.dtype,
        "device_reason": placement.reason,
    }


def with_sentence_vectors(index_dir: Path, manifest: Manifest) -> int:
    """Articles of the state whose sentence vectors the answerer can use (those from
    another sentence splitter it cannot)."""
    found = IndexDB(index_dir).read_sentences()
    return sum(
        1
        for article_id, rows in found.items()
        if article_id in manifest.articles and rows.splitter == SPLITTER
    )


def missing_vectors_hint(articles: int, with_vectors: int) -> str | None:
    """Why answers may be slow: articles indexed before sentence vectors were stored."""
    missing = articles - with_vectors
    if missing <= 0:
        return None
    return (
        f"note: {missing} of {articles} articles have no stored sentence vectors "
        "(indexed by an older version), so answers embed their sentences at query time; "
        "`newsdesk index build` with the same sources makes them fast"
    )


def disk_size(path: Path) -> int:
    """Bytes under `path` (embedded Chroma included; a server's storage is not ours to count)."""
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
