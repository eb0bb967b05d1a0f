"""Dense retrieval over a built index: the closest chunks to a question.

Read-only. Only chunks of the article versions the manifest names are returned,
so leftovers of an interrupted update never surface.
"""

from __future__ import annotations

from index.build import check_compatible
from index.embed import Embedder
from index.manifest import Manifest, UnusableIndex, read_manifest
from index.store import ChunkStore, Hit, chroma_client
from newsdesk.settings import Settings


class DenseSearch:
    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        manifest = read_manifest(settings.index_dir)
        if manifest is None:
            raise UnusableIndex(
                f"no index in {settings.index_dir}: build one with "
                "`newsdesk index build SOURCE...` (or `--demo`)"
            )
        self.embedder = embedder or Embedder(settings.embedding)
        check_compatible(manifest, settings, self.embedder.model_id)
        self.manifest: Manifest = manifest
        self.store = ChunkStore.open(chroma_client(settings), manifest.collection)
        if self.store.model not in (None, manifest.model):
            raise UnusableIndex(
                f"Chroma collection {manifest.collection} holds embeddings of "
                f"{self.store.model!r}, not {manifest.model!r}: rebuild the index"
            )

    def search(self, question: str, k: int = 5) -> list[Hit]:
        vector = self.embedder.embed_query(question)
        hits = self.store.query(vector, k + 10)
        live = [h for h in hits if self._is_live(h)]
        return live[:k]

    def _is_live(self, hit: Hit) -> bool:
        entry = self.manifest.articles.get(hit.article_id)
        return entry is not None and entry.hash == hit.metadata.get("hash")
