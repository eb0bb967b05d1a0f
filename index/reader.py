"""A read-only, consistent view of one index state, for everything that asks questions.

Everything comes from the state the manifest named when the reader opened: the
article texts, the Chroma collection (filtered to that state's article versions)
and the BM25 index. A rebuild that switches the manifest later does not disturb
an open reader; `IndexReader.is_current` tells when it is time to reopen. One reader
serves concurrent questions: everything is read at open except the sentence vectors,
whose cache takes a lock.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from index.articles import read_articles
from index.embed import Embedder
from index.lexical import LEXICAL_DIR, LexicalIndex, segment_of
from index.manifest import (
    MANIFEST_FILE,
    Manifest,
    UnusableIndex,
    check_compatible,
    read_manifest,
)
from index.sentences import sentence_spans
from index.sentvecs import SentenceVectors, read_vectors
from index.store import ChunkStore, chroma_client, chunk_ids, parse_chunk_id
from index.types import Article
from newsdesk.settings import Settings

log = logging.getLogger(__name__)
_VECTOR_CACHE = 256  # articles whose sentence vectors stay in memory (~0.1-0.4 MB each)


class IndexReader:
    def __init__(
        self, settings: Settings, embedder: Embedder | None = None, fresh: bool = False
    ) -> None:
        """`fresh`: the state was written by another process (see `chroma_client`)."""
        self._stamp = _manifest_stamp(settings.index_dir)  # before reading: see is_current
        manifest = read_manifest(settings.index_dir)
        if manifest is None:
            raise UnusableIndex(
                f"no index in {settings.index_dir}: build one with "
                "`newsdesk index build SOURCE...` (or `newsdesk index build --demo`)"
            )
        self.settings = settings
        self.embedder = embedder or Embedder(settings.embedding)
        check_compatible(manifest, settings, self.embedder.model_id)
        self.manifest: Manifest = manifest
        self.articles: dict[str, Article] = read_articles(
            settings.index_dir / manifest.articles_file
        )
        client = chroma_client(settings, fresh=fresh)
        self.store = ChunkStore.open(client, manifest.collection, model=manifest.model)
        live = self.chunk_ids(manifest.articles)
        if manifest.lexical_segments:
            root = settings.index_dir / LEXICAL_DIR
            self.lexical = LexicalIndex.open(root, manifest.lexical_segments, live)
        else:
            log.warning(
                "%s was built by an older newsdesk: its keyword index is rebuilt in memory "
                "at each start until `newsdesk index update` converts it",
                settings.index_dir,
            )
            self.lexical = LexicalIndex(
                [segment_of(self.articles.values(), manifest.articles)], live
            )
        self._sentences: dict[str, list[tuple[int, int]]] = {}
        self._sentence_vectors: OrderedDict[str, SentenceVectors | None] = OrderedDict()
        self._vectors_lock = threading.Lock()  # questions share a reader: one LRU step at a time

    @property
    def version(self) -> str:
        """Names this index state: changes with every build or update that changed anything."""
        return Path(self.manifest.articles_file).stem

    def is_current(self) -> bool:
        """Whether the manifest still names this state. Asked before every chat answer,
        so an unchanged manifest file is recognised by its stat alone: it is only ever
        replaced by a rename, which gives it a new inode."""
        stamp = _manifest_stamp(self.settings.index_dir)
        if stamp == self._stamp:
            return True
        latest = read_manifest(self.settings.index_dir)
        current = latest is not None and latest.articles_file == self.manifest.articles_file
        if current:
            self._stamp = stamp
        return current

    def is_live_chunk(self, chunk_id: str) -> bool:
        """True for a chunk of this state, told by its id alone: a hit whose record a
        writer in another process has deleted meanwhile comes back without metadata."""
        article_id, hash_prefix, number = parse_chunk_id(chunk_id)
        entry = self.manifest.articles.get(article_id)
        return entry is not None and entry.hash[:12] == hash_prefix and number < entry.chunks

    def chunk_ids(self, article_ids: Iterable[str]) -> list[str]:
        entries = self.manifest.articles
        return [
            chunk
            for article_id in article_ids
            if article_id in entries
            for chunk in chunk_ids(article_id, entries[article_id].hash, entries[article_id].chunks)
        ]

    def chunk_span(self, chunk_id: str) -> tuple[str, int, int]:
        """(article id, start, end) of a live chunk."""
        article_id, _, number = parse_chunk_id(chunk_id)
        start, end = self.manifest.articles[article_id].spans[number]
        return article_id, start, end

    def sentences(self, article_id: str) -> list[tuple[int, int]]:
        """Sentence spans of an article: as stored at index time, else split now."""
        spans = self._sentences.get(article_id)
        if spans is None:
            stored = self.sentence_vectors(article_id)
            spans = stored.spans if stored else sentence_spans(self.articles[article_id].text)
            self._sentences[article_id] = spans
        return spans

    def sentence_vectors(self, article_id: str) -> SentenceVectors | None:
        """The article's sentence vectors from index time (None for an index built
        before they existed); the most recently used are kept in memory."""
        cache = self._sentence_vectors
        with self._vectors_lock:
            if article_id in cache:
                cache.move_to_end(article_id)
                return cache[article_id]
        entry = self.manifest.articles.get(article_id)
        found = None
        if entry is not None:
            found = read_vectors(self.settings.index_dir, article_id, entry.hash)
        with self._vectors_lock:
            cache[article_id] = found
            if len(cache) > _VECTOR_CACHE:
                cache.popitem(last=False)
        return found


def _manifest_stamp(index_dir: Path) -> tuple[int, int, int] | None:
    try:
        info = (index_dir / MANIFEST_FILE).stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size
