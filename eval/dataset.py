"""Question sets for citation-accuracy evaluation, in any supported format.

Three formats are read, told apart by content rather than by file name, so a renamed
file still loads and a wrong file fails loudly instead of yielding zero questions:

- ``newsdesk``: JSONL, one question per line, whose gold evidence gives character
  offsets into the loaded articles (``squad-dev-subset/questions.jsonl``);
- ``squad``: JSONL in SQuAD's own shape, one question per line naming its article,
  paragraph and answer offsets (``squad-train/questions.jsonl``); the gold evidence
  is the sentence (index.sentences) holding the first answer's start;
- ``multihop-rag``: MultiHop-RAG's ``MultiHopRAG.json``, a JSON array whose evidence
  names an article by title and quotes a fact from it. The fact is located here, so
  all formats end up as the same spans.

A newsdesk or squad question may carry ``as_of`` (or ``date``): the day it is asked
on, which bounds publication dates and anchors "this week" (rag.when).

Gold evidence is checked against the articles actually loaded: offsets into another
version of an article would silently score every citation as wrong. A question whose
evidence does not check out is skipped with a `Problem` naming the file, the line (or
array index) and the field; the rest still load. Only a file that is unusable as a
whole raises `QuestionSetError`.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator

from index.dates import normalize_date
from index.jsonfile import JsonError, json_kind, jsonl_lines, parse_json
from index.records import TEXT_KEYS, first_error, invalid
from index.sentences import sentence_spans
from index.types import Article, Problem
from newsdesk.errors import NewsdeskError

FORMAT_NEWSDESK = "newsdesk"
FORMAT_SQUAD = "squad"
FORMAT_MULTIHOP = "multihop-rag"
ALL = "all"

EXPECTED = (
    "expected newsdesk or SQuAD questions (JSONL: one JSON object with a 'question' per "
    "line) or MultiHop-RAG questions (a JSON array of objects with 'query' and "
    "'evidence_list')"
)
NO_ANSWER = "Insufficient information."  # MultiHop-RAG's answer to a null_query
NULL_QUERY = "null_query"

_WHITESPACE = re.compile(r"\s+")
_PREVIEW = 60

Record = Mapping[str, object]


@dataclass(frozen=True)
class EvidenceItem:
    """A gold passage: `[start, end)` in an article's text, or the whole article (None/None).

    When offsets are given, `text == article.text[start:end]` always holds; for
    article-level evidence `text` is what the source quoted (a MultiHop-RAG fact that
    was not found in the body), kept so a person can see why it was not located.
    `answer_start` is the answer's offset in the article when the source gives one
    (SQuAD does), since a citation containing it is right even if sentence
    boundaries differ.
    """

    article_id: str
    start: int | None
    end: int | None
    text: str
    answer_start: int | None = None


@dataclass(frozen=True)
class Distractor:
    """The paragraph an unanswerable question was written against: it looks as if it
    answers, and it places the question in an article (and so in a split)."""

    article_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Question:
    """One evaluation question with its gold answers and evidence.

    `kind` says where it came from or what it tests: the SQuAD split for the
    newsdesk format ("SQuAD v1.1 dev"), the `question_type` for MultiHop-RAG.
    `as_of` is the ISO date the question is asked on, if it has one.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    answerable: bool
    evidence: tuple[EvidenceItem, ...]
    kind: str
    distractor: Distractor | None = None
    as_of: str | None = None

    @property
    def home_article(self) -> str | None:
        """The article that decides the question's split: its evidence's, else its
        distractor's."""
        if self.evidence:
            return self.evidence[0].article_id
        return self.distractor.article_id if self.distractor else None


@dataclass
class QuestionSet:
    """The questions that loaded, the problems with those that did not, and the file hash.

    `sha256` is over the file's bytes, so a report can name exactly which set it scored.
    """

    format: str  # FORMAT_NEWSDESK, FORMAT_SQUAD or FORMAT_MULTIHOP
    questions: list[Question]
    problems: list[Problem]
    sha256: str


class QuestionSetError(NewsdeskError, ValueError):
    """The file as a whole is unusable; the message names it and says why."""


class _Invalid(Exception):
    """One record is unusable: raised by the validators, turned into a `Problem`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def load_questions(path: str | Path, articles: Mapping[str, Article]) -> QuestionSet:
    """Load a question set in either format, checking its evidence against `articles`.

    `articles` maps article id to article, as loaded by `index.load.load_sources`.
    Raises `QuestionSetError` when the file cannot be read or is in neither format.
    """
    path = Path(path)
    where = path.as_posix()
    data = _read_bytes(path, where)
    text = _decode(data, where)
    start = text.lstrip()[:1]
    if start == "[":
        fmt = FORMAT_MULTIHOP
        questions, problems = _load_multihop(_multihop_items(text, where), where, path, articles)
    elif start == "{":
        first = _check_jsonl(text, where)
        squad = "paragraph" in first and "article_id" in first
        fmt = FORMAT_SQUAD if squad else FORMAT_NEWSDESK
        build: _Builder = partial(_squad_question, sentences={}) if squad else _newsdesk_question
        questions, problems = _load_jsonl(text, where, path, articles, build)
    elif not start:
        raise QuestionSetError(f"{where}: empty file; {EXPECTED}")
    else:
        preview = _preview(text.lstrip())
        raise QuestionSetError(f"{where}: not JSON or JSONL (it starts {preview}); {EXPECTED}")
    digest = hashlib.sha256(data).hexdigest()
    return QuestionSet(format=fmt, questions=questions, problems=problems, sha256=digest)


def load_splits(path: str | Path) -> dict[str, str]:
    """Article id -> split name, from a file like squad-dev-subset/splits.json: every
    key whose value is a list of article ids names a split ("train", "report")."""
    where = Path(path).as_posix()
    try:
        data = parse_json(_decode(_read_bytes(Path(path), where), where))
    except JsonError as exc:
        raise QuestionSetError(f"{where}: {exc}") from exc
    if not isinstance(data, dict):
        raise QuestionSetError(f"{where}: expected an object of split name -> article ids")
    splits: dict[str, str] = {}
    for name, ids in data.items():
        if not isinstance(ids, list):
            continue
        for article_id in ids:
            if not isinstance(article_id, str):
                raise QuestionSetError(f"{where}: {name}: expected article ids")
            if splits.setdefault(article_id, name) != name:
                raise QuestionSetError(f"{where}: {article_id!r} is in two splits")
    if not splits:
        raise QuestionSetError(f"{where}: names no split (no list of article ids)")
    return splits


def in_split(
    questions: Sequence[Question], splits: Mapping[str, str], split: str, where: str = ""
) -> tuple[list[Question], list[Problem]]:
    """The questions whose home article (`Question.home_article`) is in `split`; a
    question the splits cannot place is a problem, never silently dropped or kept."""
    if split == ALL:
        return list(questions), []
    if split not in splits.values():
        known = ", ".join(sorted(set(splits.values())))
        raise QuestionSetError(f"{where}: no split {split!r} (it has {known}, or use all)")
    kept: list[Question] = []
    problems: list[Problem] = []
    for question in questions:
        home = question.home_article
        if home is None or home not in splits:
            why = "no evidence or distractor article" if home is None else f"{home!r} in no split"
            message = f"question {question.id!r}: {why}; question skipped"
            problems.append(Problem(where, message, "split"))
        elif splits[home] == split:
            kept.append(question)
    return kept, problems


# --- reading and detecting -----------------------------------------------------


def _read_bytes(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise QuestionSetError(f"{where}: cannot read file: {exc.strerror or exc}") from exc


def _decode(data: bytes, where: str) -> str:
    """Strict UTF-8, as the article loader reads: a guessed encoding would shift quotes."""
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QuestionSetError(
            f"{where}: not valid UTF-8 (byte offset {exc.start + bom}); {EXPECTED}"
        ) from exc
    if "\x00" in text:
        raise QuestionSetError(f"{where}: contains a NUL byte (binary or UTF-16?); {EXPECTED}")
    return text


def _multihop_items(text: str, where: str) -> list[object]:
    """The array's items, if its first object is a MultiHop-RAG question.

    The first object decides, so one malformed question further on is a `Problem`
    while an article collection passed by mistake is refused outright.
    """
    try:
        value = parse_json(text)
    except JsonError as exc:
        raise QuestionSetError(f"{where}: {exc}; {EXPECTED}") from exc
    if not isinstance(value, list):  # cannot happen for text starting "[", but say so
        raise QuestionSetError(f"{where}: not a JSON array; {EXPECTED}")
    first = next((item for item in value if isinstance(item, dict)), None)
    if first is None:
        raise QuestionSetError(f"{where}: a JSON array with no objects; {EXPECTED}")
    if "query" not in first or "evidence_list" not in first:
        raise QuestionSetError(f"{where}: a JSON array of {_describe(first)}; {EXPECTED}")
    return value


def _check_jsonl(text: str, where: str) -> Record:
    """The first line holding a JSON object must be a question, which is returned;
    lines before it that are not objects become per-line problems when loaded."""
    first_error = ""
    for number, line in jsonl_lines(text):
        try:
            value = parse_json(line, number)
        except JsonError as exc:
            first_error = first_error or str(exc)
            continue
        if not isinstance(value, dict):
            continue
        if "question" in value:
            return value
        raise QuestionSetError(f"{where}:{number}: a JSON object of {_describe(value)}; {EXPECTED}")
    why = first_error or "no JSON object on any line"
    raise QuestionSetError(f"{where}: {why}; {EXPECTED}")


def _describe(record: Record) -> str:
    """What a record that is not a question looks like, so the error points at the mix-up."""
    if any(key in record for key in TEXT_KEYS):
        return "articles, not questions (pass it as an article source instead)"
    if "query" in record:
        return "MultiHop-RAG questions, which must come as one JSON array, not JSONL"
    if "question" in record:
        return "newsdesk questions, which must be JSONL (one object per line), not an array"
    keys = ", ".join(repr(str(key)) for key in list(record)[:6]) or "no keys"
    return f"unrecognised objects (keys: {keys})"


# --- newsdesk and squad formats (JSONL) -------------------------------------------

_Builder = Callable[[object, str, Mapping[str, Article]], Question]


def _load_jsonl(
    text: str, where: str, path: Path, articles: Mapping[str, Article], build: _Builder
) -> tuple[list[Question], list[Problem]]:
    questions: list[Question] = []
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for number, line in jsonl_lines(text):
        at = f"{where}:{number}"
        try:
            question = build(_parse_line(line), f"{path.stem}-{number}", articles)
        except _Invalid as exc:
            problems.append(Problem(at, f"{exc.message}; question skipped", exc.field or None))
            continue
        if question.id in first_line:
            message = f"duplicate id {question.id!r}, first on line {first_line[question.id]}"
            problems.append(Problem(at, f"{message}; question skipped", "id"))
            continue
        first_line[question.id] = number
        questions.append(question)
    return questions, problems


def _parse_line(line: str) -> object:
    try:
        return parse_json(line)
    except JsonError as exc:
        raise _Invalid("", exc.in_line) from exc


def _newsdesk_question(value: object, default_id: str, articles: Mapping[str, Article]) -> Question:
    """`answerable` defaults to having evidence, `kind` to the record's `source`."""
    record = _validated(_NewsdeskRecord, value)
    evidence = tuple(
        _newsdesk_evidence(item, f"evidence[{j}]", articles)
        for j, item in enumerate(record.evidence)
    )
    answerable = bool(evidence) if record.answerable is None else record.answerable
    return Question(
        record.id or default_id,
        record.question,
        tuple(record.answers),
        answerable,
        evidence,
        record.kind or record.source,
        _distractor(record.distractor, articles),
        _as_of(record.as_of, record.date),
    )


def _distractor(span: _Span | None, articles: Mapping[str, Article]) -> Distractor | None:
    if span is None:
        return None
    article = _known_article(span.article_id, "distractor", articles)
    if span.start is None or span.end is None:
        return Distractor(article.id, 0, len(article.text))
    _check_span(span.start, span.end, len(article.text), "distractor")
    return Distractor(article.id, span.start, span.end)


def _as_of(as_of: object, date: object) -> str | None:
    """The day the question is asked on: `as_of`, or `date` as a synonym."""
    key, value = ("as_of", as_of) if as_of is not None else ("date", date)
    try:
        return normalize_date(value)
    except ValueError as exc:
        raise _Invalid(key, str(exc)) from exc


def _squad_question(
    value: object,
    default_id: str,
    articles: Mapping[str, Article],
    sentences: dict[str, list[tuple[int, int]]],
) -> Question:
    """A SQuAD-shaped record: an answerable one's evidence is the sentence holding its
    first answer (answer_start kept); an unanswerable one's paragraph is its distractor.
    `sentences` caches each article's sentence spans across records."""
    record = _validated(_SquadRecord, value)
    question_id = record.id or default_id
    article = _known_article(record.article_id, "", articles)
    start, end = record.paragraph
    _check_span(start, end, len(article.text), "paragraph")
    found = _squad_answers(record.answers, article, start, end)
    answers = tuple(dict.fromkeys(text for text, _ in found))
    answerable = bool(found) if record.answerable is None else record.answerable
    kind = record.source
    as_of = _as_of(record.as_of, record.date)
    if not answerable:
        distractor = Distractor(article.id, start, end)
        return Question(question_id, record.question, answers, False, (), kind, distractor, as_of)
    if not found:
        raise _Invalid("answers", "an answerable question needs an answer")
    spans = sentences.get(article.id)
    if spans is None:
        spans = sentences[article.id] = sentence_spans(article.text)
    answer_start = found[0][1]
    first, last = _sentence_at(spans, answer_start)
    evidence = EvidenceItem(article.id, first, last, article.text[first:last], answer_start)
    return Question(question_id, record.question, answers, True, (evidence,), kind, None, as_of)


def _squad_answers(
    items: Sequence[_SquadAnswer], article: Article, low: int, high: int
) -> list[tuple[str, int]]:
    """Each answer with its offset in the article: as given (and checked), else its
    first occurrence in the paragraph."""
    found = []
    for j, item in enumerate(items):
        name = f"answers[{j}]"
        start = item.start
        if start is None:
            start = article.text.find(item.text, low, high)
            if start < 0:
                raise _Invalid(f"{name}.text", f"{_preview(item.text)} is not in the paragraph")
        elif article.text[start : start + len(item.text)] != item.text:
            raise _Invalid(f"{name}.start", f"{_preview(item.text)} is not at offset {start}")
        found.append((item.text, start))
    return found


def _sentence_at(spans: Sequence[tuple[int, int]], offset: int) -> tuple[int, int]:
    i = bisect_right(spans, offset, key=lambda span: span[0]) - 1
    if i < 0 or not spans[i][0] <= offset < spans[i][1]:
        raise _Invalid("answers[0].start", f"offset {offset} lies in no sentence")
    return spans[i]


def _newsdesk_evidence(item: _Evidence, name: str, articles: Mapping[str, Article]) -> EvidenceItem:
    """A span whose quoted text must equal the article's text at its offsets.

    Neither offset given means the article as a whole; then `text` is optional.
    """
    article = _known_article(item.article_id, name, articles)
    start, end = item.start, item.end
    if start is None and end is None:
        answer_start = _answer_start(item.answer_start, name, 0, len(article.text))
        return EvidenceItem(article.id, None, None, item.text or "", answer_start)
    if start is None or end is None:
        missing = "start" if start is None else "end"
        raise _Invalid(f"{name}.{missing}", "missing: give both start and end, or neither")
    _check_span(start, end, len(article.text), name)
    span = article.text[start:end]
    if item.text is None:
        raise _Invalid(f"{name}.text", "expected the quoted text, got null")
    if item.text != span:
        raise _Invalid(
            f"{name}.text",
            f"{_preview(item.text)} does not match article {article.id!r} at [{start}:{end}], "
            f"which reads {_preview(span)}",
        )
    answer_start = _answer_start(item.answer_start, name, start, end)
    return EvidenceItem(article.id, start, end, item.text, answer_start)


def _known_article(article_id: str, name: str, articles: Mapping[str, Article]) -> Article:
    article = articles.get(article_id)
    if article is None:
        raise _Invalid(
            _field(name, "article_id"),
            f"unknown article {article_id!r} (not among the {len(articles)} loaded articles)",
        )
    return article


def _check_span(start: int, end: int, length: int, name: str) -> None:
    if not 0 <= start < length:
        raise _Invalid(f"{name}.start", f"{start} is out of range for an article of {length} chars")
    if end > length:
        raise _Invalid(f"{name}.end", f"{end} is out of range for an article of {length} chars")
    if end <= start:
        raise _Invalid(f"{name}.end", f"{end} is not after start {start}")


def _answer_start(value: int | None, name: str, low: int, high: int) -> int | None:
    """An answer offset outside its evidence means the record is internally inconsistent."""
    if value is not None and not low <= value < high:
        raise _Invalid(f"{name}.answer_start", f"{value} is outside the evidence [{low}:{high}]")
    return value


# --- MultiHop-RAG format (JSON array) ------------------------------------------


def _load_multihop(
    items: list[object], where: str, path: Path, articles: Mapping[str, Article]
) -> tuple[list[Question], list[Problem]]:
    locator = _Locator(articles.values())
    questions: list[Question] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        at = f"{where}:[{index}]"
        try:
            question, notes = _multihop_question(item, f"{path.stem}-{index}", locator)
        except _Invalid as exc:
            problems.append(Problem(at, f"{exc.message}; question skipped", exc.field or None))
            continue
        if question is not None and question.id in seen:
            notes.append(_Invalid("id", f"duplicate id {question.id!r}; question skipped"))
            question = None
        kept = question is not None
        problems.extend(Problem(at, note.message, note.field or None, kept=kept) for note in notes)
        if question is not None:
            seen.add(question.id)
            questions.append(question)
    return questions, problems


def _multihop_question(
    item: object, default_id: str, locator: _Locator
) -> tuple[Question | None, list[_Invalid]]:
    """The question (None if no evidence could be placed) and notes on evidence not found.

    A null_query is unanswerable by design, so it keeps no evidence and needs none.
    """
    record = _validated(_MultihopRecord, item)
    question_id = record.id or default_id
    kind = record.question_type
    answers = () if record.answer.strip() in ("", NO_ANSWER) else (record.answer,)
    if kind == NULL_QUERY:
        return Question(question_id, record.query, answers, False, (), kind), []
    evidence, notes = _multihop_evidence(record.evidence_list, locator)
    if not evidence:
        notes.append(
            _Invalid(
                "evidence_list", "no evidence found among the loaded articles; question skipped"
            )
        )
        return None, notes
    return Question(question_id, record.query, answers, True, evidence, kind), notes


def _multihop_evidence(
    items: list[object], locator: _Locator
) -> tuple[tuple[EvidenceItem, ...], list[_Invalid]]:
    found: list[EvidenceItem] = []
    notes: list[_Invalid] = []
    for j, item in enumerate(items):
        name = f"evidence_list[{j}]"
        try:
            found.append(_multihop_item(item, name, locator))
        except _Invalid as exc:
            notes.append(exc)
    return tuple(dict.fromkeys(found)), notes  # the same fact twice is one piece of evidence


def _multihop_item(item: object, name: str, locator: _Locator) -> EvidenceItem:
    fact = _validated(_MultihopFact, item, name)
    evidence = locator.locate(fact)
    if evidence is None:
        raise _Invalid(f"{name}.title", f"no loaded article has the title {_preview(fact.title)}")
    return evidence


class _Locator:
    """Finds an evidence item's article by title and its fact's span in the body.

    Titles are matched exactly (both sides stripped, as the article loader strips
    them), then ignoring case and runs of whitespace. Among articles sharing a title,
    the one whose url, then date, then source match wins; then one that contains the
    fact; then the first loaded.
    """

    def __init__(self, articles: Iterable[Article]) -> None:
        self._exact: dict[str, list[Article]] = {}
        self._loose: dict[str, list[Article]] = {}
        self._collapsed: dict[str, tuple[str, list[int]]] = {}
        for article in articles:
            self._exact.setdefault(article.title.strip(), []).append(article)
            self._loose.setdefault(_loose_title(article.title), []).append(article)

    def locate(self, fact: _MultihopFact) -> EvidenceItem | None:
        title = fact.title
        candidates = self._exact.get(title.strip()) or self._loose.get(_loose_title(title))
        if not candidates:
            return None
        spans = [self._find(article, fact.fact) for article in candidates]
        best = max(
            range(len(candidates)),
            key=lambda i: (_metadata_match(candidates[i], fact), spans[i] is not None),
        )
        article, span = candidates[best], spans[best]
        if span is None:
            return EvidenceItem(article.id, None, None, fact.fact)
        return EvidenceItem(article.id, span[0], span[1], article.text[span[0] : span[1]])

    def _find(self, article: Article, fact: str) -> tuple[int, int] | None:
        """Verbatim first; then with whitespace runs collapsed on both sides, mapped back."""
        needle = fact.strip()
        if not needle:
            return None
        start = article.text.find(needle)
        if start >= 0:
            return start, start + len(needle)
        needle = _WHITESPACE.sub(" ", needle)
        collapsed, offsets = self._collapse(article)
        at = collapsed.find(needle)
        if at < 0:
            return None
        # The needle starts and ends with non-space, so both ends map to real characters.
        return offsets[at], offsets[at + len(needle) - 1] + 1

    def _collapse(self, article: Article) -> tuple[str, list[int]]:
        cached = self._collapsed.get(article.id)
        if cached is None:
            cached = self._collapsed[article.id] = _collapse_whitespace(article.text)
        return cached


def _collapse_whitespace(text: str) -> tuple[str, list[int]]:
    """`text` with each whitespace run as one space, and each kept char's original offset."""
    pieces: list[str] = []
    offsets: list[int] = []
    position = 0
    for match in _WHITESPACE.finditer(text):
        pieces.append(text[position : match.start()])
        offsets.extend(range(position, match.start()))
        pieces.append(" ")
        offsets.append(match.start())
        position = match.end()
    pieces.append(text[position:])
    offsets.extend(range(position, len(text)))
    return "".join(pieces), offsets


def _loose_title(title: str) -> str:
    return _WHITESPACE.sub(" ", title).strip().casefold()


def _metadata_match(article: Article, fact: _MultihopFact) -> tuple[bool, bool, bool]:
    """Which of url, date, source agree, in that order of weight: a url is near-unique."""
    url = fact.url
    source = fact.source
    return (
        isinstance(url, str) and bool(url.strip()) and url.strip() == article.url,
        article.date is not None and _normalized_date(fact.published_at) == article.date,
        isinstance(source, str) and bool(source.strip()) and source.strip() == article.source,
    )


def _normalized_date(value: object) -> str | None:
    """As the article loader stores dates, so both sides compare in one form."""
    try:
        return normalize_date(value)
    except ValueError:
        return None


# --- record models --------------------------------------------------------------
# Each model lists the keys it reads; the validators say what is wrong with a value in
# the words a person editing the file needs. Checks against the loaded articles (known
# ids, offsets in range, quotes that match) come after, in the builders above.


def _field(name: str, key: str) -> str:
    return f"{name}.{key}" if name and key else name or key


def _validated(model: type[_Model], value: object, name: str = "") -> _Model:
    """`value` as `model`, or `_Invalid` naming the first bad field (within `name`)."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        field, message = first_error(exc)
        raise _Invalid(_field(name, field), message) from None


_WRONG = object()  # as `null=`: null is as wrong as any other value that `ok` refuses


def _expect(expected: str, ok: Callable[[object], bool], null: object = _WRONG) -> BeforeValidator:
    """A check for one kind of value: "expected {expected}, got an array". An absent key
    reads as null, which becomes `null` unless that is _WRONG (the key is required)."""

    def check(value: object) -> object:
        if value is None and null is not _WRONG:
            return null
        if not ok(value):
            raise invalid(f"expected {expected}, got {json_kind(value)}")
        return value

    return BeforeValidator(check)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _text(value: object) -> object:
    if not isinstance(value, str):
        raise invalid(f"expected text, got {json_kind(value)}")
    if not value.strip():
        raise invalid("blank")
    return value.strip()


def _question_id(value: object) -> object:
    """Ids key the per-question results, so only strings and integers are accepted."""
    if value is None or isinstance(value, str):
        return (value or "").strip()
    if _is_int(value):
        return str(value)
    raise invalid(f"expected a string or integer, got {json_kind(value)}")


def _article_id(value: object) -> object:
    if _is_int(value):
        return str(value)  # the article loader accepts integer ids too
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"expected an article id, got {json_kind(value)}")
    return value


def _is_pair(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value)


Str = Annotated[str, _expect("a string", _is_str)]
OptionalStr = Annotated[str, _expect("a string", _is_str, null="")]
Quote = Annotated[str | None, _expect("a string", _is_str, null=None)]
Text = Annotated[str, BeforeValidator(_text)]  # required, stripped
QuestionId = Annotated[str, BeforeValidator(_question_id)]  # "" when not given
ArticleId = Annotated[str, BeforeValidator(_article_id)]
Flag = Annotated[bool | None, _expect("true or false", lambda v: isinstance(v, bool), null=None)]
Offset = Annotated[int | None, _expect("a character offset", _is_int, null=None)]
Span = Annotated[tuple[int, int], _expect("[start, end]", _is_pair)]
_Item = TypeVar("_Item")
Array = Annotated[list[_Item], _expect("an array", lambda v: isinstance(v, list), null=())]


class _Record(BaseModel):
    """A JSON object in a question file. Every key a model names is read as
    `.get(key)`, so an absent key reaches its validator as null, as in JSON."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise invalid(f"expected a JSON object, got {json_kind(value)}")
        return {name: value.get(name) for name in cls.model_fields}


_Model = TypeVar("_Model", bound=_Record)


class _Span(_Record):
    """A passage: an article and, optionally, offsets into its text."""

    article_id: ArticleId
    start: Offset
    end: Offset


class _Evidence(_Span):
    text: Quote  # required with offsets, checked against the article
    answer_start: Offset


class _NewsdeskRecord(_Record):
    question: Text
    id: QuestionId
    answers: Array[Str]
    evidence: Array[_Evidence]
    answerable: Flag
    kind: OptionalStr
    source: OptionalStr
    distractor: _Span | None
    as_of: object
    date: object


class _SquadAnswer(_Record):
    text: Text
    start: Offset


class _SquadRecord(_Record):
    question: Text
    id: QuestionId
    article_id: ArticleId
    paragraph: Span
    answers: Array[_SquadAnswer]
    answerable: Flag
    source: OptionalStr
    as_of: object
    date: object


class _MultihopRecord(_Record):
    query: Text
    id: QuestionId
    question_type: OptionalStr
    answer: OptionalStr
    evidence_list: Array[object]


class _MultihopFact(_Record):
    """An evidence item; url, date and source only help choose among equal titles."""

    title: Text
    fact: OptionalStr
    url: object
    published_at: object
    source: object


def _preview(text: str) -> str:
    """A short quote of `text` for a message; long spans would bury the point."""
    if len(text) <= _PREVIEW:
        return repr(text)
    return repr(text[: _PREVIEW - 3] + "...")
