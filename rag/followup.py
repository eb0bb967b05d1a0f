"""Turn a follow-up question into a standalone retrieval query, by rule and without a model.

Retrieval embeds one query and answer selection scores sentences against it, so
"When did he say it?" on its own matches nothing useful: it needs the names and
topic of the question before it. A model could resolve the reference, but the
project answers without one by default, so this uses a handful of explainable
English rules instead, and every decision can be traced with `followup_reason`.

A follow-up is rewritten as::

    <the question as asked> (<term>, <term>, ...)

The user's own words stay first and untouched because they matter most when
answer sentences are scored. The parenthesis holds terms of the previous
question: quoted phrases (re-quoted with straight double quotes), then names
(runs of capitalised words such as "Secretary General" or "Bank of England",
and acronyms), then numbers, then the remaining content words; anything whose
words already appear in the question is dropped, and at most
`MAX_CONTEXT_WORDS` words are carried. The parenthesis and the commas keep the
carried names apart when a rewritten question is itself mined as history.

Context comes from the most recent non-blank earlier question, and also from the
one before it when that most recent question was itself a follow-up (a caller
that passes raw questions rather than rewritten ones still gets its context).
A rewritten question already carries its predecessor's terms, so feeding the
rewritten forms back as history chains context turn after turn while the cap
keeps every query within the user's words plus `MAX_CONTEXT_WORDS`.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import takewhile
from typing import Literal

from index.text import QUESTION_STOPWORDS, QuestionToken, question_tokens

MAX_CONTEXT_WORDS = 12
"""At most this many words of earlier questions ride along, so queries never grow."""

MAX_SHORT_CONTENT_WORDS = 4
"""A question with no more content words than this and no name of its own is a follow-up."""

FollowupReason = Literal["continuation", "reference", "relative", "ellipsis", "short"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Opening words that only make sense as the continuation of something said before.
CONTINUATION_WORDS = _words("and also but then so plus or")
CONTINUATION_PAIRS = frozenset({("what", "about"), ("how", "about")})

# Pronouns and demonstratives that point at something outside the question.
REFERENCES = _words(
    "he him his she her hers they them their theirs it its this that these those there"
)
POSSESSIVES = _words("his its their theirs hers")

# Words that compare with an earlier answer: anywhere ("what else", "the same"), or
# only at the end, where they cannot be an intensifier ("too high") or part of a phrase.
RELATIVE_ANYWHERE = _words("else same also")
RELATIVE_AT_END = _words("too again instead either")

PREPOSITIONS = _words(
    """
    about after against among at before behind between by concerning during for from
    in into like of on over regarding since than through to toward towards under
    with without
    """
)
BE = _words("am is are was were be been being")
AUXILIARIES = BE | _words(
    "do does did have has had will would wo can ca could should may might must shall"
)
WH_WORDS = _words("what who whom whose which when where why how")
# "Is it true that ...": a dummy "it" refers to nothing.
IT_PREDICATES = _words(
    "true false possible impossible likely unlikely clear known necessary important "
    "expected reported said believed thought legal illegal safe"
)
# Lower-case words that join the parts of a name: "Bank of England", "Ursula von der Leyen".
NAME_CONNECTORS = _words("of de da del della der den van von la le du al bin el")

# Quoted phrases in straight, curly, low-9 and guillemet quotes. Single quotes must
# not touch a letter on the outside so that apostrophes are not taken for quotes; their
# length is bounded so that a text full of stray apostrophes is still scanned quickly.
_QUOTE = re.compile(
    r'"([^"]+)"'
    r"|\u201c([^\u201c\u201d]+)\u201d"
    r"|\u201e([^\u201c\u201d\u201e]+)[\u201c\u201d]"
    r"|\u00ab([^\u00ab\u00bb]+)\u00bb"
    r"|(?<![^\W_])\u2018(.{1,200}?)\u2019(?![^\W_])"
    r"|(?<![^\W_])'(.{1,200}?)'(?![^\W_])"
)


@dataclass(frozen=True, slots=True)
class _Span:
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Parsed:
    text: str
    tokens: tuple[QuestionToken, ...]
    names: tuple[_Span, ...]
    quotes: tuple[_Span, ...]


@dataclass(frozen=True, slots=True)
class _Term:
    text: str
    bases: tuple[str, ...]


def standalone_question(question: str, history: Sequence[str]) -> str:
    """The query to retrieve with: `question` itself, or it plus the context it leans on.

    `history` holds the earlier questions of the conversation, oldest first,
    preferably as this function rewrote them. A blank question comes back
    stripped (the caller decides what to do with it); a standalone one comes back
    exactly as given.
    """
    stripped = question.strip()
    if not stripped:
        return stripped
    turns = [turn.strip() for turn in history if turn.strip()]
    if not turns or followup_reason(stripped) is None:
        return question
    terms = _carried_terms(_parse(stripped), _context_turns(turns))
    return f"{stripped} ({', '.join(terms)})" if terms else question


def followup_reason(question: str) -> FollowupReason | None:
    """Which rule makes `question` lean on an earlier one, if any; None if it stands alone.

    Exposed so that a surprising rewrite can be explained by naming the rule behind it.
    """
    parsed = _parse(question.strip())
    if not parsed.tokens:
        return None
    for reason, applies in _RULES:
        if applies(parsed):
            return reason
    return None


def _starts_with_continuation(parsed: _Parsed) -> bool:
    bases = [token.base for token in parsed.tokens[:2]]
    return bases[0] in CONTINUATION_WORDS or tuple(bases) in CONTINUATION_PAIRS


def _has_unresolved_reference(parsed: _Parsed) -> bool:
    """A pronoun counts as resolved by a name earlier in the same question ("Did Rutte
    say he would go?"), except as the object of a preposition ("What did Putin say
    about it?"), where it almost always points at the previous topic."""
    tokens = parsed.tokens
    for i, token in enumerate(tokens):
        if not _is_reference(tokens, i):
            continue
        after_preposition = i > 0 and tokens[i - 1].base in PREPOSITIONS
        if after_preposition and token.base not in POSSESSIVES:
            return True
        if not any(span.start < token.start for span in (*parsed.names, *parsed.quotes)):
            return True
    return False


def _is_reference(tokens: Sequence[QuestionToken], i: int) -> bool:
    base = tokens[i].base
    if base not in REFERENCES:
        return False
    if base == "it":
        return not _is_dummy_it(tokens, i)
    if base == "that":
        return not _is_complementiser(tokens, i)
    if base == "there":
        return not _is_existential(tokens, i)
    return True


def _is_dummy_it(tokens: Sequence[QuestionToken], i: int) -> bool:
    following = [token.base for token in tokens[i + 1 : i + 3]]
    if following and following[0] in BE:
        following = following[1:]
    return bool(following) and following[0] in IT_PREDICATES


def _is_complementiser(tokens: Sequence[QuestionToken], i: int) -> bool:
    """In "said that prices rose" it introduces a clause; a "that" pointing back
    instead ends the question, follows a preposition, auxiliary or question word, or
    is followed by an auxiliary ("about that", "did that happen", "that was")."""
    if i + 1 == len(tokens):
        return False
    before = tokens[i - 1].base if i > 0 else ""
    pointing = PREPOSITIONS | AUXILIARIES | WH_WORDS
    return before not in pointing and tokens[i + 1].base not in AUXILIARIES


def _is_existential(tokens: Sequence[QuestionToken], i: int) -> bool:
    before = tokens[i - 1].base if i > 0 else ""
    after = tokens[i + 1].base if i + 1 < len(tokens) else ""
    return tokens[i].clitic in ("'s", "'re") or before in BE or after in BE


def _has_relative_word(parsed: _Parsed) -> bool:
    bases = [token.base for token in parsed.tokens]
    at_end = bases[-1] in RELATIVE_AT_END or bases[-2:] == ["as", "well"]
    return at_end or any(base in RELATIVE_ANYWHERE for base in bases)


def _is_ellipsis(parsed: _Parsed) -> bool:
    return not any(token.content for token in parsed.tokens)


def _is_short_without_name(parsed: _Parsed) -> bool:
    """Capitalisation is the only evidence of a name, so a question without lower-case
    letters (shouted, or in a script without case) is not judged by it."""
    if parsed.names or parsed.quotes or not any(ch.islower() for ch in parsed.text):
        return False
    content = sum(token.content for token in parsed.tokens)
    return content <= MAX_SHORT_CONTENT_WORDS and not _is_definition(parsed)


def _is_definition(parsed: _Parsed) -> bool:
    """A definition question names its own subject even though it is short: "What is
    inflation?" stands alone, "What was the outcome?" does not."""
    tokens = parsed.tokens
    bases = [token.base for token in tokens]
    if bases[0] == "define":
        return len(bases) > 1
    if bases[0] not in ("what", "who") or len(bases) < 2:
        return False
    if tokens[0].clitic == "'s":
        subject = bases[1:]
    elif bases[1] in BE:
        subject = bases[2:]
    elif bases[1] in ("do", "does") and bases[-1] == "mean":
        subject = bases[2:-1]
    else:
        return False
    return bool(subject) and subject[0] != "the" and subject[0] not in REFERENCES


_RULES: tuple[tuple[FollowupReason, Callable[[_Parsed], bool]], ...] = (
    ("continuation", _starts_with_continuation),
    ("reference", _has_unresolved_reference),
    ("relative", _has_relative_word),
    ("ellipsis", _is_ellipsis),
    ("short", _is_short_without_name),
)


def _context_turns(turns: Sequence[str]) -> list[str]:
    """The last question, and the one before when the last itself leaned on it; never
    more, so an old topic cannot leak past a new standalone question."""
    if len(turns) >= 2 and followup_reason(turns[-1]) is not None:
        return [turns[-1], turns[-2]]
    return [turns[-1]]


def _carried_terms(question: _Parsed, turns: Sequence[str]) -> list[str]:
    seen = {token.base for token in question.tokens}
    budget = MAX_CONTEXT_WORDS
    carried: list[str] = []
    for turn in turns:
        for term in _terms(_parse(turn)):
            if set(term.bases) <= seen or len(term.bases) > budget:
                continue
            carried.append(term.text)
            seen.update(term.bases)
            budget -= len(term.bases)
    return carried


def _terms(parsed: _Parsed) -> list[_Term]:
    """Most salient first, so that the cap drops plain words before names."""
    quotes = [_Term(f'"{q.text}"', _bases_within(parsed, q)) for q in parsed.quotes]
    names = [_Term(n.text, _bases_within(parsed, n)) for n in parsed.names]
    numbers = [_Term(t.text, (t.base,)) for t in parsed.tokens if t.number]
    words = [_Term(t.text, (t.base,)) for t in parsed.tokens if t.content and not t.number]
    return [term for term in (*quotes, *names, *numbers, *words) if term.bases]


def _bases_within(parsed: _Parsed, span: _Span) -> tuple[str, ...]:
    first = bisect_left(parsed.tokens, span.start, key=_start)
    inside = takewhile(lambda t: t.end <= span.end, parsed.tokens[first:])
    return tuple(token.base for token in inside)


def _start(token: QuestionToken) -> int:
    return token.start


def _parse(text: str) -> _Parsed:
    tokens = tuple(question_tokens(text))
    return _Parsed(text, tokens, _names(text, tokens), _quotes(text))


def _quotes(text: str) -> tuple[_Span, ...]:
    spans = []
    for match in _QUOTE.finditer(text):
        index = next(i for i, group in enumerate(match.groups(), start=1) if group is not None)
        inner = match.group(index).strip()
        if inner:
            spans.append(_Span(inner, match.start(index), match.end(index)))
    return tuple(spans)


def _names(text: str, tokens: Sequence[QuestionToken]) -> tuple[_Span, ...]:
    """A lone capitalised first word is sentence case, not evidence of a name,
    unless it is an acronym."""
    spans = []
    i = 0
    while i < len(tokens):
        if not _starts_name(tokens[i]):
            i += 1
            continue
        end = _name_end(text, tokens, i)
        if i > 0 or end > 1 or tokens[0].acronym:
            first, last = tokens[i], tokens[end - 1]
            spans.append(_Span(text[first.start : last.end], first.start, last.end))
        i = end
    return tuple(spans)


def _starts_name(token: QuestionToken) -> bool:
    return token.capitalised and (token.base not in QUESTION_STOPWORDS or token.acronym)


def _name_end(text: str, tokens: Sequence[QuestionToken], i: int) -> int:
    """One past the last token of the name starting at `i`."""
    end = i + 1
    while end < len(tokens) and _adjacent(text, tokens[end - 1], tokens[end]):
        if _starts_name(tokens[end]):
            end += 1
            continue
        bridge = _connectors_end(text, tokens, end)
        if bridge == end or bridge == len(tokens) or not _starts_name(tokens[bridge]):
            break
        end = bridge + 1
    return end


def _connectors_end(text: str, tokens: Sequence[QuestionToken], i: int) -> int:
    """One past a run of name connectors starting at `i` ("von der"), each followed
    by only spaces."""
    end = i
    while (
        end + 1 < len(tokens)
        and tokens[end].base in NAME_CONNECTORS
        and _adjacent(text, tokens[end], tokens[end + 1])
    ):
        end += 1
    return end


def _adjacent(text: str, left: QuestionToken, right: QuestionToken) -> bool:
    """Only spaces between them: punctuation or a possessive ends a name."""
    gap = text[left.end : right.start]
    return bool(gap) and gap.isspace()
