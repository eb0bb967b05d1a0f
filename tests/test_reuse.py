"""An edited article re-embeds only the chunks around the edit, and ends up exactly as
a fresh build of the edited text would have it (chunk and sentence vectors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.build import Indexer
from index.db import read_manifest
from index.embed import Embedder
from index.reuse import plan_reuse
from index.sentvecs import SentenceVectors
from index.store import ChunkStore, chroma_client, chunk_ids
from index.vectors import read_vectors
from newsdesk.settings import ChunkingSettings
from tests.conftest import make_settings, write_jsonl

DEMO = Path(__file__).resolve().parents[1] / "index" / "demo" / "wikinews.jsonl"


@pytest.fixture(scope="module")
def article() -> dict[str, Any]:
    """The demo collection's longest article (about ten chunks)."""
    records = [json.loads(line) for line in DEMO.read_text(encoding="utf-8").splitlines()]
    return max(records, key=lambda r: len(r["text"]))


def stored(index_dir: Path, article_id: str) -> tuple[np.ndarray, SentenceVectors]:
    """The article's chunk vectors (in chunk order) and sentence vectors as stored."""
    settings = make_settings(index_dir)
    manifest = read_manifest(index_dir)
    assert manifest is not None
    entry = manifest.articles[article_id]
    ids = chunk_ids(article_id, entry.hash, entry.chunks)
    found = ChunkStore.open(chroma_client(settings), manifest.collection).vectors(ids)
    sentences = read_vectors(index_dir, article_id, entry.hash)
    assert sentences is not None and len(found) == len(ids)
    return np.stack([found[i] for i in ids]), sentences


def assert_same_as_fresh_build(
    tmp_path: Path, embedder: Embedder, updated: Path, record: dict[str, Any], **settings: Any
) -> None:
    fresh_dir = tmp_path / "fresh"
    fresh = make_settings(fresh_dir, **settings)
    Indexer(fresh, embedder).build([write_jsonl(tmp_path / "f.jsonl", [record])])
    got_chunks, got_sentences = stored(updated, record["id"])
    want_chunks, want_sentences = stored(fresh_dir, record["id"])
    assert got_chunks.shape == want_chunks.shape
    assert np.all(np.sum(got_chunks * want_chunks, axis=1) > 0.9999)
    assert got_sentences.spans == want_sentences.spans
    assert np.array_equal(got_sentences.counts, want_sentences.counts)
    for first in range(len(got_sentences.spans)):
        got = got_sentences.vector(first, first)
        want = want_sentences.vector(first, first)
        assert got is not None and want is not None
        assert float(got @ want) > 0.999


def update_with(
    tmp_path: Path,
    embedder: Embedder,
    original: dict[str, Any],
    edited: dict[str, Any],
    **overrides: Any,
) -> tuple[Path, Any]:
    index_dir = tmp_path / "ix"
    settings = make_settings(index_dir, **overrides)
    Indexer(settings, embedder).build([write_jsonl(tmp_path / "a.jsonl", [original])])
    report = Indexer(settings, embedder).update([write_jsonl(tmp_path / "b.jsonl", [edited])])
    assert report.changed == 1
    return index_dir, report


def test_an_appended_paragraph_reembeds_only_the_last_chunk(
    tmp_path: Path, embedder: Embedder, article: dict[str, Any]
) -> None:
    edited = dict(article, text=article["text"] + "\n\nUpdate: the exhibition was extended.")
    index_dir, report = update_with(tmp_path, embedder, article, edited)
    total = report.manifest.articles[article["id"]].chunks
    assert total >= 6
    assert report.chunks_embedded <= 2 and report.chunks_copied == total - report.chunks_embedded
    assert "unchanged ones copied" in report.summary()
    assert_same_as_fresh_build(tmp_path, embedder, index_dir, edited)


def test_an_edit_in_the_middle_keeps_the_chunks_before_it(
    tmp_path: Path, embedder: Embedder, article: dict[str, Any]
) -> None:
    text = article["text"]
    middle = text.index(". ", len(text) // 2) + 2
    edited = dict(
        article, text=text[:middle] + "A much longer correction was inserted. " + text[middle:]
    )
    index_dir, report = update_with(tmp_path, embedder, article, edited)
    assert report.chunks_copied >= 3
    assert_same_as_fresh_build(tmp_path, embedder, index_dir, edited)


@pytest.mark.parametrize(
    ("title_tokens", "copies_all"),
    [
        (0, True),  # the title is not in the chunks' model input
        (32, False),  # the default: it is in every chunk's, so a retitle keeps none
        (2, True),  # only its first two word-pieces are, and the change comes later
    ],
)
def test_a_new_title_copies_what_its_embedded_part_leaves_alone(
    tmp_path: Path, embedder: Embedder, article: dict[str, Any], title_tokens: int, copies_all: bool
) -> None:
    chunking = {"chunking": ChunkingSettings(title_tokens=title_tokens)}
    edited = dict(article, title=article["title"] + " (corrected)")
    index_dir, report = update_with(tmp_path, embedder, article, edited, **chunking)
    chunks = report.manifest.articles[article["id"]].chunks
    kept, embedded = (chunks, 0) if copies_all else (0, chunks)
    assert (report.chunks_copied, report.chunks_embedded) == (kept, embedded)
    assert_same_as_fresh_build(tmp_path, embedder, index_dir, edited, **chunking)


# --- the plan alone -------------------------------------------------------------------------


def test_an_unchanged_text_keeps_everything() -> None:
    text = "One. Two. Three. Four."
    chunks = [(0, 9), (5, 16), (15, 22)]
    sentences = [(0, 4), (5, 9), (10, 16), (17, 22)]
    plan = plan_reuse(text, chunks, sentences, text, chunks, sentences)
    assert plan.chunks == {0: 0, 1: 1, 2: 2}
    assert plan.sentences == {0: 0, 1: 1, 2: 2, 3: 3}


def test_an_unchanged_chunk_sharing_a_sentence_with_a_changed_one_is_embedded_again() -> None:
    old = "Aaa. Bbb. Ccc."
    new = "Aaa. Bbb. Cxc."
    # Chunk 0 ("Aaa. Bbb.") is unchanged but shares "Bbb." with the changed chunk 1:
    # the new vector of "Bbb." needs chunk 0's word-pieces, so chunk 0 is embedded
    # again; "Aaa.", which only chunk 0 covers, keeps its copied value.
    chunks = [(0, 9), (5, 14)]
    sentences = [(0, 4), (5, 9), (10, 14)]
    plan = plan_reuse(old, chunks, sentences, new, chunks, sentences)
    assert plan.chunks == {}
    assert plan.sentences == {0: 0}


def test_shifted_chunks_keep_their_sentences() -> None:
    old = "Aaa. Bbb. Ccc."
    new = "New. Aaa. Bbb. Ccc."
    old_chunks, new_chunks = [(0, 4), (5, 14)], [(0, 4), (5, 9), (10, 19)]
    old_sentences = [(0, 4), (5, 9), (10, 14)]
    new_sentences = [(0, 4), (5, 9), (10, 14), (15, 19)]
    plan = plan_reuse(old, old_chunks, old_sentences, new, new_chunks, new_sentences)
    assert plan.chunks == {1: 0, 2: 1}
    assert plan.sentences == {1: 0, 2: 1, 3: 2}
