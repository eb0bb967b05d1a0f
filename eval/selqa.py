"""SelQA answer sentence selection (Jurczyk, Zhai, Choi 2016, arXiv:1606.08513) as an
evaluation of the one step our citations rest on: which sentence of a passage answers.

A SelQA file is a JSON array; each record is a question, the sentences of one
Wikipedia section (`candidates`, in order) and the indices of those that answer it
(`answers`, never empty). It is recognised by content, like the other question sets.
A scorer gives every candidate a score; the candidates are ranked by it and scored
as the task is published: MRR, MAP, and accuracy@1 (the top sentence answers), with
a 95% bootstrap interval over questions. Two baselines stand beside the production
scorer: MiniLM cosine (`cosine_scorer`) and the lead sentence (`lead_scorer`), since
a figure means little without what the trivial choice gets on the same questions.

No articles and no index are involved: the candidates are the passage.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import numpy as np

from index.embed import Embedder
from index.jsonfile import JsonError, parse_json
from index.types import Problem
from newsdesk.clikit import EXIT_SKIPPED, reported, settings_from
from newsdesk.errors import NewsdeskError
from newsdesk.settings import Settings

Scorer = Callable[[str, Sequence[str]], Sequence[float]]
"""(question, candidate sentences) -> one score per candidate, higher is better."""

FORMAT_SELQA = "selqa"
BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95
_REQUIRED = ("question", "candidates", "answers")


class SelqaError(NewsdeskError, ValueError):
    """The file as a whole is not a usable SelQA set; the message names it and says why."""


@dataclass(frozen=True, slots=True)
class SelqaQuestion:
    index: int  # position in the file's array, for messages
    question: str
    article: str
    section: str
    topic: str
    q_types: tuple[str, ...]
    is_paraphrase: bool
    candidates: tuple[str, ...]
    answers: frozenset[int]


@dataclass(frozen=True, slots=True)
class SelqaSet:
    questions: list[SelqaQuestion]
    problems: list[Problem]  # records skipped, each naming the file and the record index
    sha256: str


@dataclass(frozen=True, slots=True)
class Selection:
    """How one scorer ranked one question's candidates."""

    reciprocal_rank: float
    average_precision: float
    top_correct: bool


# --- reading -------------------------------------------------------------------


def is_selqa(path: str | Path) -> bool:
    """Whether the file is a JSON array whose first object is a SelQA record. Only that
    object is decoded; anything unreadable is "no", for the other loaders to explain."""
    try:
        text = _text(Path(path))
    except (OSError, SelqaError):
        return False
    first = _first_item(text)
    return isinstance(first, dict) and all(key in first for key in _REQUIRED)


def load_selqa(path: str | Path) -> SelqaSet:
    """Every well-formed record; a bad one is skipped as a Problem at `FILE[INDEX]`.
    Raises SelqaError when the file cannot be read or is not SelQA at all."""
    path = Path(path)
    where = path.as_posix()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SelqaError(f"{where}: cannot read file: {exc.strerror or exc}") from exc
    text = _decode(data, where)
    try:
        items = parse_json(text)
    except JsonError as exc:
        raise SelqaError(f"{where}: {exc}") from exc
    if not isinstance(items, list) or not items:
        raise SelqaError(f"{where}: expected a JSON array of SelQA records")
    questions: list[SelqaQuestion] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        try:
            questions.append(_record(item, index))
        except _Invalid as exc:
            problems.append(
                Problem(f"{where}[{index}]", f"{exc}; question skipped", exc.field or None)
            )
    if not questions:
        raise SelqaError(f"{where}: no usable SelQA record (first problem: {problems[0]})")
    return SelqaSet(questions, problems, hashlib.sha256(data).hexdigest())


class _Invalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _text(path: Path) -> str:
    return _decode(path.read_bytes(), path.as_posix())


def _decode(data: bytes, where: str) -> str:
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SelqaError(f"{where}: not valid UTF-8 (byte offset {exc.start + bom})") from exc


def _first_item(text: str) -> object:
    body = text.lstrip()
    if not body.startswith("["):
        return None
    rest = body[1:].lstrip()
    try:
        item, _ = json.JSONDecoder().raw_decode(rest)
    except (json.JSONDecodeError, RecursionError):
        return None
    return item


def _record(item: object, index: int) -> SelqaQuestion:
    if not isinstance(item, dict):
        raise _Invalid("", f"expected a JSON object, got {type(item).__name__}")
    question = item.get("question")
    if not isinstance(question, str) or not question.strip():
        raise _Invalid("question", "missing or empty")
    candidates = item.get("candidates")
    if (
        not isinstance(candidates, list)
        or not candidates
        or not all(isinstance(c, str) for c in candidates)
    ):
        raise _Invalid("candidates", "expected a non-empty list of sentences")
    answers = item.get("answers")
    if not isinstance(answers, list) or not answers:
        raise _Invalid("answers", "expected a non-empty list of candidate indices")
    for answer in answers:
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise _Invalid("answers", f"{answer!r} is not a candidate index")
        if not 0 <= answer < len(candidates):
            raise _Invalid("answers", f"index {answer} is out of range (0-{len(candidates) - 1})")
    q_types = item.get("q_types", [])
    if not isinstance(q_types, list) or not all(isinstance(t, str) for t in q_types):
        raise _Invalid("q_types", "expected a list of strings")
    paraphrase = item.get("is_paraphrase", False)
    if not isinstance(paraphrase, bool):
        raise _Invalid("is_paraphrase", f"expected true or false, got {paraphrase!r}")
    return SelqaQuestion(
        index=index,
        question=question,
        article=_string(item, "article"),
        section=_string(item, "section"),
        topic=_string(item, "topic"),
        q_types=tuple(q_types),
        is_paraphrase=paraphrase,
        candidates=tuple(candidates),
        answers=frozenset(answers),
    )


def _string(item: Mapping[str, object], key: str) -> str:
    value = item.get(key, "")
    if not isinstance(value, str):
        raise _Invalid(key, f"expected a string, got {type(value).__name__}")
    return value


def without_articles(
    questions: Sequence[SelqaQuestion], titles: Sequence[str]
) -> tuple[list[SelqaQuestion], dict[str, int]]:
    """The questions about none of `titles` (case-insensitive), and how many each title
    removed: an article shared with another evaluation set must not be counted twice."""
    wanted = {title.strip().casefold(): title for title in titles}
    removed = dict.fromkeys(wanted.values(), 0)
    kept = []
    for question in questions:
        title = wanted.get(question.article.strip().casefold())
        if title is None:
            kept.append(question)
        else:
            removed[title] += 1
    return kept, removed


# --- scoring -------------------------------------------------------------------


def selection(scores: Sequence[float], answers: frozenset[int]) -> Selection:
    """The ranking a scorer's scores give, judged against the answer indices. Ties keep
    candidate order, so a scorer that cannot tell sentences apart is the lead baseline."""
    values = [float(s) for s in scores]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"scores must be finite numbers, got {values}")
    order = sorted(range(len(values)), key=lambda i: -values[i])
    ranks = [rank for rank, i in enumerate(order, start=1) if i in answers]
    precision = [hit / rank for hit, rank in enumerate(ranks, start=1)]
    return Selection(1 / ranks[0], sum(precision) / len(ranks), order[0] in answers)


def select_all(
    questions: Sequence[SelqaQuestion],
    scorer: Scorer,
    progress: Callable[[], None] | None = None,
) -> list[Selection]:
    rows = []
    for question in questions:
        scores = scorer(question.question, question.candidates)
        if len(scores) != len(question.candidates):
            raise ValueError(
                f"the scorer gave {len(scores)} scores for {len(question.candidates)} "
                f"candidates (record {question.index})"
            )
        rows.append(selection(scores, question.answers))
        if progress:
            progress()
    return rows


def summary(rows: Sequence[Selection], seed: int = 0) -> dict[str, Any]:
    """MRR, MAP and accuracy@1 with 95% percentile-bootstrap intervals over questions
    (seeded: the same rows always give the same interval)."""
    columns = {
        "mrr": [r.reciprocal_rank for r in rows],
        "map": [r.average_precision for r in rows],
        "accuracy@1": [float(r.top_correct) for r in rows],
    }
    out: dict[str, Any] = {"questions": len(rows)}
    for name, values in columns.items():
        out[name] = round(float(np.mean(values)), 4)
        out[f"{name}_ci95"] = bootstrap_interval(values, seed=seed)
    return out


def bootstrap_interval(
    values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> list[float]:
    """The central 95% of the mean over resampled question sets."""
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return [round(float(low), 4), round(float(high), 4)]


# --- scorers -------------------------------------------------------------------


def lead_scorer(question: str, candidates: Sequence[str]) -> list[float]:
    """The trivial baseline: the section's first sentence, then the next, and so on."""
    return [-float(i) for i in range(len(candidates))]


@functools.cache
def cosine_scorer(embedder: Embedder) -> Scorer:
    """The baseline: MiniLM cosine between the question and each candidate. One scorer per
    embedder, so a seam that returns it is recognised as the same and scored once."""

    def score(question: str, candidates: Sequence[str]) -> list[float]:
        vectors = embedder.embed([question, *candidates], truncation_ok=True)
        cosines: list[float] = (vectors[1:] @ vectors[0]).tolist()
        return cosines

    return score


def production_scorer(settings: Settings, embedder: Embedder | None = None) -> Scorer:
    """The one seam through which this evaluation measures the product's sentence reader.
    For now it is the cosine baseline itself (so the report shows it once, as the same),
    not yet what rag.answer ranks sentences by; when rag/ has its learned sentence
    reader, build a scorer from it here and the report sets it beside both baselines."""
    return cosine_scorer(embedder or Embedder(settings.embedding))


def evaluate(
    questions: Sequence[SelqaQuestion],
    scorers: Mapping[str, Scorer],
    progress: Callable[[], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each scorer's summary, by name; a scorer given under two names is run once and
    the second name says which it repeats (`same_as`)."""
    results: dict[str, dict[str, Any]] = {}
    first_name: dict[int, str] = {}
    for name, scorer in scorers.items():
        if id(scorer) in first_name:
            results[name] = results[first_name[id(scorer)]] | {"same_as": first_name[id(scorer)]}
            continue
        first_name[id(scorer)] = name
        results[name] = summary(select_all(questions, scorer, progress))
    return results


# --- report --------------------------------------------------------------------


def report(
    path: Path,
    loaded: SelqaSet,
    removed: Mapping[str, int],
    scored: Sequence[SelqaQuestion],
    results: Mapping[str, Mapping[str, Any]],
    model: str,
) -> dict[str, Any]:
    return {
        "meta": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "questions_file": path.as_posix(),
            "questions_format": FORMAT_SELQA,
            "questions_sha256": loaded.sha256,
            "model": model,
            "task": "answer sentence selection: rank each question's candidate sentences",
            "intervals": f"{CONFIDENCE:.0%} percentile bootstrap over questions, "
            f"{BOOTSTRAP_RESAMPLES} resamples, seed 0",
        },
        "counts": {
            "questions_in_file": len(loaded.questions) + len(loaded.problems),
            "skipped": len(loaded.problems),
            "excluded": sum(removed.values()),
            "scored": len(scored),
            "candidates": sum(len(q.candidates) for q in scored),
        },
        "excluded_articles": dict(removed),
        "selection": {name: dict(values) for name, values in results.items()},
    }


def write_selqa_report(out: Path, result: Mapping[str, Any]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json", out / "report.md"]
    written[0].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    written[1].write_text(markdown(result), encoding="utf-8")
    return written


def markdown(result: Mapping[str, Any]) -> str:
    meta, counts = result["meta"], result["counts"]
    lines = [
        "# newsdesk evaluation: SelQA answer sentence selection",
        "",
        f"{meta['date']} · questions `{meta['questions_file']}` (sha256 "
        f"{meta['questions_sha256'][:12]}) · {counts['scored']} questions scored, "
        f"{counts['candidates']} candidate sentences · model {meta['model']}",
        "",
        "| scorer | MRR | MAP | accuracy@1 |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in result["selection"].items():
        label = f"{name} (= {row['same_as']})" if "same_as" in row else name
        cells = [_with_interval(row, key) for key in ("mrr", "map", "accuracy@1")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", f"Intervals: {meta['intervals']}.", ""]
    excluded = ", ".join(f"{title} ({n})" for title, n in result["excluded_articles"].items())
    lines += [f"Excluded articles: {excluded or 'none'}.", ""]
    lines += [f"Records skipped as malformed: {counts['skipped']}.", ""]
    return "\n".join(lines)


def headline(result: Mapping[str, Any]) -> str:
    return "\n".join(
        f"{name}: "
        + "; ".join(f"{key} {_with_interval(row, key)}" for key in ("mrr", "map", "accuracy@1"))
        for name, row in result["selection"].items()
    )


def _with_interval(row: Mapping[str, Any], key: str) -> str:
    low, high = row[f"{key}_ci95"]
    return f"{row[key]:.3f} [{low:.3f}, {high:.3f}]"


# --- command -------------------------------------------------------------------


@click.command("selqa")
@click.argument("questions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("eval-out"))
@click.option(
    "--exclude-article",
    "exclude",
    multiple=True,
    metavar="TITLE",
    help="Leave out the questions about this article (repeatable), e.g. one that another "
    "evaluation set shares ('Doctor Who' is also in the SQuAD subset).",
)
@click.option("--limit", type=click.IntRange(1), help="Only the first N questions.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout.")
def selqa_command(
    questions: Path, out: Path, exclude: tuple[str, ...], limit: int | None, as_json: bool
) -> None:
    """Score sentence selection on a SelQA file: production scorer, cosine and lead baselines."""
    settings = settings_from(None)
    with reported():
        loaded = load_selqa(questions)
        kept, removed = without_articles(loaded.questions, exclude)
        kept = kept[:limit] if limit else kept
        if not kept:
            raise SelqaError(f"{questions.as_posix()}: no question left to score")
        embedder = Embedder(settings.embedding)
        scorers = {
            "cosine": cosine_scorer(embedder),
            "lead": lead_scorer,
            "production": production_scorer(settings, embedder),
        }
        runs = len({id(scorer) for scorer in scorers.values()}) * len(kept)
        with click.progressbar(length=runs, label="selecting", file=sys.stderr) as bar:
            results = evaluate(kept, scorers, progress=lambda: bar.update(1))
    result = report(questions, loaded, removed, kept, results, settings.embedding.model)
    written = write_selqa_report(out, result)
    for title, count in removed.items():
        if not count:
            click.echo(f"warning: no question is about an article titled {title!r}", err=True)
    for problem in loaded.problems:
        click.echo(f"skipped: {problem}", err=True)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(headline(result))
        click.echo("wrote " + ", ".join(str(p) for p in written))
    if loaded.problems:
        sys.exit(EXIT_SKIPPED)
