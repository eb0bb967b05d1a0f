"""Saved conversations over a real small index: the SQLite store, the reopen check after
index updates, the Markdown and JSON exports, and the commands."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from index.build import Indexer
from index.db import read_articles, read_manifest
from index.embed import Embedder
from index.reader import IndexReader
from index.types import Article
from newsdesk.errors import NewsdeskError
from newsdesk.settings import Settings
from rag.answer import ExtractiveAnswerer
from rag.conversations import (
    CONVERSATIONS_FILE,
    ConversationStore,
    ConversationsUnreadable,
    UnknownConversation,
    live_index,
    reopen,
)
from rag.export import answer_markdown, conversation_json, export
from rag.types import Answer, Citation
from tests.conftest import NEWS, make_settings, write_jsonl
from ui.service import ChatService

BRIDGE = "Why is the harbour bridge closing?"
APPLES = "Why did the apple harvest break the record?"


@pytest.fixture
def settings(tmp_path: Path, news_file: Path, embedder: Embedder) -> Settings:
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, embedder).build([news_file])
    return settings


def ask(settings: Settings, embedder: Embedder, question: str) -> Answer:
    return ExtractiveAnswerer(IndexReader(settings, embedder), settings).ask(question)


def update(settings: Settings, embedder: Embedder, news_file: Path, **texts: str) -> None:
    """Rewrite the source with some articles' texts replaced, and update the index."""
    records = [{**r, "text": texts.get(r["id"], r["text"])} for r in NEWS]
    Indexer(settings, embedder).update([write_jsonl(news_file, records)])


def current_articles(settings: Settings) -> dict[str, Article]:
    manifest = read_manifest(settings.index_dir)
    assert manifest is not None
    return read_articles(settings.index_dir)


def test_store_round_trip(settings: Settings, embedder: Embedder) -> None:
    store = ConversationStore(settings.index_dir)
    assert store.conversations() == []  # no file yet: empty, and nothing created
    assert not (settings.index_dir / CONVERSATIONS_FILE).exists()
    first = ask(settings, embedder, BRIDGE)
    saved = store.save_turn(None, BRIDGE, first)
    second = ask(settings, embedder, APPLES)
    again = store.save_turn(saved.conversation_id, APPLES, second)
    assert (saved.position, again.position) == (1, 2)
    assert again.conversation_id == saved.conversation_id

    [conversation] = ConversationStore(settings.index_dir).conversations()
    assert (conversation.id, conversation.title, conversation.turns) == (
        saved.conversation_id,
        BRIDGE,
        2,
    )
    turns = store.turns(conversation.id)
    assert [t.question for t in turns] == [BRIDGE, APPLES]
    assert [t.answer for t in turns] == [first, second]  # the whole record, as saved
    assert turns[0].index_version == first.index_version == IndexReader(settings, embedder).version
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        saved_json = db.execute("SELECT answer FROM turns WHERE position = 1").fetchone()[0]
    assert Answer.model_validate_json(saved_json) == first
    assert store.questions(conversation.id) == [BRIDGE, APPLES]


def test_rename_and_delete(settings: Settings, embedder: Embedder) -> None:
    store = ConversationStore(settings.index_dir)
    answer = ask(settings, embedder, BRIDGE)
    kept = store.save_turn(None, BRIDGE, answer).conversation_id
    gone = store.save_turn(None, "x " * 100, answer).conversation_id
    assert store.get(gone).title.endswith("…") and len(store.get(gone).title) == 80
    store.rename(kept, "  The   bridge ")
    assert store.get(kept).title == "The bridge"
    assert [c.id for c in store.conversations()] == [kept, gone]  # renamed: updated last
    store.delete(gone)
    assert [c.id for c in store.conversations()] == [kept]
    with sqlite3.connect(store.path) as db:
        assert db.execute(
            "SELECT COUNT(*) FROM turns WHERE conversation_id = ?", (gone,)
        ).fetchone() == (0,)
    for call in (
        lambda: store.turns(gone),
        lambda: store.rename(gone, "new"),
        lambda: store.delete(gone),
        lambda: store.save_turn(gone, BRIDGE, answer),
    ):
        with pytest.raises(
            UnknownConversation, match=f"no saved conversation {gone} in .*{CONVERSATIONS_FILE}"
        ):
            call()
    with pytest.raises(UnknownConversation, match="9999"):
        store.get(9999)
    with pytest.raises(NewsdeskError, match=f"conversation {kept}: the new title is empty"):
        store.rename(kept, "   ")
    assert len(store.turns(kept)) == 1  # failed writes changed nothing


def test_concurrent_readers_and_writers(settings: Settings, embedder: Embedder) -> None:
    answer = ask(settings, embedder, BRIDGE)
    store = ConversationStore(settings.index_dir)
    conversation = store.save_turn(None, BRIDGE, answer).conversation_id
    # A reader in the middle of a transaction does not block a writer, and keeps its snapshot.
    reader = sqlite3.connect(store.path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM turns").fetchone() == (1,)
    other = ConversationStore(settings.index_dir)  # another connection
    errors: list[BaseException] = []

    def write(times: int) -> None:
        try:
            for _ in range(times):
                other.save_turn(conversation, BRIDGE, answer)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(5,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert reader.execute("SELECT COUNT(*) FROM turns").fetchone() == (1,)
    reader.execute("COMMIT")
    assert reader.execute("SELECT COUNT(*) FROM turns").fetchone() == (16,)
    reader.close()
    assert [t.position for t in store.turns(conversation)] == list(range(1, 17))


@pytest.mark.process
def test_a_write_from_another_process(settings: Settings, embedder: Embedder) -> None:
    answer = ask(settings, embedder, BRIDGE)
    store = ConversationStore(settings.index_dir)
    conversation = store.save_turn(None, BRIDGE, answer).conversation_id
    record = settings.index_dir / "answer.json"
    record.write_text(answer.model_dump_json(), encoding="utf-8")
    script = (
        "import sys; from pathlib import Path\n"
        "from rag.conversations import ConversationStore\n"
        "from rag.types import Answer\n"
        "answer = Answer.model_validate_json(Path(sys.argv[2]).read_text())\n"
        "ConversationStore(Path(sys.argv[1])).save_turn(int(sys.argv[3]), 'again?', answer)\n"
    )
    with sqlite3.connect(store.path, isolation_level=None) as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM turns").fetchone()
        done = subprocess.run(
            [sys.executable, "-c", script, str(settings.index_dir), str(record), str(conversation)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert done.returncode == 0, done.stderr
        reader.execute("COMMIT")
    assert [t.question for t in store.turns(conversation)] == [BRIDGE, "again?"]


def test_reopen_after_a_cited_article_changed(
    settings: Settings, embedder: Embedder, news_file: Path
) -> None:
    answer = ask(settings, embedder, BRIDGE)
    assert answer.citations and {c.article_id for c in answer.citations} == {"harbour"}
    store = ConversationStore(settings.index_dir)
    saved = store.save_turn(None, BRIDGE, answer)
    harbour = NEWS[0]["text"]

    update(settings, embedder, news_file, harbour="Update: the council met on Tuesday. " + harbour)
    version, articles = live_index(settings.index_dir)
    assert version is not None and version != answer.index_version
    [turn] = store.turns(saved.conversation_id)
    reopened = reopen(turn, version, articles)
    assert reopened.index_changed
    assert f"answered from index version {answer.index_version}; the index has changed since" in (
        reopened.answer.notes
    )
    text = articles["harbour"].text
    for check, citation in zip(reopened.checks, answer.citations, strict=True):
        assert check.status == "moved" and check.start == citation.start + 36
        assert text[check.start : check.end] == citation.text
        assert check.note in reopened.answer.notes
    assert turn.answer == answer  # the saved record itself is unchanged

    update(settings, embedder, news_file, harbour="The harbour bridge reopened early.")
    version, articles = live_index(settings.index_dir)
    reopened = reopen(store.turns(saved.conversation_id)[0], version, articles)
    assert [c.status for c in reopened.checks] == ["gone"] * len(answer.citations)
    assert "[1] the quote is gone from article harbour" in reopened.answer.notes


def test_reopen_after_updates_that_left_the_quotes_alone(
    settings: Settings, embedder: Embedder, news_file: Path
) -> None:
    answer = ask(settings, embedder, BRIDGE)
    service = ChatService(settings, embedder)
    conversation = service.save_turn(None, BRIDGE, answer)
    update(settings, embedder, news_file)  # nothing changed: the same index state
    [same] = service.open_conversation(conversation)
    assert not same.index_changed and same.answer == answer  # no note
    assert {c.status for c in same.checks} == {"unchanged"}

    update(settings, embedder, news_file, chess="A new chess story. " + NEWS[2]["text"])
    [other] = service.open_conversation(conversation)
    assert other.index_changed and {c.status for c in other.checks} == {"unchanged"}
    assert other.answer.notes == [
        *answer.notes,
        f"answered from index version {answer.index_version}; the index has changed since",
    ]


FOOTNOTE = re.compile(r"(?ms)^\[\^([^\]]+)\]: (.*?)(?=^\[\^|\Z)")
SPAN = re.compile(r"Article `([^`]+)`, characters (\d+)-(\d+)\.")


def footnotes(markdown: str) -> dict[str, tuple[str, str, int, int]]:
    """Label -> (byline line, quote, start, end), read back from the exported Markdown."""
    found = {}
    for label, body in FOOTNOTE.findall(markdown):
        lines = body.split("\n")
        quote = [line[6:] if line != "    >" else "" for line in lines if line.startswith("    >")]
        span = SPAN.search(body)
        assert span is not None, body
        found[label] = (lines[0], "\n".join(quote), int(span.group(2)), int(span.group(3)))
        assert span.group(1)
    return found


def test_markdown_footnotes_quote_the_indexed_text(settings: Settings, embedder: Embedder) -> None:
    store = ConversationStore(settings.index_dir)
    first = store.save_turn(None, BRIDGE, ask(settings, embedder, BRIDGE))
    store.save_turn(first.conversation_id, APPLES, ask(settings, embedder, APPLES))
    version, articles = live_index(settings.index_dir)
    turns = [reopen(t, version, articles) for t in store.turns(first.conversation_id)]
    markdown = export(store.get(first.conversation_id), turns, "md")
    assert markdown.startswith(f"# {BRIDGE}\n") and f"## {APPLES}" in markdown
    notes = footnotes(markdown)
    expected = {f"{r.turn.position}-{c.n}": c for r in turns for c in r.answer.citations}
    assert set(notes) == set(expected) and len(notes) >= 2
    for label, (byline, quote, start, end) in notes.items():
        citation = expected[label]
        assert quote == articles[citation.article_id].text[start:end] == citation.text
        assert markdown.count(f"[^{label}]") == 2  # the marker and the footnote
        assert byline.startswith(citation.byline)
    assert "Coast Times, 2024-03-02" in markdown and "<https://example.org/harbour>" in markdown


def test_markdown_keeps_awkward_quotes_exact() -> None:
    text = "Line one ends here  \n\n*Not emphasis* [3] # no heading\n"
    article = Article(id="odd", title="Odd", text=text, url="javascript:alert(1)", source="S")
    citation = Citation.of(1, article, 0, len(text) - 1, 0.5)
    answer = Answer(
        question="Q?",
        standalone_question="Q?",
        answer=f"{citation.text} [1]",
        abstained=False,
        best_score=0.5,
        citations=[citation],
        retrieved=[],
        index_version="v",
        settings_hash="h",
        timings_ms={},
    )
    markdown = answer_markdown(answer)
    [(_, quote, start, end)] = footnotes(markdown).values()
    assert quote == text[start:end] == citation.text
    assert (
        "[^1]" in markdown and "<javascript" not in markdown and "`javascript:alert(1)`" in markdown
    )


def test_json_export_parses_back(settings: Settings, embedder: Embedder) -> None:
    store = ConversationStore(settings.index_dir)
    answer = ask(settings, embedder, BRIDGE)
    saved = store.save_turn(None, BRIDGE, answer)
    version, articles = live_index(settings.index_dir)
    turns = [reopen(t, version, articles) for t in store.turns(saved.conversation_id)]
    record = json.loads(conversation_json(store.get(saved.conversation_id), turns))
    assert record["conversation"]["id"] == saved.conversation_id
    [turn] = record["turns"]
    assert Answer.model_validate(turn["answer"]) == answer
    assert (turn["question"], turn["saved"], turn["index_version"]) == (
        BRIDGE,
        saved.created,
        answer.index_version,
    )
    assert turn["reopened"]["index_changed"] is False
    assert {q["status"] for q in turn["reopened"]["quotes"]} == {"unchanged"}


def test_commands(settings: Settings, tmp_path: Path) -> None:
    from rag.cli import ask as ask_command
    from rag.conversations_cli import conversations_group as group

    runner = CliRunner()
    where = ["--index-dir", str(settings.index_dir)]
    asked = runner.invoke(ask_command, [BRIDGE, "--save", *where])
    assert asked.exit_code == 0, asked.output
    found = re.search(r"Saved as answer 1 of conversation (\d+)\.", asked.output)
    assert found is not None and "Sources:" in asked.output
    number = found.group(1)
    more = runner.invoke(ask_command, [APPLES, "--json", "--conversation", number, *where])
    assert more.exit_code == 0, more.output
    assert f"Saved as answer 2 of conversation {number}." in more.output

    listed = runner.invoke(group, ["list", *where])
    assert listed.exit_code == 0 and f"2 answers  {BRIDGE}" in listed.output
    assert runner.invoke(group, ["rename", number, "Bridge and apples", *where]).exit_code == 0
    shown = runner.invoke(group, ["show", number, *where])
    assert shown.exit_code == 0, shown.output
    assert (
        f"Conversation {number}: Bridge and apples" in shown.output
        and f"Q2: {APPLES}" in shown.output
    )

    out = tmp_path / "chat.md"
    exported = runner.invoke(
        group, ["export", number, "--format", "md", "--output", str(out), *where]
    )
    assert exported.exit_code == 0, exported.output
    assert out.read_text(encoding="utf-8").startswith("# Bridge and apples\n")
    as_json = runner.invoke(group, ["export", number, "--format", "json", "--turn", "2", *where])
    assert as_json.exit_code == 0, as_json.output
    assert Answer.model_validate(json.loads(as_json.output)["answer"]).question == APPLES

    assert runner.invoke(group, ["delete", number, *where]).exit_code == 0
    for args in (["show", number], ["export", number], ["delete", number], ["rename", number, "t"]):
        failed = runner.invoke(group, [*args, *where])
        assert failed.exit_code == 1 and f"no saved conversation {number}" in failed.output
    unknown = runner.invoke(ask_command, [BRIDGE, "--conversation", "42", *where])
    assert unknown.exit_code == 1 and "no saved conversation 42" in unknown.output


def test_a_damaged_file_is_named_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / CONVERSATIONS_FILE
    path.write_bytes(b"not a database, but someone's notes\n" * 200)
    store = ConversationStore(tmp_path)
    with pytest.raises(ConversationsUnreadable, match=re.escape(str(path))):
        store.conversations()
    with pytest.raises(ConversationsUnreadable, match=re.escape(str(path))):
        store.rename(1, "title")
    assert path.read_bytes() == b"not a database, but someone's notes\n" * 200
