"""Embedding on Ray (index.embed_ray) builds the same index as the serial build: the
same articles, hashes, chunk ids and spans, and the same vectors (cosine > 0.9999),
for a build and for an update, through a real local Ray cluster of two CPUs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import index.embed_ray
import index.write
from index.build import Indexer
from index.db import read_manifest
from index.embed import Embedder
from index.manifest import Manifest
from index.store import ChunkStore, chroma_client, chunk_ids
from index.vectors import read_vectors
from newsdesk.settings import Settings
from tests.conftest import NEWS, write_jsonl

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'newsdesk[ray]'")

# Starts a Ray cluster (its own processes) and builds four small indexes: ~40 s.
pytestmark = [pytest.mark.process, pytest.mark.slow]

MORE = [
    {
        "id": f"council-{n}",
        "title": f"Council meeting number {n}",
        "date": f"2024-05-{n + 1:02d}",
        "text": " ".join(
            f"Item {k} of meeting {n}: the council voted {k + n} to {k} on the {topic} plan."
            for k, topic in enumerate(["tram", "library", "park", "harbour", "school", "budget"])
        ),
    }
    for n in range(6)
]
EDITED = {**MORE[0], "text": MORE[0]["text"] + " The mayor closed the meeting at nine."}
ADDED = {**NEWS[0], "id": "harbour-2", "title": "Bridge reopens early"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    # Workers inherit this environment: a driver run as `OMP_NUM_THREADS=2 newsdesk …`.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMP_NUM_THREADS", "2")
        ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def _settings(index_dir: Path) -> Settings:
    # Small chunks and slabs, and small pieces per task: many of each, so the order of
    # results across workers, pieces and slabs is what the comparison checks.
    return Settings(index_dir=index_dir, chunking={"max_tokens": 40, "overlap_tokens": 8})


def test_ray_builds_the_same_index_as_the_serial_build(
    cluster: None, embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index.write, "_SLAB", 8)
    monkeypatch.setattr(index.embed_ray, "_PIECE", 3)
    source = write_jsonl(tmp_path / "news.jsonl", NEWS + MORE)
    serial = Indexer(_settings(tmp_path / "serial"), embedder)
    with index.embed_ray.RayBackend(serial.settings.embedding) as backend:
        assert len(backend.actors) == 2
        # One torch thread per actor, whatever OMP_NUM_THREADS the cluster inherited:
        # two actors of two threads each on two cores embedded 35 % slower.
        # (a lambda travels by value: the workers cannot import this test module)
        threads = [
            a.__ray_call__.remote(lambda worker: __import__("torch").get_num_threads())
            for a in backend.actors
        ]
        assert ray.get(threads) == [1, 1]
        spread = Indexer(_settings(tmp_path / "ray"), embedder, backend)
        built = [serial.build([source]), spread.build([source])]
        assert built[1].chunks_embedded == built[0].chunks_embedded > 2 * 8  # three slabs
        _assert_same(serial.settings, spread.settings)

        write_jsonl(source, [*NEWS, EDITED, *MORE[1:], ADDED])
        updated = [serial.update([source]), spread.update([source])]
        assert updated[1].chunks_embedded == updated[0].chunks_embedded > 0
        assert updated[1].chunks_copied == updated[0].chunks_copied > 0
        _assert_same(serial.settings, spread.settings)
    assert backend.actors == []


def test_build_with_an_unreachable_cluster_names_it_and_changes_nothing(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "news.jsonl", NEWS)
    command = [str(Path(sys.executable).parent / "newsdesk"), "index", "build", str(source)]
    done = subprocess.run(
        [*command, "--ray", "127.0.0.1:1", "--index-dir", str(tmp_path / "ix")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "error: cannot reach the Ray cluster at 127.0.0.1:1" in done.stderr
    assert read_manifest(tmp_path / "ix") is None


def _assert_same(one: Settings, other: Settings) -> None:
    first, second = read_manifest(one.index_dir), read_manifest(other.index_dir)
    assert first is not None and second is not None
    assert first.articles == second.articles  # ids, hashes, chunk spans
    assert first.duplicates == second.duplicates
    ids = [c for i, e in first.articles.items() for c in chunk_ids(i, e.hash, e.chunks)]
    assert _cosines(_chunk_vectors(one, first, ids), _chunk_vectors(other, second, ids)) > 0.9999
    for article_id, entry in first.articles.items():
        mine = read_vectors(one.index_dir, article_id, entry.hash)
        theirs = read_vectors(other.index_dir, article_id, entry.hash)
        assert mine is not None and theirs is not None
        assert mine.spans == theirs.spans
        np.testing.assert_array_equal(mine.counts, theirs.counts)
        seen = mine.counts > 0
        assert seen.any()
        assert _cosines(mine.sums[seen], theirs.sums[seen]) > 0.9999


def _chunk_vectors(settings: Settings, manifest: Manifest, ids: list[str]) -> np.ndarray[Any, Any]:
    found = ChunkStore.open(chroma_client(settings), manifest.collection).vectors(ids)
    assert sorted(found) == sorted(ids)
    return np.stack([found[i] for i in ids])


def _cosines(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    """The least cosine between matching rows."""
    dots = np.sum(a * b, axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.min(dots / norms))
