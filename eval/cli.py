"""`newsdesk eval QUESTIONS --articles ARTICLES` and `newsdesk eval history`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from eval.report import best_baseline, fmt, write_report
from eval.run import append_history, read_history, run_eval
from eval.selqa import is_selqa, selqa_command
from newsdesk.clikit import answerer_options, index_dir_option, reported, settings_from


class RunByDefault(click.Group):
    """`newsdesk eval FILE …` runs an evaluation; `newsdesk eval history` lists past runs."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["selqa" if is_selqa(args[0]) else "run", *args]  # SelQA needs no articles
        return super().parse_args(ctx, args)


@click.group("eval", cls=RunByDefault)
def eval_group() -> None:
    """Score citations, retrieval and abstention on a question set with gold evidence.

    \b
    newsdesk eval QUESTIONS --articles ARTICLES [--out DIR] [--split report|train|all]
                  [--splits FILE] [--limit N] [--json]
    newsdesk eval SELQA.json [--out DIR] [--exclude-article TITLE] [--limit N] [--json]
    newsdesk eval history [--index-dir DIR]
    """


eval_group.add_command(selqa_command)


@eval_group.command("run")
@click.argument("questions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--articles",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The articles the questions are about (repeatable).",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("eval-out"))
@click.option(
    "--split",
    type=click.Choice(["report", "train", "all"]),
    default="all",
    show_default=True,
    help="Only the questions on this split's articles (the index keeps all of them).",
)
@click.option(
    "--splits",
    "splits_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Article id lists per split [default: splits.json beside QUESTIONS].",
)
@click.option("--limit", type=click.IntRange(1), help="Only the first N questions.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout.")
@answerer_options
@index_dir_option
def run(
    questions: Path,
    articles: tuple[Path, ...],
    out: Path,
    split: str,
    splits_file: Path | None,
    limit: int | None,
    as_json: bool,
    index_dir: Path | None,
    **answerer: Any,
) -> None:
    """Index ARTICLES (reused when up to date), ask every question in QUESTIONS, score them.

    The index lives in --index-dir (default OUT/index), so re-runs reuse it. Answers
    read retrieval.k passages (the setting, as in `newsdesk ask`); retrieval figures
    rank 10. Each answerable question is asked again with its gold articles hidden.
    """
    settings = settings_from(index_dir or out / "index", **answerer)
    with reported(), click.progressbar(length=1, label="asking", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        result = run_eval(
            questions, list(articles), settings, split, splits_file, limit, progress=progress
        )
    written = write_report(out, result)
    append_history(settings.index_dir, result.report)
    for problem in result.problems:
        click.echo(f"skipped: {problem}", err=True)
    if as_json:
        click.echo(json.dumps(result.report, indent=2))
        return
    click.echo(_headline(result.report))
    click.echo("wrote " + ", ".join(str(p) for p in written))


@eval_group.command()
@index_dir_option
def history(index_dir: Path | None) -> None:
    """Past runs against this index: did a change make citations better or worse?"""
    settings = settings_from(index_dir or Path("eval-out") / "index")
    rows = read_history(settings.index_dir)
    if not rows:
        click.echo(f"no evaluations recorded in {settings.index_dir}")
        return
    keys = list(dict.fromkeys(key for row in rows for key in row))  # older runs had others
    widths = {key: max(len(key), *(len(fmt(row.get(key))) for row in rows)) for key in keys}
    click.echo("  ".join(key.ljust(widths[key]) for key in keys))
    for row in rows:
        click.echo("  ".join(fmt(row.get(key)).ljust(widths[key]) for key in keys))


def _headline(report: dict[str, Any]) -> str:
    pick = {
        "answer.correct": report["answer"]["correct"],
        "citation precision": report["citation"]["precision"],
        "abstention recall": report["abstention"]["recall"],
        "answered (answerable)": report["answer"]["answered_rate"],
        "hit@10": report["retrieval"]["hit@10"],
        "latency p50 ms": report["latency_ms"]["p50"],
    }
    name, best = best_baseline(report, "answer.correct")
    pick[f"best baseline ({name})"] = best
    if "llm" in report:
        pick["sentences unsupported"] = report["llm"]["unsupported_share"]
        pick["fell back"] = report["llm"]["fell_back_to_extractive"]
    return "; ".join(f"{key} {fmt(value)}" for key, value in pick.items())
