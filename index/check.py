"""`newsdesk index check`: does the live state hold together, and what did failed writes leave?

Readers trust only what the index database's live state names, and it switches in one
transaction, so an interrupted build or update can never be served half-done; it can
only leave things behind (chunks of versions no state names, a half-filled collection,
keyword segments or a sentence-vector file of a state that never went live, rows a
dead writer appended to the vector file). Those are *leftovers*: harmless, but they
take space. *Damage* is different: something the state names is missing or disagrees
with the article texts, so answers could fail or cite the wrong span. Both are found
here, and removing leftovers; re-embedding damaged articles is index.repair.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from index.db import LEGACY_MANIFEST, IndexDB, SentenceRows
from index.lexical import LEXICAL_DIR
from index.lock import holder
from index.manifest import Manifest, UnusableIndex
from index.postings import LexicalIndexError, Segment
from index.sentences import SPLITTER
from index.store import (
    FILTER_FIELDS,
    ChunkStore,
    StoreUnavailable,
    chroma_client,
    chunk_ids,
    chunk_metadata,
    drop_collection,
)
from index.text import TOKENIZER
from index.types import Article, content_hash
from index.vectors import VECTORS_PREFIX, VECTORS_SUFFIX, file_rows, row_bytes
from newsdesk.settings import Settings

# What indexes before the database kept: removed by the first build in this layout.
_LEGACY = (LEGACY_MANIFEST, "articles", "sentences")

_SHOWN = 3  # examples given in a message


@dataclass
class Leftovers:
    """What no state names: safe to delete once no write is running."""

    chunks: list[str] = field(default_factory=list)  # in the live collection
    collections: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    vector_rows: int = 0  # appended to the live vector file after its state committed
    vectors_file: Path | None = None
    vectors_end: int = 0  # bytes of it the live state covers

    def __bool__(self) -> bool:
        return bool(self.chunks or self.collections or self.paths or self.vector_rows)

    def lines(self) -> list[str]:
        found = []
        if self.chunks:
            found.append(
                f"{len(self.chunks)} chunks in the collection that no article version of the "
                f"index names (e.g. {', '.join(self.chunks[:_SHOWN])})"
            )
        if self.collections:
            found.append(f"collections of unfinished builds: {', '.join(self.collections)}")
        if self.paths:
            names = ", ".join(str(p.name) for p in self.paths[:_SHOWN])
            found.append(f"{len(self.paths)} files or folders no index state names (e.g. {names})")
        if self.vector_rows:
            found.append(
                f"{self.vector_rows} sentence-vector rows at the end of {self.vectors_file} "
                "that no index state names"
            )
        return found


@dataclass
class CheckReport:
    index_dir: Path
    manifest: Manifest | None
    damage: list[str] = field(default_factory=list)
    leftovers: Leftovers = field(default_factory=Leftovers)
    notes: list[str] = field(default_factory=list)
    # What a repair has to redo: articles to embed again, the keyword index, the collection.
    articles: dict[str, Article] | None = None  # the texts, when they could be read
    reembed: set[str] = field(default_factory=set)
    lexical: bool = False
    collection: bool = False
    vectors_file: bool = False  # the sentence-vector file is missing or cut short
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.damage

    @property
    def repairable(self) -> bool:
        """Damage a repair can mend from the stored article texts alone."""
        return self.manifest is not None and self.articles is not None

    def lines(self) -> list[str]:
        shown = [f"damaged: {d}" for d in self.damage]
        shown += [f"leftover: {line}" for line in self.leftovers.lines()]
        return shown + [f"note: {n}" for n in self.notes]


def check_index(settings: Settings) -> CheckReport:
    """Everything the live state names, checked against Chroma, the keyword index, the
    sentence vectors and the article texts; plus what lies around unnamed."""
    index_dir = settings.index_dir
    db = IndexDB(index_dir)
    try:
        live = db.read_live()
        broken = db.integrity() if live is not None else []
    except UnusableIndex as exc:
        return CheckReport(index_dir, None, damage=[str(exc)])
    if live is None:
        return CheckReport(index_dir, None, damage=[f"no index in {index_dir}"])
    manifest, articles, sentences = live
    report = CheckReport(index_dir, manifest)
    writer = holder(index_dir)
    if writer not in (None, str(os.getpid())):  # a repair checks under its own lock
        report.notes.append(
            f"a build or update is running (pid {writer}): what it is writing shows as leftovers"
        )
    report.counts = {"articles": manifest.article_count, "chunks": manifest.chunk_count}
    _check_articles(report, manifest, articles, broken)
    try:
        client = chroma_client(settings)
        store = ChunkStore.open(client, manifest.collection)
    except StoreUnavailable as exc:
        report.damage.append(str(exc))
        report.collection = True
        store = None
    if store is not None:
        _check_store(report, manifest, store)
    _check_lexical(report, manifest, index_dir)
    _check_vectors(report, manifest, sentences, index_dir)
    report.leftovers = find_leftovers(settings, manifest, store)
    if store is not None:
        report.counts["chroma_rows"] = manifest.chunk_count + len(report.leftovers.chunks)
    return report


def find_leftovers(
    settings: Settings, manifest: Manifest | None, store: ChunkStore | None
) -> Leftovers:
    """What no state names: chunks in the live collection (`store`), collections of
    unfinished builds, files under the index directory, rows past the live state's
    end of the vector file."""
    chunks: list[str] = []
    if manifest is not None and store is not None:
        live = {c for i, e in manifest.articles.items() for c in chunk_ids(i, e.hash, e.chunks)}
        chunks = sorted(set(store.ids()) - live)
    live_collection = manifest.collection if manifest is not None else ""
    found = Leftovers(
        chunks=chunks,
        collections=stray_collections(settings, live_collection),
        paths=stray_paths(settings.index_dir, manifest),
    )
    if manifest is not None:
        path = settings.index_dir / manifest.vectors_file
        found.vector_rows = max(0, file_rows(path, manifest.dimension) - manifest.vector_rows)
        found.vectors_file = path
        found.vectors_end = manifest.vector_rows * row_bytes(manifest.dimension)
    return found


def _check_articles(
    report: CheckReport, manifest: Manifest, articles: dict[str, Article], broken: list[str]
) -> None:
    """The texts are what everything else is checked and repaired against: if they are
    wrong, only the sources can help."""
    rebuild = f"rebuild from the sources: `newsdesk index build {' '.join(manifest.sources)}`"
    if broken:
        report.damage.append(f"{'; '.join(broken)}; {rebuild}")
        return
    wrong = []
    for article_id, entry in manifest.articles.items():
        article = articles[article_id]
        spans_fit = all(0 <= a < b <= len(article.text) for a, b in entry.spans)
        if article.hash != entry.hash or content_hash(article) != entry.hash or not spans_fit:
            wrong.append(article_id)
    if wrong:
        report.damage.append(
            f"{len(wrong)} stored articles differ from the versions the index names "
            f"(hash or chunk spans): {_few(wrong)}; {rebuild}"
        )
    else:
        report.articles = articles


def _check_store(report: CheckReport, manifest: Manifest, store: ChunkStore) -> None:
    """Every live chunk present, with the text and span the manifest says; the model and
    dimension right."""
    if store.model not in (None, manifest.model):
        report.damage.append(
            f"collection {manifest.collection} holds embeddings of {store.model!r}, "
            f"not {manifest.model!r}"
        )
        report.collection = True
        return
    expected = {
        chunk: (article_id, n)
        for article_id, entry in manifest.articles.items()
        for n, chunk in enumerate(chunk_ids(article_id, entry.hash, entry.chunks))
    }
    texts = report.articles or {}
    found: set[str] = set()
    disagree: set[str] = set()
    wanted: dict[str, tuple[object, ...]] = {}  # per article: its ~10 chunks share them
    for chunk, meta in store.metadata(list(expected)):
        found.add(chunk)
        article_id, _ = expected[chunk]
        if article_id not in wanted:
            article = texts.get(article_id)
            if article is None:
                continue
            wanted[article_id] = _filtered_on(chunk_metadata(article))
        if _filtered_on(meta) != wanted[article_id]:
            disagree.add(article_id)
    missing = [chunk for chunk in expected if chunk not in found]
    report.reembed.update(disagree, (expected[chunk][0] for chunk in missing))
    if missing:
        report.damage.append(
            f"{len(missing)} chunks the manifest names are missing from collection "
            f"{manifest.collection}: {_few(missing)}"
        )
    if disagree:
        report.damage.append(
            f"{len(disagree)} articles have chunks in Chroma whose filter fields (source, "
            "date) differ from the stored article"
        )
    dimension = _dimension(store, next(iter(found), None))
    if dimension not in (None, manifest.dimension):
        report.damage.append(
            f"collection {manifest.collection} holds {dimension}-dimensional vectors, the "
            f"manifest says {manifest.dimension}"
        )
        report.collection = True


def _filtered_on(meta: Mapping[str, object]) -> tuple[object, ...]:
    """The fields the dense leg filters on; indexes written before Chroma held only
    those also carry texts and spans there, which nothing reads any more."""
    return tuple(meta.get(field) for field in FILTER_FIELDS)


def _dimension(store: ChunkStore, chunk: str | None) -> int | None:
    if chunk is None:
        return None
    vectors = store.vectors([chunk])
    return int(vectors[chunk].shape[0]) if chunk in vectors else None


def _check_lexical(report: CheckReport, manifest: Manifest, index_dir: Path) -> None:
    if not manifest.lexical_segments:
        report.notes.append(
            "the keyword index is from an older version (rebuilt in memory at each start); "
            "`newsdesk index update` converts it"
        )
        return
    held: set[str] = set()
    for name in manifest.lexical_segments:
        try:
            held.update(Segment.load(index_dir / LEXICAL_DIR / name, TOKENIZER, verify=True).ids)
        except LexicalIndexError as exc:
            report.damage.append(str(exc))
            report.lexical = True
    if report.lexical:
        return
    live = [c for i, e in manifest.articles.items() for c in chunk_ids(i, e.hash, e.chunks)]
    missing = [chunk for chunk in live if chunk not in held]
    if missing:
        report.damage.append(
            f"{len(missing)} chunks are missing from the keyword index: {_few(missing)}"
        )
        report.lexical = True


def _check_vectors(
    report: CheckReport,
    manifest: Manifest,
    sentences: dict[str, SentenceRows],
    index_dir: Path,
) -> None:
    path = index_dir / manifest.vectors_file
    held = file_rows(path, manifest.dimension)
    if held < manifest.vector_rows:
        report.damage.append(
            f"{path} holds {held} sentence-vector rows, the index names {manifest.vector_rows}"
        )
        report.vectors_file = True
    lacking = [
        article_id
        for article_id in manifest.articles
        if (found := sentences.get(article_id)) is None
        or found.splitter != SPLITTER
        or found.row + found.sentences > min(held, manifest.vector_rows)
    ]
    if lacking:
        report.damage.append(
            f"{len(lacking)} articles have no usable sentence vectors (answers would embed "
            f"their sentences at query time): {_few(lacking)}"
        )
        report.reembed.update(lacking)


def stray_collections(settings: Settings, live: str) -> list[str]:
    """Collections of this index's prefix other than the live one. Only in the embedded
    store, which belongs to this index directory alone; on a shared server another
    index may own a collection with the same prefix."""
    if settings.chroma.url is not None:
        return []
    prefix = f"{settings.chroma.collection_prefix}-"
    names = (str(getattr(c, "name", c)) for c in chroma_client(settings).list_collections())
    return sorted(n for n in names if n.startswith(prefix) and n != live)


def stray_paths(index_dir: Path, manifest: Manifest | None) -> list[Path]:
    """Files and folders under the index directory that no state names: keyword
    segments and vector files of states that never went live or were replaced, temp
    files of killed writes; once a state is live, what the old layout kept."""
    keep: set[Path] = set()
    if manifest is not None:
        keep.update(index_dir / LEXICAL_DIR / name for name in manifest.lexical_segments)
        keep.add(index_dir / manifest.vectors_file)
    stray = []
    old_layout = manifest is None and (index_dir / LEGACY_MANIFEST).is_file()
    if (index_dir / LEXICAL_DIR).is_dir() and not old_layout:  # its segments stay till a build
        stray += sorted((index_dir / LEXICAL_DIR).iterdir())
    stray += sorted(index_dir.glob(f"{VECTORS_PREFIX}*{VECTORS_SUFFIX}"))
    if manifest is not None:
        stray += [index_dir / name for name in _LEGACY if (index_dir / name).exists()]
        stray += sorted(index_dir.glob(f".{LEGACY_MANIFEST}.*.tmp"))
    return [path for path in stray if path not in keep]


def remove_leftovers(settings: Settings, leftovers: Leftovers, store: ChunkStore | None) -> None:
    """Delete what `leftovers` lists. Only under the write lock: a running writer's
    work in progress looks exactly like leftovers."""
    if leftovers.chunks and store is not None:
        store.delete(leftovers.chunks)
    if leftovers.collections:
        client = chroma_client(settings)
        for name in leftovers.collections:
            drop_collection(client, name)
    if leftovers.vector_rows and leftovers.vectors_file is not None:
        os.truncate(leftovers.vectors_file, leftovers.vectors_end)
    for path in leftovers.paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _few(items: Sequence[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more
