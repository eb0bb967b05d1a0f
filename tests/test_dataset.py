"""Question sets: both formats, evidence checked against the loaded articles, bad files refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from eval.dataset import (
    ALL,
    FORMAT_MULTIHOP,
    FORMAT_NEWSDESK,
    FORMAT_SQUAD,
    Distractor,
    EvidenceItem,
    QuestionSet,
    QuestionSetError,
    in_split,
    load_questions,
    load_splits,
)
from index.load import load_sources
from index.sentences import sentence_spans
from index.types import Article
from tests.conftest import shared_data


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def jsonl(records: list[Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def by_id(articles: list[Article]) -> dict[str, Article]:
    return {article.id: article for article in articles}


# --- the real SQuAD subset ----------------------------------------------------


def test_squad_subset_loads_cleanly() -> None:
    squad = shared_data("squad-dev-subset")
    loaded = load_sources([squad / "articles.jsonl"])
    assert loaded.problems == []
    articles = by_id(loaded.articles)
    path = squad / "questions.jsonl"

    qs = load_questions(path, articles)

    assert qs.format == FORMAT_NEWSDESK
    assert qs.problems == []
    assert len(qs.questions) == 441
    assert sum(q.answerable for q in qs.questions) == 336
    assert qs.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len({q.id for q in qs.questions}) == 441
    assert {q.kind for q in qs.questions} == {"SQuAD v1.1 dev", "SQuAD v2.0 dev"}
    for q in qs.questions:
        assert q.answerable == bool(q.evidence)
        for ev in q.evidence:
            assert ev.start is not None and ev.end is not None
            assert ev.text == articles[ev.article_id].text[ev.start : ev.end]
            assert ev.answer_start is not None and ev.start <= ev.answer_start < ev.end
        assert (q.distractor is None) == q.answerable and q.as_of is None
    splits = load_splits(squad / "splits.json")
    report, problems = in_split(qs.questions, splits, "report")
    train, _ = in_split(qs.questions, splits, "train")
    assert problems == [] and len(report) == 271 and len(train) == 441 - 271


def test_squad_train_loads_with_evidence_sentences() -> None:
    """Every answerable question's evidence is the sentence holding its first answer."""
    squad = shared_data("squad-dev-subset")
    articles = by_id(load_sources([squad / "articles.jsonl"]).articles)
    qs = load_questions(shared_data("squad-train/questions.jsonl"), articles)
    assert qs.format == FORMAT_SQUAD and qs.problems == []
    assert len(qs.questions) == 6019
    assert sum(q.answerable for q in qs.questions) == 2939
    spans = {key: set(sentence_spans(a.text)) for key, a in articles.items()}
    for q in qs.questions:
        if q.answerable:
            (ev,) = q.evidence
            assert ev.start is not None and ev.end is not None and ev.answer_start is not None
            assert (ev.start, ev.end) in spans[ev.article_id]
            text = articles[ev.article_id].text
            assert text[ev.answer_start :].startswith(q.answers[0])
        else:
            assert q.distractor is not None and not q.evidence
    _, problems = in_split(qs.questions, load_splits(squad / "splits.json"), "train")
    assert problems == []
    assert len(in_split(qs.questions, load_splits(squad / "splits.json"), "report")[0]) == 0


# --- MultiHop-RAG ---------------------------------------------------------------

CORPUS: list[dict[str, Any]] = [
    {
        "title": "Tech giants report earnings",
        "author": "A. Writer",
        "source": "TechCrunch",
        "published_at": "2023-10-01T10:00:00+00:00",
        "category": "technology",
        "url": "https://example.com/tech",
        "body": (
            "Apple reported record revenue.\n\nThe company said   iPhone sales\n"
            "rose 5 percent in the quarter. Analysts were surprised."
        ),
    },
    {
        "title": "Markets rally",
        "author": None,
        "source": "Reuters",
        "published_at": "2023-11-02T09:00:00+00:00",
        "category": "business",
        "url": "https://example.com/reuters-rally",
        "body": "Stocks rose on Tuesday. The Dow gained 300 points.",
    },
    {
        "title": "Markets rally",
        "author": None,
        "source": "Bloomberg",
        "published_at": "2023-11-03T09:00:00+00:00",
        "category": "business",
        "url": "https://example.com/bloomberg-rally",
        "body": "Stocks rose on Tuesday. The Nasdaq gained 2 percent.",
    },
]


def evidence(article: int, fact: str, **overrides: str) -> dict[str, Any]:
    """An evidence_list item quoting CORPUS[article]'s metadata, as MultiHop-RAG does."""
    item = {k: v for k, v in CORPUS[article].items() if k != "body"}
    return {**item, "fact": fact, **overrides}


QUESTIONS: list[dict[str, Any]] = [
    {  # 0: verbatim facts; the shared title resolved by url
        "query": "Did Apple's revenue and the Nasdaq both rise?",
        "answer": "Yes",
        "question_type": "comparison_query",
        "evidence_list": [
            evidence(0, "Apple reported record revenue."),
            evidence(2, "The Nasdaq gained 2 percent."),
        ],
    },
    {  # 1: found only once whitespace is collapsed
        "query": "By how much did iPhone sales rise?",
        "answer": "5 percent",
        "question_type": "inference_query",
        "evidence_list": [
            evidence(0, "The company said iPhone sales rose 5 percent in the quarter.")
        ],
    },
    {  # 2: not in the body -> the whole article; shared title resolved by source and date
        "query": "What happened to bond yields?",
        "answer": "They fell",
        "question_type": "temporal_query",
        "evidence_list": [evidence(1, "Bond yields fell sharply.", url="")],
    },
    {  # 3: null_query
        "query": "What did the Martian stock exchange do?",
        "answer": "Insufficient information.",
        "question_type": "null_query",
        "evidence_list": [],
    },
    {  # 4: a title that matches nothing, and nothing else -> skipped
        "query": "Who won the cup?",
        "answer": "Nobody",
        "question_type": "inference_query",
        "evidence_list": [evidence(0, "Nobody won.", title="Cup final report")],
    },
    {  # 5: one unknown title, one shared title with no metadata: the fact decides
        "query": "How much did the Nasdaq gain?",
        "answer": "2 percent",
        "question_type": "inference_query",
        "evidence_list": [
            evidence(0, "x", title="No such headline"),
            {"title": "Markets rally", "fact": "The Nasdaq gained 2 percent."},
        ],
    },
]


@pytest.fixture
def multihop(tmp_path: Path) -> tuple[dict[str, Article], QuestionSet, Path]:
    loaded = load_sources([write(tmp_path / "corpus.json", json.dumps(CORPUS))])
    assert loaded.problems == []
    articles = by_id(loaded.articles)
    path = write(tmp_path / "MultiHopRAG.json", json.dumps(QUESTIONS, indent=2))
    return articles, load_questions(path, articles), path


def article_for(articles: dict[str, Article], index: int) -> Article:
    url = CORPUS[index]["url"]
    return next(a for a in articles.values() if a.url == url)


def assert_span(articles: dict[str, Article], ev: EvidenceItem, expected: str) -> None:
    assert ev.start is not None and ev.end is not None
    assert articles[ev.article_id].text[ev.start : ev.end] == expected == ev.text


def test_multihop_format_and_ids(multihop: tuple[dict[str, Article], QuestionSet, Path]) -> None:
    _, qs, path = multihop
    assert qs.format == FORMAT_MULTIHOP
    assert qs.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [q.id for q in qs.questions] == [f"MultiHopRAG-{i}" for i in (0, 1, 2, 3, 5)]
    assert [q.kind for q in qs.questions][:2] == ["comparison_query", "inference_query"]


def test_multihop_verbatim_facts_and_shared_title_by_url(
    multihop: tuple[dict[str, Article], QuestionSet, Path],
) -> None:
    articles, qs, _ = multihop
    q = qs.questions[0]
    assert q.answerable and q.answers == ("Yes",)
    apple, nasdaq = q.evidence
    assert apple.article_id == article_for(articles, 0).id
    assert_span(articles, apple, "Apple reported record revenue.")
    assert nasdaq.article_id == article_for(articles, 2).id
    assert_span(articles, nasdaq, "The Nasdaq gained 2 percent.")


def test_multihop_fact_found_after_collapsing_whitespace(
    multihop: tuple[dict[str, Article], QuestionSet, Path],
) -> None:
    articles, qs, _ = multihop
    (ev,) = qs.questions[1].evidence
    body = CORPUS[0]["body"]
    original = "The company said   iPhone sales\nrose 5 percent in the quarter."
    assert (ev.start, ev.end) == (body.index(original), body.index(original) + len(original))
    assert_span(articles, ev, original)


def test_multihop_fact_not_found_is_article_level(
    multihop: tuple[dict[str, Article], QuestionSet, Path],
) -> None:
    articles, qs, _ = multihop
    (ev,) = qs.questions[2].evidence
    # no url given: the source and date pick the Reuters article over Bloomberg's
    assert ev == EvidenceItem(article_for(articles, 1).id, None, None, "Bond yields fell sharply.")


def test_multihop_null_query(multihop: tuple[dict[str, Article], QuestionSet, Path]) -> None:
    _, qs, _ = multihop
    q = qs.questions[3]
    assert (q.answerable, q.answers, q.evidence, q.kind) == (False, (), (), "null_query")


def test_multihop_unknown_titles(multihop: tuple[dict[str, Article], QuestionSet, Path]) -> None:
    articles, qs, path = multihop
    where = path.as_posix()
    found = [(p.where, p.field, p.kept) for p in qs.problems]
    assert found == [
        (f"{where}:[4]", "evidence_list[0].title", False),
        (f"{where}:[4]", "evidence_list", False),
        (f"{where}:[5]", "evidence_list[0].title", True),
    ]
    assert "'Cup final report'" in qs.problems[0].message
    # question 5 kept its other evidence: no metadata, so the article containing the fact
    (ev,) = qs.questions[4].evidence
    assert ev.article_id == article_for(articles, 2).id
    assert_span(articles, ev, "The Nasdaq gained 2 percent.")


def test_multihop_title_match_ignores_case_and_spacing(tmp_path: Path) -> None:
    articles = by_id(load_sources([write(tmp_path / "corpus.json", json.dumps(CORPUS))]).articles)
    item = {"title": "  tech GIANTS  report earnings", "fact": "Analysts were surprised."}
    question = {"query": "q?", "answer": "a", "question_type": "x", "evidence_list": [item]}
    qs = load_questions(write(tmp_path / "q.json", json.dumps([question])), articles)
    (ev,) = qs.questions[0].evidence
    assert_span(articles, ev, "Analysts were surprised.")


def test_multihop_bad_items_are_problems(tmp_path: Path) -> None:
    articles = by_id(load_sources([write(tmp_path / "corpus.json", json.dumps(CORPUS))]).articles)
    good = {"query": "q?", "answer": "", "question_type": "null_query", "evidence_list": []}
    items = [good, "not an object", {**good, "query": "  "}, {**good, "question_type": 3}]
    path = write(tmp_path / "q.json", json.dumps(items))
    qs = load_questions(path, articles)
    assert len(qs.questions) == 1
    assert [(p.where, p.field) for p in qs.problems] == [
        (f"{path.as_posix()}:[1]", None),
        (f"{path.as_posix()}:[2]", "query"),
        (f"{path.as_posix()}:[3]", "question_type"),
    ]


# --- newsdesk format: per-line problems -------------------------------------------

TEXT = "The bridge closes on Monday. Ferries will run instead."


@pytest.fixture
def articles() -> dict[str, Article]:
    return {"bridge": Article(id="bridge", title="Bridge", text=TEXT)}


def span(start: int, end: int, **extra: Any) -> dict[str, Any]:
    return {"article_id": "bridge", "text": TEXT[start:end], "start": start, "end": end, **extra}


def test_newsdesk_defaults(tmp_path: Path, articles: dict[str, Article]) -> None:
    lines = [
        {"question": "When does it close?", "answers": ["Monday"], "evidence": [span(0, 28)]},
        {"question": "Is the moon cheese?"},
        {"question": "Whole article?", "evidence": [{"article_id": "bridge"}], "kind": "demo"},
    ]
    path = write(tmp_path / "mine.jsonl", "\ufeff" + jsonl(lines).replace("\n", "\r\n"))
    qs = load_questions(path, articles)
    assert qs.format == FORMAT_NEWSDESK and qs.problems == []
    first, second, third = qs.questions
    assert first.id == "mine-1" and first.answerable and first.kind == ""
    assert first.evidence == (EvidenceItem("bridge", 0, 28, "The bridge closes on Monday."),)
    assert (second.id, second.answerable, second.answers, second.evidence) == (
        "mine-2",
        False,
        (),
        (),
    )
    assert third.evidence == (EvidenceItem("bridge", None, None, ""),)
    assert third.answerable and third.kind == "demo"


BAD_LINES: list[tuple[Any, str | None]] = [
    (
        {"question": "Bad end?", "evidence": [span(0, 28) | {"end": len(TEXT) + 1}]},
        "evidence[0].end",
    ),
    ({"question": "Bad start?", "evidence": [span(0, 28) | {"start": -1}]}, "evidence[0].start"),
    ({"question": "Empty?", "evidence": [span(5, 5)]}, "evidence[0].end"),
    (
        {"question": "Who?", "evidence": [span(0, 28) | {"article_id": "nope"}]},
        "evidence[0].article_id",
    ),
    (
        {"question": "Shifted?", "evidence": [span(0, 28) | {"start": 1, "end": 29}]},
        "evidence[0].text",
    ),
    (
        {"question": "No end?", "evidence": [{"article_id": "bridge", "start": 0}]},
        "evidence[0].end",
    ),
    ({"question": "Float?", "evidence": [span(0, 28) | {"start": 0.0}]}, "evidence[0].start"),
    (
        {"question": "Answer?", "evidence": [span(0, 28, answer_start=40)]},
        "evidence[0].answer_start",
    ),
    ({"question": "   ", "evidence": [span(0, 28)]}, "question"),
    ({"answers": ["Monday"]}, "question"),
    ({"question": "Flag?", "answerable": "yes"}, "answerable"),
    ({"question": "Answers?", "answers": "Monday"}, "answers"),
    ({"question": "Evidence?", "evidence": {"article_id": "bridge"}}, "evidence"),
    ([1, 2], None),
]


def test_newsdesk_bad_lines_are_skipped(tmp_path: Path, articles: dict[str, Article]) -> None:
    good = {"id": "ok", "question": "When?", "evidence": [span(0, 28, answer_start=21)]}
    lines = [json.dumps(good), ""] + [json.dumps(line) for line, _ in BAD_LINES]
    lines += ['{"question": "broken', json.dumps({**good, "question": "Again?"})]
    path = write(tmp_path / "q.jsonl", "\n".join(lines) + "\n")

    qs = load_questions(path, articles)

    assert [q.id for q in qs.questions] == ["ok"]
    assert qs.questions[0].evidence[0].answer_start == 21
    where = path.as_posix()
    expected = [(f"{where}:{n}", field) for n, (_, field) in enumerate(BAD_LINES, start=3)]
    expected += [(f"{where}:{len(lines) - 1}", None), (f"{where}:{len(lines)}", "id")]
    assert [(p.where, p.field) for p in qs.problems] == expected
    assert not any(p.kept for p in qs.problems)
    messages = {p.field: p.message for p in qs.problems}
    assert "unknown article 'nope'" in messages["evidence[0].article_id"]
    assert "does not match article 'bridge' at [1:29]" in messages["evidence[0].text"]
    assert "duplicate id 'ok', first on line 1" in messages["id"]


def test_newsdesk_first_line_broken_still_loads(
    tmp_path: Path, articles: dict[str, Article]
) -> None:
    path = write(tmp_path / "q.jsonl", '{"question": \n{"question": "Fine?"}\n')
    qs = load_questions(path, articles)
    assert [q.question for q in qs.questions] == ["Fine?"]
    assert [p.where for p in qs.problems] == [f"{path.as_posix()}:1"]


def test_newsdesk_distractor_and_question_dates(
    tmp_path: Path, articles: dict[str, Article]
) -> None:
    lines = [
        {
            "id": "d",
            "question": "Ferries?",
            "distractor": {"article_id": "bridge", "start": 29, "end": 54},
        },
        {"id": "a", "question": "This week?", "as_of": "2024-03-08"},
        {"id": "b", "question": "This week?", "date": "2024-03-02T10:00:00Z"},
        {"id": "x", "question": "Bad day?", "as_of": "March 2024"},
        {"id": "y", "question": "Where?", "distractor": {"article_id": "nope"}},
    ]
    qs = load_questions(write(tmp_path / "q.jsonl", jsonl(lines)), articles)
    assert [q.id for q in qs.questions] == ["d", "a", "b"]
    d, a, b = qs.questions
    assert d.distractor == Distractor("bridge", 29, 54) and d.home_article == "bridge"
    assert (a.as_of, b.as_of) == ("2024-03-08", "2024-03-02T10:00:00+00:00")
    assert a.home_article is None
    assert [p.field for p in qs.problems] == ["as_of", "distractor.article_id"]


# --- SQuAD-shaped records (squad-train) -------------------------------------------

PARAGRAPHS = "The bridge closes on Monday. Ferries run.\n\nThe mayor spoke. She said sorry."


def squad(question: str, answers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    record = {"id": question, "article_id": "p", "paragraph_index": 1, "paragraph": [43, 75]}
    return {**record, "question": question, "answers": answers, **extra}


def test_squad_records(tmp_path: Path) -> None:
    articles = {"p": Article(id="p", title="P", text=PARAGRAPHS)}
    said = PARAGRAPHS.index("sorry")
    lines = [
        squad("What did she say?", [{"text": "sorry", "start": said}, {"text": "sorry"}]),
        squad("Who spoke?", [{"text": "The mayor"}], answerable=True, as_of="2024-01-02"),
        squad("Why sorry?", [], answerable=False, source="SQuAD v2.0 dev"),
        squad("Shifted?", [{"text": "sorry", "start": said + 1}]),
        squad("Elsewhere?", [{"text": "Ferries"}]),  # not in its paragraph
        squad("Nothing?", [], answerable=True),
        squad("Paragraph?", [], paragraph=[70, 10]),
    ]
    qs = load_questions(write(tmp_path / "train.jsonl", jsonl(lines)), articles)
    assert qs.format == FORMAT_SQUAD
    first, second, third = qs.questions
    sentence = (PARAGRAPHS.index("She"), len(PARAGRAPHS))
    assert first.answers == ("sorry",)
    assert first.evidence == (EvidenceItem("p", *sentence, "She said sorry.", said),)
    mayor = PARAGRAPHS.index("The mayor")
    assert second.evidence == (EvidenceItem("p", mayor, mayor + 16, "The mayor spoke.", mayor),)
    assert second.as_of == "2024-01-02"
    assert not third.answerable and third.distractor == Distractor("p", 43, 75)
    assert third.kind == "SQuAD v2.0 dev" and third.home_article == "p"
    fields = [p.field for p in qs.problems]
    assert fields == ["answers[0].start", "answers[0].text", "answers", "paragraph.end"]


# --- splits -------------------------------------------------------------------------


def test_splits(tmp_path: Path, articles: dict[str, Article]) -> None:
    path = write(
        tmp_path / "splits.json", json.dumps({"seed": 1, "train": ["bridge"], "report": ["x"]})
    )
    splits = load_splits(path)
    assert splits == {"bridge": "train", "x": "report"}
    here = EvidenceItem("bridge", 0, 28, TEXT[:28])
    lines = [
        {"id": "1", "question": "Q?", "evidence": [span(0, 28)]},
        {"id": "2", "question": "Q?", "distractor": {"article_id": "bridge"}},
        {"id": "3", "question": "Q?"},  # nothing places it
    ]
    questions = load_questions(write(tmp_path / "q.jsonl", jsonl(lines)), articles).questions
    assert questions[0].evidence == (here,)
    train, problems = in_split(questions, splits, "train", "q.jsonl")
    assert [q.id for q in train] == ["1", "2"]
    assert [(p.where, p.field) for p in problems] == [("q.jsonl", "split")]
    assert "'3'" in problems[0].message
    assert in_split(questions, splits, "report")[0] == []
    assert in_split(questions, splits, ALL) == (questions, [])
    with pytest.raises(QuestionSetError, match="no split 'test'"):
        in_split(questions, splits, "test")
    twice = write(tmp_path / "twice.json", json.dumps({"a": ["x"], "b": ["x"]}))
    with pytest.raises(QuestionSetError, match="two splits"):
        load_splits(twice)
    with pytest.raises(QuestionSetError, match="names no split"):
        load_splits(write(tmp_path / "none.json", "{}"))


# --- files that are neither format ----------------------------------------------

ARTICLES_ARRAY = json.dumps([{"title": "T", "body": "B", "url": "https://x"}])

BAD_FILES: list[tuple[str, str | bytes, str]] = [
    ("empty.jsonl", "", "empty file"),
    ("blank.json", " \n\n", "empty file"),
    ("q.csv", "question,answers\nWhen?,Monday\n", "not JSON or JSONL"),
    ("corpus.json", ARTICLES_ARRAY, "articles, not questions"),
    ("articles.jsonl", jsonl([{"id": "a", "text": "B"}]), "articles, not questions"),
    ("bad.json", '[{"query": "q", "evidence_list": [', "invalid JSON (line 1"),
    ("bad.jsonl", '{"question": "q", \n', "invalid JSON (line 1"),
    ("latin1.jsonl", '{"question": "Café?"}\n'.encode("latin-1"), "not valid UTF-8"),
    ("utf16.jsonl", '{"question": "q"}\n'.encode("utf-16"), "not valid UTF-8"),
    ("nul.jsonl", b'{"question": "q"}\x00\n', "NUL byte"),
    ("numbers.json", "[1, 2, 3]", "no objects"),
    ("mh.jsonl", jsonl([{"query": "q", "evidence_list": []}]), "one JSON array"),
    ("nd.json", json.dumps([{"question": "q"}]), "must be JSONL"),
    ("other.json", json.dumps([{"foo": 1}]), "keys: 'foo'"),
]


@pytest.mark.parametrize(("name", "content", "why"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_unusable_files_raise(
    tmp_path: Path, articles: dict[str, Article], name: str, content: str | bytes, why: str
) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(QuestionSetError) as info:
        load_questions(path, articles)
    message = str(info.value)
    assert message.startswith(path.as_posix())
    assert why in message
    assert "newsdesk" in message and "SQuAD" in message and "MultiHop-RAG" in message


def test_missing_file_raises(tmp_path: Path, articles: dict[str, Article]) -> None:
    with pytest.raises(QuestionSetError, match="cannot read file"):
        load_questions(tmp_path / "nope.jsonl", articles)


# --- JSON errors and record fields ------------------------------------------------


def test_deeply_nested_question_files_are_refused(
    tmp_path: Path, articles: dict[str, Article]
) -> None:
    path = write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(QuestionSetError, match="nested too deeply"):
        load_questions(path, articles)
    with pytest.raises(QuestionSetError, match="nested too deeply"):
        load_splits(path)


def test_splits_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "splits.json", '{"train": ["a",\n  ]}')
    with pytest.raises(QuestionSetError) as info:
        load_splits(path)
    assert str(info.value).startswith(f"{path.as_posix()}: invalid JSON (line 2, column 3: ")


def test_record_field_types_are_named_with_their_path(
    tmp_path: Path, articles: dict[str, Article]
) -> None:
    lines: list[tuple[Any, str]] = [
        ({"question": "Q?", "id": ["x"]}, "id"),
        ({"question": "Q?", "answers": ["a", 3]}, "answers[1]"),
        ({"question": "Q?", "evidence": ["bridge"]}, "evidence[0]"),
        ({"question": "Q?", "evidence": [{"article_id": " "}]}, "evidence[0].article_id"),
        ({"question": "Q?", "kind": 1}, "kind"),
        ({"question": "Q?", "distractor": "bridge"}, "distractor"),
        ({"question": "Q?", "distractor": {"article_id": "bridge", "end": "9"}}, "distractor.end"),
    ]
    path = write(tmp_path / "q.jsonl", jsonl([line for line, _ in lines]))
    qs = load_questions(path, articles)
    assert qs.questions == []
    assert [p.field for p in qs.problems] == [field for _, field in lines]
    messages = [p.message for p in qs.problems]
    assert messages[0] == "expected a string or integer, got an array; question skipped"
    assert messages[1] == "expected a string, got the number 3; question skipped"
    assert messages[2] == "expected a JSON object, got a string; question skipped"
    assert messages[3] == "expected an article id, got a blank string; question skipped"
    assert messages[6] == "expected a character offset, got a string; question skipped"


def test_multihop_bad_evidence_item_is_a_note_on_a_kept_question(tmp_path: Path) -> None:
    articles = by_id(load_sources([write(tmp_path / "corpus.json", json.dumps(CORPUS))]).articles)
    items = [{"title": "Markets rally", "fact": 5}, evidence(0, "Apple reported record revenue.")]
    question = {"query": "q?", "answer": "a", "question_type": "x", "evidence_list": items}
    qs = load_questions(write(tmp_path / "q.json", json.dumps([question])), articles)
    assert len(qs.questions[0].evidence) == 1
    assert [(p.field, p.message, p.kept) for p in qs.problems] == [
        ("evidence_list[0].fact", "expected a string, got the number 5", True)
    ]
