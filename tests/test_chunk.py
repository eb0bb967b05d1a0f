"""Chunking: offsets, token limits, coverage, sentence boundaries and overlap."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.chunk import TokenSpans, chunk_text
from index.embed import Embedder
from index.sentences import sentence_spans
from index.types import Chunk

DEMO = Path(__file__).resolve().parents[1] / "index" / "demo"
_TOKEN = re.compile(r"\w+|[^\w\s]")


def regex_spans(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in _TOKEN.finditer(text)]


def char_spans(text: str) -> list[tuple[int, int]]:
    """One token per visible character: long words must be cut mid-word."""
    return [(i, i + 1) for i, char in enumerate(text) if not char.isspace()]


def byte_spans(text: str) -> list[tuple[int, int]]:
    """Three tokens per character sharing one offset, as byte-level BPE reports them."""
    return [(i, i + 1) for i, char in enumerate(text) if not char.isspace() for _ in range(3)]


def counter(spans: TokenSpans, text: str) -> Callable[[int, int], int]:
    """Tokens whose start lies in a range, from one tokenization of the whole text."""
    starts = [start for start, _ in spans(text)]

    def count(start: int, end: int) -> int:
        return sum(1 for s in starts if start <= s < end)

    return count


def check_chunks(
    text: str, chunks: list[Chunk], spans: TokenSpans, max_tokens: int, overlap: int
) -> None:
    """Every promise chunk_text makes, checked against an independent recount."""
    count = counter(spans, text)
    sentences = sentence_spans(text)
    starts = {s for s, _ in sentences}
    ends = {e for _, e in sentences}
    long = [(s, e) for s, e in sentences if count(s, e) > max_tokens]
    covered: set[int] = set()
    for index, chunk in enumerate(chunks):
        assert chunk.index == index and chunk.article_id == "a"
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text and chunk.text == chunk.text.strip()
        assert count(chunk.start, chunk.end) <= max_tokens
        assert len(spans(chunk.text)) <= max_tokens
        on_boundaries = chunk.start in starts and chunk.end in ends
        piece = any(s <= chunk.start and chunk.end <= e for s, e in long)
        assert on_boundaries or piece, chunk
        covered.update(range(chunk.start, chunk.end))
    assert {i for i, char in enumerate(text) if not char.isspace()} <= covered
    for before, after in pairwise(chunks):
        assert (before.start, before.end) != (after.start, after.end)
        assert before.start <= after.start and before.end < after.end
        shared = (after.start, before.end)
        if shared[0] < shared[1]:
            assert count(*shared) <= overlap


# Text built to exercise the chunker: sentences of varied length, over-long sentences,
# paragraph breaks, and runs without any whitespace.
_word = st.text(alphabet="abcdefghij", min_size=1, max_size=12)
_sentence = st.builds(
    lambda words, end: " ".join(words).capitalize() + end,
    st.lists(_word, min_size=1, max_size=30),
    st.sampled_from([".", "!", "?", "", ".”"]),
)
_texts = st.one_of(
    st.lists(
        st.tuples(_sentence, st.sampled_from([" ", "\n\n", "  ", "\n"])),
        max_size=25,
    ).map(lambda parts: "".join(s + gap for s, gap in parts)),
    st.text(alphabet="ab .!?\n\"'(),é中", max_size=400),
    st.text(max_size=200),
)


@settings(max_examples=200, deadline=None)
@given(
    text=_texts,
    max_tokens=st.integers(min_value=8, max_value=60),
    overlap_fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_chunks_keep_every_promise(text: str, max_tokens: int, overlap_fraction: float) -> None:
    overlap = int(overlap_fraction * max_tokens)
    chunks = chunk_text("a", text, regex_spans, max_tokens, overlap)
    check_chunks(text, chunks, regex_spans, max_tokens, overlap)


@settings(max_examples=100, deadline=None)
@given(
    text=st.text(alphabet="abc .\n", max_size=300),
    spans=st.sampled_from([char_spans, byte_spans]),
    max_tokens=st.integers(min_value=8, max_value=20),
)
def test_words_longer_than_the_limit_are_cut_on_token_boundaries(
    text: str, spans: TokenSpans, max_tokens: int
) -> None:
    chunks = chunk_text("a", text, spans, max_tokens, 0)
    check_chunks(text, chunks, spans, max_tokens, 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(_sentence, min_size=2, max_size=15).map(" ".join))
def test_packing_is_greedy(text: str) -> None:
    """A chunk of whole sentences ends only because its next sentence would not fit."""
    max_tokens = 20
    count = counter(regex_spans, text)
    chunks = chunk_text("a", text, regex_spans, max_tokens, 0)
    sentences = sentence_spans(text)
    whole = {(s, e) for s, e in sentences if count(s, e) <= max_tokens}
    for chunk in chunks[:-1]:
        following = next(((s, e) for s, e in sentences if s > chunk.end), None)
        ends_whole = any(e == chunk.end for _, e in whole)
        if ends_whole and following in whole:
            assert count(chunk.start, following[1]) > max_tokens


def four_token_sentences(n: int) -> str:
    return " ".join(f"S{i} is here." for i in range(n))  # "S0", "is", "here", "."


def texts_of(chunks: list[Chunk]) -> list[str]:
    return [chunk.text for chunk in chunks]


def test_sentences_are_packed_up_to_the_limit() -> None:
    chunks = chunk_text("a", four_token_sentences(5), regex_spans, 8, 0)
    assert texts_of(chunks) == [
        "S0 is here. S1 is here.",
        "S2 is here. S3 is here.",
        "S4 is here.",
    ]


def test_chunks_repeat_trailing_sentences_within_the_overlap() -> None:
    chunks = chunk_text("a", four_token_sentences(6), regex_spans, 12, 4)
    assert texts_of(chunks) == [
        "S0 is here. S1 is here. S2 is here.",
        "S2 is here. S3 is here. S4 is here.",
        "S4 is here. S5 is here.",
    ]


def test_overlap_that_leaves_no_room_still_makes_progress() -> None:
    chunks = chunk_text("a", four_token_sentences(6), regex_spans, 8, 7)
    check_chunks(four_token_sentences(6), chunks, regex_spans, 8, 7)
    assert len(chunks) == 5  # each chunk: one repeated sentence, one new one
    assert chunks[-1].text == "S4 is here. S5 is here."


def test_an_over_long_sentence_is_cut_at_spaces_into_its_own_chunks() -> None:
    long = "Then " + " ".join(f"w{i}" for i in range(20)) + "."
    text = f"Short one. {long} Short two."
    chunks = chunk_text("a", text, regex_spans, 8, 3)
    check_chunks(text, chunks, regex_spans, 8, 3)
    assert chunks[0].text == "Short one."
    assert chunks[-1].text == "Short two."
    pieces = texts_of(chunks[1:-1])
    assert " ".join(pieces) == long
    assert all(len(regex_spans(piece)) <= 8 for piece in pieces)


def test_a_run_without_spaces_is_cut_mid_word() -> None:
    text = "x" * 50
    chunks = chunk_text("a", text, char_spans, 8, 0)
    assert texts_of(chunks) == ["x" * 8] * 6 + ["x" * 2]


def test_blank_and_empty_text_give_no_chunks() -> None:
    assert chunk_text("a", "", regex_spans, 8, 0) == []
    assert chunk_text("a", " \n\n\t ", regex_spans, 8, 0) == []


def test_degenerate_tokenizer_terminates() -> None:
    """A tokenizer reporting one offset for every token cannot be cut at all."""
    text = "Aaa bbb ccc. " * 20

    def same_offset(piece: str) -> list[tuple[int, int]]:
        return [(0, 0)] * len(piece.split())

    chunks = chunk_text("a", text, same_offset, 8, 2)
    assert chunks and all(text[c.start : c.end] == c.text for c in chunks)


@pytest.mark.parametrize(("max_tokens", "overlap"), [(7, 0), (0, 0), (16, -1), (16, 16), (16, 20)])
def test_bad_limits_are_rejected(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="tokens"):
        chunk_text("a", "Some text.", regex_spans, max_tokens, overlap)


def demo_texts() -> Iterator[str]:
    yield next(DEMO.glob("*.txt")).read_text(encoding="utf-8")
    lines = (DEMO / "wikinews.jsonl").read_text(encoding="utf-8").splitlines()
    for line in lines[:4]:
        yield json.loads(line)["text"]


def test_real_tokenizer_chunks_fit_the_model_window(embedder: Embedder) -> None:
    spans = embedder.token_spans
    for text in demo_texts():
        chunks = chunk_text("a", text, spans, 200, 32)
        check_chunks(text, chunks, spans, 200, 32)
        for chunk in chunks:
            assert embedder.count_tokens([chunk.text])[0] <= 200
