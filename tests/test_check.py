"""`index check [--repair]`: damage and leftovers are found, named, and mended from the
stored article texts; a failed write's leftovers are swept by the next write."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner

from index.build import Indexer
from index.check import check_index
from index.cli import index_group
from index.db import DB_FILE, read_manifest
from index.embed import Embedder
from index.lexical import LEXICAL_DIR
from index.lock import LOCK_FILE
from index.manifest import UnusableIndex
from index.reader import IndexReader
from index.store import chroma_client
from newsdesk.settings import Settings
from rag.answer import ExtractiveAnswerer
from tests.conftest import NEWS, assert_exact_citations, make_settings, write_jsonl

QUESTION = "How often will the ferries run while the bridge is shut?"


@pytest.fixture
def built(tmp_path: Path, embedder: Embedder) -> Settings:
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, embedder).build([write_jsonl(tmp_path / "news.jsonl", NEWS)])
    return settings


def _collection(settings: Settings) -> Any:
    manifest = read_manifest(settings.index_dir)
    assert manifest is not None
    return chroma_client(settings).get_collection(manifest.collection)


def _answer(settings: Settings, embedder: Embedder) -> list[tuple[str, int, int]]:
    reader = IndexReader(settings, embedder)
    answer = ExtractiveAnswerer(reader, settings).ask(QUESTION)
    assert_exact_citations(answer, reader.articles)
    return [(c.article_id, c.start, c.end) for c in answer.citations]


def _sql(settings: Settings, statement: str) -> None:
    """Damage the index database behind the index's back."""
    conn = sqlite3.connect(settings.index_dir / DB_FILE)
    with conn:
        conn.execute(statement)
    conn.close()


def test_a_fresh_index_checks_clean(built: Settings) -> None:
    report = check_index(built)
    assert report.ok and not report.leftovers and report.lines() == []
    assert report.counts == {"articles": 3, "chunks": 3, "chroma_rows": 3}


def test_damage_and_leftovers_are_named_and_repaired_from_the_stored_texts(
    built: Settings, embedder: Embedder
) -> None:
    answered = _answer(built, embedder)
    manifest = read_manifest(built.index_dir)
    assert manifest is not None
    collection = _collection(built)
    chess = f"chess:{manifest.articles['chess'].hash[:12]}:0"
    harbour = f"harbour:{manifest.articles['harbour'].hash[:12]}:0"
    collection.delete(ids=[chess])
    got = collection.get(ids=[harbour], include=["embeddings", "metadatas"])
    metadata = cast(list[dict[str, Any]], got["metadatas"])[0] | {"source": "Another outlet"}
    collection.upsert(ids=[harbour], embeddings=got["embeddings"], metadatas=[metadata])
    collection.upsert(ids=["gone:0123456789ab:0"], embeddings=[[0.1] * 384])
    shutil.rmtree(built.index_dir / LEXICAL_DIR / manifest.lexical_segments[0])
    _sql(built, "UPDATE articles SET vector_row = NULL WHERE id = 'orchard'")
    (built.index_dir / "vectors-20990101-000000-abcdef.f16").write_bytes(b"\0" * 768)

    found = check_index(built)
    assert not found.ok and found.repairable
    text = "\n".join(found.lines())
    assert f"1 chunks the manifest names are missing from collection {manifest.collection}" in text
    assert chess in text
    assert "1 articles have chunks in Chroma whose filter fields (source, date) differ" in text
    assert "not a lexical segment" in text
    assert "1 articles have no usable sentence vectors" in text and "orchard" in text
    assert "leftover: 1 chunks in the collection" in text and "gone:0123456789ab:0" in text
    assert "vectors-20990101-000000-abcdef.f16" in text
    assert found.reembed == {"chess", "harbour", "orchard"} and found.lexical

    _, done = Indexer(built, embedder).repair()
    assert "embedded 3 articles again (3 chunks)" in done
    assert "rebuilt the keyword index" in done
    after = check_index(built)
    assert after.ok and not after.leftovers, after.lines()
    assert _answer(built, embedder) == answered


def test_a_lost_collection_is_embedded_again_into_a_new_one(
    built: Settings, embedder: Embedder
) -> None:
    answered = _answer(built, embedder)
    before = read_manifest(built.index_dir)
    assert before is not None
    chroma_client(built).delete_collection(before.collection)
    found = check_index(built)
    assert not found.ok and found.collection
    assert "cannot be opened" in found.damage[0]

    _, done = Indexer(built, embedder).repair()
    after = read_manifest(built.index_dir)
    assert after is not None and after.collection != before.collection
    assert after.articles == before.articles
    assert any("new collection" in line for line in done)
    assert check_index(built).ok
    assert _answer(built, embedder) == answered


def test_unreadable_texts_are_not_repaired_and_the_sources_are_named(
    built: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    manifest = read_manifest(built.index_dir)
    assert manifest is not None
    _sql(built, "UPDATE articles SET text = substr(text, 1, 20) WHERE id = 'harbour'")
    found = check_index(built)
    assert not found.ok and not found.repairable
    assert "rebuild from the sources" in found.damage[0]
    assert str(tmp_path / "news.jsonl") in found.damage[0]
    with pytest.raises(UnusableIndex, match="cannot repair"):
        Indexer(built, embedder).repair()
    assert read_manifest(built.index_dir) == manifest  # nothing was switched

    result = CliRunner().invoke(index_group, ["check", "--index-dir", str(built.index_dir)])
    assert result.exit_code == 1
    assert "damaged:" in result.output and "DAMAGED" in result.output


def test_a_failed_update_leaves_leftovers_that_the_next_write_sweeps(
    built: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    before = read_manifest(built.index_dir)
    edited = [dict(a, text=a["text"] + " Officials confirmed it on Tuesday.") for a in NEWS]
    source = write_jsonl(tmp_path / "edited.jsonl", edited)

    def fail(done: int, total: int) -> None:
        raise KeyboardInterrupt  # after the new versions' chunks went into Chroma

    with pytest.raises(KeyboardInterrupt):
        Indexer(built, embedder).update([source], progress=fail)
    assert read_manifest(built.index_dir) == before
    assert (built.index_dir / LOCK_FILE).read_text().strip()  # the record of an unfinished write

    found = check_index(built)
    assert found.ok and found.leftovers.chunks  # harmless, but listed
    result = CliRunner().invoke(
        index_group, ["check", "--json", "--index-dir", str(built.index_dir)]
    )
    assert result.exit_code == 0
    shown = json.loads(result.output)
    assert shown["ok"] and shown["leftovers"] and not shown["damage"]

    report = Indexer(built, embedder).update([source])
    assert report.changed == 3
    after = check_index(built)
    assert after.ok and not after.leftovers, after.lines()
    assert (built.index_dir / LOCK_FILE).read_text() == ""


def test_hostile_files_change_nothing_already_indexed(
    built: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    before = read_manifest(built.index_dir)
    assert before is not None
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "binary.jsonl").write_bytes(bytes(range(256)) * 40)
    (hostile / "nested.json").write_text("[" * 5000 + "]" * 5000)
    (hostile / "utf16.csv").write_bytes("id,title,text\nx,y,z\n".encode("utf-16"))
    (hostile / "nul.txt").write_bytes(b"\x00" * 1000)
    words = " ".join(f"lighthouse{n % 97} keeper" for n in range(1200))  # one 24k sentence
    (hostile / "giant.txt").write_text(f"The night {words} saw a comet over the bay")

    report = Indexer(built, embedder).update([hostile], prune=True)
    assert report.problems and report.removed == 0  # nothing pruned on unreadable input
    after = read_manifest(built.index_dir)
    assert after is not None
    assert {i: after.articles[i] for i in before.articles} == before.articles
    added = set(after.articles) - set(before.articles)
    assert len(added) == 1  # the giant sentence, chunked by word-pieces
    (giant,) = added
    spans = after.articles[giant].spans
    assert len(spans) > 10 and spans[0][0] == 0
    assert all(a < b for a, b in spans)
    assert check_index(built).ok
