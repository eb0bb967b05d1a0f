"""Scale benchmark: the index as it is today at archive size, on a realistic corpus.

    python bench/scale.py --json                    # 100,000 articles, ~200k chunks
    python bench/scale.py --json --articles 10000   # ~20k chunks (bench/README.md: run times)

Why not bench/query.py: it replicates the shared articles, so BM25 ties across copies,
the vocabulary is that of 2k chunks and near-duplicate grouping joins every copy. Here
every article is distinct and every number in the issue's targets table is measured.

Corpus. Every sentence of the shared corpora (squad-dev-subset and news-sample
articles, SelQA's candidate sentences; squad-train holds no other text) cut by
index.sentences, the splitter the index uses, forms a pool grouped by source
document. A synthetic article picks a topic document (in proportion to its
sentences), takes up to a third of that document's sentences (at most 8) and fills up
to 8-15 with sentences of other documents, in paragraphs of 2-4 sentences; a
headline from its lead sentence, a date spread over 2005-2026 and one of a few hundred
outlets (Zipf-like shares). Two articles share few sentences, so none are near-
duplicates except `--planted` pairs made on purpose (the copy drops the last
sentence, as syndicated copies get trimmed): the build's duplicate groups are
reported beside the number planted, which also checks that nothing else was grouped.

Vectors. Each distinct pool sentence is embedded once for real with the configured
model (cached in `--out-dir`/sentences.npy, keyed by a hash of the sentence list).
`DerivedEmbedder` gives a chunk the normalised mean of the vectors of the sentences it
overlaps, each weighted by the share of its characters inside the chunk, and, for
each sentence span the Indexer asks about, a sum and a count of "word-pieces"
(share x word-pieces x the sentence's vector) so the pooled sentence vectors of
index.sentvecs point exactly along the sentences' real vectors. Questions are
embedded for real by the model, as when serving.

Questions. The answerable squad-dev-subset questions; each one's gold sentence (the
splitter's sentence holding the answer) is placed into `--gold-copies` synthetic
articles whose topic document is the question's source article, among (or just after)
the sentences they took from it, as a story on the subject would carry the fact
(`--plant random`, the way before stop 30: any articles, anywhere in them; a gold
sentence too long or short to be drawn always goes that way, 16 of 336), and the gold
is every span of that sentence in the corpus. hit@10
and MRR@10 (a gold span overlapping one of the ten best passages) are measured over
the scale index and over an index of the questions' source articles alone (the 48
SQuAD articles; paragraphs with `--sources paragraph`), built with the same vectors,
so the difference is what scale does. Every question's gold is planted and every
question is timed; the quality rows count those of `--split` (report by default, as
splits.json binds figures), with both splits' hit@10 gap beside them for figures
measured before stop 30.

What the derivation may flatter or hide. A chunk's vector is a mean of sentences
each read alone: no context across sentences and no title (which chunking.title_tokens,
32 by default, puts in the model's input). A sentence's vector is its own, not
its word-pieces read within the chunk (late chunking). Both make dense scores cleaner
than a real model pass gives. Against that, a synthetic article jumps between topics,
so a chunk's mean is blurrier than a real story's, and a gold sentence sits among a
few sentences of its own article, not in the paragraph its question was written
against, which the "alone" index keeps; so the gap measured is an upper bound on what
scale alone costs (with `--plant random`, a looser one). Every pool sentence (~30k) is
in about 40 articles at 100,000 articles of 8-15 sentences, and in ~220 at 100,000 of
50-80, so BM25 and dense near-ties are likelier than in a real archive.
Build times exclude the model's pass over the chunks (about 16 chunks/s on this CPU,
bench/README.md: ~17 h per million chunks, the reason vectors are derived): they are
the index's own cost plus `DerivedEmbedder`'s lookup of each chunk's sentences.

Each measurement runs in its own process (build, serve, update, check).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.embed import Embedder, Vectors  # light: the model loads on first use

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SQUAD = DATA / "squad-dev-subset"
NEWS = DATA / "news-sample" / "articles.jsonl"
SELQA = [DATA / "selqa" / "selqa-ass-dev.json", DATA / "selqa" / "selqa-ass-test.json"]

CITIES = """Aberdeen Albany Atlanta Auckland Austin Baltimore Belfast Birmingham Boston
Brisbane Bristol Buffalo Calgary Cardiff Charlotte Chicago Cincinnati Cleveland Columbus
Dallas Denver Detroit Dublin Durban Edinburgh Glasgow Halifax Houston Leeds Lagos Miami
Nairobi Omaha Ottawa Perth Phoenix Portland Sacramento Seattle Toronto""".split()  # noqa: SIM905
MASTHEADS = """Herald Times Gazette Post Tribune Chronicle Courier Observer Journal Star
Sentinel Examiner Standard Mirror Ledger Record Dispatch Independent""".split()  # noqa: SIM905
FIRST_YEAR, LAST_YEAR = 2005, 2026
_KEY = 40  # characters that find a sentence where a chunk starts


@dataclass
class Pool:
    """Distinct sentences, the documents they came from, and what may be drawn."""

    sentences: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    docs: list[tuple[str, list[int]]] = field(default_factory=list)  # title, sentence ids

    def add_doc(self, title: str, sentences: Sequence[str]) -> None:
        ids = []
        for s in sentences:
            if s not in self.ids:
                self.ids[s] = len(self.sentences)
                self.sentences.append(s)
            ids.append(self.ids[s])
        drawable = [i for i in dict.fromkeys(ids) if drawable_sentence(self.sentences[i])]
        if drawable:
            self.docs.append((title, drawable))

    def key(self) -> str:
        return hashlib.sha256("\n".join(self.sentences).encode()).hexdigest()[:16]


@dataclass
class Doc:
    """An article of the benchmark: its record and where each pool sentence lies in it."""

    id: str
    title: str
    text: str
    layout: list[tuple[int, int, int]]  # (start, end, sentence id), in text order
    date: str = ""
    source: str = ""
    url: str = ""

    def record(self) -> dict[str, str]:
        fields = {"id": self.id, "title": self.title, "text": self.text}
        extra = {"date": self.date, "source": self.source, "url": self.url}
        return fields | {k: v for k, v in extra.items() if v}


@dataclass
class Gold:
    question: str
    sentence: int  # pool id of the sentence holding the answer
    source_doc: str  # id of its source article (or paragraph) in the "alone" index
    split: str  # its article's split in squad-dev-subset/splits.json ("train", "report")


def drawable_sentence(s: str) -> bool:
    return 25 <= len(s) <= 400 and "\n" not in s and len(s.split()) >= 5


def split(text: str) -> list[tuple[int, int, str]]:
    from index.sentences import sentence_spans

    return [(a, b, text[a:b]) for a, b in sentence_spans(text)]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def source_units(kind: str) -> list[Doc]:
    """The SQuAD articles (or their paragraphs) as they are, each with its sentences."""
    units = []
    for record in read_jsonl(SQUAD / "articles.jsonl"):
        pieces = [(record["id"], record["title"], record["text"])]
        if kind == "paragraph":
            pieces = [
                (f"{record['id']}#{n}", f"{record['title']} ({n})", record["text"][a:b])
                for n, (a, b) in enumerate(record["paragraph_offsets"])
            ]
        for unit_id, title, text in pieces:
            units.append(Doc(unit_id, title, text, [(a, b, -1) for a, b, _ in split(text)]))
    return units


def answerable(kind: str, limit: int) -> list[tuple[str, str, int]]:
    """The first `limit` (0: all) answerable questions: question, id of the unit that
    holds the answer, the answer's offset in that unit."""
    articles = {r["id"]: r for r in read_jsonl(SQUAD / "articles.jsonl")}
    found = []
    for q in read_jsonl(SQUAD / "questions.jsonl"):
        if not q["answerable"] or not q["evidence"]:
            continue
        ev = q["evidence"][0]
        unit_id, offset = ev["article_id"], ev["answer_start"]
        if kind == "paragraph":
            a, _ = articles[unit_id]["paragraph_offsets"][ev["paragraph_index"]]
            unit_id, offset = f"{unit_id}#{ev['paragraph_index']}", offset - a
        found.append((q["question"], unit_id, offset))
    return found[:limit] if limit else found


def load_pool(units: list[Doc], wanted: set[str], limit: int) -> Pool:
    """The sentence pool: the questions' source units first (so the "alone" index and
    the gold sentences are in it), then news-sample, SelQA and the other SQuAD text,
    until `limit` sentences (0: all). Fills in the units' layouts."""
    pool = Pool()
    docs = [(u.title, [u.text[a:b] for a, b, _ in u.layout]) for u in units if u.id in wanted]
    for record in read_jsonl(NEWS):
        docs.append((record["title"], [s for _, _, s in split(record["text"])]))
    sections: dict[str, list[str]] = {}
    for path in SELQA:
        for record in json.loads(path.read_text(encoding="utf-8")):
            section = sections.setdefault(f"{record['article']}: {record['section']}", [])
            for candidate in record["candidates"]:
                section.extend(s for _, _, s in split(candidate))
    docs.extend(sections.items())
    docs.extend(
        (u.title, [u.text[a:b] for a, b, _ in u.layout]) for u in units if u.id not in wanted
    )
    for title, sentences in docs:
        if limit and len(pool.sentences) >= limit:
            break
        pool.add_doc(title, sentences)
    for unit in units:
        unit.layout = [(a, b, pool.ids.get(unit.text[a:b], -1)) for a, b, _ in unit.layout]
    return pool


def outlets() -> list[str]:
    return [f"{city} {mast}" for city in CITIES for mast in MASTHEADS[: 4 + len(city) % 8]]


def synthesize(
    pool: Pool,
    gold: list[Gold],
    n: int,
    sizes: Sequence[int],
    planted: int,
    copies: int,
    plant: str = "topical",
) -> list[Doc]:
    """`n` distinct articles of sizes[0] to sizes[1] sentences plus `planted`
    near-duplicate copies (see the module docstring). `plant` "random" is how gold was
    placed before stop 30, drawing the same corpus as then."""
    rng = random.Random(20261207)
    names = outlets()
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(names))]
    cumulative = list(np.cumsum([len(ids) for _, ids in pool.docs]))
    everything = [i for _, ids in pool.docs for i in ids]
    plans: list[list[int]] = []
    topics: dict[int, list[int]] = {}  # topic document -> its articles (rows)
    takes: list[int] = []  # how many sentences each article took from its topic
    for row in range(n):
        k = rng.randint(sizes[0], sizes[1])
        doc = min(
            bisect.bisect_right(cumulative, rng.random() * cumulative[-1]), len(pool.docs) - 1
        )
        own = pool.docs[doc][1]
        take = min(k, 8, max(1, len(own) // 3))
        topics.setdefault(doc, []).append(row)
        takes.append(take)
        picked = sorted(rng.sample(range(len(own)), take))
        chosen = [own[i] for i in picked]
        while len(chosen) < k:
            s = everything[rng.randrange(len(everything))]
            if s not in chosen:
                chosen.append(s)
        plans.append(chosen)
    home: dict[int, int] = {}  # a sentence's first document: a question's source unit
    for d, (_, ids) in enumerate(pool.docs):
        for sid in ids:
            home.setdefault(sid, d)
    for g in gold:  # the gold sentence into `copies` articles, replacing one sentence
        on_topic = topics.get(home.get(g.sentence, -1), [])
        topical = plant == "topical" and len(on_topic) >= copies
        rows: Sequence[int] = on_topic if topical else range(n)
        for row in rng.sample(rows, min(copies, len(rows))):
            plan = plans[row]
            if g.sentence not in plan:
                if topical:  # among (or just after) its topic's sentences
                    plan[min(len(plan) - 1, rng.randint(1, takes[row]))] = g.sentence
                else:
                    plan[rng.randrange(1, len(plan))] = g.sentence
    docs: list[Doc] = []
    titles: set[str] = set()
    for row, plan in enumerate(plans):
        outlet = rng.choices(names, weights)[0]
        year = rng.randint(FIRST_YEAR, LAST_YEAR)
        date = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        title = headline(pool.sentences[plan[0]], titles, outlet, year)
        docs.append(compose(f"scale-{row:07d}", title, plan, pool, rng, date, outlet))
    for row in rng.sample(range(n), min(planted, n)):
        original = docs[row]
        sids = [sid for _, _, sid in original.layout][:-1]
        outlet = rng.choices(names, weights)[0]
        copy = compose(f"{original.id}-copy", original.title, sids, pool, rng, "", outlet)
        copy.text = original.text[: original.layout[-2][1]]  # same paragraphs, trimmed
        copy.layout = original.layout[:-1]
        copy.date, copy.url = original.date, f"{original.url}?syndicated={slug(outlet)}"
        docs.append(copy)
    return docs


def headline(lead: str, taken: set[str], outlet: str, year: int) -> str:
    words = re.sub(r"[\"“”()\[\]]", "", lead).split()[:9]
    title = " ".join(words).rstrip(",.;:")
    for candidate in (title, f"{title} ({outlet})", f"{title} ({outlet}, {year})"):
        if candidate not in taken:
            break
    else:
        candidate = f"{title} ({outlet}, {year}, {len(taken)})"
    taken.add(candidate)
    return candidate


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def compose(
    doc_id: str, title: str, sids: list[int], pool: Pool, rng: random.Random, date: str, outlet: str
) -> Doc:
    parts: list[str] = []
    layout: list[tuple[int, int, int]] = []
    at, left = 0, rng.randint(2, 4)
    for sid in sids:
        sentence = pool.sentences[sid]
        if parts:
            gap = " " if left else "\n\n"
            left = left or rng.randint(2, 4)
            parts.append(gap)
            at += len(gap)
        parts.append(sentence)
        layout.append((at, at + len(sentence), sid))
        at += len(sentence)
        left -= 1
    url = f"https://{slug(outlet)}.example/{date[:4]}/{slug(title)[:60]}"
    return Doc(doc_id, title, "".join(parts), layout, date, outlet, url)


class DerivedEmbedder(Embedder):
    """Chunk and sentence vectors derived from the pool's real sentence vectors (see
    the module docstring); the model itself only for tokenizing and questions."""

    def __init__(self, settings: Any, docs: Sequence[Doc], pool: Pool) -> None:
        super().__init__(settings.embedding)
        self.vectors: Vectors = np.zeros((0, 0), dtype=np.float32)  # see sentence_vectors
        self.tokens: Vectors = np.zeros(0, dtype=np.float32)
        self.docs = docs
        # A chunk is found by the first pool sentence in it: the sentence by its first
        # characters, then the articles holding it, by where.
        self.starts: dict[str, list[int]] = {}
        for sid, sentence in enumerate(pool.sentences):
            if len(sentence) >= _KEY:
                self.starts.setdefault(sentence[:_KEY], []).append(sid)
        self.places: dict[int, list[tuple[int, int]]] = {}
        for row, doc in enumerate(docs):
            for a, _, sid in doc.layout:
                self.places.setdefault(sid, []).append((row, a))

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, list[Vectors], list[Vectors]]:
        dim = self.vectors.shape[1]
        out = np.zeros((len(texts), dim), dtype=np.float32)
        sums: list[Vectors] = []
        counts: list[Vectors] = []
        for row, (text, text_spans) in enumerate(zip(texts, spans, strict=True)):
            doc, at, offset = self._locate(text)
            out[row] = self._mean(doc, at, at + len(text) - offset)
            span_sums = np.zeros((len(text_spans), dim), dtype=np.float32)
            span_counts = np.zeros(len(text_spans), dtype=np.float32)
            for j, (a, b) in enumerate(text_spans):
                for sid, share in self._overlaps(doc, at + a - offset, at + b - offset):
                    span_sums[j] += share * self.tokens[sid] * self.vectors[sid]
                    span_counts[j] += share * self.tokens[sid]
            sums.append(span_sums)
            counts.append(span_counts)
        return out, sums, counts

    def _locate(self, text: str) -> tuple[Doc, int, int]:
        """The article a model input comes from, where in it the input's chunk starts, and
        how many characters (a title, if the settings embed one) come before the chunk."""
        # The chunk follows an embedded title and its newline (chunk.embedding_input),
        # or is the whole input. Trying every offset up to the sentence found made this
        # search most of the benchmark's build time at a million chunks.
        heads = {offset: text[offset:] for offset in (0, text.find("\n") + 1)}
        for p in range(len(text) - _KEY + 1):
            for sid in self.starts.get(text[p : p + _KEY], ()):
                for row, a in self.places.get(sid, ()):
                    doc = self.docs[row]
                    for offset, chunk in heads.items():
                        at = a - (p - offset)
                        if offset <= p and at >= 0 and doc.text.startswith(chunk, at):
                            return doc, at, offset
        # Too short to hold a sentence's first characters.
        for offset, chunk in heads.items():
            for doc in self.docs:
                at = doc.text.find(chunk)
                if at >= 0:
                    return doc, at, offset
        raise LookupError(f"no benchmark article holds the chunk {text[:80]!r}")

    def _overlaps(self, doc: Doc, start: int, end: int) -> list[tuple[int, float]]:
        return [
            (sid, (min(b, end) - max(a, start)) / (b - a))
            for a, b, sid in doc.layout
            if a < end and b > start and sid >= 0
        ]

    def _mean(self, doc: Doc, start: int, end: int) -> Vectors:
        total = np.zeros(self.vectors.shape[1], dtype=np.float32)
        for sid, share in self._overlaps(doc, start, end):
            total += share * self.vectors[sid]
        norm = float(np.linalg.norm(total))
        result: Vectors = total / norm if norm else total
        return result


def settings_for(index_dir: Path, chroma_url: str | None) -> Any:
    from newsdesk.settings import ChromaSettings, Settings

    if chroma_url:
        return Settings(index_dir=index_dir, chroma=ChromaSettings(url=chroma_url))
    return Settings(index_dir=index_dir)


@dataclass
class World:
    pool: Pool
    gold: list[Gold]
    units: list[Doc]  # the questions' source units: the "alone" index
    docs: list[Doc]  # the scale corpus


def world(args: argparse.Namespace) -> World:
    """The corpus and questions, the same in every process (seeded)."""
    from eval.dataset import load_splits

    questions = answerable(args.sources, args.questions)
    splits = load_splits(SQUAD / "splits.json")
    wanted = {unit_id for _, unit_id, _ in questions}
    units = source_units(args.sources)
    pool = load_pool(units, wanted, args.pool)
    alone = [u for u in units if u.id in wanted]
    by_id = {u.id: u for u in alone}
    gold = [
        Gold(question, sid, unit_id, splits.get(unit_id.split("#")[0], ""))
        for question, unit_id, offset in questions
        for a, b, sid in by_id[unit_id].layout
        if a <= offset < b and sid >= 0
    ]
    docs = synthesize(
        pool, gold, args.articles, args.sentences, args.planted, args.gold_copies, args.plant
    )
    return World(pool, gold, alone, docs)


def sentence_vectors(pool: Pool, out_dir: Path, embedder: Embedder) -> tuple[Vectors, Vectors]:
    """Every pool sentence embedded once (cached by the pool's hash), with word-piece counts."""
    vectors_file, meta_file = out_dir / "sentences.npy", out_dir / "sentences.json"
    key = f"{pool.key()}:{embedder.model_id}"
    if vectors_file.is_file() and meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        if meta.get("key") == key:
            return np.load(vectors_file), np.asarray(meta["tokens"], dtype=np.float32)
    vectors = embedder.embed(pool.sentences, truncation_ok=True)
    tokens = [max(1, n) for n in embedder.count_tokens(pool.sentences)]
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(vectors_file, vectors)
    meta_file.write_text(json.dumps({"key": key, "tokens": tokens}))
    return vectors, np.asarray(tokens, dtype=np.float32)


def write_corpus(path: Path, docs: Sequence[Doc]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps(doc.record()) + "\n")


# --- the steps, each in its own process ----------------------------------------------


def build(args: argparse.Namespace) -> dict[str, Any]:
    """The sentence vectors (unless cached), then the "alone" and the scale index."""
    from bench.measure import peak_rss_mb
    from index.build import Indexer

    began = time.perf_counter()
    w = world(args)
    corpus_seconds = time.perf_counter() - began
    settings = settings_for(args.out_dir / "index", args.chroma_url)
    embedder = DerivedEmbedder(settings, [*w.units, *w.docs], w.pool)
    began = time.perf_counter()
    embedder.vectors, embedder.tokens = sentence_vectors(w.pool, args.out_dir, embedder)
    embed_seconds = time.perf_counter() - began
    result: dict[str, Any] = {
        "pool_sentences": len(w.pool.sentences),
        "pool_documents": len(w.pool.docs),
        "corpus_seconds": round(corpus_seconds, 1),
        "sentence_embedding_seconds": round(embed_seconds, 1),
    }
    for name, docs, chroma_url in (("alone", w.units, None), ("scale", w.docs, args.chroma_url)):
        index_dir = args.out_dir / ("index" if name == "scale" else name)
        corpus = args.out_dir / f"{name}.jsonl"
        write_corpus(corpus, docs)
        shutil.rmtree(index_dir, ignore_errors=True)
        began = time.perf_counter()
        report = Indexer(settings_for(index_dir, chroma_url), embedder).build([corpus])
        seconds = time.perf_counter() - began
        assert report.manifest is not None
        manifest = report.manifest
        result[name] = {
            "articles": manifest.article_count,
            "chunks": manifest.chunk_count,
            "seconds": round(seconds, 1),
            "ms_per_chunk": round(seconds / manifest.chunk_count * 1000, 2),
            "duplicate_groups": manifest.duplicate_groups,
            "peak_rss_mb": peak_rss_mb(),
            **footprint(index_dir),
        }
    result["scale"]["planted_pairs"] = min(args.planted, args.articles)
    result["scale"]["grouped_planted"] = planted_grouped(args.out_dir / "index")
    write_questions(args.out_dir / QUESTIONS_FILE, w)
    return result


QUESTIONS_FILE = "questions.json"


def write_questions(path: Path, w: World) -> None:
    """What the later steps need of the corpus: the questions, where their gold is in both
    indexes, and the article the update step changes. Reading this instead of drawing the
    corpus again keeps GBs of synthetic text out of the serving process's RSS at 1M."""
    changed = w.docs[len(w.docs) // 2]
    saved = {
        "gold": [asdict(g) for g in w.gold],
        "scale": gold_spans(w.gold, w.docs),
        "alone": gold_spans(w.gold, w.units),
        "changed": {
            "record": changed.record(),
            "middle": changed.layout[len(changed.layout) // 2][1] + 1,
        },
    }
    path.write_text(json.dumps(saved), encoding="utf-8")


def read_questions(path: Path) -> dict[str, Any]:
    if not path.is_file():
        sys.exit(f"{path}: no questions; run the build step first")
    saved = json.loads(path.read_text(encoding="utf-8"))
    saved["gold"] = [Gold(**g) for g in saved["gold"]]
    for name in ("scale", "alone"):
        saved[name] = {
            int(sid): [tuple(span) for span in spans] for sid, spans in saved[name].items()
        }
    return dict(saved)


def footprint(index_dir: Path) -> dict[str, Any]:
    from index.db import DB_FILE
    from index.vectors import VECTORS_PREFIX

    files = [p for p in index_dir.rglob("*") if p.is_file()]
    vectors = sum(p.stat().st_size for p in index_dir.glob(f"{VECTORS_PREFIX}*"))
    return {
        "database_mb": round((index_dir / DB_FILE).stat().st_size / 2**20, 1),
        "files": len(files),
        "sentence_vectors_mb": round(vectors / 2**20, 1),
        "disk_mb": round(sum(p.stat().st_size for p in files) / 2**20),
    }


def planted_grouped(index_dir: Path) -> int:
    """How many planted copies the build grouped with their original."""
    from index.db import read_manifest

    manifest = read_manifest(index_dir)
    assert manifest is not None
    return sum(
        1
        for member, canonical in manifest.duplicates.items()
        if member.endswith("-copy") and canonical == member.removesuffix("-copy")
    )


def serve(args: argparse.Namespace) -> dict[str, Any]:
    from bench.measure import peak_rss_mb, percentiles, rss_mb
    from index.reader import IndexReader
    from rag.answer import ExtractiveAnswerer

    saved = read_questions(args.out_dir / QUESTIONS_FILE)
    gold, scale_gold, alone_gold = saved["gold"], saved["scale"], saved["alone"]
    settings = settings_for(args.out_dir / "index", args.chroma_url)
    embedder = Embedder(settings.embedding)
    began = time.perf_counter()
    embedder.embed_query("load the model")
    model_seconds = time.perf_counter() - began
    rss_model = rss_mb()
    began = time.perf_counter()
    reader = IndexReader(settings, embedder)
    opened = time.perf_counter() - began
    answerer = ExtractiveAnswerer(reader, settings)
    questions = [g.question for g in gold]
    answerer.ask(questions[0])
    first = time.perf_counter() - began
    for q in questions[1:6]:  # warm-up, as bench/query.py
        answerer.ask(q)
    latencies, answers = [], []
    for q in questions:
        t = time.perf_counter()
        answers.append(answerer.ask(q))
        latencies.append((time.perf_counter() - t) * 1000)
    rss_served = rss_mb()
    rss_parts = {"anon": rss_mb("RssAnon"), "file_pages": rss_mb("RssFile")}
    chunks = reader.manifest.chunk_count
    alone_settings = settings_for(args.out_dir / "alone", None)
    alone = ExtractiveAnswerer(IndexReader(alone_settings, embedder), alone_settings)
    alone_answers = [alone.ask(q) for q in questions]
    scale_judged = judged(answerer, gold, scale_gold, answers)
    alone_judged = judged(alone, gold, alone_gold, alone_answers)
    measured = [i for i, g in enumerate(gold) if args.split in ("all", g.split)]
    scale_quality = quality([scale_judged[i] for i in measured])
    alone_quality = quality([alone_judged[i] for i in measured])
    scale_all, alone_all = quality(scale_judged), quality(alone_judged)
    return {
        "chunks": chunks,
        "questions": len(questions),
        "model_load_seconds": round(model_seconds, 2),
        "open_seconds": round(opened, 2),
        "open_and_first_answer_seconds": round(first, 2),
        "answer_ms": percentiles(latencies),
        "rss_model_only_mb": rss_model,
        "rss_serving_mb": rss_served,
        "rss_serving_parts_mb": rss_parts,
        "rss_per_10k_chunks_mb": round((rss_served - rss_model) / chunks * 10_000, 1),
        "peak_rss_mb": peak_rss_mb(),
        "quality_split": args.split,
        "scale": scale_quality,
        "alone": alone_quality,
        "hit@10_delta_points": round((scale_quality["hit@10"] - alone_quality["hit@10"]) * 100, 1),
        # Both splits, as every figure before the split was applied here (stop 30):
        "hit@10_delta_points_all_splits": round(
            (scale_all["hit@10"] - alone_all["hit@10"]) * 100, 1
        ),
    }


def gold_spans(gold: Sequence[Gold], docs: Sequence[Doc]) -> dict[int, list[tuple[str, int, int]]]:
    """Where each gold sentence is in `docs`: (article id, start, end) of every copy."""
    wanted = {g.sentence for g in gold}
    where: dict[int, list[tuple[str, int, int]]] = {}
    for doc in docs:
        for a, b, sid in doc.layout:
            if sid in wanted:
                where.setdefault(sid, []).append((doc.id, a, b))
    return where


def judged(
    answerer: Any,
    gold: Sequence[Gold],
    where: dict[int, list[tuple[str, int, int]]],
    answers: Sequence[Any],
) -> list[tuple[float, bool]]:
    """Per question: the reciprocal rank of the first of the ten best passages that
    overlaps a span of the gold sentence (0 if none), and whether the answer quotes one.
    Retrieved once, so several question subsets can be summed (`quality`)."""

    def gold_at(spans: list[tuple[str, int, int]], article: str, start: int, end: int) -> bool:
        return any(i == article and a < end and b > start for i, a, b in spans)

    found = []
    for g, answer in zip(gold, answers, strict=True):
        spans = where.get(g.sentence, [])
        passages = answerer.retriever.retrieve(g.question, k=10)
        reciprocal = next(
            (
                1 / rank
                for rank, p in enumerate(passages, start=1)
                if gold_at(spans, p.article.id, p.start, p.end)
            ),
            0.0,
        )
        quoted = any(gold_at(spans, c.article_id, c.start, c.end) for c in answer.citations)
        found.append((reciprocal, quoted))
    return found


def quality(judgements: Sequence[tuple[float, bool]]) -> dict[str, Any]:
    """hit@10, MRR@10 and the share of answers quoting gold, over `judged` questions."""
    n = max(1, len(judgements))
    return {
        "questions": len(judgements),
        "hit@10": round(sum(r > 0 for r, _ in judgements) / n, 3),
        "mrr@10": round(sum(r for r, _ in judgements) / n, 3),
        "answer_quotes_gold": round(sum(q for _, q in judgements) / n, 3),
    }


def update(args: argparse.Namespace) -> dict[str, Any]:
    """One changed article in a warm process (model loaded, Chroma open), embedded for
    real: a paragraph appended, then a correction in the middle."""
    from index.build import Indexer
    from index.db import read_manifest
    from index.store import ChunkStore, chroma_client

    changed = read_questions(args.out_dir / QUESTIONS_FILE)["changed"]
    settings = settings_for(args.out_dir / "index", args.chroma_url)
    indexer = Indexer(settings)
    vector = indexer.embedder.embed_query("load the model")
    # A serving process has its collection's vectors loaded: the first read of them
    # takes Chroma 1.3 s at 318k chunks, once per process.
    manifest = read_manifest(settings.index_dir)
    assert manifest is not None
    ChunkStore.open(chroma_client(settings), manifest.collection).nearest(vector, 1)
    record, middle = changed["record"], changed["middle"]
    text = record["text"]
    stamp = f"{time.time():.0f}"
    cases = {
        "appended_paragraph": dict(record, text=f"{text}\n\nUpdate {stamp}: a new paragraph."),
        "correction_in_the_middle": dict(
            record, text=f"{text[:middle]}Correction {stamp}: a new sentence. {text[middle:]}"
        ),
    }
    result: dict[str, Any] = {}
    for name, changed in cases.items():
        path = args.out_dir / f"{name}.jsonl"
        path.write_text(json.dumps(changed) + "\n", encoding="utf-8")
        began = time.perf_counter()
        report = indexer.update([path])
        result[name] = {
            "seconds": round(time.perf_counter() - began, 2),
            "chunks_embedded": report.chunks_embedded,
            "chunks_copied": report.chunks_copied,
        }
    result["seconds"] = max(r["seconds"] for r in result.values())
    return result


def check(args: argparse.Namespace) -> dict[str, Any]:
    from bench.measure import peak_rss_mb
    from index.check import check_index

    settings = settings_for(args.out_dir / "index", args.chroma_url)
    began = time.perf_counter()
    report = check_index(settings)
    return {
        "seconds": round(time.perf_counter() - began, 1),
        "ok": report.ok,
        "damage": report.damage[:3],
        "peak_rss_mb": peak_rss_mb(),
    }


STEPS = {"build": build, "serve": serve, "update": update, "check": check}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument(
        "--sentences",
        type=int,
        nargs=2,
        default=(8, 15),
        metavar=("MIN", "MAX"),
        help="Sentences per article: 8-15 gives ~2 chunks, 60-100 ~10 chunks.",
    )
    parser.add_argument("--planted", type=int, default=20, help="Near-duplicate pairs made.")
    parser.add_argument("--gold-copies", type=int, default=2)
    parser.add_argument(
        "--plant",
        choices=("topical", "random"),
        default="topical",
        help="Where gold sentences go: articles on their source's topic, or (before "
        "stop 30) any articles.",
    )
    parser.add_argument("--questions", type=int, default=0, help="0: all answerable.")
    parser.add_argument("--sources", choices=("article", "paragraph"), default="article")
    parser.add_argument(
        "--split",
        choices=("report", "train", "all"),
        default="report",
        help="Whose questions the quality rows count (squad-dev-subset/splits.json); every "
        "split's gold is planted and timed alike, so the corpus does not depend on it.",
    )
    parser.add_argument("--pool", type=int, default=0, help="Most pool sentences (0: all).")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench-out" / "scale")
    parser.add_argument("--chroma-url", help="A `chroma run` server instead of embedded.")
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    parser.add_argument("--step", choices=tuple(STEPS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(STEPS[args.step](args)))
        return
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "articles": args.articles,
        "chroma": args.chroma_url or "embedded",
    }
    for name in STEPS:
        began = time.perf_counter()
        report[name] = child(name, args)
        report[name]["step_wall_seconds"] = round(time.perf_counter() - began, 1)
        if not args.json:
            print(f"{name}: {json.dumps(report[name])}", file=sys.stderr)
    serve_result = report["serve"]
    report["targets"] = {
        "open_under_5s": serve_result["open_and_first_answer_seconds"] <= 5,
        "rss_serving_under_3gb": serve_result["rss_serving_mb"] <= 3 * 1024,
        "answer_p50_under_150ms": serve_result["answer_ms"]["p50"] <= 150,
        "answer_p95_under_400ms": serve_result["answer_ms"]["p95"] <= 400,
        "update_one_changed_article_under_2s": report["update"]["seconds"] <= 2,
        "check_under_60s": report["check"]["seconds"] <= 60,
        "hit@10_within_2_points_of_alone": abs(serve_result["hit@10_delta_points"]) <= 2,
    }
    print(json.dumps(report, indent=2))


def child(step: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--step", step, "--articles", str(args.articles)]
    cmd += ["--sentences", *map(str, args.sentences), "--planted", str(args.planted)]
    cmd += ["--gold-copies", str(args.gold_copies), "--plant", args.plant]
    cmd += ["--questions", str(args.questions), "--sources", args.sources, "--split", args.split]
    cmd += ["--pool", str(args.pool), "--out-dir", str(args.out_dir)]
    if args.chroma_url:
        cmd += ["--chroma-url", args.chroma_url]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"step {step} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
