"""Split an article into embedding-sized chunks along sentence boundaries.

Chunks are sized in *model* tokens, not characters, because the embedding model
silently truncates anything past its window; a chunk that fits is a chunk whose
every sentence is actually embedded. Chunks hold whole sentences so a retrieved
chunk can be cited sentence by sentence, and neighbouring chunks share a few
trailing sentences so a fact that straddles a boundary is still retrievable.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from index.sentences import sentence_spans
from index.types import Chunk

TokenSpans = Callable[[str], list[tuple[int, int]]]
"""Character spans of each model token in a text, without special tokens."""

MIN_MAX_TOKENS = 8


@dataclass(frozen=True, slots=True)
class _Unit:
    """A whole sentence, or a piece of a sentence too long for any chunk on its own."""

    start: int
    end: int
    piece: bool


class _TokenCounter:
    """Counts tokens in any character range after tokenizing the text only once.

    A token belongs to the range its start offset falls in, so ranges that tile the
    text never count a token twice.
    """

    def __init__(self, spans: Sequence[tuple[int, int]]) -> None:
        self.starts = sorted(start for start, _ in spans)

    def count(self, start: int, end: int) -> int:
        return bisect_left(self.starts, end) - bisect_left(self.starts, start)

    def starts_within(self, start: int, end: int) -> list[int]:
        return self.starts[bisect_left(self.starts, start) : bisect_left(self.starts, end)]


def chunk_text(
    article_id: str,
    text: str,
    token_spans: TokenSpans,
    max_tokens: int,
    overlap_tokens: int,
) -> list[Chunk]:
    """Pack consecutive sentences greedily into chunks of at most `max_tokens` tokens.

    Each chunk after the first repeats the previous chunk's trailing sentences, up to
    `overlap_tokens` tokens. A sentence longer than `max_tokens` is the only thing
    ever cut, into pieces that each form a chunk of their own.
    """
    _check_limits(max_tokens, overlap_tokens)
    sentences = sentence_spans(text)
    if not sentences:
        return []
    counter = _TokenCounter(token_spans(text))
    units = _units(text, sentences, counter, max_tokens, token_spans)
    ranges = _pack(units, counter, max_tokens, overlap_tokens)
    return [
        Chunk(article_id=article_id, index=index, start=start, end=end, text=text[start:end])
        for index, (start, end) in enumerate(ranges)
    ]


def _check_limits(max_tokens: int, overlap_tokens: int) -> None:
    """Reject settings that cannot give useful chunks before any work is done: a window
    too small to hold an ordinary sentence, or an overlap that would fill it."""
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_MAX_TOKENS}, got {max_tokens}")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError(
            f"overlap_tokens must be >= 0 and < max_tokens ({max_tokens}), got {overlap_tokens}"
        )


def _units(
    text: str,
    sentences: list[tuple[int, int]],
    counter: _TokenCounter,
    max_tokens: int,
    token_spans: TokenSpans,
) -> list[_Unit]:
    units: list[_Unit] = []
    for start, end in sentences:
        if counter.count(start, end) <= max_tokens:
            units.append(_Unit(start, end, piece=False))
        else:
            starts = counter.starts_within(start, end)
            fits = _fits_alone(text, token_spans, max_tokens)
            pieces = _split_long_sentence(text, start, end, starts, fits, max_tokens)
            units.extend(_Unit(s, e, piece=True) for s, e in pieces)
    return units


def _fits_alone(text: str, token_spans: TokenSpans, max_tokens: int) -> Callable[[int, int], bool]:
    """Whether a piece, tokenized on its own, is within the limit.

    A piece cut mid-word tokenizes differently alone ("##ing" becomes "ing") than in
    context, and the embedder sees it alone; whole sentences are cut at whitespace,
    where sub-word tokenizers agree, so only pieces are checked.
    """

    def fits(start: int, end: int) -> bool:
        return len(token_spans(text[start:end].strip())) <= max_tokens

    return fits


def _split_long_sentence(
    text: str,
    start: int,
    end: int,
    starts: list[int],
    fits: Callable[[int, int], bool],
    max_tokens: int,
) -> list[tuple[int, int]]:
    """Cut an over-long sentence at token starts into pieces of at most `max_tokens`.

    `starts` are the sentence's token start offsets. Cutting where whitespace
    precedes a token keeps words whole (a word split into sub-word tokens reads and
    embeds badly); a run with no such place in reach is cut mid-word, still on a
    token boundary. A sentence that has no token boundary left to cut at (a tokenizer
    reporting one offset for everything) stays whole rather than looping.
    """
    pieces: list[tuple[int, int]] = []
    first = 0  # index into `starts` of the current piece's first token
    piece_start = start
    while len(starts) - first > max_tokens or not fits(piece_start, end):
        limit = min(first + max_tokens, len(starts) - 1)
        cut = _cut_index(text, starts, first, limit, partial(fits, piece_start))
        if cut is None:
            break
        pieces.extend(_strip(text, piece_start, starts[cut]))
        piece_start, first = starts[cut], cut
    pieces.extend(_strip(text, piece_start, end))
    return pieces


def _cut_index(
    text: str, starts: list[int], first: int, limit: int, fits_until: Callable[[int], bool]
) -> int | None:
    """The token to start the next piece at, or None if the piece cannot be cut.

    Prefers the last token within reach that follows whitespace, as long as that
    keeps at least half the budget; else the furthest token boundary that fits.
    Tokens sharing a start offset (bytes of one character) cannot be separated.
    """
    boundaries = [i for i in range(limit, first, -1) if starts[i] > starts[i - 1]]
    if not boundaries:
        return None
    reach = first + (limit - first + 1) // 2
    spaced = [i for i in boundaries if i >= reach and text[starts[i] - 1].isspace()]
    for index in dict.fromkeys(spaced + boundaries):
        if fits_until(starts[index]):
            return index
    return boundaries[-1]


def _strip(text: str, start: int, end: int) -> list[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [(start, end)] if start < end else []


def _pack(
    units: list[_Unit], counter: _TokenCounter, max_tokens: int, overlap_tokens: int
) -> list[tuple[int, int]]:
    """Greedy packing; every chunk takes at least one unit the previous one lacked, so
    the loop always ends and no chunk repeats another."""
    ranges: list[tuple[int, int]] = []
    first = 0  # first unit of the chunk being built, overlap included
    fresh = 0  # first unit no earlier chunk has covered
    while fresh < len(units):
        if units[fresh].piece:
            ranges.append((units[fresh].start, units[fresh].end))
            first = fresh = fresh + 1
            continue
        first = _fit_overlap(units, counter, first, fresh, max_tokens)
        last = _extend(units, counter, first, fresh, max_tokens)
        ranges.append((units[first].start, units[last].end))
        fresh = last + 1
        first = _overlap_start(units, counter, first, fresh, overlap_tokens)
    return ranges


def _fit_overlap(
    units: list[_Unit], counter: _TokenCounter, first: int, fresh: int, max_tokens: int
) -> int:
    """Drop leading overlap sentences until the first fresh sentence fits too."""
    while first < fresh and not _fits(units, counter, first, fresh, max_tokens):
        first += 1
    return first


def _extend(
    units: list[_Unit], counter: _TokenCounter, first: int, fresh: int, max_tokens: int
) -> int:
    """The last unit of a chunk that starts at `first` and must include `fresh`."""
    last = fresh
    while last + 1 < len(units) and not units[last + 1].piece:
        if not _fits(units, counter, first, last + 1, max_tokens):
            break
        last += 1
    return last


def _overlap_start(
    units: list[_Unit], counter: _TokenCounter, first: int, fresh: int, overlap_tokens: int
) -> int:
    """The earliest trailing sentence of the chunk `units[first:fresh]` that the next
    chunk can repeat within `overlap_tokens`; `fresh` when none fits.

    The chunk's first sentence is never repeated, so no chunk is ever contained in
    the next one.
    """
    start = fresh
    while start - 1 > first and _fits(units, counter, start - 1, fresh - 1, overlap_tokens):
        start -= 1
    return start


def _fits(units: list[_Unit], counter: _TokenCounter, first: int, last: int, limit: int) -> bool:
    """Whether units `first`..`last` together, with the gaps between them, fit `limit`."""
    return counter.count(units[first].start, units[last].end) <= limit


def embedding_input(title: str, text: str) -> str:
    """What the model sees for a chunk: its article's title, then the chunk text."""
    return f"{title}\n{text}" if title else text
