"""`newsdesk index check`: does the live state hold together, and what did failed writes leave?

Readers trust only what the manifest names, so an interrupted build or update can
never be served half-done; it can only leave things behind (chunks of versions the
manifest does not name, a half-filled collection, files of a state that never went
live). Those are *leftovers*: harmless, but they take space. *Damage* is different:
something the manifest names is missing or disagrees with the article texts, so
answers could fail or cite the wrong span. Both are found here; removing leftovers
is here too, re-embedding damaged articles is `Indexer.repair`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from index.articles import ARTICLES_DIR, read_articles
from index.lexical import LEXICAL_DIR
from index.lock import holder
from index.manifest import MANIFEST_FILE, Manifest, UnusableIndex, read_manifest
from index.postings import LexicalIndexError, Segment
from index.sentvecs import SENTENCES_DIR, read_vectors, vector_file
from index.store import ChunkStore, StoreUnavailable, chroma_client, chunk_ids, drop_collection
from index.text import TOKENIZER
from index.types import Article, content_hash
from newsdesk.settings import Settings

_SHOWN = 3  # examples given in a message


@dataclass
class Leftovers:
    """What no state names: safe to delete once no write is running."""

    chunks: list[str] = field(default_factory=list)  # in the live collection
    collections: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.chunks or self.collections or self.paths)

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
    try:
        manifest = read_manifest(index_dir)
    except UnusableIndex as exc:
        return CheckReport(index_dir, None, damage=[str(exc)])
    if manifest is None:
        return CheckReport(index_dir, None, damage=[f"no index in {index_dir}"])
    report = CheckReport(index_dir, manifest)
    writer = holder(index_dir)
    if writer not in (None, str(os.getpid())):  # a repair checks under its own lock
        report.notes.append(
            f"a build or update is running (pid {writer}): what it is writing shows as leftovers"
        )
    report.counts = {"articles": manifest.article_count, "chunks": manifest.chunk_count}
    _check_articles(report, manifest, index_dir)
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
    _check_vectors(report, manifest, index_dir)
    report.leftovers = find_leftovers(settings, manifest, store)
    if store is not None:
        report.counts["chroma_rows"] = manifest.chunk_count + len(report.leftovers.chunks)
    return report


def find_leftovers(
    settings: Settings, manifest: Manifest | None, store: ChunkStore | None
) -> Leftovers:
    """What no state names: chunks in the live collection (`store`), collections of
    unfinished builds, files under the index directory."""
    chunks: list[str] = []
    if manifest is not None and store is not None:
        live = {c for i, e in manifest.articles.items() for c in chunk_ids(i, e.hash, e.chunks)}
        chunks = sorted(set(store.ids()) - live)
    live_collection = manifest.collection if manifest is not None else ""
    return Leftovers(
        chunks=chunks,
        collections=stray_collections(settings, live_collection),
        paths=stray_paths(settings.index_dir, manifest),
    )


def _check_articles(report: CheckReport, manifest: Manifest, index_dir: Path) -> None:
    """The texts are what everything else is checked and repaired against: if they are
    lost or wrong, only the sources can help."""
    path = index_dir / manifest.articles_file
    rebuild = f"rebuild from the sources: `newsdesk index build {' '.join(manifest.sources)}`"
    try:
        articles = read_articles(path)
    except UnusableIndex as exc:
        report.damage.append(f"{exc}; {rebuild}")
        return
    missing = sorted(set(manifest.articles) - set(articles))
    extra = sorted(set(articles) - set(manifest.articles))
    wrong = []
    for article_id, entry in manifest.articles.items():
        article = articles.get(article_id)
        if article is None:
            continue
        spans_fit = all(0 <= a < b <= len(article.text) for a, b in entry.spans)
        if article.hash != entry.hash or content_hash(article) != entry.hash or not spans_fit:
            wrong.append(article_id)
    if missing:
        report.damage.append(f"{path.name} lacks {len(missing)} indexed articles: {_few(missing)}")
    if extra:
        report.damage.append(f"{path.name} holds {len(extra)} articles the manifest does not name")
    if wrong:
        report.damage.append(
            f"{path.name}: {len(wrong)} articles differ from the versions the manifest names "
            f"(hash or chunk spans): {_few(wrong)}"
        )
    if missing or extra or wrong:
        report.damage[-1] += f"; {rebuild}"
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
    for chunk, document, meta in store.records(list(expected)):
        found.add(chunk)
        article_id, n = expected[chunk]
        entry = manifest.articles[article_id]
        start, end = entry.spans[n]
        article = texts.get(article_id)
        agrees = (meta.get("start"), meta.get("end"), meta.get("hash")) == (start, end, entry.hash)
        if not agrees or (article is not None and document != article.text[start:end]):
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
            f"{len(disagree)} articles have chunks in Chroma whose text or span differs from the "
            "article file"
        )
    dimension = _dimension(store, next(iter(found), None))
    if dimension not in (None, manifest.dimension):
        report.damage.append(
            f"collection {manifest.collection} holds {dimension}-dimensional vectors, the "
            f"manifest says {manifest.dimension}"
        )
        report.collection = True


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
            held.update(Segment.load(index_dir / LEXICAL_DIR / name, TOKENIZER).ids)
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


def _check_vectors(report: CheckReport, manifest: Manifest, index_dir: Path) -> None:
    lacking = [
        article_id
        for article_id, entry in manifest.articles.items()
        if read_vectors(index_dir, article_id, entry.hash) is None
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
    """Files and folders under the index directory that no state names: article files
    and keyword segments of states that never went live or were replaced, sentence
    vectors of other article versions, temp files of killed writes."""
    keep: set[Path] = set()
    if manifest is not None:
        keep.add(index_dir / manifest.articles_file)
        keep.update(index_dir / LEXICAL_DIR / name for name in manifest.lexical_segments)
        if manifest.lexical_dir:
            keep.add(index_dir / LEXICAL_DIR / Path(manifest.lexical_dir).name)
        keep.update(vector_file(index_dir, i, e.hash) for i, e in manifest.articles.items())
    stray = [
        path
        for folder in (ARTICLES_DIR, LEXICAL_DIR, SENTENCES_DIR)
        if (index_dir / folder).is_dir()
        for path in sorted((index_dir / folder).iterdir())
        if path not in keep
    ]
    stray += sorted(index_dir.glob(f".{MANIFEST_FILE}.*.tmp"))
    return stray


def remove_leftovers(settings: Settings, leftovers: Leftovers, store: ChunkStore | None) -> None:
    """Delete what `leftovers` lists. Only under the write lock: a running writer's
    work in progress looks exactly like leftovers."""
    if leftovers.chunks and store is not None:
        store.delete(leftovers.chunks)
    if leftovers.collections:
        client = chroma_client(settings)
        for name in leftovers.collections:
            drop_collection(client, name)
    for path in leftovers.paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _few(items: Sequence[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more
