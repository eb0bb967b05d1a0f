"""The article texts in the index database: what is committed is read back exactly (odd
ids, line separators, metadata), an update reads only the articles it names, and a
damaged database is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.db import DB_FILE, IndexDB, Snapshot, read_articles
from index.manifest import Manifest, UnusableIndex
from index.types import Article
from tests.conftest import make_manifest


def article(article_id: str, text: str) -> Article:
    return Article.from_record(
        {
            "id": article_id,
            "title": f"About {article_id}",
            "text": text,
            "date": "2024-05-01",
            "metadata": {"section": "ünï", "page": 3, "lead": True},
        }
    )


ODD_IDS = ["plain", 'with "quotes" and \\ slash', "ünïcödé", "line\u2028separator", "a:b:c"]


def manifest(articles: list[Article], state: str = "s1") -> Manifest:
    return make_manifest(
        articles, state=state, model="m", dimension=4, chunk_tokens=10, overlap_tokens=1,
        title_tokens=1,
    )  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> IndexDB:
    found = IndexDB(tmp_path / "ix")
    first = [article(i, f"Text of {i}.\u2028Second line.") for i in ODD_IDS]
    found.commit(manifest(first), first, {}, replace_all=True)
    return found


def test_articles_are_read_back_exactly(db: IndexDB) -> None:
    got = read_articles(db.index_dir)
    assert sorted(got) == sorted(ODD_IDS)
    for article_id in ODD_IDS:
        want = article(article_id, f"Text of {article_id}.\u2028Second line.")
        assert got[article_id] == want and got[article_id].hash == want.hash
    stored = db.read_manifest()
    assert stored is not None and stored.articles == manifest(list(got.values())).articles


def test_a_commit_replaces_removes_and_adds_in_one_switch(db: IndexDB) -> None:
    before = read_articles(db.index_dir)
    changed = article(ODD_IDS[1], "A corrected text.")
    fresh = article("fresh", "Brand new.")
    kept = [before[i] for i in ODD_IDS if i not in (ODD_IDS[1], ODD_IDS[2])]
    db.commit(manifest([*kept, changed, fresh], "s2"), [changed, fresh], {}, drop=[ODD_IDS[2]])
    got = read_articles(db.index_dir)
    assert sorted(got) == sorted([*ODD_IDS[:2], *ODD_IDS[3:], "fresh"])
    assert got[ODD_IDS[1]].text == "A corrected text."
    assert got[ODD_IDS[0]] == before[ODD_IDS[0]]
    assert db.version() == "s2"


def test_a_snapshot_reads_the_state_it_opened_after_later_commits(db: IndexDB) -> None:
    """A reader reads texts lazily through its snapshot: a commit made meanwhile (a
    changed, a removed and a new article) must not show through until it reopens."""
    snapshot = Snapshot(db.path)
    try:
        assert snapshot.manifest is not None and snapshot.manifest.state == "s1"
        before = read_articles(db.index_dir)
        changed = article(ODD_IDS[1], "A corrected text.")
        kept = [before[i] for i in ODD_IDS if i not in (ODD_IDS[1], ODD_IDS[2])]
        db.commit(manifest([*kept, changed], "s2"), [changed], {}, drop=[ODD_IDS[2]])
        assert db.version() == "s2"
        assert snapshot.article(ODD_IDS[1]) == before[ODD_IDS[1]]
        assert snapshot.article(ODD_IDS[2]) == before[ODD_IDS[2]]
        assert sorted(snapshot.infos()) == sorted(ODD_IDS)
        assert snapshot.infos()[ODD_IDS[0]].date == "2024-05-01"
    finally:
        snapshot.close()
    fresh = Snapshot(db.path)
    try:
        assert fresh.article(ODD_IDS[1]) == changed and fresh.article(ODD_IDS[2]) is None
    finally:
        fresh.close()


def test_read_parses_only_the_named_articles(db: IndexDB) -> None:
    got = db.read_articles({ODD_IDS[1], ODD_IDS[3], "absent"})
    assert sorted(got) == sorted([ODD_IDS[1], ODD_IDS[3]])
    assert got[ODD_IDS[3]] == read_articles(db.index_dir)[ODD_IDS[3]]


def test_a_damaged_database_is_named(db: IndexDB) -> None:
    (db.index_dir / DB_FILE).write_bytes(b"not a database" * 100)
    for name in ("index.sqlite-wal", "index.sqlite-shm"):
        (db.index_dir / name).unlink(missing_ok=True)
    with pytest.raises(UnusableIndex, match=r"index\.sqlite"):
        db.read_manifest()
