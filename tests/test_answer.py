"""Cited answers over the real demo index: real model, real Chroma, real BM25."""

from __future__ import annotations

import random
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from llama_index.core.schema import TextNode

from index.build import Indexer
from index.dedupe import same_sentence
from index.embed import Embedder
from index.reader import IndexReader
from newsdesk.settings import Settings
from rag.answer import Candidate, ExtractiveAnswerer
from rag.retrieve import Filters, Retriever
from rag.types import CANNOT_ANSWER, Answer
from tests.conftest import make_settings, write_jsonl
from tests.test_dedupe import LEAD, TREATED, VALLEY_LEAD, WIRE_LEAD, WIRE_TREATED, reworded

SEED = "000_15af5051488cbce4"


@pytest.fixture(scope="module")
def answerer(demo_index: Path, embedder: Embedder) -> ExtractiveAnswerer:
    settings = Settings(index_dir=demo_index)
    return ExtractiveAnswerer(IndexReader(settings, embedder), settings)


def assert_citations_are_exact(answer: Answer, answerer: ExtractiveAnswerer) -> None:
    """Every quote is its span; markers and citations match one to one, numbered by first use."""
    for citation in answer.citations:
        article = answerer.reader.articles[citation.article_id]
        assert article.text[citation.start : citation.end] == citation.text
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)]
    first_use = list(dict.fromkeys(markers))
    assert first_use == list(range(1, len(answer.citations) + 1))
    assert [c.n for c in answer.citations] == first_use
    spans = [(c.article_id, c.start, c.end) for c in answer.citations]
    assert len(set(spans)) == len(spans)


@pytest.mark.slow
def test_seed_question_quotes_rutte_warning(answerer: ExtractiveAnswerer) -> None:
    answer = answerer.ask("What did the Secretary General warn about?")
    assert not answer.abstained
    assert_citations_are_exact(answer, answerer)
    seed = [c for c in answer.citations if c.article_id == SEED]
    assert any("fatal" in c.text for c in seed), answer.answer
    first = answer.citations[0]
    assert first.title.startswith("NATO Warns")
    assert answer.retrieved and answer.index_version and answer.settings_hash
    assert answer.timings_ms["total"] > 0


@pytest.mark.slow
def test_question_outside_the_collection_abstains(answerer: ExtractiveAnswerer) -> None:
    answer = answerer.ask("What is the boiling point of liquid nitrogen in kelvin?")
    assert answer.abstained
    assert answer.answer == CANNOT_ANSWER
    assert answer.citations == []
    assert answer.retrieved  # offered as related, never cited


@pytest.mark.slow
def test_follow_up_is_answered_in_context(answerer: ExtractiveAnswerer) -> None:
    history = ["What did the Secretary General warn about?"]
    answer = answerer.ask("and what did Putin say?", history=history)
    assert "Secretary General" in answer.standalone_question
    assert not answer.abstained
    assert_citations_are_exact(answer, answerer)
    assert any(c.article_id == SEED and "Putin" in c.text for c in answer.citations)


@pytest.mark.slow
def test_filters_are_honoured_by_both_legs(answerer: ExtractiveAnswerer) -> None:
    since = Filters.parse(since="2015-01-01")
    answer = answerer.ask("What did the Secretary General warn about?", filters=since)
    articles = answerer.reader.articles
    for passage in answer.retrieved:
        date = articles[passage.article_id].date
        assert date is not None and date >= "2015-01-01"
    assert all(c.article_id != SEED for c in answer.citations)  # the seed has no date

    only = Filters.parse(article_ids=("GUM_news_korea",))
    answer = answerer.ask("What did the Secretary General warn about?", filters=only)
    assert {p.article_id for p in answer.retrieved} == {"GUM_news_korea"}

    until = Filters.parse(until="2008-12-31")
    for found in answerer.retriever.retrieve("election results", until, k=20):
        assert found.article.date is not None and found.article.date <= "2008-12-31"


@pytest.mark.slow
def test_filter_rules_agree_between_python_and_chroma(answerer: ExtractiveAnswerer) -> None:
    filters = Filters.parse(since="2010-01-01", until="2016-12-31")
    table = answerer.reader.table
    expected = set(table.ids_of(filters.admitted(table)))
    got = answerer.reader.store.collection.get(where=filters.where(), include=["metadatas"])
    assert {m["article_id"] for m in cast(list[dict[str, Any]], got["metadatas"])} == expected
    with pytest.raises(ValueError, match="--since"):
        Filters.parse(since="not a date")


@pytest.mark.slow
def test_each_leg_can_be_switched_off(demo_index: Path, embedder: Embedder) -> None:
    for legs in ({"dense": False}, {"lexical": False}):
        settings = Settings(index_dir=demo_index, retrieval=legs)
        answerer = ExtractiveAnswerer(IndexReader(settings, embedder), settings)
        passages = answerer.retriever.retrieve("Mark Rutte warning Russian offensive")
        assert passages[0].article.id == SEED
        if legs.get("dense") is False:
            assert all(p.dense_score is None for p in passages)
        else:
            assert all(p.lexical_score is None for p in passages)


@pytest.mark.slow
def test_llama_index_retriever_and_query_engine(answerer: ExtractiveAnswerer) -> None:
    from rag.query_engine import CitedQueryEngine, NewsdeskRetriever

    nodes = NewsdeskRetriever(answerer.retriever).retrieve("Mark Rutte warning")
    assert nodes
    for hit in nodes:
        node = cast(TextNode, hit.node)
        article = answerer.reader.articles[node.metadata["article_id"]]
        assert article.text[node.start_char_idx : node.end_char_idx] == node.get_content()

    response = CitedQueryEngine(answerer).query("What did the Secretary General warn about?")
    answer = Answer.model_validate(cast(dict[str, Any], response.metadata)["answer"])
    assert str(response) == answer.answer
    assert len(response.source_nodes) == len(answer.citations)  # cited, not all retrieved
    for source, citation in zip(response.source_nodes, answer.citations, strict=True):
        cited = cast(TextNode, source.node)
        assert cited.get_content() == citation.text
        assert (cited.start_char_idx, cited.end_char_idx) == (citation.start, citation.end)


# -- the same sentence quoted once (index.dedupe.Said) ---------------------------------------

LIBRARY_LEAD = (
    "The city library on Market Street will reopen next month after a two-year renovation "
    "that cost the council nine million pounds, its director said."
)
LIBRARY_HOURS = (
    "Opening hours will be longer than before the works, with the doors open until eight "
    "in the evening on weekdays and until five at weekends."
)
LIBRARY = {
    "id": "library",
    "title": "Library to reopen",
    "date": "2024-04-02",
    "source": "Coast Times",
    "text": "\n\n".join(
        [
            LIBRARY_LEAD,
            "The building has a new roof, a cafe and a children's floor with room for "
            "story readings, and the reading room has been restored to its original design.",
            LIBRARY_HOURS,
            # The lead again lower down, one word changed: no second quote for it.
            LIBRARY_LEAD.replace("its director", "the director"),
        ]
    ),
}


@pytest.fixture(scope="module")
def copies(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> ExtractiveAnswerer:
    """An index holding one story in three outlets, lightly re-edited, and a lone article
    that repeats its lead in other words."""
    root = tmp_path_factory.mktemp("copies")
    source = write_jsonl(root / "news.jsonl", [*reworded(), LIBRARY])
    settings = make_settings(root / "ix")
    Indexer(settings, embedder).build([source])
    return ExtractiveAnswerer(IndexReader(settings, embedder), settings)


def candidate(
    answerer: ExtractiveAnswerer, article_id: str, sentence: str, score: float
) -> Candidate:
    """The sentence's first occurrence in the article as a candidate with this score."""
    article = answerer.reader.articles[article_id]
    start = article.text.index(sentence)
    return Candidate(article, start, start + len(sentence), rank=1, context=start, score=score)


def said(cands: list[Candidate]) -> list[tuple[str, str, float]]:
    return [(c.article.id, c.text, c.score) for c in cands]


def test_a_reworded_sentence_is_kept_once_from_the_canonical_copy(
    copies: ExtractiveAnswerer,
) -> None:
    cands = [
        candidate(copies, "fire-valley", VALLEY_LEAD, 0.9),
        candidate(copies, "fire-wire", WIRE_TREATED, 0.8),
        candidate(copies, "fire-wire", WIRE_LEAD, 0.7),
        candidate(copies, "fire-coast", LEAD, 0.6),
        candidate(copies, "fire-coast", TREATED, 0.5),
    ]
    # The lead once, from the canonical copy, ranked by its best copy; 12 and 15 apart.
    assert said(copies.distinct(cands)) == [
        ("fire-coast", LEAD, 0.9),
        ("fire-wire", WIRE_TREATED, 0.8),
        ("fire-coast", TREATED, 0.5),
    ]
    without_canonical = [c for c in cands if c.article.id != "fire-coast"]
    assert said(copies.distinct(without_canonical)) == [
        ("fire-valley", VALLEY_LEAD, 0.9),
        ("fire-wire", WIRE_TREATED, 0.8),
    ]
    also = copies.also(without_canonical[0].article, cands[0].start, cands[0].end)
    assert [(a.article_id, a.text, a.reworded) for a in also] == [
        ("fire-coast", LEAD, True),
        ("fire-wire", WIRE_LEAD, True),
    ]
    for copy in also:
        assert copies.reader.articles[copy.article_id].text[copy.start : copy.end] == copy.text


def test_an_article_repeating_a_sentence_in_other_words_is_quoted_once(
    copies: ExtractiveAnswerer,
) -> None:
    repeat = LIBRARY_LEAD.replace("its director", "the director")
    lead = candidate(copies, "library", LIBRARY_LEAD, 0.6)
    again = candidate(copies, "library", repeat, 0.7)
    hours = candidate(copies, "library", LIBRARY_HOURS, 0.65)
    assert said(copies.distinct([again, hours, lead])) == [
        ("library", repeat, 0.7),
        ("library", LIBRARY_HOURS, 0.65),
    ]
    assert copies.also(lead.article, lead.start, lead.end) == []  # no copies, no "also"

    answer = copies.ask("When will the city library on Market Street reopen?")
    assert not answer.abstained
    assert_citations_are_exact(answer, copies)
    assert sum(same_sentence(c.text, LIBRARY_LEAD) for c in answer.citations) == 1, answer.answer


@pytest.mark.slow
def test_distinct_costs_little_on_a_long_candidate_list(
    answerer: ExtractiveAnswerer, copies: ExtractiveAnswerer
) -> None:
    """distinct runs on every answer: 300 candidates, a story's three copies among them,
    must not be compared pair by pair with SequenceMatcher (that took about a second)."""
    rng = random.Random(17)
    cands = []
    for article_id in ("fire-coast", "fire-valley", "fire-wire"):
        article = copies.reader.articles[article_id]
        for start, end in copies.reader.sentences(article_id):
            cands.append(Candidate(article, start, end, rank=1, context=start))
    longest = sorted(answerer.reader.articles.values(), key=lambda a: -len(a.text))
    for article in longest:
        for start, end in answerer.reader.sentences(article.id)[:30]:
            cands.append(Candidate(article, start, end, rank=1, context=start))
    cands = sorted((replace(c, score=rng.random()) for c in cands[:300]), key=lambda c: -c.score)
    assert len(cands) == 300
    began = time.process_time()
    kept = copies.distinct(cands)
    took = time.process_time() - began
    assert 270 <= len(kept) < 300
    assert took < 0.25, f"distinct took {took:.3f} s over 300 candidates"


QUAKE = (
    "The agency said the earthquake of magnitude 6.1 struck at twelve minutes past four "
    "in the morning near the town of Ravel."
)
QUAKE_STORIES = [
    {
        "id": "quake-schools",
        "title": "Schools shut after earthquake",
        "text": f"Schools across the province stayed shut on Tuesday. {QUAKE} Teachers said "
        "inspections of the older buildings would take at least a week.",
    },
    {
        "id": "quake-markets",
        "title": "Markets shrug off earthquake",
        "text": f"Shares of insurers fell in early trading in the capital. {QUAKE} Analysts "
        "expected claims to stay well below those of the floods two years ago.",
    },
    {
        "id": "quake-survey",
        "title": "Survey revises quake time",
        "text": "Smaller tremors went on through the day, the geological survey said, "
        "and residents of the valley slept outdoors.",
    },
]


def test_passages_whose_closest_sentence_is_the_same_are_retrieved_once(
    embedder: Embedder, tmp_path: Path
) -> None:
    """Two stories quoting one wire sentence would take two of the passages handed to
    the answerer; one is kept (RetrievalSettings.collapse_repeats) and the next makes room."""
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, embedder).build([write_jsonl(tmp_path / "quake.jsonl", QUAKE_STORIES)])
    reader = IndexReader(settings, embedder)
    assert reader.manifest.duplicates == {}  # different stories, one sentence in common
    question = "What magnitude was the earthquake near Ravel, the agency said?"
    keep = settings.retrieval.model_copy(update={"collapse_repeats": False})
    kept = Retriever(reader, keep).retrieve(question, k=2)
    assert {p.article.id for p in kept} == {"quake-schools", "quake-markets"}
    collapsed = Retriever(reader, settings.retrieval).retrieve(question, k=2)
    assert collapsed[0].chunk_id == kept[0].chunk_id
    assert collapsed[1].article.id == "quake-survey"
