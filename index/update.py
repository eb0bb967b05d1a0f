"""Incremental updates: embed only new or changed articles, then switch in one commit.

New versions' chunks go into the live collection under content-versioned ids and their
sentence vectors onto the end of the live vector file, neither named by any state
until the commit; only after it are the replaced versions' chunks deleted. Their
vector rows are garbage until the file is rewritten: by the next build, or by an
update that finds most of it garbage.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from index.check import Leftovers, remove_leftovers, stray_paths
from index.db import IndexDB
from index.dedupe import update_duplicates
from index.demo import is_demo_source
from index.lexical import compact, segment_of
from index.load import load_sources
from index.lock import WriteLock
from index.manifest import ArticleEntry, Manifest, check_compatible, now_iso
from index.store import ChunkStore, chroma_client, chunk_ids, live_versions, parse_chunk_id
from index.types import Article, Problem
from index.vectors import VectorArray, VectorFile, vectors_name
from index.write import (
    IndexReport,
    Previous,
    Progress,
    StateWriter,
    chunk_params,
    new_state_id,
    source_names,
)

# An updated article's possible copies: the articles of the nearest chunks to a few of its
# own (copies of a story embed alike; the exact shingle check then decides).
_COPY_PROBES = 5
_COPY_NEIGHBOURS = 8
_COPY_DISTANCE = 0.3  # cosine distance: loose, as the headline in every chunk differs
# Garbage rows in the vector file below this are not worth rewriting it for.
_COMPACT_MIN_ROWS = 20_000


def update(
    w: StateWriter,
    old: Manifest,
    sources: Sequence[Path],
    prune: bool,
    progress: Progress | None,
    lock: WriteLock,
) -> IndexReport:
    """One update under `lock`, of the index whose live state is `old`."""
    began = time.monotonic()
    params = chunk_params(w.settings, w.embedder, old)
    check_compatible(
        old,
        w.settings,
        w.embedder.model_id,
        (params.chunk_tokens, params.overlap_tokens, params.title_tokens),
    )
    loaded = load_sources(sources)
    problems = list(loaded.problems)
    fresh = [a for a in loaded.articles if a.id not in old.articles]
    changed = [
        a for a in loaded.articles if a.id in old.articles and old.articles[a.id].hash != a.hash
    ]
    removed = _ids_to_prune(old, loaded.articles, problems) if prune else []
    report = IndexReport(
        manifest=old,
        problems=problems,
        added=len(fresh),
        changed=len(changed),
        unchanged=len(loaded.articles) - len(fresh) - len(changed),
        removed=len(removed),
    )
    if not fresh and not changed and not removed:
        if old.dedupe_threshold != w.dedupe_threshold():  # dedupe settings changed
            report.manifest = _regroup(w, old)
        report.seconds = time.monotonic() - began
        return report
    touched = fresh + changed
    store = ChunkStore.open(chroma_client(w.settings), old.collection, model=old.model)
    previous = _previous(w.db, old, [a.id for a in changed])
    state = new_state_id()
    keep = set(old.articles) - {a.id for a in changed} - set(removed)
    vectors, moved = _vector_file(w, old, state, keep)
    try:
        done = w.embed_into(store, vectors, touched, params, progress, previous)
        articles = dict(old.articles)
        for article_id in removed:
            del articles[article_id]
        articles.update(done.entries)
        loaded_segments = [w.segment(name) for name in old.lexical_segments]
        names = {id(seg): n for seg, n in zip(loaded_segments, old.lexical_segments, strict=True)}
        segments = [*loaded_segments, segment_of(touched, articles)]
        if old.dedupe_threshold != w.dedupe_threshold():  # regroup all under the new settings
            kept = (
                w.db.read_articles(set(articles) - {a.id for a in touched})
                if w.dedupe_threshold() is not None
                else {}
            )
            duplicates, threshold = w.duplicates([*kept.values(), *touched])
        else:
            duplicates, threshold = _duplicates_after(w, old, store, touched, removed, articles)
        vectors.sync()
        manifest = old.model_copy(
            update={
                "state": state,
                "lexical_segments": w.write_segments(
                    compact(segments, live_versions(articles)), names
                ),
                "vectors_file": vectors.path.name,
                "vector_rows": vectors.rows,
                "articles": articles,
                "duplicates": duplicates,
                "dedupe_threshold": threshold,
                "sources": sorted({*old.sources, *source_names(sources)}),
                "includes_demo": old.includes_demo or any(is_demo_source(s) for s in sources),
                "updated_at": now_iso(),
            }
        )
        w.db.commit(manifest, touched, done.sentences, drop=removed, moved=moved)
        w.keep_segments(manifest.lexical_segments)
    except BaseException:
        remove_leftovers(w.settings, Leftovers(paths=stray_paths(w.index_dir, old)), None)
        raise
    finally:
        vectors.close()
    stale = [(i, old.articles[i]) for i in [a.id for a in changed] + removed]
    stale_ids = [c for i, entry in stale for c in chunk_ids(i, entry.hash, entry.chunks)]
    store.delete(stale_ids)
    remove_leftovers(w.settings, Leftovers(paths=stray_paths(w.index_dir, manifest)), None)
    report.manifest = manifest
    report.chunks_embedded = done.chunks - done.copied
    report.chunks_copied = done.copied
    report.chunks_removed = len(stale_ids)
    report.seconds = time.monotonic() - began
    return report


def _vector_file(
    w: StateWriter, old: Manifest, state: str, keep: set[str]
) -> tuple[VectorFile, dict[str, int]]:
    """The live vector file to append to; or, once most of it is garbage (rows of
    replaced versions), a new one for `state` holding the rows of the articles the
    update keeps, and the rows they moved to. Readers of the old state keep theirs."""
    path = w.index_dir / old.vectors_file
    garbage = old.vector_rows - w.db.live_vector_rows()
    if garbage <= max(_COMPACT_MIN_ROWS, old.vector_rows // 2):
        return VectorFile(path, old.dimension, old.vector_rows), {}
    array = VectorArray(path, old.dimension, old.vector_rows)
    fresh = VectorFile(w.index_dir / vectors_name(state), old.dimension, 0)
    moved = {
        article_id: fresh.copy(array.rows(found))
        for article_id, found in w.db.read_sentences(keep).items()
    }
    return fresh, moved


def _previous(db: IndexDB, old: Manifest, ids: Sequence[str]) -> Previous:
    """The live versions of the changed articles, with their sentence vectors, for
    copying what an edit left alone."""
    before = db.read_articles(ids)
    sentences = db.read_sentences(ids)
    array = VectorArray(db.index_dir / old.vectors_file, old.dimension, old.vector_rows)
    return {
        i: (article, old.articles[i], array.read(sentences[i]) if i in sentences else None)
        for i, article in before.items()
    }


def _duplicates_after(
    w: StateWriter,
    old: Manifest,
    store: ChunkStore,
    touched: Sequence[Article],
    removed: Sequence[str],
    live: Mapping[str, ArticleEntry],
) -> tuple[dict[str, str], float | None]:
    """The groups after an update, from the old ones and the touched articles'
    neighbours in the vector index (index.dedupe.update_duplicates)."""
    threshold = w.dedupe_threshold()
    if threshold is None:
        return {}, None

    def neighbours(article: Article) -> set[str]:
        entry = live[article.id]
        ids = chunk_ids(article.id, entry.hash, entry.chunks)
        probes = ids[:: max(1, len(ids) // _COPY_PROBES)][:_COPY_PROBES]
        found = set()
        for vector in store.vectors(probes).values():
            for chunk, distance in store.nearest(vector, _COPY_NEIGHBOURS):
                other_id, hash_prefix, _ = parse_chunk_id(chunk)
                other = live.get(other_id)
                current = other is not None and other.hash[:12] == hash_prefix
                if current and distance <= _COPY_DISTANCE:
                    found.add(other_id)
        return found

    found = update_duplicates(
        old.duplicates, touched, removed, neighbours, w.db.read_articles, threshold
    )
    return found, threshold


def _regroup(w: StateWriter, old: Manifest) -> Manifest:
    """The same state with its duplicate groups found again under the current settings."""
    duplicates, threshold = w.duplicates(w.db.read_articles().values())
    manifest = old.model_copy(
        update={
            "state": new_state_id(),
            "duplicates": duplicates,
            "dedupe_threshold": threshold,
            "updated_at": now_iso(),
        }
    )
    w.db.commit(manifest, (), {})
    return manifest


def _ids_to_prune(old: Manifest, articles: Sequence[Article], problems: list[Problem]) -> list[str]:
    """Ids gone from the sources, unless some input was unreadable: then we can't tell."""
    if any(not p.kept for p in problems):
        problems.append(
            Problem(
                where="--prune",
                message="nothing pruned: some input could not be read, so an article "
                "missing from the sources may only be missing from a broken file",
            )
        )
        return []
    present = {a.id for a in articles}
    return sorted(set(old.articles) - present)
