"""Sources that disagree: a deterministic check of the one value a question asks for.

News changes from one day to the next and outlets differ: one report says 107 died,
a later one 111. An answer that quotes only one of them is confidently wrong half
the time, so when a question asks for a count ("how many …", "number of …") or a
year ("when …", "what year …"), the sentences the answer could quote are read for
that value, and if articles of different outlets or dates give different values,
the answer cites one sentence for each and says they disagree.

What it catches: a number next to the word the question counts ("107 people",
"people … 107"; digits or number words up to twenty), and years for "when"
questions. What it misses: values far from the counted word, ranges and
approximations ("more than 100" vs "107" count as different), units and
conversions, disagreement about names or places, and reports that revise a number
within one article (an article's first value is taken as its claim).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from index.dedupe import canonical_order
from index.text import WORD, numbers_in, tokenize
from index.types import Article

_COUNT = re.compile(rf"\bhow\s+(?:many|much)\s+({WORD.pattern})|\bnumber\s+of\s+({WORD.pattern})")
_WHEN = re.compile(r"\bwhen\b|\bwhat\s+year\b|\bwhich\s+year\b|\bin\s+what\s+year\b")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_NEAR = 4  # words between a counted word and its number


@dataclass(frozen=True, slots=True)
class Statement:
    """A sentence, article.text[start:end], and the value it gives."""

    article: Article
    start: int
    end: int
    value: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """Different values for what the question asks, each with the sentences giving it."""

    about: str  # the counted word as the question says it, or "year"
    sides: tuple[tuple[str, tuple[Statement, ...]], ...]

    def describe(self, source: dict[tuple[str, int, int], int] | None = None) -> str:
        """'Sources disagree on the number of people: 107 (Coast Times, 2024-03-02) [1];
        111 (Valley Post, 2024-03-09) [2]', citation numbers given by span when known."""
        what = "the year" if self.about == "year" else f"the number of {self.about}"
        parts = []
        for value, said in self.sides:
            who = "; ".join(
                ", ".join(x for x in (s.article.source, s.article.date or "undated") if x)
                + _marker(source, s)
                for s in said
            )
            parts.append(f"{value} ({who})")
        return f"Sources disagree on {what}: " + " vs ".join(parts)


def asked_value(question: str) -> tuple[str, str] | None:
    """("count", counted word) or ("year", "year") when the question asks for one value."""
    folded = question.casefold()
    match = _COUNT.search(folded)
    if match:
        return "count", match.group(1) or match.group(2)
    if _WHEN.search(folded):
        return "year", "year"
    return None


def find_conflict(question: str, sentences: Sequence[tuple[Article, int, int]]) -> Conflict | None:
    """The disagreement among `sentences` (best first) about what `question` asks, if
    articles of different outlets or dates give different values; each article's
    first sentence giving a value is its claim."""
    asked = asked_value(question)
    if asked is None:
        return None
    kind, counted = asked
    stems = set(tokenize(counted)) if kind == "count" else set()
    claims: dict[str, Statement] = {}
    for article, start, end in sentences:
        if article.id in claims:
            continue
        text = article.text[start:end]
        value = _count(text, stems) if kind == "count" else _year(text)
        if value is not None:
            claims[article.id] = Statement(article, start, end, value)
    sides: dict[str, list[Statement]] = {}
    for claim in claims.values():
        sides.setdefault(claim.value, []).append(claim)
    if len(sides) < 2:
        return None
    outlets = {(c.article.source, c.article.date) for c in claims.values()}
    if len(outlets) < 2:  # one outlet on one day: a story's own details, not a dispute
        return None
    ordered = sorted(sides.items(), key=lambda side: min(map(_earliest, side[1])))
    return Conflict(counted, tuple((value, tuple(said)) for value, said in ordered))


def _count(text: str, stems: set[str]) -> str | None:
    """The number nearest to the counted word, within a few words of it."""
    if not stems:
        return None
    words = [(m.start(), m.group(0)) for m in WORD.finditer(text)]
    numbers = numbers_in(text)
    best: tuple[int, str] | None = None
    for offset, word in words:
        if not stems & set(tokenize(word)):
            continue
        for at, value in numbers:
            between = sum(1 for o, _ in words if min(at, offset) < o < max(at, offset))
            if between <= _NEAR and (best is None or between < best[0]):
                best = (between, value)
    return best[1] if best else None


def _earliest(said: Statement) -> tuple[float, int, str]:
    """Sides in the order they were reported: a developing story reads as it developed."""
    return canonical_order(said.article)


def _year(text: str) -> str | None:
    found = _YEAR.search(text)
    return found.group(1) if found else None


def _marker(numbers: dict[tuple[str, int, int], int] | None, said: Statement) -> str:
    if not numbers:
        return ""
    n = numbers.get((said.article.id, said.start, said.end))
    return f" [{n}]" if n is not None else ""
