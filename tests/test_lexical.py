"""The BM25 leg: tokenisation, ranking, exact filtering, and write-once directories."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index import lexical, postings
from index.lexical import LexicalIndex, LexicalIndexError, Segment, compact
from index.text import TOKENIZER, tokenize

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


def live_of(chunks: Iterable[str]) -> dict[str, int]:
    """Chunk count by version key, as `index.store.live_versions` gives a state's."""
    return dict(Counter(chunk.rpartition(":")[0] for chunk in chunks))


def segment(ids: list[str], texts: list[str]) -> Segment:
    return Segment.from_terms(ids, [tokenize(t) for t in texts], TOKENIZER)


def save(ids: list[str], texts: list[str], directory: Path) -> LexicalIndex:
    part = segment(ids, texts)
    part.save(directory)
    return LexicalIndex([part])


def load(directory: Path) -> LexicalIndex:
    return LexicalIndex([Segment.load(directory, TOKENIZER)])


@pytest.fixture
def built(tmp_path: Path) -> LexicalIndex:
    return save(list(DOCS), list(DOCS.values()), tmp_path / "lex")


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


def rows_of(chunks: set[str]) -> npt.NDArray[np.bool_]:
    """A mask over the fixture's rows (one segment, in DOCS order) letting `chunks` through."""
    return np.array([chunk in chunks for chunk in DOCS])


def test_allowed_is_exact_even_when_k_exceeds_it(built: LexicalIndex) -> None:
    best = "strike:cccccccccccc:1"
    assert top(built, "strike 1985") == best
    allowed = rows_of({"strike:cccccccccccc:0", "orchard:eeeeeeeeeeee:0"})
    hits = built.search("strike 1985", 50, allowed=allowed)
    # The better chunk outside the filter never shows up; the non-matching allowed one neither.
    assert [chunk for chunk, _ in hits] == ["strike:cccccccccccc:0"]
    # Not "take the top k, then filter": with k=1 the unfiltered top hit is the excluded one.
    assert [chunk for chunk, _ in built.search("strike 1985", 1, allowed)] == [
        "strike:cccccccccccc:0"
    ]


def test_allowed_scores_equal_unfiltered_scores(built: LexicalIndex) -> None:
    everything = dict(built.search("strike union pay", 10))
    filtered = built.search("strike union pay", 10, allowed=rows_of({"strike:cccccccccccc:0"}))
    assert filtered == [("strike:cccccccccccc:0", everything["strike:cccccccccccc:0"])]


def test_an_article_filter_is_a_mask_made_from_row_articles(built: LexicalIndex) -> None:
    """The retriever's path: number the admitted articles, index a mask by row."""
    rows = built.row_articles({"strike": 0, "orchard": 1})
    admitted = np.array([False, True])  # orchard only
    allowed = (rows >= 0) & admitted[rows]
    assert built.search("strike", 5, allowed) == []
    assert [chunk for chunk, _ in built.search("apple harvest", 5, allowed)] == [
        "orchard:eeeeeeeeeeee:0"
    ]
    assert built.search("strike", 5, allowed=rows_of(set())) == []


# --- empty and degenerate corpora ---------------------------------------------------------


def test_empty_corpus_builds_loads_and_finds_nothing(tmp_path: Path) -> None:
    built = save([], [], tmp_path / "lex")
    assert len(built) == 0
    assert built.search("anything at all", 10) == []
    loaded = load(tmp_path / "lex")
    assert len(loaded) == 0
    assert loaded.search("anything", 10, allowed=np.zeros(0, dtype=np.bool_)) == []


def test_corpus_with_no_searchable_terms(tmp_path: Path) -> None:
    save(["a:0", "b:0"], ["the of and", ""], tmp_path / "lex")
    loaded = load(tmp_path / "lex")
    assert len(loaded) == 2
    assert loaded.search("the", 5) == []


def test_mismatched_or_duplicate_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ids"):
        save(["a"], ["one", "two"], tmp_path / "one")
    with pytest.raises(ValueError, match="unique"):
        save(["a", "a"], ["one", "two"], tmp_path / "two")
    assert not list(tmp_path.iterdir())


# --- persistence --------------------------------------------------------------------------


def test_load_round_trip_gives_identical_results(built: LexicalIndex, tmp_path: Path) -> None:
    """Postings are stored narrow (int32 rows, float16 frequencies) and score the same."""
    assert np.load(tmp_path / "lex" / "rows.npy").dtype == np.int32
    assert np.load(tmp_path / "lex" / "tfs.npy").dtype == np.float16
    loaded = load(tmp_path / "lex")
    assert len(loaded) == len(built)
    allowed = rows_of({"strike:cccccccccccc:0", "storm:aaaaaaaaaaaa:0", "zurich:dddddddddddd:0"})
    for query in ["strike pay 1984", "warning storm", "Zürich café", "US steel", "東京", "apple"]:
        assert loaded.search(query, 10) == built.search(query, 10)
        assert loaded.search(query, 10, allowed) == built.search(query, 10, allowed)


def test_build_load_and_search_print_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = save(list(DOCS), list(DOCS.values()), tmp_path / "lex")
    load(tmp_path / "lex").search("strike", 3)
    index.search("strike", 3, allowed=rows_of({"strike:cccccccccccc:0"}))
    assert capsys.readouterr() == ("", "")


def test_load_missing_directory_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(LexicalIndexError, match="nowhere"):
        load(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LexicalIndexError, match="empty"):
        load(tmp_path / "empty")


def _corrupt_meta(directory: Path) -> None:
    (directory / postings.META_FILE).write_text("{not json", encoding="utf-8")


def _drop_ids(directory: Path) -> None:
    (directory / postings.IDS_FILE).unlink()


def _short_ids(directory: Path) -> None:
    ids = json.loads((directory / postings.IDS_FILE).read_text(encoding="utf-8"))
    (directory / postings.IDS_FILE).write_text(json.dumps(ids[:-1]), encoding="utf-8")


def _old_tokenizer(directory: Path) -> None:
    meta = json.loads((directory / postings.META_FILE).read_text(encoding="utf-8"))
    meta["tokenizer"] = "something-else"
    (directory / postings.META_FILE).write_text(json.dumps(meta), encoding="utf-8")


def _truncate_postings(directory: Path) -> None:
    path = directory / "rows.npy"
    path.write_bytes(path.read_bytes()[:100])


def _drop_vocab(directory: Path) -> None:
    (directory / postings.VOCAB_FILE).unlink()


def _row_out_of_range(directory: Path) -> None:
    rows = np.load(directory / "rows.npy")
    rows[0] = 10_000
    np.save(directory / "rows.npy", rows)


@pytest.mark.parametrize(
    "damage",
    [
        _corrupt_meta,
        _drop_ids,
        _short_ids,
        _old_tokenizer,
        _truncate_postings,
        _drop_vocab,
    ],
)
def test_load_of_a_damaged_index_raises_the_clear_error(
    built: LexicalIndex, tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    damage(tmp_path / "lex")
    with pytest.raises(LexicalIndexError, match=str(tmp_path / "lex")):
        load(tmp_path / "lex")


def test_a_posting_out_of_range_is_found_when_verifying(
    built: LexicalIndex, tmp_path: Path
) -> None:
    """Opening checks sizes only (reading every posting would read a GB at a million
    chunks); `index check` verifies each posting's row."""
    _row_out_of_range(tmp_path / "lex")
    Segment.load(tmp_path / "lex", TOKENIZER)
    with pytest.raises(LexicalIndexError, match=str(tmp_path / "lex")):
        Segment.load(tmp_path / "lex", TOKENIZER, verify=True)


def test_lexical_index_error_is_a_value_error() -> None:
    assert issubclass(LexicalIndexError, ValueError)


# --- write-once, crash-safe directories ---------------------------------------------------


def test_build_refuses_a_non_empty_directory_and_leaves_it_alone(tmp_path: Path) -> None:
    target = tmp_path / "lex"
    target.mkdir()
    (target / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(LexicalIndexError, match="not empty"):
        save(["a:0"], ["storm warning"], target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lex"]


def test_build_refuses_to_overwrite_a_built_index(built: LexicalIndex, tmp_path: Path) -> None:
    with pytest.raises(LexicalIndexError):
        save(["a:0"], ["other"], tmp_path / "lex")
    assert len(load(tmp_path / "lex")) == len(DOCS)


def test_build_into_an_existing_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "lex").mkdir()
    save(["a:0"], ["storm warning"], tmp_path / "lex")
    assert load(tmp_path / "lex").search("warned", 1)[0][0] == "a:0"


def test_successful_build_leaves_only_the_final_directory(tmp_path: Path) -> None:
    parent = tmp_path / "state" / "nested"
    save(list(DOCS), list(DOCS.values()), parent / "lex-1")
    save([], [], parent / "lex-2")
    assert sorted(p.name for p in parent.iterdir()) == ["lex-1", "lex-2"]


def test_failed_build_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(root: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(postings, "_fsync_tree", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        save(list(DOCS), list(DOCS.values()), tmp_path / "lex")
    assert list(tmp_path.iterdir()) == []


# --- concurrency --------------------------------------------------------------------------


def test_concurrent_searches_agree(built: LexicalIndex) -> None:
    queries = ["strike pay", "warned storm", "Zürich", "apple harvest", "US steel"] * 20
    expected = [built.search(q, 5) for q in queries]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda q: built.search(q, 5), queries)) == expected


# --- scores, segments and compaction ------------------------------------------------------

WORDS = ["storm", "strike", "budget", "union", "pay", "coast", "1984", "school", "harvest"]


def reference_bm25(docs: dict[str, str], query: str) -> dict[str, float]:
    """Lucene BM25 written out plainly, the way bm25s (used before segments) scored."""
    terms = {chunk: tokenize(text) for chunk, text in docs.items()}
    average = sum(len(t) for t in terms.values()) / len(terms)
    scores: dict[str, float] = {}
    for word in tokenize(query):
        df = sum(word in t for t in terms.values())
        if not df:
            continue
        idf = math.log(1 + (len(terms) - df + 0.5) / (df + 0.5))
        for chunk, t in terms.items():
            tf = t.count(word)
            norm = lexical.K1 * (1 - lexical.B + lexical.B * len(t) / average)
            scores[chunk] = scores.get(chunk, 0.0) + idf * tf / (tf + norm)
    return {chunk: score for chunk, score in scores.items() if score > 0}


def test_scores_are_lucene_bm25(built: LexicalIndex) -> None:
    for query in ["strike union pay railway", "storm warning coast", "budget 2019 schools"]:
        expected = reference_bm25(DOCS, query)
        got = dict(built.search(query, 50))
        assert got.keys() == expected.keys()
        for chunk, score in got.items():
            assert score == pytest.approx(expected[chunk], rel=1e-5)


def test_segments_with_replaced_chunks_score_like_one_index_of_the_live_chunks() -> None:
    ids = list(DOCS)
    first = segment(ids[:5], [DOCS[i] for i in ids[:5]])
    # The second segment replaces the strike story and adds the rest; the first one's
    # strike rows are now dead and must count for nothing, not even in the statistics.
    second_docs = {"strike:dddddddddddd:0": "A strike by dock workers over pay ended today."}
    second_docs |= {i: DOCS[i] for i in ids[5:]}
    second = segment(list(second_docs), list(second_docs.values()))
    live = {i: t for i, t in DOCS.items() if not i.startswith("strike")} | second_docs
    index = LexicalIndex([first, second], live_of(live))
    alone = LexicalIndex([segment(list(live), list(live.values()))])
    assert len(index) == len(alone) == len(live)
    for query in ["strike pay union", "storm coast", "apple harvest", "US steel", "1984"]:
        assert index.search(query, 10) == alone.search(query, 10)
        assert dict(index.search(query, 10)) == pytest.approx(reference_bm25(live, query))
    assert all(not c.startswith("strike:ccc") for c, _ in index.search("strike 1984 railway", 10))


def test_the_newest_segment_holding_an_id_wins() -> None:
    # An article edited and then edited back has the same chunk ids as its first version.
    old = segment(["a:1:0", "b:1:0"], ["storm on the coast", "budget for schools"])
    middle = segment(["a:2:0"], ["strike at the port"])
    back = segment(["a:1:0"], ["storm on the coast again"])
    index = LexicalIndex([old, middle, back], {"a:1": 1, "b:1": 1})
    assert len(index) == 2
    hits = index.search("storm coast again", 5)
    assert [c for c, _ in hits] == ["a:1:0"]
    assert index.search("strike", 5) == []


def test_live_chunks_missing_from_every_segment_are_an_error() -> None:
    with pytest.raises(LexicalIndexError, match=r"1 article versions .*'c:1'"):
        LexicalIndex([segment(["a:1:0"], ["storm"])], {"a:1": 1, "c:1": 1})
    with pytest.raises(LexicalIndexError, match=r"1 article versions .*'a:1'"):
        LexicalIndex([segment(["a:1:0"], ["storm"])], {"a:1": 2})  # a chunk short


def test_merge_keeps_live_rows_only_and_survives_a_round_trip(tmp_path: Path) -> None:
    first = segment(list(DOCS)[:4], list(DOCS.values())[:4])
    second = segment(list(DOCS)[4:], list(DOCS.values())[4:])
    live = set(DOCS) - {"storm:aaaaaaaaaaaa:0"}
    index = LexicalIndex([first, second], live_of(live))
    merged = Segment.merge(list(zip(index.segments, index.masks, strict=True)))
    assert sorted(merged.ids) == sorted(live)
    assert "forecast" not in merged.terms  # only the dead storm chunk had it
    merged.save(tmp_path / "merged")
    reloaded = LexicalIndex([Segment.load(tmp_path / "merged", TOKENIZER)])
    for query in ["storm", "strike pay", "Zürich", "東京", "US steel"]:
        assert reloaded.search(query, 10) == index.search(query, 10)


def test_compact_drops_dead_segments_and_merges_when_needed() -> None:
    base = segment([f"a{n}:1:0" for n in range(10)], [f"{WORDS[n % 9]} story" for n in range(10)])
    dead = segment(["gone:1:0"], ["harvest"])
    small = [segment([f"u{n}:1:0"], [f"{WORDS[n % 9]} update"]) for n in range(12)]
    live = {f"a{n}:1:0" for n in range(10)} | {f"u{n}:1:0" for n in range(12)}
    # The segment with no live row goes; more than MAX_SEGMENTS: the newer ones merge.
    kept = compact([base, dead, *small[:3]], live_of(live - {f"u{n}:1:0" for n in range(3, 12)}))
    assert kept == [base, *small[:3]]
    kept = compact([base, *small], live_of(live))
    assert len(kept) == 2 and kept[0] is base and len(kept[1]) == 12
    # Most of the base replaced: everything merges into one segment of live rows.
    replaced = segment([f"a{n}:2:0" for n in range(8)], ["new text"] * 8)
    live2 = {f"a{n}:2:0" for n in range(8)} | {"a8:1:0", "a9:1:0"}
    (one,) = compact([base, replaced], live_of(live2))
    assert sorted(one.ids) == sorted(live2)
    before = LexicalIndex([base, replaced], live_of(live2))
    for query in ["new text", "storm", "pay story"]:
        assert LexicalIndex([one]).search(query, 20) == before.search(query, 20)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.lists(st.sampled_from(WORDS), max_size=8)),
        min_size=1,
        max_size=25,
    ),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
)
def test_any_history_of_updates_scores_like_a_fresh_index(
    edits: list[tuple[int, list[str]]], query: list[str]
) -> None:
    """Each edit writes article n's new version as its own segment, as update does;
    after compaction the search equals one index of the live versions."""
    segments: list[Segment] = []
    versions: dict[int, str] = {}
    for step, (article, words) in enumerate(edits):
        chunk = f"art{article}:{step}:0"
        versions[article] = chunk
        segments.append(segment([chunk], [" ".join(words)]))
        segments = compact(segments, live_of(versions.values()))
    latest = {chunk: " ".join(edits[int(chunk.split(":")[1])][1]) for chunk in versions.values()}
    fresh = LexicalIndex([segment(list(latest), list(latest.values()))])
    assert len(segments) <= lexical.MAX_SEGMENTS + 1
    index = LexicalIndex(segments, live_of(latest))
    got, want = index.search(" ".join(query), 30), fresh.search(" ".join(query), 30)
    # Ties may list in another order (rows are numbered differently); scores are equal.
    assert dict(got) == pytest.approx(dict(want), rel=1e-5)
