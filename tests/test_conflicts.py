"""Sources that disagree on the value a question asks for are found, with both sides."""

from __future__ import annotations

from pathlib import Path

from index.build import Indexer
from index.embed import Embedder
from index.reader import IndexReader
from index.types import Article
from rag.answer import ExtractiveAnswerer
from rag.cli import render
from rag.conflicts import asked_value, find_conflict
from tests.conftest import NEWS, assert_exact_citations, make_settings, write_jsonl


def _article(id: str, text: str, source: str, date: str | None) -> Article:
    return Article(id=id, title=id, text=text, source=source, date=date)


EARLY = _article(
    "early",
    "A crane collapsed onto the Grand Mosque on Friday. At least 107 people were killed.",
    "Coast Times",
    "2015-09-11",
)
LATER = _article(
    "later",
    "Officials raised the toll a week later: 111 people died when the crane fell.",
    "Valley Post",
    "2015-09-18",
)
AGREES = _article("agrees", "The crane fall killed 107 people, police said.", "Daily", "2015-09-12")


def _sentence(article: Article, needle: str) -> tuple[Article, int, int]:
    start = article.text.index(needle)
    return article, start, start + len(needle)


def test_the_question_names_what_it_counts() -> None:
    assert asked_value("How many people were killed?") == ("count", "people")
    assert asked_value("What was the number of victims?") == ("count", "victims")
    assert asked_value("When did the crane collapse?") == ("year", "year")
    assert asked_value("Who warned about the crane?") is None


def test_different_counts_from_two_outlets_are_a_conflict_with_both_sides() -> None:
    early = _sentence(EARLY, "At least 107 people were killed.")
    later = _sentence(LATER, "Officials raised the toll a week later: 111 people died")
    agrees = _sentence(AGREES, "The crane fall killed 107 people, police said.")
    conflict = find_conflict("How many people died in the crane collapse?", [early, later, agrees])
    assert conflict is not None and conflict.about == "people"
    assert [(value, [s.article.id for s in said]) for value, said in conflict.sides] == [
        ("107", ["early", "agrees"]),
        ("111", ["later"]),
    ]
    for _, said in conflict.sides:
        for s in said:
            assert s.article.text[s.start : s.end]  # exact spans of their articles
    numbers = {
        (s.article.id, s.start, s.end): n
        for n, s in enumerate([st for _, side in conflict.sides for st in side], start=1)
    }
    assert conflict.describe(numbers) == (
        "Sources disagree on the number of people: 107 (Coast Times, 2015-09-11 [1]; "
        "Daily, 2015-09-12 [2]) vs 111 (Valley Post, 2015-09-18 [3])"
    )


def test_agreement_one_outlet_or_another_question_is_no_conflict() -> None:
    early = _sentence(EARLY, "At least 107 people were killed.")
    agrees = _sentence(AGREES, "The crane fall killed 107 people, police said.")
    assert find_conflict("How many people died?", [early, agrees]) is None
    same_day = _article("copy", "In all 111 people were killed.", "Coast Times", "2015-09-11")
    both = [early, _sentence(same_day, "In all 111 people were killed.")]
    assert find_conflict("How many people died?", both) is None
    assert find_conflict("Who was blamed?", [early, _sentence(LATER, "111 people died")]) is None


def test_years_for_when_questions_and_number_words() -> None:
    a = _article("a", "The bridge opened in 1932 after years of work.", "Coast Times", None)
    b = _article("b", "The bridge, opened in 1934, is a landmark.", "Valley Post", None)
    conflict = find_conflict(
        "When did the bridge open?",
        [_sentence(a, "The bridge opened in 1932"), _sentence(b, "The bridge, opened in 1934")],
    )
    assert conflict is not None and [v for v, _ in conflict.sides] == ["1932", "1934"]
    c = _article("c", "Twelve ferries were running.", "Coast Times", "2024-01-01")
    d = _article("d", "Only 10 ferries ran.", "Valley Post", "2024-01-02")
    words = find_conflict(
        "How many ferries were running?",
        [_sentence(c, "Twelve ferries were running."), _sentence(d, "Only 10 ferries ran.")],
    )
    assert words is not None and [v for v, _ in words.sides] == ["12", "10"]


def test_an_answer_cites_both_sides_with_their_dates(tmp_path: Path, embedder: Embedder) -> None:
    records = [
        {
            "id": "first-report",
            "title": "Ferry capsizes in storm",
            "source": "Coast Times",
            "date": "2024-03-02",
            "text": "A ferry capsized in a storm off the coast on Friday. Rescuers said 12 "
            "passengers died in the accident. The search continued overnight.",
        },
        {
            "id": "week-later",
            "title": "Ferry disaster toll revised",
            "source": "Valley Post",
            "date": "2024-03-09",
            "text": "A week after the ferry capsized, officials said 17 passengers died in "
            "the accident. An inquiry into the ship's safety opened on Monday.",
        },
        NEWS[1],
    ]
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, embedder).build([write_jsonl(tmp_path / "news.jsonl", records)])
    reader = IndexReader(settings, embedder)
    answer = ExtractiveAnswerer(reader, settings).ask(
        "How many passengers died when the ferry capsized?"
    )
    assert_exact_citations(answer, reader.articles)
    cited = {c.article_id for c in answer.citations}
    assert {"first-report", "week-later"} <= cited
    (note,) = [n for n in answer.notes if n.startswith("Sources disagree")]
    n12 = next(c.n for c in answer.citations if "12 passengers" in c.text)
    n17 = next(c.n for c in answer.citations if "17 passengers" in c.text)
    assert note == (
        f"Sources disagree on the number of passengers: 12 (Coast Times, 2024-03-02 [{n12}]) "
        f"vs 17 (Valley Post, 2024-03-09 [{n17}])"
    )
    assert f"Note: {note}" in render(answer)
