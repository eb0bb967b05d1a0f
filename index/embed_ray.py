"""Embedding on a Ray cluster (`index build|update --ray auto|ADDRESS`, the `ray` extra).

One actor per CPU of the cluster, each loading the embedding model once (the bundled
one from its package's site-packages, never downloaded); each batch the writer hands
over is split into pieces spread over the actors, and the results come back in the
writer's order, so the one writer (index.build.Indexer, under the write lock) commits
exactly what a serial run commits. Ray is imported only here, only when asked for.
Every node needs newsdesk installed (`pip install 'newsdesk[ray]'`).
"""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from index.embed import Embedder
from index.embed_backend import Batch, Embedded, join
from newsdesk.errors import NewsdeskError
from newsdesk.settings import EmbeddingSettings

log = logging.getLogger(__name__)

# Chunks per task: small enough that one slab (index.write._SLAB) feeds every worker,
# large enough that shipping it costs little next to the model pass.
_PIECE = 32
_AHEAD = 1  # batches sent beyond the one being waited for: workers never wait for the writer
_CONNECT_SECONDS = 10
INSTALL = "pip install 'newsdesk[ray]'"


class RayUnavailable(NewsdeskError, RuntimeError):
    """Ray is not installed, the cluster cannot be reached, or a worker failed."""


class EmbedWorker:
    """What runs in each Ray actor: one model, loaded once, embedding pieces of batches."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download, on any node
        # One thread for the one CPU the actor holds. Ray sets OMP_NUM_THREADS=1 only
        # when the environment has none: a driver started with OMP_NUM_THREADS=2 gave
        # every actor two threads, and two actors on two cores ran 35 % slower.
        import torch

        torch.set_num_threads(1)
        self.embedder = Embedder(settings)
        _ = self.embedder.index_model  # load now, so a missing model fails at start-up

    def embed(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]) -> Embedded:
        return self.embedder.embed_with_spans(texts, spans)


class RayBackend:
    """Batches embedded by actors on a Ray cluster; `close` ends them (and the local
    cluster, when this backend started one)."""

    def __init__(self, settings: EmbeddingSettings, address: str = "auto") -> None:
        ray = _import_ray()
        self.address = address
        self._started = not ray.is_initialized()
        if self._started:
            _connect(ray, address)
        cpus = int(ray.available_resources().get("CPU", 0)) or 1
        worker = ray.remote(num_cpus=1)(EmbedWorker)
        self.actors: list[Any] = [worker.remote(settings) for _ in range(cpus)]
        log.info("embedding on %d Ray workers (%s)", cpus, address)

    def embed_batches(self, batches: Iterable[Batch]) -> Iterator[Embedded]:
        pending: deque[list[Any]] = deque()
        turn = 0
        for texts, spans in batches:
            refs = []
            for lo in range(0, len(texts), _PIECE):
                actor = self.actors[turn % len(self.actors)]
                refs.append(actor.embed.remote(texts[lo : lo + _PIECE], spans[lo : lo + _PIECE]))
                turn += 1
            pending.append(refs)
            if len(pending) > _AHEAD:
                yield self._collect(pending.popleft())
        while pending:
            yield self._collect(pending.popleft())

    def close(self) -> None:
        ray = _import_ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self._started:
            ray.shutdown()

    def __enter__(self) -> RayBackend:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _collect(self, refs: list[Any]) -> Embedded:
        """One batch's pieces, waited for and put back together in order."""
        ray = _import_ray()
        try:
            pieces: list[Embedded] = ray.get(refs)
        except ray.exceptions.RayError as exc:
            raise RayUnavailable(
                f"an embedding worker on the Ray cluster ({self.address}) failed: "
                f"{_first_line(exc)}; the index was not changed"
            ) from exc
        return join(pieces)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(f"--ray needs Ray, which is not installed: {INSTALL}") from exc
    return ray


def _connect(ray: Any, address: str) -> None:
    """auto: RAY_ADDRESS, else the cluster `ray start` last started here, else a new
    local one; anything else: the cluster at that address, or a clear error."""
    where = os.environ.get("RAY_ADDRESS", "") if address == "auto" else address
    try:
        if where:
            _reachable(where)  # ray.init retries an address that does not answer for minutes
        ray.init(address=None if address == "auto" else address, configure_logging=False)
    except (OSError, RuntimeError, ValueError) as exc:
        raise RayUnavailable(
            f"cannot reach the Ray cluster at {where or address}: {_first_line(exc)} "
            "(start one with `ray start --head`, or give --ray auto for a local one)"
        ) from exc


def _reachable(address: str) -> None:
    """Raise OSError unless something listens at a host:port (or ray://host:port) address."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if host and port.isdigit():
        socket.create_connection((host, int(port)), timeout=_CONNECT_SECONDS).close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
