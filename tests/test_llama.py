"""Our records and embedder as llama-index objects, for users who plug in its ecosystem."""

from __future__ import annotations

import numpy as np

from index.chunk import chunk_text
from index.embed import Embedder
from index.llama import NewsdeskEmbedding, to_document, to_node
from index.types import Article


def test_nodes_carry_exact_offsets_and_embed_like_ours(embedder: Embedder) -> None:
    article = Article(
        id="a1",
        title="Storm closes schools",
        text="Schools shut on Monday. The storm brought down trees.\n\nBuses will run on Tuesday.",
        date="2024-01-08",
        source="Gazette",
    )
    chunks = chunk_text(article.id, article.text, embedder.token_spans, 12, 0)
    assert len(chunks) > 1
    doc = to_document(article)
    for chunk in chunks:
        node = to_node(article, chunk)
        assert doc.text[node.start_char_idx : node.end_char_idx] == node.text
        assert node.metadata["title"] == "Storm closes schools"

    llama = NewsdeskEmbedding(embedder)
    ours = embedder.embed([c.text for c in chunks])
    theirs = np.array(llama.get_text_embedding_batch([c.text for c in chunks]))
    assert np.allclose(ours, theirs, atol=1e-5)
    query = np.array(llama.get_query_embedding("When do buses run?"))
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-4
