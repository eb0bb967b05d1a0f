"""Writing an evaluation: numbers (JSON), a readable report (Markdown), plots (PNG)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.run import EvalResult

WORST = 10


def write_report(out: Path, result: EvalResult) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json", out / "per_question.jsonl", out / "report.md"]
    written[0].write_text(json.dumps(result.report, indent=2) + "\n", encoding="utf-8")
    written[1].write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result.per_question),
        encoding="utf-8",
    )
    written[2].write_text(markdown(result), encoding="utf-8")
    written += plot(out, result.report)
    return written


def markdown(result: EvalResult) -> str:
    report = result.report
    meta = report["meta"]
    lines = [
        "# newsdesk evaluation",
        "",
        f"{meta['date']} · questions `{meta['questions_file']}` ({meta['questions_format']}, "
        f"sha256 {meta['questions_sha256'][:12]}) · index {meta['index_version']} "
        f"({report['counts']['articles']} articles, {report['counts']['chunks']} chunks, "
        f"{meta['model']}) · settings {meta['settings_hash']} · k = {meta['k']}",
        "",
    ]
    for section in ("retrieval", "citation", "answer", "abstention", "latency_ms", "counts"):
        lines += [f"## {section}", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {key} | {fmt(value)} |" for key, value in report[section].items()]
        lines.append("")
    lines += ["## Worst failures", ""]
    for record in worst(result.per_question):
        lines += _failure(record)
    if result.problems:
        lines += ["## Questions skipped", ""]
        lines += [f"- {p}" for p in result.problems]
    return "\n".join(lines) + "\n"


def worst(records: Sequence[dict[str, Any]], n: int = WORST) -> list[dict[str, Any]]:
    """Confidently wrong first: answered with no correct citation, or answered when it
    should have abstained, ordered by the score that let the answer through; then the
    answerable questions it abstained on."""
    wrong = [
        r
        for r in records
        if not r["abstained"]
        and (not r["answerable"] or not any(c["correct"] for c in r["citations"]))
    ]
    wrong.sort(key=lambda r: -(r["best_score"] or 0.0))
    missed = [r for r in records if r["abstained"] and r["answerable"]]
    missed.sort(key=lambda r: -(r["best_score"] or 0.0))
    return (wrong + missed)[:n]


def _failure(record: dict[str, Any]) -> list[str]:
    kind = (
        "should have abstained"
        if not record["answerable"]
        else ("abstained" if record["abstained"] else "no correct citation")
    )
    lines = [f"### {record['id']}: {kind}", "", f"**Q:** {record['question']}", ""]
    if record["answers"]:
        lines.append(f"**Gold answers:** {', '.join(record['answers'])}")
    for ev in record["evidence"]:
        lines.append(
            f"**Gold evidence** ({ev['article_id']} {ev['start']}-{ev['end']}): {ev['text']}"
        )
    rank = record["first_relevant_rank"]
    lines.append(f"**First relevant passage at rank:** {rank if rank else 'not retrieved'}")
    lines.append(f"**Best sentence score:** {fmt(record['best_score'])}")
    for c in record["citations"]:
        mark = "correct" if c["correct"] else "wrong"
        lines.append(
            f"- [{c['n']}] ({mark}; {c['article_id']} {c['start']}-{c['end']}) {c['text']}"
        )
    return [*lines, ""]


def plot(out: Path, report: dict[str, Any]) -> list[Path]:
    """hit@k and the abstention trade-off, drawn without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    hits = report["curves"]["hit_at_k"]
    if hits:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot([int(k) for k in hits], list(hits.values()), marker="o")
        ax.set(xlabel="k (passages retrieved)", ylabel="hit@k (answerable)", ylim=(0, 1.02))
        ax.set_title("Gold evidence among the top k passages")
        ax.grid(alpha=0.3)
        written.append(_save(fig, out / "hit_at_k.png"))
    curve = report["curves"]["abstention_tradeoff"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    xs = [row["threshold"] for row in curve]
    ax.plot(xs, [row["answered_rate"] for row in curve], label="answerable: answered")
    ax.plot(xs, [row["abstention_recall"] for row in curve], label="unanswerable: abstained")
    ax.axvline(report["meta"]["abstain_below"], color="grey", linestyle="--", label="setting")
    ax.set(xlabel="abstention threshold", ylabel="rate", ylim=(0, 1.02))
    ax.set_title("Abstention trade-off")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    written.append(_save(fig, out / "abstention_tradeoff.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fmt(value: object) -> str:
    """A metric for people: three decimals, a dash for 'not measured'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
