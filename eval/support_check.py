"""How well the support check (rag.support) tells supported sentences from unsupported
ones, on hand-labelled sentence-passage pairs.

    python -m eval.support_check [--index-dir DIR] [--calibrate]

Two sets, kept apart so that the figures we quote are not the ones we tuned on:

- calibration, tests/data/support_pairs.jsonl (90 pairs): each claim judged against its
  1-3 sentence passage; `--calibrate` searches the thresholds on these pairs, so their
  figures are in-sample;
- held out, tests/data/support_heldout.jsonl: other articles, never used to choose
  anything; each pair cites a whole chunk of the index, and is judged against every run
  of one and two sentences of that chunk, as rag.generate judges a claim against the
  retrieved chunk it cites. Its figures are the ones to expect, and the ones the tests gate.

The pairs cite passages of the demo collection, so DIR must hold it (default: the
`make chat` demo index). The evidence runs and their vectors come from the index, as
they do when a generated answer is checked.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from index.reader import IndexReader
from newsdesk.settings import Settings
from rag.answer import ExtractiveAnswerer
from rag.generate import LlmAnswerer
from rag.retrieve import Passage
from rag.support import Evidence, Thresholds, Verdict, judge

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
PAIRS = DATA / "support_pairs.jsonl"  # the calibration set
HELDOUT = DATA / "support_heldout.jsonl"  # the held-out set: whole chunks
LABELS: tuple[Verdict, ...] = ("supported", "partial", "unsupported")


@dataclass(frozen=True, slots=True)
class Pair:
    id: str
    article_id: str
    start: int
    end: int
    sentence: str
    label: Verdict
    kind: str


def load_pairs(path: Path = PAIRS) -> list[Pair]:
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        record = json.loads(line)
        if record["label"] not in LABELS:
            raise ValueError(f"{path}:{number}: label {record['label']!r} is not one of {LABELS}")
        pairs.append(Pair(**{k: record[k] for k in Pair.__slots__}))
    return pairs


def judged(
    pairs: list[Pair],
    answerer: ExtractiveAnswerer,
    grid: list[Thresholds],
    *,
    whole_chunk: bool = False,
) -> list[list[Verdict]]:
    """The check's verdicts for every pair, as rag.generate would reach them, under each
    set of thresholds in `grid` (the embedding work is done once). `whole_chunk` judges
    against the runs of the index chunk holding each pair's passage, as production does."""
    vectors = answerer.reader.embedder.embed([p.sentence for p in pairs], truncation_ok=True)
    if whole_chunk:
        generator = LlmAnswerer(answerer.reader, answerer.settings)  # no model is made
        evidence = [chunk_runs(pair, generator) for pair in pairs]
    else:
        evidence = [runs(pair, answerer) for pair in pairs]
    return [
        [
            judge(pair.sentence, vector, found, thresholds).verdict
            for pair, vector, found in zip(pairs, vectors, evidence, strict=True)
        ]
        for thresholds in grid
    ]


def runs(pair: Pair, answerer: ExtractiveAnswerer) -> list[Evidence]:
    article = answerer.reader.articles[pair.article_id]
    spans = [
        (s, e)
        for s, e in answerer.reader.sentences(article.id)
        if s >= pair.start and e <= pair.end
    ]
    keys = [(article.id, s, e) for s, e in spans] + [
        (article.id, a[0], b[1]) for a, b in pairwise(spans)
    ]
    vectors = answerer.span_vectors(keys)
    return [
        Evidence(a, s, e, article.text[s:e], v) for (a, s, e), v in zip(keys, vectors, strict=True)
    ]


def chunk_of(pair: Pair, reader: IndexReader) -> Passage:
    """The index chunk holding the pair's passage, as retrieval would hand it over."""
    article = reader.articles[pair.article_id]
    spans = reader.manifest.articles[article.id].spans
    for chunk_id, (start, end) in zip(reader.chunk_ids([article.id]), spans, strict=True):
        if start <= pair.start and pair.end <= end:
            return Passage(chunk_id, article, start, end, score=0.0)
    raise ValueError(
        f"{pair.id}: no chunk of the index holds {article.id}[{pair.start}:{pair.end}]; "
        "was the demo collection re-chunked? Recompute the pairs' offsets"
    )


def chunk_runs(pair: Pair, generator: LlmAnswerer) -> list[Evidence]:
    """What production judges a claim citing this chunk against: the very runs
    LlmAnswerer builds (calling it, so the measurement cannot drift from the product)."""
    return generator._runs(chunk_of(pair, generator.reader))


def scores(pairs: list[Pair], predicted: list[Verdict]) -> dict[str, Any]:
    """Accuracy, the confusion matrix, and the two numbers that matter most:
    how often "supported" is right (a wrong one would be shown as a good citation),
    and how many unsupported sentences are caught."""
    truth = [p.label for p in pairs]
    confusion = Counter(zip(truth, predicted, strict=True))

    def ratio(hit: int, total: int) -> float | None:
        return round(hit / total, 3) if total else None

    said_supported = [t for t, v in zip(truth, predicted, strict=True) if v == "supported"]
    flagged = [t for t, v in zip(truth, predicted, strict=True) if v == "unsupported"]
    return {
        "pairs": len(pairs),
        "accuracy": ratio(sum(t == v for t, v in zip(truth, predicted, strict=True)), len(pairs)),
        "supported_precision": ratio(said_supported.count("supported"), len(said_supported)),
        "supported_recall": ratio(said_supported.count("supported"), truth.count("supported")),
        "unsupported_shown_as_supported": said_supported.count("unsupported"),
        "unsupported_precision": ratio(flagged.count("unsupported"), len(flagged)),
        "unsupported_recall": ratio(flagged.count("unsupported"), truth.count("unsupported")),
        "per_label": {
            label: {
                "precision": ratio(confusion[(label, label)], predicted.count(label)),
                "recall": ratio(confusion[(label, label)], truth.count(label)),
            }
            for label in LABELS
        },
        "confusion": {t: {v: confusion[(t, v)] for v in LABELS} for t in LABELS},
        "missed_by_kind": dict(
            Counter(p.kind for p, v in zip(pairs, predicted, strict=True) if v != p.label)
        ),
    }


def calibrate(pairs: list[Pair], answerer: ExtractiveAnswerer) -> list[dict[str, Any]]:
    """Every grid point's scores, best first: accuracy, then fewest unsupported
    sentences shown as supported."""
    weights = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    cuts = [round(0.3 + 0.025 * n, 3) for n in range(21)]  # 0.3 .. 0.8
    grid = [
        Thresholds(w, high, low)
        for w, high, low in itertools.product(weights, cuts, cuts)
        if low < high
    ]
    results = [
        {"thresholds": asdict(t)} | scores(pairs, verdicts)
        for t, verdicts in zip(grid, judged(pairs, answerer, grid), strict=True)
    ]
    return sorted(results, key=lambda r: (-r["accuracy"], r["unsupported_shown_as_supported"]))


def report(answerer: ExtractiveAnswerer) -> dict[str, Any]:
    """The default thresholds on both sets: in-sample (calibration) and held out."""
    calibration, heldout = load_pairs(PAIRS), load_pairs(HELDOUT)
    (on_calibration,) = judged(calibration, answerer, [Thresholds()])
    (on_heldout,) = judged(heldout, answerer, [Thresholds()], whole_chunk=True)
    return {
        "calibration (in-sample, cited passages)": scores(calibration, on_calibration),
        "held out (whole chunks, as production)": scores(heldout, on_heldout),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index-dir", type=Path, default=Path(".newsdesk/demo-index"))
    parser.add_argument(
        "--calibrate", action="store_true", help="Search the thresholds on the calibration set."
    )
    args = parser.parse_args()
    answerer = ExtractiveAnswerer.open(Settings(index_dir=args.index_dir))
    if args.calibrate:
        print(json.dumps(calibrate(load_pairs(PAIRS), answerer)[:5], indent=2))
        return
    print(json.dumps(report(answerer), indent=2))


if __name__ == "__main__":
    main()
