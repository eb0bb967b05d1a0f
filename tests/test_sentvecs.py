"""Sentence vectors pooled at index time: appended per article version to one array file,
swept, read back, and used by the answerer instead of embedding sentences at query time."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from index.build import Indexer
from index.db import DB_FILE, IndexDB
from index.embed import Embedder
from index.manifest import UnusableIndex
from index.reader import IndexReader
from index.sentences import sentence_spans
from index.sentvecs import SentenceVectors
from index.vectors import VectorArray, VectorFile, file_rows, read_vectors
from rag.answer import ExtractiveAnswerer
from tests.conftest import NEWS, make_settings, write_jsonl


@pytest.fixture
def answerer(tmp_path: Path, news_file: Path, embedder: Embedder) -> ExtractiveAnswerer:
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, embedder).build([news_file])
    return ExtractiveAnswerer(IndexReader(settings, embedder), settings)


def test_every_sentence_is_pooled_over_exactly_its_word_pieces(
    tmp_path: Path, news_file: Path, embedder: Embedder
) -> None:
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, embedder).build([news_file])
    reader = IndexReader(settings, embedder)
    for record in NEWS:  # each fits one chunk, so each sentence is read exactly once
        stored = reader.sentence_vectors(record["id"])
        assert stored is not None
        assert stored.spans == sentence_spans(record["text"])
        pieces = embedder.count_tokens([record["text"][a:b] for a, b in stored.spans])
        assert stored.counts.tolist() == pieces
        pair = stored.vector(0, 1)
        assert pair is not None
        expected = stored.sums[0] + stored.sums[1]
        assert pair == pytest.approx(expected / np.linalg.norm(expected), abs=1e-6)


def test_the_sentence_that_answers_is_the_one_quoted(answerer: ExtractiveAnswerer) -> None:
    answer = answerer.ask("How often will the ferries run while the bridge is shut?")
    assert answer.citations[0].text.startswith("The city council said ferries would run")
    answer = answerer.ask("What did engineers find in the steel cables?")
    assert answer.citations[0].text.startswith("Engineers found cracks")


def test_a_sentence_longer_than_a_chunk_is_pooled_over_all_its_pieces(
    tmp_path: Path, embedder: Embedder
) -> None:
    words = " ".join(f"word{i}" for i in range(150))
    text = f"A short opener. Then {words} and that is all. Closing line here."
    source = write_jsonl(tmp_path / "long.jsonl", [{"id": "long", "title": "", "text": text}])
    settings = make_settings(tmp_path / "ix", chunking={"max_tokens": 64, "overlap_tokens": 0})
    report = Indexer(settings, embedder).build([source])
    assert report.manifest is not None and report.manifest.chunk_count > 2
    stored = IndexReader(settings, embedder).sentence_vectors("long")
    assert stored is not None and len(stored.spans) == 3
    middle = text[stored.spans[1][0] : stored.spans[1][1]]
    pieces = embedder.count_tokens([middle])[0]
    assert 0.9 * pieces <= stored.counts[1] <= pieces + 2  # a cut mid-word may split it


def test_update_appends_only_the_changed_article(
    tmp_path: Path, news_file: Path, embedder: Embedder
) -> None:
    settings = make_settings(tmp_path / "ix")
    indexer = Indexer(settings, embedder)
    old = indexer.build([news_file]).manifest
    assert old is not None
    db = IndexDB(settings.index_dir)
    before = db.read_sentences()
    changed = [
        dict(r, text=r["text"] + " Extra sentence.") if r["id"] == "harbour" else r for r in NEWS
    ]
    new = indexer.update([write_jsonl(news_file, changed)]).manifest
    assert new is not None and new.vectors_file == old.vectors_file
    after = db.read_sentences()
    assert after["orchard"].row == before["orchard"].row  # untouched rows stay where they were
    assert after["harbour"].row == old.vector_rows  # the new version's rows were appended
    assert new.vector_rows == old.vector_rows + len(after["harbour"].spans)
    assert file_rows(settings.index_dir / new.vectors_file, new.dimension) == new.vector_rows
    assert read_vectors(settings.index_dir, "harbour", old.articles["harbour"].hash) is None
    assert read_vectors(settings.index_dir, "harbour", new.articles["harbour"].hash) is not None


def test_build_starts_a_fresh_file_and_sweeps_the_old_and_a_dead_writers(
    tmp_path: Path, news_file: Path, embedder: Embedder
) -> None:
    settings = make_settings(tmp_path / "ix")
    indexer = Indexer(settings, embedder)
    first = indexer.build([news_file]).manifest
    assert first is not None
    (settings.index_dir / "vectors-dead-writer.f16").write_bytes(b"half")
    with (settings.index_dir / first.vectors_file).open("ab") as live:
        live.write(b"\0" * 768 * 2)  # rows a killed update appended
    second = indexer.build([write_jsonl(tmp_path / "one.jsonl", NEWS[:1])]).manifest
    assert second is not None and second.vectors_file != first.vectors_file
    assert [p.name for p in settings.index_dir.glob("vectors-*")] == [second.vectors_file]
    rows = IndexDB(settings.index_dir).read_sentences()
    assert list(rows) == ["harbour"] and second.vector_rows == len(rows["harbour"].spans)


def test_an_update_rewrites_the_file_once_most_of_it_is_garbage(
    tmp_path: Path, news_file: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("index.update._COMPACT_MIN_ROWS", 0)
    settings = make_settings(tmp_path / "ix")
    indexer = Indexer(settings, embedder)
    first = indexer.build([news_file]).manifest
    assert first is not None
    reader = IndexReader(settings, embedder)  # open on the first state throughout
    kept = reader.sentence_vectors("orchard")
    for n in range(1, 4):  # every article replaced twice, then one more edit
        edited = [
            dict(r, text=f"{r['text']} Edit {n}.") for r in NEWS if n < 3 or r["id"] == "chess"
        ]
        report = indexer.update([write_jsonl(tmp_path / f"e{n}.jsonl", edited)])
        assert report.manifest is not None
        last = report.manifest
    assert last.vectors_file != first.vectors_file  # rewritten, the garbage left behind
    assert [p.name for p in settings.index_dir.glob("vectors-*")] == [last.vectors_file]
    rows = IndexDB(settings.index_dir).read_sentences()
    assert last.vector_rows == sum(len(r.spans) for r in rows.values())
    fresh = IndexReader(settings, embedder)
    for article_id in ("orchard", "harbour", "chess"):
        assert fresh.sentence_vectors(article_id) is not None
    # the reader of the first state still reads its own rows from its mapping
    again = reader.sentence_vectors("orchard")
    assert kept is not None and again is not None and np.array_equal(kept.sums, again.sums)


def test_stale_or_broken_rows_are_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spans = [(0, 5), (6, 12)]
    vectors = SentenceVectors(
        spans=spans, sums=np.ones((2, 4), dtype=np.float32), counts=np.array([2, 0], np.float32)
    )
    path = tmp_path / "vectors-test.f16"
    writer = VectorFile(path, 4, 0)
    found = writer.append(vectors)
    writer.sync()
    writer.close()
    stored = VectorArray(path, 4, writer.rows).read(found)
    assert stored is not None and stored.spans == spans
    assert stored.vector(0, 0) == pytest.approx(np.full(4, 0.5))
    assert stored.vector(1, 1) is None  # never embedded
    assert stored.vector(0, 1) is None
    assert VectorArray(path, 4, 1).read(found) is None  # rows past what the state covers
    with monkeypatch.context() as patch:  # a later splitter moved boundaries: recompute
        patch.setattr("index.vectors.SPLITTER", "newsdesk-sentences-2")
        assert VectorArray(path, 4, 2).read(found) is None
    with pytest.raises(UnusableIndex, match=r"vectors-test\.f16"):
        VectorArray(path, 4, 3)  # the file is shorter than the state says
    with pytest.raises(UnusableIndex, match="shorter than the index says"):
        VectorFile(path, 4, 3)  # and no write appends after a gap


def test_answers_need_no_sentence_embedding_at_query_time(
    answerer: ExtractiveAnswerer, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("sentences were embedded at query time")

    monkeypatch.setattr(embedder, "embed", refuse)
    answer = answerer.ask("Why is the harbour bridge closing?")
    assert answer.citations and answer.citations[0].article_id == "harbour"


def test_a_full_vector_cache_is_emptied_not_misread(
    answerer: ExtractiveAnswerer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rag.answer._CACHE_LIMIT", 6)
    for question in ("Why is the harbour bridge closing?", "Who won the chess title?") * 2:
        assert answerer.ask(question).citations


def test_status_tells_when_articles_lack_vectors(
    tmp_path: Path, news_file: Path, embedder: Embedder
) -> None:
    from index.status import index_status, missing_vectors_hint

    settings = make_settings(tmp_path / "ix")
    manifest = Indexer(settings, embedder).build([news_file]).manifest
    assert manifest is not None
    assert index_status(settings.index_dir, manifest)["articles_with_sentence_vectors"] == 3
    assert missing_vectors_hint(3, 3) is None
    conn = sqlite3.connect(settings.index_dir / DB_FILE)
    with conn:
        conn.execute("UPDATE articles SET vector_row = NULL WHERE id = 'chess'")
    conn.close()
    status = index_status(settings.index_dir, manifest)
    assert status["articles_with_sentence_vectors"] == 2
    hint = missing_vectors_hint(status["articles"], status["articles_with_sentence_vectors"])
    assert hint is not None and "1 of 3 articles" in hint and "newsdesk index build" in hint


def test_a_batch_split_over_threads_embeds_as_one_pass(embedder: Embedder) -> None:
    """The default backend runs one one-thread model pass per torch thread side by side:
    the same chunk vectors and sentence sums as one pass, torch's thread count left alone."""
    import torch

    from index.embed_backend import InProcess

    texts = [str(record["text"]) for record in NEWS]
    spans = [[(0, len(text) // 2), (len(text) // 2, len(text))] for text in texts]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        (split,) = InProcess(embedder).embed_batches([(texts, spans)])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    whole = embedder.embed_with_spans(texts, spans)
    assert len(texts) >= 3 and split[0].shape == whole[0].shape
    assert np.min(np.sum(split[0] * whole[0], axis=1)) > 0.9999
    for mine, theirs in zip(split[1] + split[2], whole[1] + whole[2], strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-4)
