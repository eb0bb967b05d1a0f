"""Chroma, used only as a vector store: we always pass our own embeddings.

Chroma's default embedding function downloads a model, so every collection is
opened with `embedding_function=None` and every write carries vectors.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from index.dates import epoch_seconds
from index.embed import Vectors
from index.types import Article, Chunk
from newsdesk.settings import Settings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

CHROMA_DIR = "chroma"
_WRITE_BATCH = 1000


class StoreUnavailable(RuntimeError):
    """Chroma could not be reached or opened."""


def chroma_client(settings: Settings) -> ClientAPI:
    """An embedded client under the index directory, or an HTTP client for a server."""
    import chromadb
    from chromadb.config import Settings as ChromaConfig

    config = ChromaConfig(anonymized_telemetry=False, allow_reset=False)
    url = settings.chroma.url
    if url is None:
        path = settings.index_dir / CHROMA_DIR
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=config)
    parts = urlsplit(url)
    try:
        return chromadb.HttpClient(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
            settings=config,
        )
    except Exception as exc:
        raise StoreUnavailable(f"cannot reach the Chroma server at {url}: {exc}") from exc


def chunk_id(article: Article, chunk: Chunk) -> str:
    """Deterministic and versioned by content, so a re-run overwrites and old text never mixes."""
    return f"{article.id}:{article.hash[:12]}:{chunk.index}"


def chunk_ids(article_id: str, article_hash: str, count: int) -> list[str]:
    return [f"{article_id}:{article_hash[:12]}:{n}" for n in range(count)]


def parse_chunk_id(chunk: str) -> tuple[str, str, int]:
    """(article id, hash prefix, chunk number); article ids may themselves hold colons."""
    rest, _, number = chunk.rpartition(":")
    article_id, _, hash_prefix = rest.rpartition(":")
    return article_id, hash_prefix, int(number)


def chunk_metadata(article: Article, chunk: Chunk) -> dict[str, str | int]:
    """What a hit needs to be cited and filtered without reading the article file."""
    meta: dict[str, str | int] = {
        "article_id": article.id,
        "hash": article.hash,
        "chunk": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "title": article.title,
        "url": article.url,
        "source": article.source,
        "author": article.author,
    }
    if article.date:
        meta["date"] = article.date
        meta["date_ts"] = epoch_seconds(article.date)
    return meta


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk: its text, where it sits in its article, and how close it was."""

    id: str
    text: str
    metadata: Mapping[str, Any]
    distance: float

    @property
    def article_id(self) -> str:
        return str(self.metadata["article_id"])

    @property
    def start(self) -> int:
        return int(self.metadata["start"])

    @property
    def end(self) -> int:
        return int(self.metadata["end"])


class ChunkStore:
    """One Chroma collection of chunks."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    @classmethod
    def create(cls, client: ClientAPI, name: str, model: str, dimension: int) -> ChunkStore:
        collection = client.create_collection(
            name,
            embedding_function=None,
            metadata={"hnsw:space": "cosine", "model": model, "dimension": dimension},
        )
        return cls(collection)

    @classmethod
    def open(cls, client: ClientAPI, name: str) -> ChunkStore:
        try:
            collection = client.get_collection(name, embedding_function=None)
        except Exception as exc:
            raise StoreUnavailable(f"Chroma collection {name!r} cannot be opened: {exc}") from exc
        return cls(collection)

    @property
    def model(self) -> str | None:
        meta = self.collection.metadata or {}
        value = meta.get("model")
        return str(value) if value is not None else None

    def count(self) -> int:
        return int(self.collection.count())

    def add(self, rows: Sequence[tuple[Article, Chunk]], vectors: Vectors) -> None:
        if len(rows) != len(vectors):
            raise ValueError(f"{len(rows)} chunks but {len(vectors)} vectors")
        for lo, hi in _batches(len(rows), _WRITE_BATCH):
            batch = rows[lo:hi]
            self.collection.upsert(
                ids=[chunk_id(article, chunk) for article, chunk in batch],
                embeddings=vectors[lo:hi],
                documents=[chunk.text for _, chunk in batch],
                metadatas=[chunk_metadata(article, chunk) for article, chunk in batch],
            )

    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        """Stored embeddings by chunk id; ids not in the collection are left out."""
        found: dict[str, Vectors] = {}
        for lo, hi in _batches(len(ids), _WRITE_BATCH):
            result = self.collection.get(ids=list(ids[lo:hi]), include=["embeddings"])
            embeddings = result["embeddings"]
            if embeddings is None:
                continue
            for chunk, vector in zip(result["ids"], embeddings, strict=True):
                found[chunk] = np.asarray(vector, dtype=np.float32)
        return found

    def delete(self, ids: Sequence[str]) -> None:
        for lo, hi in _batches(len(ids), _WRITE_BATCH):
            self.collection.delete(ids=list(ids[lo:hi]))

    def query(self, vector: Vectors, k: int, where: Mapping[str, Any] | None = None) -> list[Hit]:
        from chromadb.errors import NotFoundError

        try:
            result = self.collection.query(
                query_embeddings=[vector.tolist()],
                n_results=k,
                where=dict(where) if where else None,
                include=["documents", "metadatas", "distances"],
            )
        except NotFoundError as exc:  # a rebuild dropped it after this reader opened
            raise StoreUnavailable(f"Chroma collection {self.collection.name!r} is gone") from exc
        ids = result["ids"][0]
        docs = (result["documents"] or [[]])[0]
        metas = (result["metadatas"] or [[]])[0]
        dists = (result["distances"] or [[]])[0]
        return [
            Hit(id=i, text=str(d), metadata=dict(m or {}), distance=float(s))
            for i, d, m, s in zip(ids, docs, metas, dists, strict=True)
        ]


def drop_collection(client: ClientAPI, name: str) -> None:
    """Delete a collection if it exists; used to clean up after a failed or replaced build."""
    try:
        client.delete_collection(name)
    except Exception:  # already gone: nothing to clean
        return


def _batches(total: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, total, size):
        yield lo, min(lo + size, total)
