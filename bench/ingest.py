"""Ingest benchmark: newsdesk against the plain llama-index pipeline, in one run.

    python bench/ingest.py --json            # squad + news sample, 2 runs each
    python bench/ingest.py --runs 1 --articles some.jsonl --questions q.jsonl
    python bench/ingest.py --json --backends fp32 int8 bf16
    python bench/ingest.py --json --variants plain newsdesk --backends --chunkings 0/32 32/0 0/0

Variants, each run in its own process (so peak RSS is its own):
  plain      VectorStoreIndex + SentenceSplitter(256, 20) + HuggingFaceEmbedding +
             ChromaVectorStore in a temp PersistentClient: what a careful user writes
  plain1024  the same with llama-index's default splitter (1024/200); MiniLM reads only
             the first 256 word-pieces of each chunk, so most of the text is never embedded
  newsdesk   `Indexer.build`, as `newsdesk index build` runs it, in float32
Backends (`--backends`): newsdesk again with `embedding.dtype` set to each (fp32 is the
newsdesk variant's run); `backends` in the JSON gives each one's speedup over plain and
its retrieval quality beside fp32's, `*_delta` = backend - fp32 of the same run.
Chunkings (`--chunkings TITLE/OVERLAP ...`): newsdesk fp32 again with chunking.title_tokens
and chunking.overlap_tokens set so (the defaults are 32/32), to see what the title in front
of every chunk and the overlap between chunks cost in speed and buy in ranking; `chunkings`
in the JSON holds each one's speed and quality with its change from the default run.

Times are wall seconds from the loaded articles to a queryable index, model loading
included, imports excluded. `tokens_embedded` counts the word-pieces the model actually
read (after truncation). Medians over `--runs`.

Quality (`quality`: question set -> retrieval mode -> figures): hit@1 / hit@10 = share of
answerable questions with a gold evidence span overlapping the best / one of the ten
best passages; mrr@10 = mean of 1/rank of the first such passage (0 beyond ten). Sets:
`squad_report` (only the questions whose article is in splits.json's report split),
`news` (news-sample) and `squad_train` (the train split: choices such as the chunking
defaults are made on it, figures reported on `squad_report`). Modes: `dense` (the
embedding leg alone: like with like beside the plain pipeline, which is dense-only) and
`hybrid` (dense + BM25, what users get); for a backend other than fp32 also
`dense_fp32_query` / `hybrid_fp32_query`: fp32 questions against the vectors it built
(not for int8, a write-time precision whose questions are float32 already).
`hit@10` / `mrr@10` at the top of a backend: squad_report hybrid; `hit_at_10` in
results: squad_report, hybrid (newsdesk) or dense (plain).
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
NEWS_QUESTIONS = DATA / "news-sample" / "questions.jsonl"
SPLIT = "report"  # splits.json beside the questions is binding: figures on report articles
VARIANTS = ("plain", "plain1024", "newsdesk")
BACKENDS = {"fp32": "float32", "int8": "int8", "bf16": "bfloat16", "fp16": "float16"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=Path, nargs="+", default=DEFAULT_ARTICLES)
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--news-questions", type=Path, default=NEWS_QUESTIONS)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--backends", nargs="*", choices=BACKENDS, default=["fp32", "int8"])
    parser.add_argument("--chunkings", nargs="*", type=chunking, default=[], metavar="T/O")
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    parser.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)  # child process
    parser.add_argument("--chunking", type=chunking, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.one:
        sets = question_sets(args.questions, args.news_questions)
        print(json.dumps(run_one(args.one, args.articles, sets, args.dtype, args.chunking)))
        return
    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    for variant in args.variants:
        results[variant] = measure(variant, "float32", args)
    runs_of = {"fp32": results["newsdesk"]} if "newsdesk" in results else {}
    for name in args.backends:
        if name not in runs_of:
            runs_of[name] = measure("newsdesk", BACKENDS[name], args, name)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "corpus": [str(p) for p in args.articles],
        "runs": args.runs,
        "results": results,
    }
    if "plain" in results and "newsdesk" in results:
        base, ours = results["plain"], results["newsdesk"]
        report["speedup"] = round(ours["chars_per_s"] / base["chars_per_s"], 2)
        report["speedup_tokens"] = round(ours["tokens_per_s"] / base["tokens_per_s"], 2)
    plain_speed = results["plain"]["chars_per_s"] if "plain" in results else None
    report["backends"] = [
        backend(name, runs_of[name], runs_of.get("fp32"), plain_speed) for name in args.backends
    ]
    report["chunkings"] = []
    for title, overlap in args.chunkings:
        run = measure("newsdesk", "float32", args, f"chunking {title}/{overlap}", (title, overlap))
        row = backend("fp32", run, runs_of.get("fp32"), plain_speed)
        del row["name"], row["dtype"]
        report["chunkings"].append(
            {"title_tokens": title, "overlap_tokens": overlap, "chunks": run["chunks"], **row}
        )
    print(json.dumps(report, indent=2))


def chunking(value: str) -> tuple[int, int]:
    """TITLE/OVERLAP word-pieces, as `--chunkings 0/32` gives them."""
    try:
        title, overlap = (int(part) for part in value.split("/"))
    except ValueError:
        message = f"expected TITLE/OVERLAP such as 0/32, got {value!r}"
        raise argparse.ArgumentTypeError(message) from None
    return title, overlap


def measure(
    variant: str,
    dtype: str,
    args: argparse.Namespace,
    name: str = "",
    chunking: tuple[int, int] | None = None,
) -> Any:
    runs = [child(variant, dtype, args, chunking) for _ in range(args.runs)]
    result = summarise(runs)
    if not args.json:
        print(f"{name or variant}: {json.dumps(result)}", file=sys.stderr)
    return result


def backend(
    name: str, ours: dict[str, Any], fp32: dict[str, Any] | None, plain_speed: float | None
) -> dict[str, Any]:
    """One row of `backends`: speed over plain, quality and its change from fp32."""
    quality: dict[str, Any] = {}
    for qset, modes in ours["quality"].items():
        quality[qset] = {}
        for mode, figures in modes.items():
            ref = (fp32 or {}).get("quality", {}).get(qset, {}).get(mode.split("_")[0])
            deltas = {f"{k}_delta": delta(v, ref and ref[k]) for k, v in figures.items()}
            quality[qset][mode] = {**figures, **{k: v for k, v in deltas.items() if "@" in k}}
    main = quality.get("squad_report", {}).get("hybrid", {})
    speed = ours["chars_per_s"]
    return {
        "name": name,
        "dtype": BACKENDS[name],
        "speedup": round(speed / plain_speed, 2) if plain_speed else None,
        "chars_per_s": speed,
        "hit@10": main.get("hit@10"),
        "hit@10_delta": main.get("hit@10_delta"),
        "mrr@10": main.get("mrr@10"),
        "mrr@10_delta": main.get("mrr@10_delta"),
        "quality": quality,
    }


def delta(value: float | None, ref: float | None) -> float | None:
    return None if value is None or ref is None else round(value - ref, 3)


def child(
    variant: str, dtype: str, args: argparse.Namespace, chunking: tuple[int, int] | None
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", variant, "--dtype", dtype]
    cmd += ["--chunking", "/".join(map(str, chunking))] if chunking else []
    cmd += ["--questions", str(args.questions), "--news-questions", str(args.news_questions)]
    cmd += ["--articles", *map(str, args.articles)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    median = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    median["seconds_each_run"] = [r["seconds"] for r in runs]
    median["quality"] = runs[0]["quality"]  # the same index each run: the same ranking
    return median


QuestionSets = dict[str, tuple[Path, str | None]]  # name -> (questions file, split or None)


def question_sets(squad: Path, news: Path) -> QuestionSets:
    return {"squad_report": (squad, SPLIT), "news": (news, None), "squad_train": (squad, "train")}


def run_one(
    variant: str,
    articles: list[Path],
    sets: QuestionSets,
    dtype: str,
    chunking: tuple[int, int] | None = None,
) -> dict[str, Any]:
    records = [json.loads(line) for p in articles for line in p.read_text().splitlines() if line]
    chars = sum(len(r["text"]) for r in records)
    with tempfile.TemporaryDirectory() as tmp:
        if variant == "newsdesk":
            seconds, chunks, tokens, searches = newsdesk(articles, Path(tmp), dtype, chunking)
        else:
            size, overlap = (256, 20) if variant == "plain" else (1024, 200)
            seconds, chunks, tokens, search = plain(records, Path(tmp), size, overlap)
            searches = {"dense": search}
        quality = ranking_quality(searches, articles, sets)
    main = quality.get("squad_report", {})
    hit = main.get("hybrid", main.get("dense", {})).get("hit@10")
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
        "quality": quality,
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


def newsdesk(
    articles: list[Path], tmp: Path, dtype: str, chunking: tuple[int, int] | None = None
) -> tuple[float, int, int, dict[str, Search]]:
    from index.build import Indexer
    from index.embed import Embedder
    from index.reader import IndexReader
    from newsdesk.settings import ChunkingSettings, EmbeddingSettings, Settings

    embedding = EmbeddingSettings(device="cpu", dtype=dtype)
    chunks = ChunkingSettings()
    if chunking:
        chunks = ChunkingSettings(title_tokens=chunking[0], overlap_tokens=chunking[1])
    settings = Settings(index_dir=tmp / "ix", embedding=embedding, chunking=chunks)
    began = time.perf_counter()
    indexer = Indexer(settings)
    report = indexer.build(articles)
    seconds = time.perf_counter() - began
    assert report.manifest is not None
    reader = IndexReader(settings, indexer.embedder)
    tokens = embedded_tokens(indexer, reader)
    searches = retrieval_modes(reader, "")
    if dtype not in ("float32", "int8"):  # float32 questions against this backend's vectors
        fp32 = Embedder(embedding.model_copy(update={"dtype": "float32"}))
        searches |= retrieval_modes(IndexReader(settings, fp32), "_fp32_query")
    return seconds, report.manifest.chunk_count, tokens, searches


def retrieval_modes(reader: Any, suffix: str) -> dict[str, Search]:
    """Hybrid retrieval as users get it, and its dense leg alone."""
    from rag.retrieve import Retriever

    hybrid = reader.settings.retrieval
    modes = {"hybrid": hybrid, "dense": hybrid.model_copy(update={"lexical": False})}
    searches: dict[str, Search] = {}
    for mode, settings in modes.items():
        retriever = Retriever(reader, settings)

        def search(question: str, r: Retriever = retriever) -> list[tuple[str, int, int]]:
            return [(p.article.id, p.start, p.end) for p in r.retrieve(question, k=10)]

        searches[mode + suffix] = search
    return searches


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


def ranking_quality(
    searches: dict[str, Search], articles: list[Path], sets: QuestionSets
) -> dict[str, dict[str, dict[str, float]]]:
    """hit@1, hit@10 and MRR@10 of each search on each question set there is a file for."""
    from eval.dataset import in_split, load_questions, load_splits
    from index.load import load_sources

    loaded = {a.id: a for a in load_sources(articles).articles}
    quality: dict[str, dict[str, dict[str, float]]] = {}
    for name, (path, split) in sets.items():
        if not path.is_file():
            continue
        questions = load_questions(path, loaded).questions
        splits_file = path.parent / "splits.json"
        if split and splits_file.is_file():
            questions, _ = in_split(questions, load_splits(splits_file), split, str(path))
        answerable = [q for q in questions if q.answerable and q.evidence]
        if answerable:
            quality[name] = {mode: ranks(s, answerable) for mode, s in searches.items()}
    return quality


def ranks(search: Search, answerable: list[Any]) -> dict[str, float]:
    first = [first_hit(search(q.question), q.evidence) for q in answerable]
    n = len(answerable)
    return {
        "questions": n,
        "hit@1": round(sum(r == 1 for r in first) / n, 3),
        "hit@10": round(sum(r is not None for r in first) / n, 3),
        "mrr@10": round(sum(1 / r for r in first if r is not None) / n, 3),
    }


def first_hit(found: list[tuple[str, int, int]], evidence: list[Any]) -> int | None:
    """Rank (from 1) of the first passage overlapping a gold evidence span, within ten."""
    gold = [(e.article_id, e.start or 0, e.end or 0) for e in evidence]
    for rank, (a, s, e) in enumerate(found[:10], start=1):
        if any(a == g and s < ge and gs < e for g, gs, ge in gold):
            return rank
    return None


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
