"""Cited answers over the real demo index: real model, real Chroma, real BM25."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from index.embed import Embedder
from index.reader import IndexReader
from newsdesk.settings import Settings
from rag.answer import Answerer
from rag.retrieve import Filters
from rag.types import CANNOT_ANSWER, Answer

SEED = "000_15af5051488cbce4"


@pytest.fixture(scope="module")
def answerer(demo_index: Path, embedder: Embedder) -> Answerer:
    settings = Settings(index_dir=demo_index)
    return Answerer(IndexReader(settings, embedder), settings)


def assert_citations_are_exact(answer: Answer, answerer: Answerer) -> None:
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


def test_seed_question_quotes_rutte_warning(answerer: Answerer):
    answer = answerer.ask("What did the Secretary General warn about?")
    assert not answer.abstained
    assert_citations_are_exact(answer, answerer)
    seed = [c for c in answer.citations if c.article_id == SEED]
    assert any("fatal" in c.text for c in seed), answer.answer
    first = answer.citations[0]
    assert first.title.startswith("NATO Warns")
    assert answer.retrieved and answer.index_version and answer.settings_hash
    assert answer.timings_ms["total"] > 0


def test_question_outside_the_collection_abstains(answerer: Answerer):
    answer = answerer.ask("What is the boiling point of liquid nitrogen in kelvin?")
    assert answer.abstained
    assert answer.answer == CANNOT_ANSWER
    assert answer.citations == []
    assert answer.retrieved  # offered as related, never cited


def test_follow_up_is_answered_in_context(answerer: Answerer):
    history = ["What did the Secretary General warn about?"]
    answer = answerer.ask("and what did Putin say?", history=history)
    assert "Secretary General" in answer.standalone_question
    assert not answer.abstained
    assert_citations_are_exact(answer, answerer)
    assert any(c.article_id == SEED and "Putin" in c.text for c in answer.citations)


def test_filters_are_honoured_by_both_legs(answerer: Answerer):
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
    for passage in answerer.retriever.retrieve("election results", until, k=20):
        assert passage.article.date is not None and passage.article.date <= "2008-12-31"


def test_filter_rules_agree_between_python_and_chroma(answerer: Answerer):
    filters = Filters.parse(since="2010-01-01", until="2016-12-31")
    expected = {a.id for a in answerer.reader.articles.values() if filters.matches(a)}
    got = answerer.reader.store.collection.get(where=filters.where(), include=["metadatas"])
    assert {m["article_id"] for m in got["metadatas"]} == expected
    with pytest.raises(ValueError, match="--since"):
        Filters.parse(since="not a date")


def test_each_leg_can_be_switched_off(demo_index: Path, embedder: Embedder):
    for legs in ({"dense": False}, {"lexical": False}):
        settings = Settings(index_dir=demo_index, retrieval=legs)
        answerer = Answerer(IndexReader(settings, embedder), settings)
        passages = answerer.retriever.retrieve("Mark Rutte warning Russian offensive")
        assert passages[0].article.id == SEED
        if legs.get("dense") is False:
            assert all(p.dense_score is None for p in passages)
        else:
            assert all(p.lexical_score is None for p in passages)


def test_llama_index_retriever_and_query_engine(answerer: Answerer):
    from rag.llama import CitedQueryEngine, NewsdeskRetriever

    nodes = NewsdeskRetriever(answerer.retriever).retrieve("Mark Rutte warning")
    assert nodes
    for hit in nodes:
        node = hit.node
        article = answerer.reader.articles[node.metadata["article_id"]]
        assert article.text[node.start_char_idx : node.end_char_idx] == node.get_content()

    response = CitedQueryEngine(answerer).query("What did the Secretary General warn about?")
    answer = Answer.model_validate(response.metadata["answer"])
    assert str(response) == answer.answer
    assert len(response.source_nodes) == len(answer.citations)  # cited, not all retrieved
    for node, citation in zip(response.source_nodes, answer.citations, strict=True):
        assert node.node.get_content() == citation.text
        assert (node.node.start_char_idx, node.node.end_char_idx) == (citation.start, citation.end)
