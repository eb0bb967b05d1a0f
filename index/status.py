"""What `index status` reports, read from the manifest alone so it answers instantly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from index.manifest import Manifest


def index_status(index_dir: Path, manifest: Manifest) -> dict[str, Any]:
    """Top-level `articles` and `chunks` counts first; the rest describes the build."""
    return {
        "articles": manifest.article_count,
        "chunks": manifest.chunk_count,
        "index_dir": str(index_dir),
        "model": manifest.model,
        "dimension": manifest.dimension,
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


def disk_size(path: Path) -> int:
    """Bytes under `path` (embedded Chroma included; a server's storage is not ours to count)."""
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
