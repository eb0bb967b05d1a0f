"""Writing an evaluation: numbers (JSON), a readable report (Markdown), plots (PNG)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.gate import figure
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


HEADLINE = (
    "answer.correct",
    "answer.correct_answerable",
    "answer.correct_unanswerable",
    "answer.correct_not_in_collection",
    "abstention.recall",
    "answer.answered_rate",
    "citation.precision",
    "citation.gold_evidence_recall",
)
SECTIONS = ("answer", "citation", "abstention", "retrieval", "latency_ms", "counts")


def markdown(result: EvalResult) -> str:
    report = result.report
    meta = report["meta"]
    commit = meta["git_commit"][:12] if meta.get("git_commit") else "no git checkout"
    if meta.get("git_dirty"):
        commit += " (with uncommitted changes)"
    lines = ["# newsdesk evaluation", ""]
    if "llm" in report and report["llm"]["generated"] == 0:
        lines += [
            f"**All {report['llm']['answers']} answers fell back to the extractive "
            "answerer: no figure below is the language model's.**",
            "",
        ]
    lines += [
        f"{meta['date']} · questions `{meta['questions_file']}` ({meta['questions_format']}, "
        f"sha256 {meta['questions_sha256'][:12]}, split {meta['split']}) · index "
        f"{meta['index_version']} ({report['counts']['articles']} articles, "
        f"{report['counts']['chunks']} chunks, {meta['model']}) · settings "
        f"{meta['settings_hash']} · commit {commit} · answers read k = {meta['k']} "
        f"passages; retrieval figures rank {meta['ranked_depth']}",
        "",
        "## Headline",
        "",
        "Each figure beside the best of the baselines (eval/baselines.py) on the same "
        "retrieved passages, and the margin over it.",
        "",
        *headline_table(report),
        "",
        "## Baselines",
        "",
        *baseline_table(report),
        "",
    ]
    for section in SECTIONS:
        lines += [f"## {section}", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {key} | {fmt(value)} |" for key, value in report[section].items()]
        lines.append("")
    if "llm" in report:
        lines += _llm(report["llm"])
    lines += ["## Worst failures", ""]
    for record in worst(result.per_question):
        lines += _failure(record)
    if result.problems:
        lines += ["## Questions skipped", ""]
        lines += [f"- {p}" for p in result.problems]
    return "\n".join(lines) + "\n"


def headline_table(report: dict[str, Any]) -> list[str]:
    lines = ["| figure | newsdesk [95% CI] | best baseline | margin |", "| --- | --- | --- | --- |"]
    for key in HEADLINE:
        value = figure(report, key)
        name, best = best_baseline(report, key)
        margin = None if value is None or best is None else value - best
        lines.append(
            f"| {key} | {fmt(value)}{_interval(report, key)} | {fmt(best)} ({name}) "
            f"| {_signed(margin)} |"
        )
    return lines


def baseline_table(report: dict[str, Any]) -> list[str]:
    names = list(report["baselines"])
    lines = [
        "| figure | newsdesk | " + " | ".join(names) + " |",
        "| --- | --- |" + " --- |" * len(names),
    ]
    for key in HEADLINE:
        row = [fmt(figure(report, key))]
        row += [fmt(figure(b, key)) + _interval(b, key) for b in report["baselines"].values()]
        lines.append(f"| {key} | " + " | ".join(row) + " |")
    return lines


def best_baseline(report: dict[str, Any], key: str) -> tuple[str, float | None]:
    """The baseline scoring highest on a figure, and its value (every headline figure
    is better higher)."""
    scored = [
        (value, name)
        for name, baseline in report["baselines"].items()
        if (value := figure(baseline, key)) is not None
    ]
    if not scored:
        return "-", None
    value, name = max(scored)
    return name, value


def _llm(block: dict[str, Any]) -> list[str]:
    """Generated answers and fallbacks apart: a mostly failing model must not be
    credited with the quoting answerer's figures."""
    lines = [
        "## Generated answers (llm) and extractive fallbacks",
        "",
        "| | value |",
        "| --- | --- |",
    ]
    lines += [f"| {key} | {fmt(value)} |" for key, value in block.items() if "_figures" not in key]
    lines += ["", "| figure | generated | fell back |", "| --- | --- | --- |"]
    for key in HEADLINE:
        generated = figure(block["generated_figures"], key)
        fell_back = figure(block["fallback_figures"], key)
        lines.append(f"| {key} | {fmt(generated)} | {fmt(fell_back)} |")
    return [*lines, ""]


def _interval(report: dict[str, Any], key: str) -> str:
    ci = report.get("ci95", {}).get(key)
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def worst(records: Sequence[dict[str, Any]], n: int = WORST) -> list[dict[str, Any]]:
    """Confidently wrong first: answered with no correct citation, or answered when it
    should have refused, ordered by the score that let the answer through; then the
    answerable questions it abstained on."""
    wrong = [r for r in records if not r["abstained"] and not r["correct"]]
    wrong.sort(key=lambda r: -(r["best_score"] or 0.0))
    missed = [r for r in records if r["abstained"] and not r["correct"]]
    missed.sort(key=lambda r: -(r["best_score"] or 0.0))
    return (wrong + missed)[:n]


def _failure(record: dict[str, Any]) -> list[str]:
    if record["group"] == "not_in_collection":
        kind = "should have refused (its gold articles were filtered out)"
    elif record["group"] == "unanswerable":
        kind = "should have refused"
    else:
        kind = "abstained" if record["abstained"] else "no correct citation"
    lines = [f"### {record['id']}: {kind}", "", f"**Q:** {record['question']}", ""]
    if record["answers"]:
        lines.append(f"**Gold answers:** {', '.join(record['answers'])}")
    for ev in record["evidence"]:
        lines.append(
            f"**Gold evidence** ({ev['article_id']} {ev['start']}-{ev['end']}): {ev['text']}"
        )
    if record["group"] == "answerable":
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
    ax.plot(xs, [row["abstention_recall"] for row in curve], label="to refuse: refused")
    if report["meta"]["abstain_below"] is not None:
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
