"""Time in questions: "in March 2024", "last month", "latest", read without a model.

A news question often names a time: when the articles were published ("what did
the minister say in 2010"), or that the newest account is wanted ("latest"). This
module finds such expressions with a few patterns, resolves the dates in them with
`dateparser` (English only, `PREFER_DATES_FROM = past`, relative to the as-of day:
deterministic and offline), and turns them into what retrieval understands:

- a date range ("in March 2024" → 2024-03-01 to 2024-03-31, "before 2010" → up to
  2009-12-31, "last week" → the calendar week before the as-of day) that becomes a
  filter, but only when some article in scope is dated in it: otherwise the words are
  about the events, not the publication ("the Royal Proclamation of 1763", any year
  in a collection without dates), and stay part of the question;
- a recency preference ("latest", "most recent", "currently", "now"): among the
  sentences good enough to answer, the newest article's come first (rag.answer);
- a note for what cannot be placed: "before the summit" names an event, whose date
  this module does not know, so it filters nothing and says so.

Patterns find the expressions rather than `dateparser.search`, which reads too much
as a date ("1990s" becomes 1990 seconds ago, "may" a month). Weak shapes, a bare
year or month name, count only after a time preposition ("in 2010", "since May").
Weekdays ("on Friday") are not read: in an archive they mean the Friday of the
article, not the last one before today.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from dateutil.relativedelta import relativedelta

from index.reader import ArticleTable
from index.text import NUMBER_WORDS, QUESTION_STOPWORDS, tokenize
from rag.retrieve import Filters
from rag.types import TimeReading

if TYPE_CHECKING:  # dateparser costs 0.1 s to import: only when a question has a date
    from dateparser.date import DateDataParser

Kind = Literal["in", "before", "after", "since", "until", "join"]
Undated = Literal["exclude", "include"]

_PREPOSITIONS: dict[str, Kind] = {
    "in": "in",
    "during": "in",
    "on": "in",
    "from": "in",
    "throughout": "in",
    "within": "in",
    "over": "in",
    "between": "in",
    "before": "before",
    "prior to": "before",
    "earlier than": "before",
    "ahead of": "before",
    "after": "after",
    "later than": "after",
    "since": "since",
    "until": "until",
    "till": "until",
    "through": "until",
    "up to": "until",
    "by": "until",
    "as of": "until",
    "and": "join",  # the second half of "between A and B"
    "to": "join",  # "from A to B"
}
_PREP = "|".join(p.replace(" ", r"\s+") for p in sorted(_PREPOSITIONS, key=len, reverse=True))
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_FULL_MONTH = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december)"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?(?!\d)"
_YEAR = r"(?:1[6-9]|20)\d\d"
_COUNT = r"(?:\d{1,3}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_UNIT = r"(?:day|week|month|year)s?"
_END = r"(?![\w-])"

# Alternatives in order: at one position the first that matches wins.
_SHAPES = (
    ("iso", rf"{_YEAR}-\d\d-\d\d"),
    ("day", rf"{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?"),
    ("day", rf"{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?"),
    ("month", rf"{_MONTH},?\s+{_YEAR}"),
    ("ago", rf"{_COUNT}\s+{_UNIT}\s+ago"),
    # "the past 3 weeks", "the last year": counted back from today. "last year": the
    # calendar year before this one.
    ("rolling", rf"(?:the\s+)?(?:past|last|previous)\s+{_COUNT}\s+{_UNIT}"),
    ("rolling", r"(?:the\s+)?past\s+(?:week|month|year)"),
    ("rolling", r"the\s+(?:last|previous)\s+(?:week|month|year)"),
    ("calendar", r"(?:last|this|previous)\s+(?:week|month|year)"),
    ("calendar", r"yesterday|today"),
    ("decade", r"(?:the\s+)?(?:1[6-9]|20)\d0'?s"),
    ("weak", rf"{_FULL_MONTH}|{_YEAR}"),
)
_EXPRESSION = re.compile(
    rf"(?<![\w-])(?:(?P<prep>{_PREP})\s+(?:the\s+year\s+|the\s+month\s+of\s+)?)?"
    rf"(?P<date>{'|'.join(f'(?P<{kind}{i}>{shape})' for i, (kind, shape) in enumerate(_SHAPES))})"
    rf"{_END}",
    re.IGNORECASE,
)
_RECENCY = re.compile(
    r"(?<![\w-])(?:the\s+)?(?P<word>latest|newest|most\s+recent(?:ly)?|recent(?:ly)?|lately"
    r"|currently|current|nowadays|these\s+days|right\s+now|now|up[\s-]to[\s-]date)(?![\w-])",
    re.IGNORECASE,
)
# An event as a time: "before the summit", "since Brexit". Up to four words, cut at the
# first stopword ("during the summit in Paris" → "the summit").
_EVENT = re.compile(
    r"(?<![\w-])(?P<prep>before|after|since|until|during|ahead\s+of|prior\s+to|following(?=\s+the))"
    r"\s+(?P<event>(?:(?:the|a|an)\s+)?[^\W\d_][\w'\u2019-]*(?:\s+[^\W\d_][\w'\u2019-]*){0,3})",
    re.IGNORECASE,
)
# Two dates with only a slash or an en dash (U+2013) between them are a range: "June/July
# 1754", "2010/2012" (a hyphen cannot: "2010-2012" is read as no date at all).
_RANGE_MARK = re.compile(r"\s*[/\u2013]\s*")
_STEPS = {
    "day": relativedelta(days=1),
    "week": relativedelta(weeks=1),
    "month": relativedelta(months=1),
    "year": relativedelta(years=1),
}


@dataclass(frozen=True, slots=True)
class Expression:
    """A time expression of the question, resolved to the days it allows (inclusive)."""

    phrase: str  # as written, with its preposition: "in March 2024"
    start: int
    end: int
    since: date | None
    until: date | None


@dataclass(frozen=True, slots=True)
class Reading:
    """What a question says about time, before it meets a collection."""

    expressions: tuple[Expression, ...] = ()
    recency: tuple[tuple[str, int, int], ...] = ()  # ("latest", start, end)
    unplaced: tuple[str, ...] = ()  # events without a known date: "before the summit"
    unread: tuple[str, ...] = ()  # looked like a date, was none: "31 February 2024"

    @property
    def since(self) -> date | None:
        days = [e.since for e in self.expressions if e.since]
        return max(days) if days else None

    @property
    def until(self) -> date | None:
        days = [e.until for e in self.expressions if e.until]
        return min(days) if days else None


def read_time(question: str, today: date) -> Reading:
    """The time expressions of `question`; relative ones ("last month") count from `today`."""
    found: list[tuple[Kind | None, str, re.Match[str]]] = []
    for match in _EXPRESSION.finditer(question):
        prep = match.group("prep")
        kind = _PREPOSITIONS[_spaced(prep)] if prep else None
        if (
            kind is None
            and found
            and _RANGE_MARK.fullmatch(question, found[-1][2].end(), match.start())
        ):
            kind = "join"
        shape = next(name.rstrip("0123456789") for name, value in _groups(match) if value)
        if shape == "weak" and kind is None:
            continue  # "2030 target", "May I ask": a bare year or month is no time
        found.append((kind, shape, match))
    expressions: list[Expression] = []
    written: list[str] = []  # the date text of each expression, less its preposition
    unread: list[str] = []
    for kind, shape, match in found:
        days = _resolve(shape, match.group("date"), today)
        if days is None:
            unread.append(match.group(0))
            continue
        if kind == "join":  # "between 2010 and 2012", "from March to May 2024"
            last = expressions[-1] if expressions else None
            if last is not None and _between(question, last.end, match.start()):
                phrase = question[last.start : match.end()]
                since = _first_day(written[-1], match.group("date"), today) or last.since
                until = _capped(since, days[1], today)
                expressions[-1] = Expression(phrase, last.start, match.end(), since, until)
                continue
            if shape == "weak":
                continue  # "rose to 2010 levels"
            kind = None
        since, until = _bounds(kind, days)
        until = _capped(since, until, today)
        expressions.append(Expression(match.group(0), match.start(), match.end(), since, until))
        written.append(match.group("date"))
    taken = [(e.start, e.end) for e in expressions]
    recency = tuple(
        (m.group("word"), m.start(), m.end())
        for m in _RECENCY.finditer(question)
        if not _overlaps(m.start(), m.end(), taken)
    )
    unplaced = tuple(_events(question, [*taken, *((s, e) for _, s, e in recency)]))
    return Reading(tuple(expressions), recency, unplaced, tuple(unread))


@dataclass(frozen=True, slots=True)
class Placed:
    """A question placed in time: what to retrieve with, under which filters, and why."""

    query: str  # for retrieval and sentence scoring: time words that became filters are out
    filters: Filters
    recency: bool
    reading: TimeReading | None
    notes: tuple[str, ...]


def place_in_time(
    question: str,
    query: str,
    filters: Filters,
    articles: ArticleTable,
    undated: Undated = "exclude",
    as_of: date | None = None,
    today: date | None = None,
) -> Placed:
    """Apply what `question` says about time to `filters` and `query`.

    `as_of` (answer.as_of) gives way to `filters.as_of` (--as-of); either is an upper
    bound on publication dates and the day relative expressions count from. A date
    filter the user gave (`filters.since`/`until`) wins over one read in the question.
    """
    if filters.as_of is None and as_of is not None:
        filters = replace(filters, as_of=as_of.isoformat())
    base = date.fromisoformat(filters.as_of[:10]) if filters.as_of else today or date.today()
    reading = read_time(question, base)
    notes: list[str] = []
    applied: list[tuple[str, int, int]] = []
    since, until = reading.since, reading.until
    phrases = [e.phrase for e in reading.expressions]
    shown = ", ".join(f"'{p}'" for p in phrases)
    if phrases and (filters.since or filters.until):
        notes.append(f"{shown} in the question was not applied: the date filter given wins.")
        since = until = None
    elif phrases:
        dated = _range_filters(filters, since, until)
        if since is not None and until is not None and since > until:
            notes.append(f"Read {shown} as no possible date: nothing matches it.")
            filters = dated
            applied += [(e.phrase, e.start, e.end) for e in reading.expressions]
        elif (dated.admitted(articles) & articles.dated).any():
            filters = dated
            applied += [(e.phrase, e.start, e.end) for e in reading.expressions]
        else:
            notes.append(
                f"{shown} was read as part of the question, not as a date filter: "
                f"no article here is dated {_span_text(since, until)}."
            )
            since = until = None
    recency = bool(reading.recency)
    if recency and not (filters.admitted(articles) & articles.dated).any():
        recency = False
        words = ", ".join(f"'{w}'" for w, _, _ in reading.recency)
        notes.append(f"{words}: no article in scope is dated, so none can be preferred as newer.")
    if recency:
        applied += reading.recency
    for event in reading.unplaced:
        notes.append(f"Could not place '{event}' in time (no date is known for it): no filter.")
    for text in reading.unread:
        notes.append(f"'{text}' looks like a date but is none; it sets no date filter.")
    read = _describe(since, until, recency, [p for p, _, _ in applied])
    notes = [read, *notes] if read else notes
    notes += _scope_notes(filters, articles, undated)
    timed = applied or filters.as_of
    return Placed(
        query=_without(query, question, applied),
        filters=filters,
        recency=recency,
        reading=TimeReading(
            phrases=[p for p, _, _ in sorted(applied, key=lambda a: a[1])],
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
            recency=recency,
            as_of=filters.as_of,
        )
        if timed
        else None,
        notes=tuple(notes),
    )


def _scope_notes(filters: Filters, articles: ArticleTable, undated: Undated) -> list[str]:
    """What the date bounds, wherever they came from, keep out of the answer."""
    notes = []
    if filters.as_of:
        notes.append(
            f"As of {filters.as_of}: articles dated later are left out, and relative dates "
            "count back from it."
        )
    left_out = _undated_left_out(filters, articles) if undated == "exclude" else 0
    if left_out:
        were = "undated article was" if left_out == 1 else "undated articles were"
        notes.append(
            f"{left_out} {were} left out by the date filter "
            '(retrieval.undated = "include" keeps them).'
        )
    return notes


def _groups(match: re.Match[str]) -> Iterable[tuple[str, str | None]]:
    return ((name, value) for name, value in match.groupdict().items() if name[-1].isdigit())


def _spaced(text: str) -> str:
    return " ".join(text.lower().split())


def _between(text: str, end: int, start: int) -> bool:
    """Only spaces (and a dash or slash) between two halves of a range: "March - May 2024"."""
    return not text[end:start].strip(" \t-\u2013/")


def _overlaps(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


def _first_day(first: str, second: str, today: date) -> date | None:
    """The start of a range's first half, in the year its second half names: "from
    March to May 2023" starts in March 2023 whatever the as-of day. None: no year to lend."""
    lent = re.search(_YEAR, second)
    if lent is None or re.search(_YEAR, first):
        return None
    days = _resolve("month", f"{first} {lent.group()}", today)
    return days[0] if days else None


def _capped(since: date | None, until: date | None, today: date) -> date | None:
    """ "This year" ends today: nothing is published after the as-of day. A range wholly
    after it ("in 2030") is kept as it is, to be reported as matching nothing."""
    if until is None or (since is not None and since > today):
        return until
    return min(until, today)


def _bounds(kind: Kind | None, days: tuple[date, date]) -> tuple[date | None, date | None]:
    first, last = days
    if kind == "before":
        return None, first - timedelta(days=1)
    if kind == "after":
        return last + timedelta(days=1), None
    if kind == "since":
        return first, None
    if kind == "until":
        return None, last
    return first, last


def _resolve(shape: str, text: str, today: date) -> tuple[date, date] | None:
    """The first and last day an expression covers, or None when it is no real date."""
    words = _spaced(text).removeprefix("the ")
    if shape == "decade":
        start = int(words[:4])
        return date(start, 1, 1), date(start + 9, 12, 31)
    if shape == "rolling":
        parts = words.split()[1:]  # "past 3 weeks" → ["3", "weeks"]
        count = _count(parts[0]) if len(parts) == 2 else 1
        return today - _STEPS[parts[-1].rstrip("s")] * count, today
    parsed = _parser(today).get_date_data(words)
    if parsed.date_obj is None or parsed.period is None:
        return None
    return _period(parsed.date_obj.date(), parsed.period)


def _count(word: str) -> int:
    """Digits or a number word: "3", "three", "a" (as in "a week ago")."""
    return 1 if word in ("a", "an") else int(NUMBER_WORDS.get(word, word))


def _period(day: date, period: str) -> tuple[date, date] | None:
    if period == "day":
        return day, day
    if period == "week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    if period == "month":
        return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])
    if period == "year":
        return date(day.year, 1, 1), date(day.year, 12, 31)
    return None  # "time": an instant ("now" is recency, not a range)


def _parser(today: date) -> DateDataParser:
    from dateparser.date import DateDataParser

    return DateDataParser(
        languages=["en"],
        settings={
            "RELATIVE_BASE": datetime(today.year, today.month, today.day),
            "PREFER_DATES_FROM": "past",
            "PREFER_DAY_OF_MONTH": "first",
            "RETURN_TIME_AS_PERIOD": True,
            "TIMEZONE": "UTC",
            "RETURN_AS_TIMEZONE_AWARE": False,
            # Only our shapes reach it; no timestamps, custom or space-less formats.
            "PARSERS": ["relative-time", "absolute-time"],
        },
    )


def _events(question: str, taken: list[tuple[int, int]]) -> Iterable[str]:
    for match in _EVENT.finditer(question):
        if _overlaps(match.start(), match.end(), taken):
            continue
        words = match.group("event").split()
        kept = words[:1] if words[0].lower() in ("the", "a", "an") else []
        for word in words[len(kept) :]:
            if word.lower().strip("'\u2019") in QUESTION_STOPWORDS:
                break
            kept.append(word)
        if len(kept) > (1 if kept and kept[0].lower() in ("the", "a", "an") else 0):
            yield f"{match.group('prep')} {' '.join(kept)}"


def _range_filters(filters: Filters, since: date | None, until: date | None) -> Filters:
    return replace(
        filters,
        since=since.isoformat() if since else None,
        until=until.isoformat() if until else None,
    )


def _span_text(since: date | None, until: date | None) -> str:
    if since and until:
        return f"from {since} to {until}"
    if since:
        return f"on or after {since}"
    return f"on or before {until}"


def _describe(since: date | None, until: date | None, recency: bool, phrases: list[str]) -> str:
    parts = []
    if since or until:
        parts.append(f"articles {_span_text(since, until)}")
    if recency:
        parts.append("the newest first among equally good answers")
    if not parts:
        return ""
    said = ", ".join(f"'{p}'" for p in phrases)
    return f"Read as: {'; '.join(parts)} ({said})."


def _without(query: str, question: str, spans: Iterable[tuple[str, int, int]]) -> str:
    """The query less the time words that became a filter or a preference: a date in
    the question would only lower every sentence's term coverage, since answers rarely
    repeat it. Kept as is when nothing else would remain."""
    if not query.startswith(question):
        return query
    cut = question
    for _, start, end in sorted(spans, key=lambda s: -s[1]):
        cut = cut[:start] + " " + cut[end:]
    cut = re.sub(r"\s+([?.!,;:])", r"\1", " ".join(cut.split()))
    return cut + query[len(question) :] if tokenize(cut) else query


def _undated_left_out(filters: Filters, articles: ArticleTable) -> int:
    if not filters.dated:
        return 0
    return int(filters.undated(articles).sum())
