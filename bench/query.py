"""Query benchmark at archive scale: latency of retrieval and of the full cited answer.

    python bench/query.py --json                 # 50,000+ chunks, 500 questions

The index is the shared SQuAD and Wikinews articles, replicated until it holds at
least `--chunks` chunks: each copy gets its own id and source, the same text, and
the first copy's vectors with a little noise (so Chroma's graph holds distinct
points). Replication keeps index size, Chroma's graph and the BM25 postings
realistic for latency and memory; it says nothing about relevance, which
bench/ingest.py and `newsdesk eval` measure. The built index is kept in
`--index-dir` and reused.

Three processes, so each measurement is its own: build (if needed); serve
(500 questions: SQuAD's 441, then the first ones reworded; retrieval alone and the
full cited answer; RSS); update (one changed article).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from index.embed import Embedder  # light: the model loads on first use

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ARTICLES = [DATA / "squad-dev-subset" / "articles.jsonl", DATA / "news-sample" / "articles.jsonl"]
QUESTIONS = DATA / "squad-dev-subset" / "questions.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=Path, nargs="+", default=ARTICLES)
    parser.add_argument("--chunks", type=int, default=50_000)
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--index-dir", type=Path, default=ROOT / "bench-out" / "query-index")
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    parser.add_argument("--step", choices=("build", "serve", "update"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        step = {"build": build, "serve": serve, "update": update}[args.step]
        print(json.dumps(step(args)))
        return
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "chunks_wanted": args.chunks}
    for step_name in ("build", "serve", "update"):
        report[step_name] = child(step_name, args)
        if not args.json:
            print(f"{step_name}: {json.dumps(report[step_name])}", file=sys.stderr)
    serve_result = report["serve"]
    report["targets"] = {
        "answer_p50_under_50ms": serve_result["answer_ms"]["p50"] < 50,
        "answer_p95_under_150ms": serve_result["answer_ms"]["p95"] < 150,
        "update_one_changed_article_under_2s": report["update"]["seconds"] < 2,
    }
    print(json.dumps(report, indent=2))


def child(step: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--step", step, "--chunks", str(args.chunks)]
    cmd += ["--questions", str(args.questions), "--index-dir", str(args.index_dir)]
    cmd += ["--articles", *map(str, args.articles)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def settings_for(index_dir: Path) -> Any:
    from newsdesk.settings import Settings

    return Settings(index_dir=index_dir)


def build(args: argparse.Namespace) -> dict[str, Any]:
    from index.build import Indexer
    from index.db import read_manifest

    settings = settings_for(args.index_dir)
    existing = read_manifest(args.index_dir)
    if existing is not None and existing.chunk_count >= args.chunks:
        return {"reused": True, "chunks": existing.chunk_count, "articles": existing.article_count}
    corpus = args.index_dir.parent / "query-corpus.jsonl"
    copies = replicate(corpus, args.articles, args.chunks)
    began = time.perf_counter()
    report = Indexer(settings, ReusingEmbedder(settings)).build([corpus])
    assert report.manifest is not None
    return {
        "reused": False,
        "copies": copies,
        "chunks": report.manifest.chunk_count,
        "articles": report.manifest.article_count,
        "seconds": round(time.perf_counter() - began, 1),
    }


def replicate(corpus: Path, articles: list[Path], chunks: int) -> int:
    """Write the articles `copies` times with distinct ids and sources."""
    records = [json.loads(line) for p in articles for line in p.read_text().splitlines() if line]
    per_copy = sum(max(1, len(r["text"]) // 900) for r in records)  # about 900 chars a chunk
    copies = max(1, math.ceil(chunks / per_copy * 1.05))
    corpus.parent.mkdir(parents=True, exist_ok=True)
    with corpus.open("w", encoding="utf-8") as out:
        for k in range(copies):
            for r in records:
                copy = dict(r, source=f"Copy {k}") if k else r
                if k:
                    copy["id"] = f"{r['id']}~{k}"
                out.write(json.dumps(copy) + "\n")
    return copies


class ReusingEmbedder(Embedder):
    """Embeds each distinct text once; later copies get its vectors plus a little noise."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings.embedding)
        self.cache: dict[str, tuple[Any, Any, Any]] = {}
        self.rng = np.random.default_rng(7)

    def embed_with_spans(self, texts: Any, spans: Any) -> Any:
        todo = [i for i, t in enumerate(texts) if t not in self.cache]
        if todo:
            vectors, sums, counts = super().embed_with_spans(
                [texts[i] for i in todo], [spans[i] for i in todo]
            )
            for row, i in enumerate(todo):
                self.cache[texts[i]] = (vectors[row], sums[row], counts[row])
        vectors = np.stack([self.cache[t][0] for t in texts])
        vectors = vectors + self.rng.normal(0, 0.01, vectors.shape).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors, [self.cache[t][1] for t in texts], [self.cache[t][2] for t in texts]


def serve(args: argparse.Namespace) -> dict[str, Any]:
    from bench.measure import peak_rss_mb, percentiles, rss_mb
    from index.load import load_sources
    from index.reader import IndexReader
    from rag.answer import ExtractiveAnswerer

    settings = settings_for(args.index_dir)
    embedder = Embedder(settings.embedding)
    embedder.embed_query("load the model")
    rss_model = rss_mb()
    began = time.perf_counter()
    answerer = ExtractiveAnswerer(IndexReader(settings, embedder), settings)
    open_seconds = time.perf_counter() - began
    questions = question_texts(args.questions, load_sources(ARTICLES[:1]).articles)
    if not questions:  # no shared question set here: ask the articles' titles
        questions = [a.title for a in answerer.reader.articles.values()][: args.questions]
    for q in questions[:5]:  # warm-up: first touches of Chroma, BM25, caches
        answerer.ask(q)
    rss_open = rss_mb()
    retrieval, answers = [], []
    for q in questions:
        t = time.perf_counter()
        answerer.ask(q)
        answers.append((time.perf_counter() - t) * 1000)
        embedder._queries.clear()  # retrieval alone pays for embedding the question too
        t = time.perf_counter()
        answerer.retriever.retrieve(q)
        retrieval.append((time.perf_counter() - t) * 1000)
    chunks = answerer.reader.manifest.chunk_count
    rss_served = rss_mb()
    return {
        "chunks": chunks,
        "questions": len(questions),
        "open_seconds": round(open_seconds, 2),
        "retrieval_ms": percentiles(retrieval),
        "answer_ms": percentiles(answers),
        "rss_model_only_mb": rss_model,
        "rss_serving_mb": rss_served,
        "rss_after_warmup_mb": rss_open,
        "rss_per_10k_chunks_mb": round((rss_served - rss_model) / chunks * 10_000, 1),
        "peak_rss_mb": peak_rss_mb(),
    }


def update(args: argparse.Namespace) -> dict[str, Any]:
    """One-article updates in a warm process (model loaded, Chroma imported, as in the
    chat's "Add to index"): a median-length article with a paragraph appended, the same
    with a correction inserted in the middle, a new news-length article, and the median
    article under a new title (every chunk copied unless `chunking.title_tokens` puts the
    title in the model input)."""
    from index.build import Indexer
    from index.store import chroma_client

    settings = settings_for(args.index_dir)
    records = [json.loads(line) for line in args.articles[0].read_text().splitlines() if line]
    median = sorted(records, key=lambda r: len(r["text"]))[len(records) // 2]
    text = median["text"]
    middle = text.index(". ", len(text) // 2) + 2
    stamp = f"{time.time():.0f}"
    news = [json.loads(line) for line in args.articles[-1].read_text().splitlines() if line]
    typical = sorted(news, key=lambda r: len(r["text"]))[len(news) // 2]
    cases = {
        "appended_paragraph": dict(median, text=f"{text}\n\nUpdate {stamp}: a new paragraph."),
        "correction_in_the_middle": dict(
            median, text=f"{text[:middle]}Correction {stamp}: a new sentence. {text[middle:]}"
        ),
        "new_article": dict(typical, id=f"new-{stamp}", source="Bench Wire"),
        # With chunking.title_tokens set, the title is in every chunk's model input.
        "retitled_article": dict(median, title=f"{median['title']} ({stamp})"),
    }
    indexer = Indexer(settings)
    indexer.embedder.embed_query("load the model")
    chroma_client(settings)
    # Start from the article as the corpus has it: a previous run left its last case in.
    original = args.index_dir.parent / "original.jsonl"
    original.write_text(json.dumps(median) + "\n", encoding="utf-8")
    indexer.update([original])
    result: dict[str, Any] = {}
    for name, record in cases.items():
        changed = args.index_dir.parent / f"{name}.jsonl"
        changed.write_text(json.dumps(record) + "\n", encoding="utf-8")
        began = time.perf_counter()
        report = indexer.update([changed])
        result[name] = {
            "seconds": round(time.perf_counter() - began, 2),
            "article_chars": len(record["text"]),
            "chunks_embedded": report.chunks_embedded,
            "chunks_copied": report.chunks_copied,
        }
    result["seconds"] = max(
        result[name]["seconds"] for name in ("appended_paragraph", "correction_in_the_middle")
    )
    return result


def question_texts(n: int, articles: Any) -> list[str]:
    from eval.dataset import load_questions

    if not QUESTIONS.is_file():
        return []
    loaded = load_questions(QUESTIONS, {a.id: a for a in articles}).questions
    texts = [q.question for q in loaded]
    reworded = [f"According to the articles, {t[0].lower()}{t[1:]}" for t in texts]
    return (texts + reworded)[:n]


if __name__ == "__main__":
    main()
