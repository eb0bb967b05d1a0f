"""llama-index views of our records, so its retrievers, postprocessors and engines plug in.

Imported only where llama-index is wanted: importing it costs seconds, which the
indexing path does not pay.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.schema import Document, TextNode
from pydantic import PrivateAttr

from index.embed import Embedder
from index.types import Article, Chunk


def article_metadata(article: Article) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "article_id": article.id,
        "title": article.title,
        "url": article.url,
        "date": article.date or "",
        "source": article.source,
        "author": article.author,
        "hash": article.hash,
    }
    return meta


def to_document(article: Article) -> Document:
    return Document(id_=article.id, text=article.text, metadata=article_metadata(article))


def to_node(article: Article, chunk: Chunk, node_id: str | None = None) -> TextNode:
    """A TextNode whose `start_char_idx:end_char_idx` is the chunk's span in the article."""
    return TextNode(
        id_=node_id or f"{article.id}:{article.hash[:12]}:{chunk.index}",
        text=chunk.text,
        start_char_idx=chunk.start,
        end_char_idx=chunk.end,
        metadata={**article_metadata(article), "chunk": chunk.index},
        excluded_embed_metadata_keys=["article_id", "url", "date", "source", "author", "hash"],
        excluded_llm_metadata_keys=["article_id", "hash", "chunk"],
    )


class NewsdeskEmbedding(BaseEmbedding):
    """Our batched, offline embedder behind llama-index's embedding interface.

    llama-index's HuggingFaceEmbedding embeds 10 texts per call by default; this
    passes whole batches to sentence-transformers and never downloads a model.
    """

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        super().__init__(model_name=embedder.model_id, embed_batch_size=256, **kwargs)
        self._embedder = embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        vector: list[float] = self._embedder.embed_query(query).tolist()
        return vector

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = self._embedder.embed(texts).tolist()
        return vectors
