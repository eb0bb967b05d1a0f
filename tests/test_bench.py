"""The benchmarks keep running from a clean checkout (on a small corpus here; their
figures come from the full runs documented in bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# The benchmark scripts, each in its own process.
pytestmark = [pytest.mark.process, pytest.mark.slow]

DEMO_NEWS = ROOT / "index" / "demo" / "wikinews.jsonl"


def run(script: str, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--json", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_query_benchmark_reports_latency_memory_and_update(tmp_path: Path) -> None:
    report = run(
        "query.py", "--articles", str(DEMO_NEWS), "--chunks", "400",
        "--questions", "20", "--index-dir", str(tmp_path / "ix"),
    )  # fmt: skip
    serve = report["serve"]
    assert isinstance(serve, dict) and serve["chunks"] >= 400 and serve["questions"] == 20
    assert serve["answer_ms"]["p50"] > 0 and serve["rss_serving_mb"] > 0
    update = report["update"]
    assert isinstance(update, dict) and update["seconds"] > 0
    for case in ("appended_paragraph", "correction_in_the_middle", "new_article"):
        assert update[case]["chunks_embedded"] > 0
    assert update["new_article"]["chunks_copied"] == 0


def test_ingest_benchmark_compares_pipelines_backends_and_chunkings(tmp_path: Path) -> None:
    records = [json.loads(line) for line in DEMO_NEWS.read_text().splitlines()[:3]]
    articles = tmp_path / "articles.jsonl"
    articles.write_text("".join(json.dumps(r) + "\n" for r in records))
    text = records[0]["text"]
    sentence = "Hydrogen peroxide reduced infected ant fatalities by 15%"
    start = text.index(sentence)
    question = {
        "id": "q1",
        "question": "By how much did hydrogen peroxide lower the death rate of sick ants?",
        "answers": ["15%"],
        "answerable": True,
        "evidence": [{"article_id": records[0]["id"], "text": sentence,
                      "start": start, "end": start + len(sentence)}],
    }  # fmt: skip
    questions = tmp_path / "news.jsonl"
    questions.write_text(json.dumps(question) + "\n")
    report = run(
        "ingest.py", "--runs", "1", "--variants", "plain", "newsdesk",
        "--backends", "fp32", "int8", "--chunkings", "0/0", "--articles", str(articles),
        "--questions", str(tmp_path / "none.jsonl"), "--news-questions", str(questions),
    )  # fmt: skip
    results = report["results"]
    assert isinstance(results, dict)
    for variant in ("plain", "newsdesk"):
        assert results[variant]["chunks"] > 0 and results[variant]["chars_per_s"] > 0
    assert isinstance(report["speedup"], float)
    backends = report["backends"]
    assert isinstance(backends, list) and [b["name"] for b in backends] == ["fp32", "int8"]
    for row in backends:
        assert {"name", "speedup", "hit@10", "hit@10_delta", "mrr@10"} <= row.keys()
        assert row["speedup"] > 0
        news = row["quality"]["news"]
        for mode in ("hybrid", "dense"):
            assert news[mode]["questions"] == 1
            assert {"hit@1", "hit@10", "mrr@10", "hit@10_delta", "mrr@10_delta"} <= news[
                mode
            ].keys()
    fp32, int8 = backends
    assert fp32["speedup"] == report["speedup"]
    assert fp32["quality"]["news"]["dense"]["hit@10_delta"] == 0
    assert int8["quality"]["news"].keys() == {"hybrid", "dense"}  # its questions are fp32
    assert results["plain"]["quality"]["news"].keys() == {"dense"}
    chunkings = report["chunkings"]
    assert isinstance(chunkings, list) and len(chunkings) == 1
    bare = chunkings[0]
    assert (bare["title_tokens"], bare["overlap_tokens"]) == (0, 0)
    assert 0 < bare["chunks"] <= results["newsdesk"]["chunks"] and bare["speedup"] > 0
    assert bare["quality"]["news"]["hybrid"]["questions"] == 1


def test_scale_benchmark_runs_small(tmp_path: Path) -> None:
    report = run(
        "scale.py", "--articles", "300", "--planted", "5", "--questions", "8",
        "--sources", "paragraph", "--pool", "300", "--out-dir", str(tmp_path), "--split", "all",
    )  # fmt: skip
    assert {"build", "serve", "update", "check", "targets"} <= report.keys()
    build, serve = report["build"], report["serve"]
    assert isinstance(build, dict) and isinstance(serve, dict)
    assert build["scale"]["articles"] == 305 and build["scale"]["chunks"] > 300
    assert build["scale"]["grouped_planted"] == 5 and build["scale"]["duplicate_groups"] == 5
    assert serve["questions"] == 8 and serve["answer_ms"]["p50"] > 0
    assert serve["quality_split"] == "all"
    assert serve["hit@10_delta_points"] == serve["hit@10_delta_points_all_splits"]
    for index in ("scale", "alone"):
        assert serve[index]["questions"] == 8
        for measure in ("hit@10", "mrr@10", "answer_quotes_gold"):
            assert 0 <= serve[index][measure] <= 1
    update, check, targets = report["update"], report["check"], report["targets"]
    assert isinstance(update, dict) and update["seconds"] > 0
    assert isinstance(check, dict) and check["ok"]
    assert isinstance(targets, dict) and all(isinstance(v, bool) for v in targets.values())
