"""The chat's service layer over a real index: asking, uploads, rebuilds, and answering
from the previous index while a rebuild runs."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

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


# --- the chat's handlers: saved conversations and feeds (ui.app.ChatHandlers) ----------


FOOTNOTE = re.compile(
    r"^\[\^[\w-]+\]: .*\n(?:    [<`].*\n)?\n((?:    >.*\n)+)\n"
    r"    Article `([^`]+)`, characters (\d+)-(\d+)\.",
    re.MULTILINE,
)


def exported_quotes(markdown: str) -> list[tuple[str, str, int, int]]:
    """(quote, article id, start, end) of each footnote of an exported conversation."""
    found = []
    for match in FOOTNOTE.finditer(markdown):
        lines = [line[len("    >") :].removeprefix(" ") for line in match[1].splitlines()]
        found.append(("\n".join(lines), match[2], int(match[3]), int(match[4])))
    return found


def respond(on: Any, question: str, messages: Any, turns: Any, conversation: int | None) -> Any:
    """The last update of the ask event: (messages, box, panel, answers, conversation)."""
    *_, last = on.respond(question, messages, turns, None, None, None, None, conversation)
    return last


def download(button: Any) -> str:
    return Path(button.value["path"]).read_text(encoding="utf-8")


@pytest.fixture
def handlers(service: ChatService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from ui.app import ChatHandlers

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # where exports are copied
    return ChatHandlers(service)


def test_every_answer_is_saved_and_reopened_renamed_exported_deleted(
    handlers: Any, service: ChatService, tmp_path: Path
) -> None:
    on = handlers
    messages, _, _, turns, first = respond(on, "Why is the harbour bridge closing?", [], [], None)
    assert isinstance(first, int)
    messages, _, _, turns, same = respond(on, "How long will it close?", messages, turns, first)
    assert same == first and len(turns) == 2
    _, _, _, _, other = respond(on, "Who won the chess title?", [], [], None)  # a new one
    assert other != first

    listed, title, md, js, note = on.show_saved(first)
    assert title == "Why is the harbour bridge closing?" and note == ""
    assert [value for _, value in listed.choices] == [other, first]  # most recent first
    assert listed.value == first and "2 questions" in listed.choices[1][0]
    quotes = exported_quotes(download(md))
    assert quotes, download(md)
    texts = {a["id"]: a["text"] for a in NEWS}
    for quote, article, start, end in quotes:
        assert texts[article][start:end] == quote
    records = json.loads(download(js))
    assert [t["question"] for t in records["turns"]] == [
        "Why is the harbour bridge closing?",
        "How long will it close?",
    ]
    assert Path(md.value["path"]).name == "Why_is_the_harbour_bridge_closing.md"

    listed, title, md, _, note = on.rename(first, "  Bridge  closure ")
    assert title == "Bridge closure" and note == ""
    assert Path(md.value["path"]).name == "Bridge_closure.md"
    assert download(md).startswith("# Bridge closure\n")
    *_, refused = on.rename(first, "   ")
    assert "title is empty" in refused

    reopened_messages, answers, panel, current, *_ = on.open_saved(first)
    assert current == first and len(reopened_messages) == 4 and len(answers) == 2
    assert 'id="nd-turn-1"' in panel and "index has changed" not in reopened_messages[1]["content"]
    assert reopened_messages[1]["content"] == messages[1]["content"]  # shown as it was live

    service.add([upload(tmp_path, "more.jsonl", [EXTRA])])  # the index changes
    reopened_messages, *_ = on.open_saved(first)
    assert "the index has changed since" in reopened_messages[1]["content"]

    chat, answers, _, current, listed, title, md, _, _ = on.delete(first)
    assert chat == [] and answers == [] and current is None and title == ""
    assert [value for _, value in listed.choices] == [other] and not md.interactive
    *_, missing = on.open_saved(first)
    assert "no saved conversation" in missing
    current, listed, *_ = on.new_conversation()
    assert current is None and listed.value is None


def test_feed_rows_and_a_failed_poll_name_the_url(handlers: Any, service: ChatService) -> None:
    import gradio as gr

    on = handlers
    assert "No feeds yet" in on.feed_table()
    report, box = on.add_feed("ftp://example.org/rss", gr.Request())
    assert "ftp://example.org/rss" in html.unescape(report) and "nd-error" in report
    dead = "http://127.0.0.1:9/rss.xml"  # the discard port: nothing listens
    report, box = on.add_feed(f" {dead} ", gr.Request())
    shown = html.unescape(report)
    assert box == "" and f"added {dead}" in shown
    assert "1 failed" in shown and f"problem: {dead}" in shown
    table = on.feed_table()
    assert dead in html.unescape(table) and 'class="nd-error"' in table
    assert '<td class="nd-items">0</td>' in table
    refreshed = on.refresh()
    assert refreshed[4] == table
    assert all(f'data-article="{a["id"]}"' in refreshed[5] for a in NEWS)
    assert service.status()[0]["articles"] == len(NEWS)  # type: ignore[index]


def test_feed_and_article_rows_show_untrusted_text_as_text() -> None:
    from index.feeds_store import FeedRow
    from index.types import Article
    from ui.render import articles_html, feeds_html

    row = FeedRow(
        "https://evil.example/rss", "<script>x()</script>", "2024-05-01T09:30:12+00:00", "ok", None
    )
    table = feeds_html([row], {row.url: 3})
    assert "<script>" not in table and "2024-05-01 09:30 UTC" in html.unescape(table)
    assert '<td class="nd-items">3</td>' in table
    articles = {
        "a": Article(id="a", title="<b>Old</b>", text="x", date="2020-01-01", url="javascript:1"),
        "b": Article(id="b", title="New", text="y", date="2024-01-01"),
        "c": Article(id="c", title="Undated", text="z"),
    }
    listing = articles_html(articles)
    assert "<b>" not in listing and "javascript:" not in listing
    assert re.findall(r'data-article="(\w)"', listing) == ["b", "a", "c"]  # newest, undated last
    assert "and 2 more" in articles_html(articles, limit=1)


def test_with_an_admin_token_only_the_chat_admin_changes_the_index(
    service: ChatService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gradio as gr

    from ui.api import chat_login
    from ui.app import ChatHandlers
    from ui.service import ADMIN_USER

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))

    chat = service.settings.chat.model_copy(update={"admin_token": SecretStr("admin-secret-1")})
    admin = ChatService(service.settings.model_copy(update={"chat": chat}), service.embedder)
    on = ChatHandlers(admin)
    before = admin.status()[0]
    assert before is not None
    reader = gr.Request(username="desk")
    for refused in (
        on.add_files([str(write_jsonl(tmp_path / "more.jsonl", [EXTRA]))], reader),
        on.rebuild_all(reader),
        on.add_feed("http://127.0.0.1:9/rss.xml", reader)[0],
        on.poll_feeds(reader),
    ):
        assert "needs the admin token" in refused and "nd-error" in refused
    assert admin.status()[0] == before and admin.feeds() == []
    added = on.add_files([str(tmp_path / "more.jsonl")], gr.Request(username=ADMIN_USER))
    after = admin.status()[0]
    assert "nd-error" not in added and after is not None
    assert after["articles"] == before["articles"] + 1

    login = chat_login("reader-secret-1", "admin-secret-1")
    assert login is not None
    assert login("desk", "reader-secret-1") and login(ADMIN_USER, "admin-secret-1")
    assert not login(ADMIN_USER, "reader-secret-1") and not login("desk", "admin-secret-1")
    assert not login("desk", "wrong")
    only_admin = chat_login(None, "admin-secret-1")  # on this machine, no reader token
    assert only_admin is not None and only_admin("desk", "") and not only_admin(ADMIN_USER, "")
    assert chat_login(None, None) is None
