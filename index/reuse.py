"""Which chunks of a changed article keep their vectors, so an edit re-embeds only the
chunks around it.

A correction or an appended "Update:" paragraph leaves most of a news article as it
was, and the model's forward pass is most of an update's time. A chunk whose model
input (title and text) is unchanged would get the same vector, so the stored one is
copied, wherever the edit moved it. Sentence vectors need more care: a sentence's
vector is pooled from every chunk that covers it, so it is copied only when none of
those chunks changed and together they covered the same sentence before. Every chunk
covering any other sentence is embedded, unchanged ones too, since that sentence's
vector needs their word-pieces; their copied sentences keep the copied values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Span = tuple[int, int]


@dataclass(frozen=True)
class Reuse:
    chunks: dict[int, int]  # new chunk number -> old chunk number whose vector it keeps
    sentences: dict[int, int]  # new sentence number -> old one whose pooled vector it keeps


NOTHING = Reuse({}, {})


def plan_reuse(
    old_text: str,
    old_chunks: Sequence[Span],
    old_sentences: Sequence[Span],
    new_text: str,
    new_chunks: Sequence[Span],
    new_sentences: Sequence[Span],
) -> Reuse:
    """What the new version can copy from the old one (same embedded title assumed: the
    caller checks, since with `chunking.title_tokens` set the title is part of every
    chunk's model input)."""
    by_text: dict[str, list[int]] = {}
    for number, (start, end) in enumerate(old_chunks):
        by_text.setdefault(old_text[start:end], []).append(number)
    matched: dict[int, int] = {}
    taken: set[int] = set()
    for number, (start, end) in enumerate(new_chunks):
        match = next((o for o in by_text.get(new_text[start:end], []) if o not in taken), None)
        if match is not None:
            matched[number] = match
            taken.add(match)
    old_sentence = {span: number for number, span in enumerate(old_sentences)}
    old_cover = [_covering(old_chunks, span) for span in old_sentences]
    embed = {n for n in range(len(new_chunks)) if n not in matched}
    sentences: dict[int, int] = {}
    for number, span in enumerate(new_sentences):
        cover = _covering(new_chunks, span)
        old = _same_sentence(span, cover, matched, new_chunks, old_chunks, old_sentence)
        if old is not None and old_cover[old] == sorted(matched[n] for n in cover):
            sentences[number] = old
        else:
            # Its new vector needs every covering chunk's word-pieces, unchanged ones too.
            embed.update(cover)
    chunks = {n: o for n, o in matched.items() if n not in embed}
    return Reuse(chunks, sentences)


def _same_sentence(
    span: Span,
    cover: list[int],
    matched: dict[int, int],
    new_chunks: Sequence[Span],
    old_chunks: Sequence[Span],
    old_sentence: dict[Span, int],
) -> int | None:
    """The old sentence this one was, if all its chunks are unchanged and moved together."""
    if not cover or not all(n in matched for n in cover):
        return None
    shifts = {new_chunks[n][0] - old_chunks[matched[n]][0] for n in cover}
    if len(shifts) != 1:
        return None
    shift = shifts.pop()
    return old_sentence.get((span[0] - shift, span[1] - shift))


def _covering(chunks: Sequence[Span], span: Span) -> list[int]:
    start, end = span
    return [n for n, (a, b) in enumerate(chunks) if a < end and b > start]
