"""What `index status` reports, read from the manifest alone so it answers instantly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from index.manifest import Manifest
from index.sentvecs import vector_file


def index_status(index_dir: Path, manifest: Manifest) -> dict[str, Any]:
    """Top-level `articles` and `chunks` counts first; the rest describes the build."""
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


def with_sentence_vectors(index_dir: Path, manifest: Manifest) -> int:
    return sum(
        vector_file(index_dir, article_id, entry.hash).is_file()
        for article_id, entry in manifest.articles.items()
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
