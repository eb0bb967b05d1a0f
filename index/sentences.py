"""Sentence boundaries as character offsets.

Chunking packs whole sentences and citations quote whole sentences by offset, so
both layers must agree on one splitter; it lives here. It is a rule-based splitter
(regular expressions plus a few look-ups) rather than a model so that it is fast,
deterministic and dependency-free, and so that its offsets always point into the
original text rather than into a normalised copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise

Span = tuple[int, int]

# Stored with anything computed per sentence at index time (index.sentvecs): bump it
# whenever a change here moves a boundary, and such files are recomputed, not misread.
SPLITTER = "newsdesk-sentences-1"


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# str.splitlines() treats all of these as line breaks; so do we, so that text from
# odd sources (form feeds, U+2028) still gets its line structure respected.
_LINE_BREAK_CHARS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LB = r"(?:\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029])"
_HS = r"[^\S\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]"  # horizontal whitespace

# Two or more line breaks with only horizontal space between them: a blank line.
# Possessive quantifiers and the look-behind keep this linear on long space runs.
_BLANK_LINE = re.compile(rf"(?<!{_HS})(?:{_HS}*+{_LB}){{2,}}+")
_LINE_BREAK = re.compile(_LB)
_WHITESPACE = re.compile(r"\s++")

_TERMINATORS = ".!?…"
_TERMINATORS_SET = frozenset(_TERMINATORS)
_CLOSERS = "\"'\u201d\u2019\u00bb)]}"
_OPENERS = "\"'\u201c\u2018\u00ab([{\u00bf\u00a1"
_BULLETS = "-*\u2022\u00b7\u2013\u2014"
# A run of terminators, then optional closers, then whitespace. The look-behind makes
# each run be tried once, so punctuation soup without spaces stays linear.
_SENTENCE_END = re.compile(rf"(?<![.!?…])[.!?…]++[{re.escape(_CLOSERS)}]*+(?=\s)")
# The letters-and-dots word right before a final period ("Mr", "U.S", "e.g").
_WORD_BEFORE_DOT = re.compile(r"[A-Za-z.]{1,12}\Z")
# The first word after a boundary candidate, when it is a plain capitalised word and
# not itself an initial ("A." in "J. A. Smith").
_NEXT_WORD = re.compile(rf"[{re.escape(_OPENERS)}]*([A-Z][a-z]*)(?![.\w])")
_DOTTED_ACRONYM = re.compile(r"(?:[A-Za-z]{1,3}\.)+[A-Za-z]{1,3}")

# Abbreviations that precede a name or a phrase, so they never end a sentence.
_NEVER_FINAL = _word_set(
    """mr mrs ms mx messrs mmes mme mlle dr prof gen sen rep gov lt col sgt capt cmdr
    adm maj brig cpl pvt rev fr hon pres supt insp det atty mt ft vs cf viz e.g i.e a.k.a"""
)
# Abbreviations that precede a number ("No. 5", "Jan. 18"): a boundary only when no
# number follows, since "in Jan. The ..." and "said no. Then ..." do end sentences.
_BEFORE_NUMBER = _word_set(
    """no nos vol vols pp fig figs ch sec art op ed eds
    jan feb mar apr jun jul aug sep sept oct nov dec"""
)
# Abbreviations that may or may not end a sentence ("Apple Inc. The ..." vs "Apple
# Inc. shares"): a boundary only when a typical sentence opener follows. Single
# letters (initials) and dotted acronyms (U.S., a.m.) are treated the same way.
_AMBIGUOUS = _word_set(
    """jr sr inc ltd co corp llc plc bros etc al st ave blvd rd dept univ assn est
    approx ca ph.d u.s u.k u.n a.m p.m"""
)
# Capitalised words that usually open a sentence and rarely follow an abbreviation.
_SENTENCE_OPENERS = _word_set(
    """The A An He She It They We I You His Her Its Their Our My This That These Those
    There Here In On At For But And Or So Yet However After Before When While As If
    Although Though Since During Many Some Most One Other Others Both Each All Also
    Then Thus Therefore Meanwhile Still Later Today Now What Who Why How Where Which
    By From With To Under Over Despite According Because Unlike Like Instead Such
    Several Few No Not Only Even Once Until Upon Among Between Within Without Of
    Moreover Furthermore Additionally Nevertheless Nonetheless Indeed Again Hence
    Consequently Similarly Likewise Finally First Second Following Throughout Every
    Any Another Much More Less Whether Whereas Whatever Whoever Yes"""
)
# Lower-case words a heading would not end with, but a hard-wrapped line often does.
_CONTINUATION_WORDS = _word_set(
    """the a an of and or nor but to in on at by for with from as that which who whom
    whose is are was were be been has have had than into onto per via its their his
    her our my your this these those"""
)
_MAX_HEADING_CHARS = 100
# A line ending in these is a sentence end or a fragment, never a heading.
_NOT_HEADING_END = frozenset(_TERMINATORS + ",;:-\u2010\u2013\u2014/&([{")


def sentence_spans(text: str) -> list[Span]:
    """Split `text` into sentences, returned as stripped, ordered, disjoint spans.

    Every non-whitespace character of `text` lies in exactly one span, so callers can
    map any offset (an answer, a token) back to the sentence that contains it.
    """
    spans: list[Span] = []
    for start, end in _paragraphs(text):
        spans.extend(_split_paragraph(text, start, end))
    return spans


def _paragraphs(text: str) -> Iterator[Span]:
    """Blank lines always end a sentence, so paragraphs are split independently."""
    position = 0
    for match in _BLANK_LINE.finditer(text):
        yield from _stripped(text, position, match.start())
        position = match.end()
    yield from _stripped(text, position, len(text))


def _stripped(text: str, start: int, end: int) -> Iterator[Span]:
    """Narrow a range to its non-whitespace content, if it has any."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        yield start, end


def _split_paragraph(text: str, start: int, end: int) -> list[Span]:
    """Cut a paragraph at every whitespace run judged to be a sentence boundary."""
    cuts = set(_punctuation_cuts(text, start, end))
    if _has_line_break(text, start, end):
        cuts.update(_heading_cuts(text, start, end))
    spans: list[Span] = []
    position = start
    for cut_start, cut_end in sorted(cuts):
        spans.extend(_stripped(text, position, cut_start))
        position = cut_end
    spans.extend(_stripped(text, position, end))
    return spans


def _has_line_break(text: str, start: int, end: int) -> bool:
    return any(text.find(char, start, end) >= 0 for char in _LINE_BREAK_CHARS)


def _punctuation_cuts(text: str, start: int, end: int) -> Iterator[Span]:
    """Whitespace runs after sentence-final punctuation that really end a sentence."""
    for match in _SENTENCE_END.finditer(text, start, end):
        gap = _WHITESPACE.match(text, match.end(), end)
        if gap is None or gap.end() >= end:
            continue
        if not _can_start_sentence(text[gap.end()]):
            continue
        if _is_abbreviation(text, match.start(), match.group().rstrip(_CLOSERS), gap.end(), end):
            continue
        yield gap.start(), gap.end()


def _can_start_sentence(char: str) -> bool:
    """Upper case, digits and opening quotes start sentences; so does any letter of a
    script without case, where "upper case" means nothing."""
    if char.isupper() or char.istitle() or char.isdigit() or char in _OPENERS:
        return True
    return char.isalpha() and not char.islower()


def _is_abbreviation(text: str, dot: int, terminator: str, next_start: int, end: int) -> bool:
    """Whether a lone final period belongs to an abbreviation, initial or acronym
    rather than ending the sentence (closers after it do not change that: "[George
    W.] Bush")."""
    if terminator != ".":
        return False
    word_match = _WORD_BEFORE_DOT.search(text, max(0, dot - 12), dot)
    if word_match is None:
        return False
    if word_match.start() > 0 and _continues_word(text[word_match.start() - 1]):
        return False  # the tail of a longer word: "2O.", "café.", "Israel's."
    word = word_match.group()
    if word == "v":
        return True  # "Roe v. Wade"; an upper-case "V." is an initial or a numeral
    if word.islower() and len(word) == 1:
        return text[next_start].isdigit()  # "p. 5", "c. 1455", but "6 m. Breathing"
    word = word.lower()
    if word in _NEVER_FINAL:
        return True
    if word in _BEFORE_NUMBER:
        return text[next_start].isdigit()
    if word in _AMBIGUOUS or len(word) == 1 or _DOTTED_ACRONYM.fullmatch(word):
        return not _opens_sentence(text, next_start, end)
    return False


def _continues_word(char: str) -> bool:
    return char.isalnum() or char in "'\u2019"


def _opens_sentence(text: str, start: int, end: int) -> bool:
    match = _NEXT_WORD.match(text, start, end)
    return match is not None and match.group(1) in _SENTENCE_OPENERS


def _heading_cuts(text: str, start: int, end: int) -> Iterator[Span]:
    """Line breaks after heading-like lines (titles, datelines) inside a paragraph.

    A single line break is otherwise just whitespace, because hard-wrapped text
    breaks lines mid-sentence.
    """
    lines = _lines(text, start, end)
    width = max(line_end - line_start for line_start, line_end in lines)
    follows_sentence_end = True
    for (line_start, line_end), (next_start, next_end) in pairwise(lines):
        line = text[line_start:line_end]
        next_line = text[next_start:next_end]
        heading = follows_sentence_end and _is_heading(line, next_line, width)
        if heading:
            yield line_end, next_start
        follows_sentence_end = heading or _ends_with_terminator(line)


def _lines(text: str, start: int, end: int) -> list[Span]:
    """The stripped, non-empty lines of a paragraph (which has no blank lines)."""
    lines: list[Span] = []
    position = start
    for match in _LINE_BREAK.finditer(text, start, end):
        lines.extend(_stripped(text, position, match.start()))
        position = match.end()
    lines.extend(_stripped(text, position, end))
    return lines


def _is_heading(line: str, next_line: str, width: int) -> bool:
    """Whether a line stands alone: short, unpunctuated, not a wrapped fragment, and
    followed by something that can start a sentence."""
    if len(line) >= _MAX_HEADING_CHARS or not any(char.isalnum() for char in line):
        return False
    if line.rstrip(_CLOSERS)[-1:] in _NOT_HEADING_END:
        return False
    last_word = line.rsplit(None, 1)[-1]
    if last_word in _CONTINUATION_WORDS:
        return False
    first = next_line[0]
    if first.isdigit():
        # "O\n2" and "Fe\n2O\n3": subscripts flattened onto their own line.
        if len(last_word) <= 3 and not last_word[-1].isdigit():
            return False
    elif not (_can_start_sentence(first) or _is_bullet(next_line)):
        return False
    # A greedy line wrapper would have put the next word on this line had it fit, so
    # a line it fits on was broken on purpose.
    next_word = next_line.split(None, 1)[0]
    return len(line) + 1 + len(next_word) <= width


def _is_bullet(line: str) -> bool:
    return len(line) > 1 and line[0] in _BULLETS and line[1].isspace()


def _ends_with_terminator(line: str) -> bool:
    return line.rstrip(_CLOSERS)[-1:] in _TERMINATORS_SET
