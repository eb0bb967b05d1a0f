"""The BM25 leg: tokenisation, ranking, exact filtering, and write-once directories."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from index import lexical
from index.lexical import LexicalIndex, LexicalIndexError, tokenize

DOCS = {
    "storm:aaaaaaaaaaaa:0": (
        "Forecasters issued a warning on Tuesday as the storm approached the coast. "
        "Residents were told to stay indoors."
    ),
    "budget:bbbbbbbbbbbb:0": (
        "The city council approved a budget of 4,500,000 dollars for new schools and "
        "libraries in 2019."
    ),
    "strike:cccccccccccc:0": (
        "Rail workers began a strike in 1984 over pay. The union said talks had failed."
    ),
    "strike:cccccccccccc:1": (
        "The strike ended in 1985 when the union accepted a new pay offer from the railway."
    ),
    "zurich:dddddddddddd:0": (
        "Zürich\u2019s café owners said tourists were returning after the festival in São Paulo."
    ),
    "orchard:eeeeeeeeeeee:0": "Apple growers expect a record harvest after a warm, dry summer.",
    "trade:ffffffffffff:0": "U.S. officials met their counterparts to discuss tariffs on steel.",
    "tokyo:gggggggggggg:0": "東京都の新しい予算が発表された。 हिन्दी समाचार पत्र",
}


@pytest.fixture
def built(tmp_path: Path) -> LexicalIndex:
    return LexicalIndex.build(list(DOCS), list(DOCS.values()), tmp_path / "lex")


def top(index: LexicalIndex, query: str, k: int = 3) -> str | None:
    hits = index.search(query, k)
    return hits[0][0] if hits else None


# --- tokenisation -------------------------------------------------------------------------


def test_tokenize_stems_lowercases_and_drops_stopwords() -> None:
    assert tokenize("The storm WARNED them") == tokenize("storms warning") == ["storm", "warn"]
    assert tokenize("What is the of and") == []
    assert tokenize("") == []


def test_tokenize_keeps_numbers_and_folds_thousands_separators() -> None:
    assert tokenize("In 1984, 4,500,000 people paid $3.5 in the 1990s") == [
        "1984",
        "4500000",
        "peopl",
        "paid",
        "3.5",
        "1990s",
    ]


def test_tokenize_folds_accents_quotes_and_acronyms() -> None:
    assert tokenize("Zürich café") == tokenize("Zurich cafe")
    assert tokenize("Obama\u2019s plan") == tokenize("Obama's plan") == ["obama", "plan"]
    # "us" is a stopword, but not when written as the country's acronym.
    assert tokenize("let us go") == ["let", "go"]
    assert tokenize("the U.S. and the US") == ["us", "us"]
    assert tokenize("\ufb01nance \uff21\uff22\uff23")  # ligature, full-width == ["financ", "abc"]


def test_tokenize_keeps_non_latin_words_whole() -> None:
    # Combining vowel signs must not split Devanagari words; CJK gets one term per character.
    assert tokenize("हिन्दी समाचार") == ["हिन्दी", "समाचार"]
    assert tokenize("東京都") == ["東", "京", "都"]


# --- ranking ------------------------------------------------------------------------------


def test_obvious_queries_find_the_right_chunk(built: LexicalIndex) -> None:
    assert len(built) == len(DOCS)
    assert top(built, "Which apple harvest was a record?") == "orchard:eeeeeeeeeeee:0"
    assert top(built, "What happened in 1985?") == "strike:cccccccccccc:1"
    assert top(built, "How much was the budget of 4,500,000?") == "budget:bbbbbbbbbbbb:0"
    assert top(built, "Who warned about the storm?") == "storm:aaaaaaaaaaaa:0"
    assert top(built, "cafes in Zurich") == "zurich:dddddddddddd:0"
    assert top(built, "US tariffs") == "trade:ffffffffffff:0"
    assert top(built, "東京の予算") == "tokyo:gggggggggggg:0"
    assert top(built, "समाचार") == "tokyo:gggggggggggg:0"


def test_results_are_positive_sorted_and_capped_at_k(built: LexicalIndex) -> None:
    hits = built.search("strike union pay railway", 10)
    assert [chunk for chunk, _ in hits] == ["strike:cccccccccccc:1", "strike:cccccccccccc:0"]
    scores = [score for _, score in hits]
    assert all(isinstance(s, float) and s > 0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert len(built.search("strike union pay railway", 1)) == 1


@pytest.mark.parametrize("query", ["", "   ", "what is the", "?!", "xylophone"])
def test_queries_with_nothing_to_match_return_nothing(built: LexicalIndex, query: str) -> None:
    assert built.search(query, 5) == []


def test_k_zero_returns_nothing(built: LexicalIndex) -> None:
    assert built.search("strike", 0) == []


# --- allowed (metadata filters) -----------------------------------------------------------


def test_allowed_is_exact_even_when_k_exceeds_it(built: LexicalIndex) -> None:
    best = "strike:cccccccccccc:1"
    assert top(built, "strike 1985") == best
    allowed = {"strike:cccccccccccc:0", "orchard:eeeeeeeeeeee:0"}
    hits = built.search("strike 1985", 50, allowed=allowed)
    # The better chunk outside the filter never shows up; the non-matching allowed one neither.
    assert [chunk for chunk, _ in hits] == ["strike:cccccccccccc:0"]
    # Not "take the top k, then filter": with k=1 the unfiltered top hit is the excluded one.
    assert [chunk for chunk, _ in built.search("strike 1985", 1, allowed)] == [
        "strike:cccccccccccc:0"
    ]


def test_allowed_scores_equal_unfiltered_scores(built: LexicalIndex) -> None:
    everything = dict(built.search("strike union pay", 10))
    filtered = built.search("strike union pay", 10, allowed=["strike:cccccccccccc:0"])
    assert filtered == [("strike:cccccccccccc:0", everything["strike:cccccccccccc:0"])]


def test_allowed_ignores_unknown_ids_and_duplicates(built: LexicalIndex) -> None:
    assert built.search("strike", 5, allowed=set()) == []
    assert built.search("strike", 5, allowed={"nope:000000000000:0"}) == []
    hits = built.search("strike", 5, allowed=["strike:cccccccccccc:0"] * 3 + ["nope"])
    assert [chunk for chunk, _ in hits] == ["strike:cccccccccccc:0"]


# --- empty and degenerate corpora ---------------------------------------------------------


def test_empty_corpus_builds_loads_and_finds_nothing(tmp_path: Path) -> None:
    built = LexicalIndex.build([], [], tmp_path / "lex")
    assert len(built) == 0
    assert built.search("anything at all", 10) == []
    loaded = LexicalIndex.load(tmp_path / "lex")
    assert len(loaded) == 0
    assert loaded.search("anything", 10, allowed={"a"}) == []


def test_corpus_with_no_searchable_terms(tmp_path: Path) -> None:
    LexicalIndex.build(["a:0", "b:0"], ["the of and", ""], tmp_path / "lex")
    loaded = LexicalIndex.load(tmp_path / "lex")
    assert len(loaded) == 2
    assert loaded.search("the", 5) == []


def test_mismatched_or_duplicate_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ids"):
        LexicalIndex.build(["a"], ["one", "two"], tmp_path / "one")
    with pytest.raises(ValueError, match="unique"):
        LexicalIndex.build(["a", "a"], ["one", "two"], tmp_path / "two")
    assert not list(tmp_path.iterdir())


# --- persistence --------------------------------------------------------------------------


def test_load_round_trip_gives_identical_results(built: LexicalIndex) -> None:
    loaded = LexicalIndex.load(built.directory)
    assert len(loaded) == len(built)
    allowed = {"strike:cccccccccccc:0", "storm:aaaaaaaaaaaa:0", "zurich:dddddddddddd:0"}
    for query in ["strike pay 1984", "warning storm", "Zürich café", "US steel", "東京", "apple"]:
        assert loaded.search(query, 10) == built.search(query, 10)
        assert loaded.search(query, 10, allowed) == built.search(query, 10, allowed)


def test_build_load_and_search_print_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = LexicalIndex.build(list(DOCS), list(DOCS.values()), tmp_path / "lex")
    LexicalIndex.load(tmp_path / "lex").search("strike", 3)
    index.search("strike", 3, allowed={"strike:cccccccccccc:0"})
    assert capsys.readouterr() == ("", "")


def test_load_missing_directory_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(LexicalIndexError, match="nowhere"):
        LexicalIndex.load(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LexicalIndexError, match="empty"):
        LexicalIndex.load(tmp_path / "empty")


def _corrupt_meta(directory: Path) -> None:
    (directory / lexical.META_FILE).write_text("{not json", encoding="utf-8")


def _drop_ids(directory: Path) -> None:
    (directory / lexical.IDS_FILE).unlink()


def _short_ids(directory: Path) -> None:
    ids = json.loads((directory / lexical.IDS_FILE).read_text(encoding="utf-8"))
    (directory / lexical.IDS_FILE).write_text(json.dumps(ids[:-1]), encoding="utf-8")


def _old_tokenizer(directory: Path) -> None:
    meta = json.loads((directory / lexical.META_FILE).read_text(encoding="utf-8"))
    meta["tokenizer"] = "something-else"
    (directory / lexical.META_FILE).write_text(json.dumps(meta), encoding="utf-8")


def _truncate_scores(directory: Path) -> None:
    path = directory / lexical.BM25_DIR / "data.csc.index.npy"
    path.write_bytes(path.read_bytes()[:100])


def _drop_vocab(directory: Path) -> None:
    (directory / lexical.BM25_DIR / "vocab.index.json").unlink()


@pytest.mark.parametrize(
    "damage",
    [_corrupt_meta, _drop_ids, _short_ids, _old_tokenizer, _truncate_scores, _drop_vocab],
)
def test_load_of_a_damaged_index_raises_the_clear_error(
    built: LexicalIndex, damage: Callable[[Path], None]
) -> None:
    damage(built.directory)
    with pytest.raises(LexicalIndexError, match=str(built.directory)):
        LexicalIndex.load(built.directory)


def test_lexical_index_error_is_a_value_error() -> None:
    assert issubclass(LexicalIndexError, ValueError)


# --- write-once, crash-safe directories ---------------------------------------------------


def test_build_refuses_a_non_empty_directory_and_leaves_it_alone(tmp_path: Path) -> None:
    target = tmp_path / "lex"
    target.mkdir()
    (target / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(LexicalIndexError, match="not empty"):
        LexicalIndex.build(["a:0"], ["storm warning"], target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lex"]


def test_build_refuses_to_overwrite_a_built_index(built: LexicalIndex) -> None:
    with pytest.raises(LexicalIndexError):
        LexicalIndex.build(["a:0"], ["other"], built.directory)
    assert len(LexicalIndex.load(built.directory)) == len(DOCS)


def test_build_into_an_existing_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "lex").mkdir()
    LexicalIndex.build(["a:0"], ["storm warning"], tmp_path / "lex")
    assert LexicalIndex.load(tmp_path / "lex").search("warned", 1)[0][0] == "a:0"


def test_successful_build_leaves_only_the_final_directory(tmp_path: Path) -> None:
    parent = tmp_path / "state" / "nested"
    LexicalIndex.build(list(DOCS), list(DOCS.values()), parent / "lex-1")
    LexicalIndex.build([], [], parent / "lex-2")
    assert sorted(p.name for p in parent.iterdir()) == ["lex-1", "lex-2"]


def test_failed_build_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(root: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(lexical, "_fsync_tree", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        LexicalIndex.build(list(DOCS), list(DOCS.values()), tmp_path / "lex")
    assert list(tmp_path.iterdir()) == []


# --- concurrency --------------------------------------------------------------------------


def test_concurrent_searches_agree(built: LexicalIndex) -> None:
    queries = ["strike pay", "warned storm", "Zürich", "apple harvest", "US steel"] * 20
    expected = [built.search(q, 5) for q in queries]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda q: built.search(q, 5), queries)) == expected
