"""Chroma, used only as a vector store: we always pass our own embeddings.

Chroma's default embedding function downloads a model, so every collection is
opened with `embedding_function=None` and every write carries vectors.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from index.dates import epoch_seconds
from index.embed import Vectors
from index.manifest import ArticleEntry, UnusableIndex
from index.types import Article, Chunk
from newsdesk.errors import NewsdeskError
from newsdesk.settings import Settings

if TYPE_CHECKING:
    import httpx
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import Include, QueryResult

log = logging.getLogger(__name__)

CHROMA_DIR = "chroma"
_WRITE_BATCH = 1000
_PAGE = 5000  # chunks read per request by id
# Ids alone, read by offset: each request costs ~0.1 s whatever its size, and 127k ids
# took 3.0 s in pages of 5,000 against 0.8 s in one (embedded Chroma 1.5).
_ID_PAGE = 100_000
_HTTP_API = "chromadb.api.fastapi.FastAPI"


class StoreUnavailable(NewsdeskError, RuntimeError):
    """Chroma could not be reached or opened."""


def chroma_client(settings: Settings, fresh: bool = False) -> ClientAPI:
    """An embedded client under the index directory, or an HTTP client for a server
    whose every request gives up after `chroma.timeout` seconds.

    `fresh`: an embedded client that sees what another process wrote. Chroma keeps one
    client system per path in each process, with its vector index in memory, and never
    reloads it: a process that did not write would go on searching the old vectors.
    Clearing that cache makes the next client load from disk; clients made before keep
    working on what they had (so answers in flight are not disturbed)."""
    import chromadb
    from chromadb.config import Settings as ChromaConfig

    config = ChromaConfig(anonymized_telemetry=False, allow_reset=False)
    url = settings.chroma.url
    if url is None:
        path = settings.index_dir / CHROMA_DIR
        path.mkdir(parents=True, exist_ok=True)
        if fresh:
            from chromadb.api.shared_system_client import SharedSystemClient

            SharedSystemClient.clear_system_cache()
        return chromadb.PersistentClient(path=str(path), settings=config)
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 8000)
    timeout = settings.chroma.timeout
    # Making the client already asks the server, with no time limit: ask first with one.
    _heartbeat(url, _origin(parts.scheme == "https", host, port), timeout)
    try:
        client = chromadb.HttpClient(
            host=host, port=port, ssl=parts.scheme == "https", settings=config
        )
    except Exception as exc:
        failed = StoreUnavailable(f"cannot reach the Chroma server at {url}: {exc}")
        raise _network_failure(url, exc) or failed from exc
    _bound_requests(client, timeout)
    return client


def _heartbeat(url: str, base: str, timeout: float) -> None:
    import httpx

    try:
        httpx.get(f"{base}/api/v2/heartbeat", timeout=timeout)
    except httpx.TransportError as exc:
        raise _unreachable(url, exc) from exc


def _bound_requests(client: ClientAPI, timeout: float) -> None:
    """chromadb 1.5 makes its HTTP session with `timeout=None` and no setting to change
    it, so a hung server would hang every question. The session is shared by every
    client of the same server in this process: the last timeout set applies to all."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(timeout)
    else:
        log.warning("cannot bound Chroma's requests: a hung server will hang questions")


def _server_url(client: ClientAPI) -> str | None:
    """The address of the server an HTTP client talks to, for error messages."""
    config = client.get_settings()
    if config.chroma_api_impl != _HTTP_API or not config.chroma_server_host:
        return None
    ssl = bool(config.chroma_server_ssl_enabled)
    return _origin(ssl, config.chroma_server_host, config.chroma_server_http_port)


def _origin(ssl: bool, host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address
    return f"{'https' if ssl else 'http'}://{shown}:{port}"


def _transport_error(exc: BaseException) -> Exception | None:
    """The network failure behind `exc`, if any: chromadb re-raises some as ValueError."""
    import httpx

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, httpx.TransportError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _unreachable(url: str, exc: Exception) -> StoreUnavailable:
    """One message for every way a server can fail to answer, naming the server."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        seconds = _read_timeout(exc)
        waited = f"within {seconds:g} s" if seconds is not None else "in time"
        why = f"it did not answer {waited} (hung or overloaded?)"
    else:
        reason = re.sub(r"^\[Errno -?\d+\] ", "", str(exc)).rstrip(".") or type(exc).__name__
        why = f"{reason[:1].lower()}{reason[1:]} (is it running?)"
    return StoreUnavailable(f"cannot reach the Chroma server at {url}: {why}")


def _read_timeout(exc: httpx.TimeoutException) -> float | None:
    try:
        limits = exc.request.extensions.get("timeout") or {}
    except RuntimeError:  # httpx raises when no request is attached
        return None
    seconds = limits.get("read")
    return float(seconds) if seconds is not None else None


def _network_failure(url: str | None, exc: Exception) -> StoreUnavailable | None:
    """The unreachable-server error, when `exc` was the network failing to reach `url`."""
    if url is None:
        return None
    network = _transport_error(exc)
    return None if network is None else _unreachable(url, network)


@contextmanager
def _reaching(url: str | None) -> Iterator[None]:
    """Requests to the server at `url`: network failures become StoreUnavailable naming
    it, so every caller sees one error type; anything else passes through unchanged."""
    try:
        yield
    except Exception as exc:
        unreachable = _network_failure(url, exc)
        if unreachable is None:
            raise
        raise unreachable from exc


def chunk_id(article: Article, chunk: Chunk) -> str:
    """Deterministic and versioned by content, so a re-run overwrites and old text never mixes."""
    return f"{version_key(article.id, article.hash)}:{chunk.index}"


def chunk_ids(article_id: str, article_hash: str, count: int) -> list[str]:
    version = version_key(article_id, article_hash)
    return [f"{version}:{n}" for n in range(count)]


def version_key(article_id: str, article_hash: str) -> str:
    """What the chunk ids of one article version start with, before ":n"."""
    return f"{article_id}:{article_hash[:12]}"


def version_article(version: str) -> str:
    """The article id of a version key (article ids may hold colons; hashes do not)."""
    return version.rpartition(":")[0]


def chunk_versions(ids: Sequence[str]) -> list[tuple[str, int, int]]:
    """(version key, first position, chunks) of each version in `ids`, which hold each
    version's chunks together and in order from ":0" (as a keyword segment does): one
    step per version instead of parsing every chunk id."""
    starts = [row for row, chunk in enumerate(ids) if chunk.endswith(":0")]
    ends = [*starts[1:], len(ids)] if starts else []
    return [(ids[a][:-2], a, b - a) for a, b in zip(starts, ends, strict=True)]


def live_versions(entries: Mapping[str, ArticleEntry]) -> dict[str, int]:
    """Chunk count by version key of a state's articles: what is live, told without
    making a million chunk ids."""
    return {version_key(i, e.hash): e.chunks for i, e in entries.items()}


def parse_chunk_id(chunk: str) -> tuple[str, str, int]:
    """(article id, hash prefix, chunk number); article ids may themselves hold colons."""
    rest, _, number = chunk.rpartition(":")
    article_id, _, hash_prefix = rest.rpartition(":")
    return article_id, hash_prefix, int(number)


FILTER_FIELDS = ("article_id", "source", "date_ts")


def chunk_metadata(article: Article) -> dict[str, str | int]:
    """The fields the dense leg filters on (rag.retrieve.Filters.where), and nothing else:
    texts, spans and titles live in the index database, and each chunk's text and ten
    fields in Chroma made writing it 4x slower (55.9 s against 13.4 s for 20k chunks,
    most of it Chroma indexing the texts for its own full-text search)."""
    meta: dict[str, str | int] = {"article_id": article.id, "source": article.source}
    if article.date:
        meta["date_ts"] = epoch_seconds(article.date)
    return meta


class ChunkStore:
    """One Chroma collection of chunks. Every request to a server that fails on the way
    raises StoreUnavailable naming the server, whichever call it was."""

    def __init__(self, collection: Collection, url: str | None = None) -> None:
        self.collection = collection
        self.url = url  # the server's; None when embedded
        self._warming: threading.Thread | None = None

    def warm(self, dimension: int) -> None:
        """Have Chroma load the collection's vector index now, in a thread, instead of on
        the first question: at a million chunks that load takes ~4 s, and Chroma releases
        the GIL meanwhile, so it overlaps the rest of opening an index. Queries wait for
        it rather than start a second load. A failure here is left for them to report."""

        probe: list[Sequence[float]] = [[1.0] + [0.0] * (dimension - 1)]

        def load() -> None:
            try:
                self.collection.query(query_embeddings=probe, n_results=1, include=[])
            except Exception as exc:  # the first real query reports it, with context
                log.debug("warming Chroma collection %s failed: %s", self.collection.name, exc)

        self._warming = threading.Thread(target=load, name="chroma-warm", daemon=True)
        self._warming.start()

    @classmethod
    def create(cls, client: ClientAPI, name: str, model: str, dimension: int) -> ChunkStore:
        url = _server_url(client)
        with _reaching(url):
            collection = client.create_collection(
                name,
                embedding_function=None,
                metadata={"hnsw:space": "cosine", "model": model, "dimension": dimension},
            )
        return cls(collection, url)

    @classmethod
    def open(cls, client: ClientAPI, name: str, model: str | None = None) -> ChunkStore:
        """The collection `name`; given `model`, refused unless its vectors are that
        model's (a collection that records no model is taken on trust)."""
        url = _server_url(client)
        try:
            collection = client.get_collection(name, embedding_function=None)
        except Exception as exc:
            failed = StoreUnavailable(f"Chroma collection {name!r} cannot be opened: {exc}")
            raise _network_failure(url, exc) or failed from exc
        store = cls(collection, url)
        if model is not None and store.model not in (None, model):
            where = f"on the Chroma server at {url}" if url else "in the embedded store"
            raise UnusableIndex(
                f"Chroma collection {name!r} {where} holds embeddings of {store.model!r}, "
                f"not of {model!r} as the index says: its vectors cannot be compared; "
                "rebuild with `newsdesk index build`"
            )
        return store

    @property
    def model(self) -> str | None:
        meta = self.collection.metadata or {}
        value = meta.get("model")
        return str(value) if value is not None else None

    def count(self) -> int:
        with _reaching(self.url):
            return int(self.collection.count())

    def add(self, rows: Sequence[tuple[Article, Chunk]], vectors: Vectors) -> None:
        if len(rows) != len(vectors):
            raise ValueError(f"{len(rows)} chunks but {len(vectors)} vectors")
        for lo, hi in _batches(len(rows), _WRITE_BATCH):
            batch = rows[lo:hi]
            with _reaching(self.url):
                self.collection.upsert(
                    ids=[chunk_id(article, chunk) for article, chunk in batch],
                    embeddings=vectors[lo:hi],
                    metadatas=[chunk_metadata(article) for article, _ in batch],
                )

    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        """Stored embeddings by chunk id; ids not in the collection are left out."""
        found: dict[str, Vectors] = {}
        for lo, hi in _batches(len(ids), _WRITE_BATCH):
            with _reaching(self.url):
                result = self.collection.get(ids=list(ids[lo:hi]), include=["embeddings"])
            embeddings = result["embeddings"]
            if embeddings is None:
                continue
            for chunk, vector in zip(result["ids"], embeddings, strict=True):
                found[chunk] = np.asarray(vector, dtype=np.float32)
        return found

    def ids(self) -> list[str]:
        """Every chunk id in the collection, a page at a time."""
        found: list[str] = []
        while True:
            with _reaching(self.url):
                page = self.collection.get(include=[], limit=_ID_PAGE, offset=len(found))["ids"]
            found.extend(page)
            if len(page) < _ID_PAGE:
                return found

    def metadata(self, ids: Sequence[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """(id, metadata) of the chunks among `ids` that the collection holds."""
        for lo, hi in _batches(len(ids), _PAGE):
            with _reaching(self.url):
                got = self.collection.get(ids=list(ids[lo:hi]), include=["metadatas"])
            for chunk, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                yield chunk, dict(meta or {})

    def delete(self, ids: Sequence[str]) -> None:
        for lo, hi in _batches(len(ids), _WRITE_BATCH):
            with _reaching(self.url):
                self.collection.delete(ids=list(ids[lo:hi]))

    def nearest(
        self, vector: Vectors, k: int, where: Mapping[str, Any] | None = None
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine distance) of the `k` nearest chunks. Ids and distances only:
        reading metadata too cost a question's dense leg 12 of its 15 CPU-ms on the SQuAD
        subset's index (1,779 chunks); a chunk id names its article version."""
        result = self._query(vector, k, where, ["distances"])
        dists = (result["distances"] or [[]])[0]
        return [(i, float(s)) for i, s in zip(result["ids"][0], dists, strict=True)]

    def _query(
        self, vector: Vectors, k: int, where: Mapping[str, Any] | None, include: Include
    ) -> QueryResult:
        from chromadb.errors import NotFoundError

        if self._warming is not None:
            self._warming.join()
        try:
            with _reaching(self.url):
                return self.collection.query(
                    query_embeddings=[vector.tolist()],
                    n_results=k,
                    where=dict(where) if where else None,
                    include=include,
                )
        except NotFoundError as exc:  # a rebuild dropped it after this reader opened
            raise StoreUnavailable(f"Chroma collection {self.collection.name!r} is gone") from exc


def drop_collection(client: ClientAPI, name: str) -> None:
    """Delete a collection if it exists; used to clean up after a failed or replaced build."""
    try:
        client.delete_collection(name)
    except Exception:  # already gone: nothing to clean
        return


def _batches(total: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, total, size):
        yield lo, min(lo + size, total)
