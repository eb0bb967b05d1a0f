"""Ingest benchmark: newsdesk against the plain llama-index pipeline, in one run.

    python bench/ingest.py --json            # squad + news sample, 2 runs each
    python bench/ingest.py --runs 1 --articles some.jsonl --questions q.jsonl

Variants, each run in its own process (so peak RSS is its own):
  plain      VectorStoreIndex + SentenceSplitter(256, 20) + HuggingFaceEmbedding +
             ChromaVectorStore in a temp PersistentClient: what a careful user writes
  plain1024  the same with llama-index's default splitter (1024/200); MiniLM reads only
             the first 256 word-pieces of each chunk, so most of the text is never embedded
  newsdesk   `Indexer.build`, as `newsdesk index build` runs it

Times are wall seconds from the loaded articles to a queryable index, model loading
included, imports excluded. `tokens_embedded` counts the word-pieces the model actually
read (after truncation). hit@10: share of answerable questions with a gold evidence span
overlapping one of the ten best passages. Medians over `--runs`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DEFAULT_ARTICLES = [
    DATA / "squad-dev-subset" / "articles.jsonl",
    DATA / "news-sample" / "articles.jsonl",
]
DEFAULT_QUESTIONS = DATA / "squad-dev-subset" / "questions.jsonl"
VARIANTS = ("plain", "plain1024", "newsdesk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=Path, nargs="+", default=DEFAULT_ARTICLES)
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    parser.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.articles, args.questions)))
        return
    results: dict[str, Any] = {}
    for variant in args.variants:
        runs = [child(variant, args) for _ in range(args.runs)]
        results[variant] = summarise(runs)
        if not args.json:
            print(f"{variant}: {json.dumps(results[variant])}", file=sys.stderr)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "corpus": [str(p) for p in args.articles],
        "runs": args.runs,
        "results": results,
    }
    if "plain" in results and "newsdesk" in results:
        base, ours = results["plain"], results["newsdesk"]
        report["speedup"] = round(ours["chars_per_s"] / base["chars_per_s"], 2)
        report["speedup_tokens"] = round(ours["tokens_per_s"] / base["tokens_per_s"], 2)
    print(json.dumps(report, indent=2))


def child(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", variant, "--questions", str(args.questions)]
    cmd += ["--articles", *map(str, args.articles)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    median = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    median["seconds_each_run"] = [r["seconds"] for r in runs]
    return median


def run_one(variant: str, articles: list[Path], questions: Path) -> dict[str, Any]:
    records = [json.loads(line) for p in articles for line in p.read_text().splitlines() if line]
    chars = sum(len(r["text"]) for r in records)
    with tempfile.TemporaryDirectory() as tmp:
        if variant == "newsdesk":
            seconds, chunks, tokens, search = newsdesk(articles, Path(tmp))
        else:
            size, overlap = (256, 20) if variant == "plain" else (1024, 200)
            seconds, chunks, tokens, search = plain(records, Path(tmp), size, overlap)
        hit = hit_at_10(search, articles, questions)
    return {
        "seconds": round(seconds, 2),
        "chunks": chunks,
        "characters": chars,
        "tokens_embedded": tokens,
        "chunks_per_s": round(chunks / seconds, 2),
        "chars_per_s": round(chars / seconds),
        "tokens_per_s": round(tokens / seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "hit_at_10": hit,
    }


Search = Any  # question -> list of (article id, start, end)


def plain(
    records: list[dict[str, Any]], tmp: Path, size: int, overlap: int
) -> tuple[float, int, int, Search]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode, TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from index.embed import model_location
    from newsdesk.settings import BUNDLED_MODEL

    began = time.perf_counter()
    docs = [
        Document(text=r["text"], metadata={"title": r.get("title", "")}, id_=r["id"])
        for r in records
    ]
    embed = HuggingFaceEmbedding(model_name=model_location(BUNDLED_MODEL), device="cpu")
    client = chromadb.PersistentClient(
        path=str(tmp), settings=ChromaSettings(anonymized_telemetry=False)
    )
    store = ChromaVectorStore(chroma_collection=client.create_collection("bench"))
    index = VectorStoreIndex.from_documents(
        docs,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=embed,
        transformations=[SentenceSplitter(chunk_size=size, chunk_overlap=overlap)],
    )
    seconds = time.perf_counter() - began
    nodes = list(
        SentenceSplitter(chunk_size=size, chunk_overlap=overlap).get_nodes_from_documents(docs)
    )
    tokenizer = embed._model.tokenizer
    limit = embed._model.max_seq_length
    assert limit is not None  # all-MiniLM-L6-v2 reads 256 word-pieces
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    tokens = sum(min(len(ids), limit) for ids in tokenizer(texts)["input_ids"])
    retriever = index.as_retriever(similarity_top_k=10)

    def search(question: str) -> list[tuple[str, int, int]]:
        return [
            (node.ref_doc_id or "", node.start_char_idx or 0, node.end_char_idx or 0)
            for node in (cast(TextNode, hit.node) for hit in retriever.retrieve(question))
        ]

    return seconds, len(nodes), tokens, search


def newsdesk(articles: list[Path], tmp: Path) -> tuple[float, int, int, Search]:
    from index.build import Indexer
    from index.reader import IndexReader
    from newsdesk.settings import Settings
    from rag.retrieve import Retriever

    settings = Settings(index_dir=tmp / "ix")
    began = time.perf_counter()
    indexer = Indexer(settings)
    report = indexer.build(articles)
    seconds = time.perf_counter() - began
    assert report.manifest is not None
    reader = IndexReader(settings, indexer.embedder)
    tokens = embedded_tokens(indexer, reader)
    retriever = Retriever(reader, settings.retrieval)

    def search(question: str) -> list[tuple[str, int, int]]:
        return [(p.article.id, p.start, p.end) for p in retriever.retrieve(question, k=10)]

    return seconds, report.manifest.chunk_count, tokens, search


def embedded_tokens(indexer: Any, reader: Any) -> int:
    """Word-pieces the model read: each chunk's text with its title prefix, as built."""
    from index.build import chunk_params
    from index.chunk import embedding_input

    embedder = indexer.embedder
    params = chunk_params(reader.settings, embedder)
    texts = []
    for article_id, entry in reader.manifest.articles.items():
        article = reader.articles[article_id]
        title = indexer.title_prefix(article.title, params.title_tokens)
        texts += [embedding_input(title, article.text[s:e]) for s, e in entry.spans]
    limit = embedder.max_tokens
    return sum(min(n, limit) for n in embedder.count_tokens(texts))


def hit_at_10(search: Search, articles: list[Path], questions: Path) -> float | None:
    if not questions.is_file():
        return None
    from eval.dataset import load_questions
    from index.load import load_sources

    loaded = {a.id: a for a in load_sources(articles).articles}
    answerable = [q for q in load_questions(questions, loaded).questions if q.answerable]
    hits = 0
    for q in answerable:
        found = search(q.question)
        gold = [(e.article_id, e.start or 0, e.end or 0) for e in q.evidence]
        hits += any(a == g and s < ge and gs < e for a, s, e in found for g, gs, ge in gold)
    return round(hits / len(answerable), 3)


def machine() -> dict[str, Any]:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in flags.splitlines() if "model name" in line), ""
    )
    features = [
        f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx_vnni") if f" {f}" in flags
    ]
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "features": features,
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    main()
