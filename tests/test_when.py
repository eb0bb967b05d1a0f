"""Time in questions and answers: dates read from questions (rag.when), date filters and
undated articles, answer.as_of, recency, and bylines with dates.

Parsing is tested against a fixed as-of day; the rest runs the real path (real model,
real Chroma, real BM25) over a small hand-made collection with dated and undated
articles.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner

from index.build import Indexer
from index.embed import Embedder
from index.reader import ArticleTable, IndexReader
from index.types import Article, ArticleInfo
from newsdesk.settings import Settings
from rag.answer import Candidate, ExtractiveAnswerer
from rag.cli import ask as ask_command
from rag.retrieve import Filters
from rag.types import Citation, byline
from rag.when import place_in_time, read_time
from tests.conftest import assert_exact_citations, write_jsonl
from ui.render import answer_html, citation_card

AS_OF = date(2024, 4, 15)  # a Monday

BRIDGE = [
    {
        "id": "bridge-march",
        "title": "Harbour bridge closes for repairs",
        "date": "2024-03-02",
        "source": "Coast Times",
        "author": "Ann Lee",
        "text": (
            "The harbour bridge will close for six weeks from Monday. Engineers found cracks "
            "in two of the steel cables during a routine inspection.\n\n"
            "The city council said ferries would run every ten minutes while the bridge is shut."
        ),
    },
    {
        "id": "bridge-april",
        "title": "Harbour bridge reopens",
        "date": "2024-04-20",
        "source": "Coast Times",
        "author": "Ben Ode",
        "text": (
            "The harbour bridge reopened on Saturday after six weeks of repairs. Engineers "
            "replaced two of the steel cables that had cracked.\n\n"
            "The city council thanked commuters for their patience."
        ),
    },
    {
        "id": "bridge-toll",
        "title": "Bridge toll to rise",
        "source": "Harbour Gazette",
        "text": (
            "The toll on the harbour bridge will rise next year, the city council said. "
            "Drivers will pay two pounds instead of one."
        ),
    },
    {
        "id": "orchard",
        "title": "Apple harvest breaks record",
        "date": "2023-10-11",
        "source": "Valley Post",
        "text": (
            "Orchards in the valley picked more apples this autumn than in any year since "
            "records began. A warm spring and late rain helped the crop."
        ),
    },
]
MARCH = "What happened to the harbour bridge in March 2024?"
LATEST = "What is the latest on the harbour bridge?"


def day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


# --- reading questions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "since", "until"),
    [
        ("What did the council say in March 2024?", "2024-03-01", "2024-03-31"),
        ("What did the minister say in 2010?", "2010-01-01", "2010-12-31"),
        ("Who won in the year 2010?", "2010-01-01", "2010-12-31"),
        ("What happened before March 2024?", None, "2024-02-29"),
        ("Any news after 2 March 2024?", "2024-03-03", None),
        ("What was decided on March 2, 2024?", "2024-03-02", "2024-03-02"),
        ("What was decided on 2024-03-02?", "2024-03-02", "2024-03-02"),
        ("What has changed since May?", "2023-05-01", None),  # the last May before as-of
        ("What happened until 2020?", None, "2020-12-31"),
        ("What happened last week?", "2024-04-08", "2024-04-14"),  # the calendar week
        ("What happened last month?", "2024-03-01", "2024-03-31"),
        ("What happened last year?", "2023-01-01", "2023-12-31"),
        ("What has happened this year?", "2024-01-01", "2024-04-15"),  # not past as-of
        ("What changed in the past 3 weeks?", "2024-03-25", "2024-04-15"),
        ("What changed over the last year?", "2023-04-15", "2024-04-15"),
        ("What happened yesterday?", "2024-04-14", "2024-04-14"),
        ("What happened two weeks ago?", "2024-04-01", "2024-04-07"),
        ("What happened between 2010 and 2012?", "2010-01-01", "2012-12-31"),
        ("What happened from March to May 2023?", "2023-03-01", "2023-05-31"),
        ("What happened in the 1990s?", "1990-01-01", "1999-12-31"),
        ("What happened in June/July 1754?", "1754-06-01", "1754-07-31"),
        ("What happened in 2010 \u2013 2012?", "2010-01-01", "2012-12-31"),
        ("What happened after 2010 and before March 2012?", "2011-01-01", "2012-02-29"),
    ],
)
def test_dates_in_questions_become_ranges(question: str, since: str, until: str) -> None:
    reading = read_time(question, AS_OF)
    assert reading.expressions, question
    assert (reading.since, reading.until) == (day(since), day(until))
    assert not reading.recency and not reading.unplaced


def test_relative_dates_count_back_from_the_as_of_day() -> None:
    reading = read_time("What happened last month?", date(2010, 1, 20))
    assert (reading.since, reading.until) == (date(2009, 12, 1), date(2009, 12, 31))


@pytest.mark.parametrize(
    "question",
    [
        "What is the latest on the bridge?",
        "What are the most recent figures?",
        "Which is the newest report?",
        "Who is currently in charge?",
        "What is the council doing now?",
    ],
)
def test_recency_words_are_a_preference_not_a_range(question: str) -> None:
    reading = read_time(question, AS_OF)
    assert reading.recency and not reading.expressions


@pytest.mark.parametrize(
    "question",
    [
        "What is the 2030 climate target?",  # a bare year is a name or a number
        "May I ask what the council decided?",  # a bare month is a word
        "What did the mayor say on Friday?",  # weekdays are not read
        "Did prices rise to 2010 levels?",
        "What happened in spring 2023?",  # seasons are not read
    ],
)
def test_words_that_are_no_time_filter(question: str) -> None:
    assert read_time(question, AS_OF).expressions == ()


def test_events_cannot_be_placed_in_time() -> None:
    reading = read_time("What did the minister say before the summit in Paris?", AS_OF)
    assert reading.expressions == ()
    assert reading.unplaced == ("before the summit",)
    assert read_time("Why has nothing changed since then?", AS_OF).unplaced == ()


def test_an_impossible_date_is_reported_not_guessed() -> None:
    reading = read_time("What happened on 31 February 2024?", AS_OF)
    assert reading.expressions == () and reading.unread == ("on 31 February 2024",)


def articles() -> list[Article]:
    return [Article(**a) for a in BRIDGE]  # type: ignore[arg-type]


def table() -> ArticleTable:
    return ArticleTable(articles())


def test_a_date_becomes_a_filter_and_leaves_the_query() -> None:
    placed = place_in_time(MARCH, MARCH, Filters(), table(), today=AS_OF)
    assert (placed.filters.since, placed.filters.until) == ("2024-03-01", "2024-03-31")
    assert placed.query == "What happened to the harbour bridge?"
    assert placed.reading is not None and placed.reading.phrases == ["in March 2024"]
    assert placed.notes[0] == ("Read as: articles from 2024-03-01 to 2024-03-31 ('in March 2024').")


def test_a_date_no_article_has_stays_part_of_the_question() -> None:
    question = "What did the Royal Proclamation say in 1763?"
    placed = place_in_time(question, question, Filters(), table(), today=AS_OF)
    assert placed.filters == Filters() and placed.query == question
    assert placed.reading is None
    assert "not as a date filter" in placed.notes[0]


def test_an_explicit_date_filter_wins_over_the_question() -> None:
    given = Filters.parse(since="2023-01-01")
    placed = place_in_time(MARCH, MARCH, given, table(), today=AS_OF)
    assert placed.filters == given and placed.query == MARCH
    assert any("the date filter given wins" in note for note in placed.notes)


def test_filters_admit_by_source_id_and_date_with_undated_by_choice() -> None:
    every = ArticleTable(
        [
            ArticleInfo("a", "2024-03-02", "Coast Times"),
            ArticleInfo("b", "2024-03-31T23:59:59+00:00", "Coast Times"),
            ArticleInfo("c", "2024-04-01", "Coast Times"),
            ArticleInfo("d", None, "Coast Times"),
            ArticleInfo("e", "2024-03-10", "Other"),
        ]
    )
    march = Filters.parse(since="2024-03-01", until="2024-03-31")
    assert every.ids_of(march.admitted(every)) == ["a", "b", "e"]
    assert every.ids_of(march.admitted(every, include_undated=True)) == ["a", "b", "d", "e"]
    coast = Filters.parse(sources=("Coast Times",), until="2024-03-31")
    assert every.ids_of(coast.admitted(every)) == ["a", "b"]
    named = Filters.parse(article_ids=("c", "e", "absent"))
    assert every.ids_of(named.admitted(every)) == ["c", "e"]
    assert every.ids_of(Filters().admitted(every)) == ["a", "b", "c", "d", "e"]


def test_recency_needs_dated_articles() -> None:
    undated = [a for a in articles() if a.date is None]
    placed = place_in_time(LATEST, LATEST, Filters(), ArticleTable(undated), today=AS_OF)
    assert not placed.recency and placed.query == LATEST
    assert "none can be preferred as newer" in placed.notes[0]


# --- bylines --------------------------------------------------------------------------


def test_byline_names_outlet_day_and_author() -> None:
    art = articles()[0]
    citation = Citation.of(1, art, 0, 10, 0.9)
    assert citation.byline == "Coast Times, 2024-03-02, by Ann Lee"
    assert byline("Reuters", "2024-03-02T10:00:00+00:00", "") == "Reuters, 2024-03-02"
    assert byline("", None, "Ann") == "undated, by Ann"
    assert byline("", None, "") == "undated"
    card = citation_card(citation, art, turn=0)
    assert '<div class="nd-byline">Coast Times, 2024&#45;03&#45;02, by Ann Lee</div>' in card


# --- over a collection ----------------------------------------------------------------


@pytest.fixture(scope="module")
def bridge_index(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("when")
    source = write_jsonl(root / "bridge.jsonl", BRIDGE)
    Indexer(Settings(index_dir=root / "ix"), embedder).build([source])
    return root / "ix"


def answerer(index_dir: Path, embedder: Embedder, **overrides: object) -> ExtractiveAnswerer:
    settings = Settings(index_dir=index_dir, **overrides)  # type: ignore[arg-type]
    return ExtractiveAnswerer(IndexReader(settings, embedder), settings)


def test_latest_prefers_the_newest_relevant_article(bridge_index: Path, embedder: Embedder) -> None:
    engine = answerer(bridge_index, embedder)
    answer = engine.ask(LATEST)
    assert not answer.abstained
    assert_exact_citations(answer, engine.reader.articles)
    assert answer.citations[0].article_id == "bridge-april"
    dates = [c.date or "" for c in answer.citations]
    assert dates == sorted(dates, reverse=True)
    assert answer.time_reading is not None and answer.time_reading.recency and answer.time_sensitive
    assert answer.notes[0] == ("Read as: the newest first among equally good answers ('latest').")
    # The chat shows each quote's day before it, never inside it.
    html = answer_html(answer, turn=0)
    assert '<span class="nd-day">(2024&#45;04&#45;20)</span> The harbour bridge reopened' in html


def test_recency_reorders_only_answers_about_as_good(
    bridge_index: Path, embedder: Embedder
) -> None:
    engine = answerer(bridge_index, embedder)
    old, new = (engine.reader.articles[i] for i in ("bridge-march", "bridge-april"))
    better_old = Candidate(old, 0, 10, 1, 0, score=0.90)
    close_new = Candidate(new, 0, 10, 2, 0, score=0.85)
    assert engine.choose([better_old, close_new], newest_first=True)[0].article is new
    assert engine.choose([better_old, close_new])[0].article is old
    far_new = Candidate(new, 0, 10, 2, 0, score=0.75)  # outside answer.sentence_margin
    assert engine.choose([better_old, far_new], newest_first=True) == [better_old]


def test_a_month_in_the_question_restricts_to_it(bridge_index: Path, embedder: Embedder) -> None:
    engine = answerer(bridge_index, embedder)
    answer = engine.ask(MARCH)
    assert answer.retrieved
    assert {p.article_id for p in answer.retrieved} == {"bridge-march"}
    assert answer.time_reading is not None
    assert (answer.time_reading.since, answer.time_reading.until) == ("2024-03-01", "2024-03-31")
    assert answer.notes == [
        "Read as: articles from 2024-03-01 to 2024-03-31 ('in March 2024').",
        '1 undated article was left out by the date filter (retrieval.undated = "include" '
        "keeps them).",
    ]


def test_undated_articles_are_included_by_setting(bridge_index: Path, embedder: Embedder) -> None:
    engine = answerer(bridge_index, embedder, retrieval={"undated": "include"})
    answer = engine.ask(MARCH, k=10)
    assert {p.article_id for p in answer.retrieved} == {"bridge-march", "bridge-toll"}
    assert not any("left out" in note for note in answer.notes)
    # Both legs apply one rule, included or not: Chroma's filter equals the Python one.
    filters = Filters.parse(since="2024-03-01", until="2024-04-30")
    retriever, every = engine.retriever, engine.reader.table
    collection = engine.reader.store.collection
    for include in (False, True):
        expected = set(every.ids_of(filters.admitted(every, include)))
        where = filters.where(retriever.undated(filters) if include else None)
        got = cast(
            list[dict[str, Any]], collection.get(where=where, include=["metadatas"])["metadatas"]
        )
        assert {m["article_id"] for m in got} == expected
    assert expected == {"bridge-march", "bridge-april", "bridge-toll"}


def test_as_of_hides_later_articles(bridge_index: Path, embedder: Embedder) -> None:
    for engine, filters in (
        (answerer(bridge_index, embedder), Filters.parse(as_of="2024-03-31")),
        (answerer(bridge_index, embedder, answer={"as_of": "2024-03-31"}), None),
    ):
        answer = engine.ask(LATEST, filters=filters)
        assert "bridge-april" not in {p.article_id for p in answer.retrieved}
        assert answer.citations and answer.citations[0].article_id == "bridge-march"
        assert answer.time_reading is not None and answer.time_reading.as_of == "2024-03-31"
        assert any(note.startswith("As of 2024-03-31") for note in answer.notes)
        assert any("1 undated article was left out" in note for note in answer.notes)
    # Relative dates count back from the as-of day: "last month" of 2024-04-10 is March.
    question = "What did engineers find on the harbour bridge last month?"
    answer = answerer(bridge_index, embedder).ask(question, filters=Filters(as_of="2024-04-10"))
    assert answer.time_reading is not None
    assert (answer.time_reading.since, answer.time_reading.until) == ("2024-03-01", "2024-03-31")


def test_cli_shows_bylines_and_the_day_of_each_quote(bridge_index: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(ask_command, [MARCH, "--index-dir", str(bridge_index)])
    assert result.exit_code == 0, result.output
    assert "Coast Times, 2024-03-02, by Ann Lee" in result.output
    assert "(2024-03-02) The harbour bridge will close" in result.output
    assert "“The harbour bridge will close for six weeks from Monday.”" in result.output
    assert "Read as: articles from 2024-03-01 to 2024-03-31" in result.output
    hidden = runner.invoke(
        ask_command, [LATEST, "--as-of", "2024-03-31", "--index-dir", str(bridge_index)]
    )
    assert hidden.exit_code == 0, hidden.output
    assert "bridge-april" not in hidden.output and "As of 2024-03-31" in hidden.output
    bad = runner.invoke(ask_command, [LATEST, "--as-of", "someday", "--index-dir", "x"])
    assert bad.exit_code == 2 and "--as-of" in bad.output
