"""The chat's service layer over a real index: asking, uploads, rebuilds, and answering
from the previous index while a rebuild runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.build import Indexer, NothingToIndex
from index.embed import Embedder
from index.store import StoreUnavailable
from rag.retrieve import Filters
from tests.conftest import NEWS, make_settings, write_jsonl
from ui.service import Busy, ChatService, NoIndex
from ui.uploads import Upload, UploadRejected

EXTRA = {
    "id": "tunnel",
    "title": "Rail tunnel opens under the river",
    "date": "2024-05-06",
    "source": "Coast Times",
    "text": "The new rail tunnel under the river opened to passengers on Friday morning.",
}


@pytest.fixture
def service(tmp_path: Path, news_file: Path, embedder: Embedder) -> ChatService:
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, embedder).build([news_file])
    return ChatService(settings, embedder)


def upload(tmp_path: Path, name: str, records: list[dict[str, str]]) -> Upload:
    folder = tmp_path / "browser-upload"
    folder.mkdir(exist_ok=True)
    return Upload(name=name, path=write_jsonl(folder / "tmp123", records))


def test_asks_with_history_and_filters(service: ChatService) -> None:
    answer = service.ask("Why is the harbour bridge closing?", [], None)
    assert not answer.abstained
    assert answer.citations[0].article_id == "harbour"
    only_valley = Filters.parse(sources=("Valley Post",))
    filtered = service.ask("Why is the harbour bridge closing?", [], only_valley)
    assert all(p.article_id == "orchard" for p in filtered.retrieved)
    assert service.sources() == ["Coast Times", "Daily Board", "Valley Post"]


def test_no_index_says_how_to_make_one(tmp_path: Path, embedder: Embedder) -> None:
    service = ChatService(make_settings(tmp_path / "empty"), embedder)
    assert service.answerer() is None and service.status() == (None, False)
    with pytest.raises(NoIndex, match="newsdesk index build"):
        service.ask("anything?", [], None)


def test_upload_adds_articles_and_the_next_question_sees_them(
    service: ChatService, tmp_path: Path
) -> None:
    before = service.answerer()
    stored, report = service.add([upload(tmp_path, "../../more news.jsonl", [EXTRA])])
    assert [p.name for p in stored] == ["more_news.jsonl"]
    assert stored[0].parent == service.uploads_dir
    assert report.added == 1
    status, demo = service.status()
    assert status is not None and status["articles"] == len(NEWS) + 1 and not demo
    after = service.answerer()
    assert after is not before
    answer = service.ask("When did the rail tunnel open?", [], None)
    assert answer.citations and answer.citations[0].article_id == "tunnel"


def test_refused_upload_changes_nothing(service: ChatService, tmp_path: Path) -> None:
    version = service.answerer().reader.version  # type: ignore[union-attr]
    bad = Upload(name="evil.exe", path=upload(tmp_path, "x", [EXTRA]).path)
    with pytest.raises(UploadRejected, match=r"evil\.exe"):
        service.add([upload(tmp_path, "ok.jsonl", [EXTRA]), bad])
    assert not service.uploads_dir.exists() or not any(service.uploads_dir.iterdir())
    assert service.answerer().reader.version == version  # type: ignore[union-attr]
    with pytest.raises(NothingToIndex):
        service.add([])


def test_rebuild_reindexes_every_source(service: ChatService, tmp_path: Path) -> None:
    service.add([upload(tmp_path, "more.jsonl", [EXTRA])])
    report = service.rebuild()
    assert report.manifest is not None and report.manifest.article_count == len(NEWS) + 1
    assert service.ask("When did the rail tunnel open?", [], None).citations


def test_rebuild_refuses_when_a_source_is_gone(service: ChatService, news_file: Path) -> None:
    news_file.unlink()
    with pytest.raises(NothingToIndex, match="no longer exists"):
        service.rebuild()
    assert service.ask("Why is the harbour bridge closing?", [], None).citations


def test_chat_answers_from_the_old_index_while_a_rebuild_runs(
    service: ChatService, tmp_path: Path
) -> None:
    old = service.answerer()
    assert old is not None
    seen: list[str] = []

    def ask_midway(done: int, total: int) -> None:
        if not seen:  # a question arrives while the new collection is being filled
            answer = service.ask("Why is the harbour bridge closing?", [], None)
            seen.append(answer.index_version)
            assert answer.citations[0].article_id == "harbour"
            with pytest.raises(Busy):
                service.rebuild()

    service.rebuild(progress=ask_midway)
    assert seen == [old.reader.version]
    new = service.answerer()
    assert new is not None and new.reader.version != old.reader.version
    assert service.ask("Why is the harbour bridge closing?", [], None).citations


def test_after_a_switch_the_next_question_uses_the_new_index(service: ChatService) -> None:
    """A rebuild drops the old collection; the service reopens instead of failing."""
    stale = service.answerer()
    assert stale is not None
    service.rebuild()
    with pytest.raises(StoreUnavailable):
        stale.ask("Why is the harbour bridge closing?")
    answer = service.ask("Why is the harbour bridge closing?", [], None)
    assert answer.citations and answer.index_version != stale.reader.version
