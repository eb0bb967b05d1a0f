"""Building and updating a real index: real model, real embedded Chroma."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from index.build import Indexer, NothingToIndex
from index.dates import epoch_seconds
from index.db import DB_FILE, read_articles, read_manifest
from index.embed import Embedder, Vectors, model_location
from index.lexical import Segment
from index.manifest import UnusableIndex
from index.reader import IndexReader
from index.store import (
    ChunkStore,
    StoreUnavailable,
    chroma_client,
    drop_collection,
    parse_chunk_id,
)
from newsdesk.settings import ChunkingSettings, EmbeddingSettings
from tests.conftest import NEWS, make_settings, top_articles, write_jsonl


class CountingEmbedder(Embedder):
    """The real embedder, counting how many texts it was asked to embed. A write embeds
    parts of a batch from one thread per core, so the count takes a lock: a bare `+=`
    lost an increment under load."""

    def __init__(self, real: Embedder) -> None:
        super().__init__(real.settings)
        self.__dict__["model"] = real.model  # share the loaded weights
        self.embedded = 0
        self._counting = threading.Lock()

    def count(self, texts: Sequence[str]) -> None:
        with self._counting:
            self.embedded += len(texts)

    def embed(self, texts: Sequence[str], *, truncation_ok: bool = False) -> Vectors:
        self.count(texts)
        return super().embed(texts, truncation_ok=truncation_ok)

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, list[Vectors], list[Vectors]]:
        self.count(texts)
        return super().embed_with_spans(texts, spans)


@pytest.fixture
def counting(embedder: Embedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


def test_build_status_and_search(
    tmp_path: Path, news_file: Path, counting: CountingEmbedder
) -> None:
    settings = make_settings(tmp_path / "ix")
    report = Indexer(settings, counting).build([news_file])
    manifest = report.manifest
    assert manifest is not None
    assert manifest.article_count == 3
    assert manifest.chunk_count == counting.embedded >= 3
    assert manifest.model == "all-MiniLM-L6-v2" and manifest.dimension == 384
    assert manifest.chunk_tokens == 254 - 32

    query = "How will people cross while the bridge is shut?"
    assert top_articles(settings, counting, query) == ["harbour"]
    reader = IndexReader(settings, counting)
    (chunk, _), *_ = reader.store.nearest(counting.embed_query(query), 1)
    (_, meta), *_ = reader.store.metadata([chunk])
    assert meta["source"] == "Coast Times" and int(meta["date_ts"]) > 0
    assert len(reader.lexical) == manifest.chunk_count


def test_chroma_holds_vectors_and_filter_fields_only(tmp_path: Path, embedder: Embedder) -> None:
    """Texts and spans live in the index database; Chroma gets each chunk's vector and
    the fields the dense leg filters on (a chunk's text there cost 2.5x its write)."""
    settings = make_settings(
        tmp_path / "ix", chunking=ChunkingSettings(max_tokens=40, overlap_tokens=8)
    )
    seed = sorted((Path(__file__).parents[1] / "index" / "demo").glob("*.txt"))
    manifest = Indexer(settings, embedder).build(seed).manifest
    assert manifest is not None
    articles = read_articles(settings.index_dir)
    stored = ChunkStore.open(chroma_client(settings), manifest.collection).collection.get(
        include=["documents", "metadatas"]
    )
    assert len(stored["ids"]) == manifest.chunk_count > 3
    assert not any(stored["documents"] or [])
    metadatas = cast(list[dict[str, Any]], stored["metadatas"])
    for chunk, meta in zip(stored["ids"], metadatas, strict=True):
        article = articles[parse_chunk_id(chunk)[0]]
        assert meta == {"article_id": article.id, "source": article.source} | (
            {"date_ts": epoch_seconds(article.date)} if article.date else {}
        )


def test_update_embeds_only_new_and_changed(tmp_path: Path, counting: CountingEmbedder) -> None:
    settings = make_settings(tmp_path / "ix")
    source = write_jsonl(tmp_path / "news.jsonl", NEWS)
    first = Indexer(settings, counting).build([source]).manifest
    assert first is not None

    counting.embedded = 0
    again = Indexer(settings, counting).update([source])
    assert counting.embedded == 0 and again.unchanged == 3 and again.chunks_embedded == 0

    edited = [dict(NEWS[0], text=NEWS[0]["text"] + " Repairs will cost four million."), *NEWS[1:]]
    edited.append({"id": "new", "title": "Library opens", "text": "A new library opened today."})
    write_jsonl(source, edited)
    report = Indexer(settings, counting).update([source])
    manifest = report.manifest
    assert manifest is not None
    assert (report.added, report.changed, report.unchanged) == (1, 1, 2)
    new_chunks = manifest.articles["harbour"].chunks + manifest.articles["new"].chunks
    assert counting.embedded == new_chunks == report.chunks_embedded
    store = ChunkStore.open(chroma_client(settings), manifest.collection)
    assert store.count() == manifest.chunk_count  # the old version's chunks are gone
    articles = read_articles(settings.index_dir)
    assert articles["harbour"].text.endswith("four million.")
    assert_lexical_in_step(settings.index_dir, counting)
    hits = IndexReader(make_settings(settings.index_dir), counting).lexical.search("million", 5)
    assert [h.split(":")[0] for h, _ in hits] == ["harbour"]


def assert_lexical_in_step(index_dir: Path, embedder: Embedder) -> None:
    """On disk, the BM25 segments the manifest names and nothing else; together they
    hold exactly the live chunks."""
    reader = IndexReader(make_settings(index_dir), embedder)
    on_disk = sorted(p.name for p in (index_dir / "lexical").iterdir())
    assert on_disk == sorted(reader.manifest.lexical_segments)
    assert [p.name for p in index_dir.glob("vectors-*")] == [reader.manifest.vectors_file]
    assert len(reader.lexical) == reader.manifest.chunk_count


def test_prune_removes_only_when_all_input_was_read(
    tmp_path: Path, counting: CountingEmbedder
) -> None:
    settings = make_settings(tmp_path / "ix")
    source = write_jsonl(tmp_path / "news.jsonl", NEWS)
    Indexer(settings, counting).build([source])

    broken = tmp_path / "news.jsonl"
    broken.write_text(json.dumps(NEWS[0]) + "\n{not json\n", encoding="utf-8")
    report = Indexer(settings, counting).update([broken], prune=True)
    assert report.removed == 0
    assert any(p.where == "--prune" for p in report.problems)
    assert read_manifest(settings.index_dir).article_count == 3  # type: ignore[union-attr]

    write_jsonl(source, NEWS[:1])
    report = Indexer(settings, counting).update([source], prune=True)
    manifest = report.manifest
    assert manifest is not None and report.removed == 2
    assert sorted(manifest.articles) == ["harbour"]
    store = ChunkStore.open(chroma_client(settings), manifest.collection)
    assert store.count() == manifest.chunk_count
    assert_lexical_in_step(settings.index_dir, counting)
    reader = IndexReader(make_settings(settings.index_dir), counting)
    assert reader.lexical.search("chess champion", 5) == []


def test_failed_rebuild_leaves_the_old_index_serving(
    tmp_path: Path, news_file: Path, counting: CountingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, counting).build([news_file])
    before = read_manifest(settings.index_dir)
    assert before is not None

    bigger = write_jsonl(
        tmp_path / "more.jsonl",
        [
            {"id": f"a{n}", "title": f"Story {n}", "text": "A sentence about things. " * 400}
            for n in range(4)
        ],
    )
    calls = {"n": 0}
    real_embed = counting.embed_with_spans

    def failing_embed(
        texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, list[Vectors], list[Vectors]]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full (simulated)")
        return real_embed(texts, spans)

    monkeypatch.setattr(counting, "embed_with_spans", failing_embed)
    monkeypatch.setattr("index.write._SLAB", 8)  # several slabs: fail with some already written
    with pytest.raises(RuntimeError, match="simulated"):
        Indexer(settings, counting).build([bigger])
    monkeypatch.undo()

    assert read_manifest(settings.index_dir) == before
    names = [c.name for c in chroma_client(settings).list_collections()]
    assert len(names) == 1  # the half-built collection was dropped
    vectors = sorted(p.name for p in settings.index_dir.glob("vectors-*"))
    assert vectors == [before.vectors_file]  # and the new sentence-vector file removed
    assert top_articles(settings, counting, "ferries while the bridge is shut") == ["harbour"]


def test_empty_sources_change_nothing(
    tmp_path: Path, news_file: Path, counting: CountingEmbedder
) -> None:
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, counting).build([news_file])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(NothingToIndex, match="not changed"):
        Indexer(settings, counting).build([empty])
    assert read_manifest(settings.index_dir).article_count == 3  # type: ignore[union-attr]


def test_a_different_model_is_refused(
    tmp_path: Path, news_file: Path, counting: CountingEmbedder
) -> None:
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, counting).build([news_file])
    # Another sentence-transformers model given by path: here the same weights under a
    # different name, which is enough for the manifest to tell them apart.
    other = make_settings(
        tmp_path / "ix", embedding=EmbeddingSettings(model=model_location("all-MiniLM-L6-v2"))
    )
    with pytest.raises(UnusableIndex, match="built with the embedding model"):
        IndexReader(other)


def test_changed_chunking_refuses_update(
    tmp_path: Path, news_file: Path, counting: CountingEmbedder
) -> None:
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, counting).build([news_file])
    smaller = make_settings(tmp_path / "ix", chunking=ChunkingSettings(max_tokens=64))
    with pytest.raises(UnusableIndex, match="chunking settings differ"):
        Indexer(smaller, counting).update([news_file])


def test_an_update_keeps_the_chunking_the_index_was_built_with(
    tmp_path: Path,
    news_file: Path,
    counting: CountingEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Settings left at their defaults never stop an index built otherwise from taking
    updates; a setting given explicitly (here in the environment) and different still
    refuses."""
    untitled = make_settings(tmp_path / "ix", chunking=ChunkingSettings(title_tokens=0))
    Indexer(untitled, counting).build([news_file])
    edited = [dict(r, text=r["text"] + " More.") for r in NEWS[:1]]
    report = Indexer(make_settings(tmp_path / "ix"), counting).update(
        [write_jsonl(tmp_path / "edit.jsonl", edited)]
    )
    assert report.changed == 1 and report.manifest is not None
    assert report.manifest.title_tokens == 0
    assert report.manifest.chunk_tokens == counting.max_tokens
    monkeypatch.setenv("NEWSDESK_CHUNKING__TITLE_TOKENS", "32")
    with pytest.raises(UnusableIndex, match="chunking settings differ"):
        Indexer(make_settings(tmp_path / "ix"), counting).update([news_file])


def test_an_index_in_the_old_layout_is_refused_by_name_and_a_build_replaces_it(
    tmp_path: Path, news_file: Path, counting: CountingEmbedder
) -> None:
    settings = make_settings(tmp_path / "ix")
    index_dir = settings.index_dir
    index_dir.mkdir()
    (index_dir / "manifest.json").write_text('{"format": 1}', encoding="utf-8")
    (index_dir / "articles").mkdir()
    (index_dir / "articles" / "20250101-000000-abcdef.jsonl").write_text("{}\n")
    (index_dir / "sentences").mkdir()
    for refused in (
        lambda: IndexReader(settings, counting),
        lambda: Indexer(settings, counting).update([news_file]),
    ):
        with pytest.raises(UnusableIndex, match=r"older layout .*`newsdesk index build SOURCE"):
            refused()
    assert not (index_dir / DB_FILE).exists()  # nothing written

    report = Indexer(settings, counting).build([news_file])
    assert report.manifest is not None and report.manifest.article_count == len(NEWS)
    assert not any(
        (index_dir / name).exists() for name in ("manifest.json", "articles", "sentences")
    )
    assert top_articles(settings, counting, "ferries while the bridge is shut") == ["harbour"]


def test_a_failed_segment_write_leaves_the_last_state_serving(
    tmp_path: Path, news_file: Path, counting: CountingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, counting).build([news_file])
    before = read_manifest(settings.index_dir)

    def full_disk(self: Segment, directory: Path) -> None:
        directory.mkdir(parents=True)
        (directory / "half-written").write_text("x", encoding="utf-8")
        raise OSError("No space left on device")

    monkeypatch.setattr(Segment, "save", full_disk)
    changed = [dict(NEWS[0], text=NEWS[0]["text"] + " A late correction was added.")]
    with pytest.raises(OSError, match="No space"):
        Indexer(settings, counting).update([write_jsonl(tmp_path / "changed.jsonl", changed)])
    assert read_manifest(settings.index_dir) == before
    assert_lexical_in_step(settings.index_dir, counting)
    reader = IndexReader(make_settings(settings.index_dir), counting)
    assert [h.split(":")[0] for h, _ in reader.lexical.search("steel cables", 5)] == ["harbour"]


def test_a_reader_has_chroma_load_its_vectors_while_it_opens(
    tmp_path: Path, news_file: Path, counting: CountingEmbedder
) -> None:
    """Chroma loads a collection's vector index on its first query (~4 s at a million
    chunks): a reader starts that as it opens, and the first question waits for it."""
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, counting).build([news_file])
    reader = IndexReader(settings, counting)
    warming = reader.store._warming
    assert warming is not None
    hits = reader.store.nearest(counting.embed_query("the harbour bridge"), 1)
    assert not warming.is_alive()
    assert parse_chunk_id(hits[0][0])[0] == "harbour"


def test_warming_a_dropped_collection_leaves_the_error_to_the_question(
    tmp_path: Path, news_file: Path, counting: CountingEmbedder
) -> None:
    settings = make_settings(tmp_path / "ix")
    manifest = Indexer(settings, counting).build([news_file]).manifest
    assert manifest is not None
    client = chroma_client(settings)
    store = ChunkStore.open(client, manifest.collection)
    drop_collection(client, manifest.collection)
    store.warm(manifest.dimension)  # fails in its thread, silently
    with pytest.raises(StoreUnavailable, match="is gone"):
        store.nearest(counting.embed_query("the harbour bridge"), 1)


def test_a_warm_indexer_keeps_what_it_read_until_another_writer_commits(
    tmp_path: Path, counting: CountingEmbedder
) -> None:
    """One Indexer serving update after update keeps the live state and its segments
    instead of reading them again; it must notice a state another writer committed."""
    settings = make_settings(tmp_path / "ix")
    source = write_jsonl(tmp_path / "news.jsonl", NEWS)
    warm = Indexer(settings, counting)
    warm.build([source])
    for n in range(3):
        write_jsonl(source, [dict(NEWS[0], text=f"{NEWS[0]['text']} Update {n}."), *NEWS[1:]])
        report = warm.update([source])
        assert report.manifest is not None and report.manifest == read_manifest(settings.index_dir)
        assert warm.db.read_manifest() is report.manifest  # kept, not read again
    library = {"id": "new", "title": "Library opens", "text": "A new library opened today."}
    Indexer(settings, counting).update([write_jsonl(tmp_path / "more.jsonl", [library])])
    kept = warm.db.read_manifest()
    assert kept is not None and "new" in kept.articles and kept == read_manifest(settings.index_dir)
    last = dict(NEWS[0], text=f"{NEWS[0]['text']} Update 3, by zeppelin.")
    write_jsonl(source, [last, *NEWS[1:]])
    assert warm.update([source]).changed == 1
    assert_lexical_in_step(settings.index_dir, counting)
    reader = IndexReader(make_settings(settings.index_dir), counting)
    assert [c.split(":")[0] for c, _ in reader.lexical.search("zeppelin", 5)] == ["harbour"]
    assert [c.split(":")[0] for c, _ in reader.lexical.search("library", 5)] == ["new"]
