"""Crash recovery and `index check --repair`.

A writer that dies before its commit leaves only what no state names (index.check:
leftovers); the next writer finds its record in the lock file and removes them before
it starts. A repair also mends damage (what the live state names but is missing or
wrong) by embedding the stored article texts again and committing the mended state.
"""

from __future__ import annotations

import logging

from index.check import (
    CheckReport,
    Leftovers,
    check_index,
    find_leftovers,
    remove_leftovers,
    stray_paths,
)
from index.lexical import segment_of
from index.lock import WriteLock
from index.manifest import Manifest, UnusableIndex, check_compatible, now_iso
from index.store import ChunkStore, StoreUnavailable, chroma_client, drop_collection
from index.vectors import VectorFile, vectors_name
from index.write import ChunkParams, StateWriter, new_state_id

log = logging.getLogger(__name__)


def recover(w: StateWriter, lock: WriteLock) -> None:
    """Sweep what the last writer left if it died or failed half-way (its record
    names the collection it was filling), so a re-run starts clean."""
    if not lock.unfinished:
        return
    log.warning(
        "the last build or update of %s (pid %s) did not finish: removing what it left",
        w.index_dir,
        lock.unfinished[0],
    )
    manifest = None if w.db.legacy() else w.db.read_manifest()
    live = manifest.collection if manifest is not None else None
    for line in lock.unfinished[1:]:
        kind, _, name = line.partition(" ")
        if kind == "collection" and name != live:
            drop_collection(chroma_client(w.settings), name)
    store = _live_store(w, manifest)
    remove_leftovers(w.settings, find_leftovers(w.settings, manifest, store), store)


def repair(w: StateWriter, lock: WriteLock) -> tuple[CheckReport, list[str]]:
    """Remove leftovers and mend damage from the stored article texts (see
    Indexer.repair)."""
    found = check_index(w.settings)
    done = []
    if found.leftovers:
        store = _live_store(w, found.manifest)
        remove_leftovers(w.settings, found.leftovers, store)
        done += [f"removed {line}" for line in found.leftovers.lines()]
    if not found.ok:
        done += _mend(w, found, lock)
    return found, done


def _live_store(w: StateWriter, manifest: Manifest | None) -> ChunkStore | None:
    """The live collection, if it is in the store these settings point at."""
    if manifest is None or manifest.chroma_url != w.settings.chroma.url:
        return None
    try:
        return ChunkStore.open(chroma_client(w.settings), manifest.collection)
    except StoreUnavailable:
        return None


def _mend(w: StateWriter, found: CheckReport, lock: WriteLock) -> list[str]:
    """Embed damaged articles again from the stored texts (into a new collection if the
    old one is gone or unusable; into a new vector file, all of them, if that is), rebuild
    the keyword index if it is damaged, and commit the mended state."""
    manifest, articles = found.manifest, found.articles
    if manifest is None or articles is None:
        raise UnusableIndex("cannot repair: " + "; ".join(found.damage))
    check_compatible(manifest, w.settings, w.embedder.model_id)
    params = ChunkParams(manifest.chunk_tokens, manifest.overlap_tokens, manifest.title_tokens)
    client = chroma_client(w.settings)
    collection = manifest.collection
    state = new_state_id()
    if found.collection:
        collection = f"{w.settings.chroma.collection_prefix}-{state}"
        lock.record(f"collection {collection}")
        store = ChunkStore.create(client, collection, w.embedder.model_id, w.embedder.dimension)
    else:
        store = ChunkStore.open(client, collection)
    if found.collection or found.vectors_file:
        todo = list(articles.values())
        vectors = VectorFile(w.index_dir / vectors_name(state), w.embedder.dimension, 0)
    else:
        todo = [articles[i] for i in sorted(found.reembed)]
        path = w.index_dir / manifest.vectors_file
        vectors = VectorFile(path, manifest.dimension, manifest.vector_rows)
    try:
        done = w.embed_into(store, vectors, todo, params, None)
        vectors.sync()
        live = {**manifest.articles, **done.entries}
        segments = manifest.lexical_segments
        if found.lexical or done.entries != {i: manifest.articles[i] for i in done.entries}:
            segments = w.write_segments([segment_of(articles.values(), live)], {})
        mended = manifest.model_copy(
            update={
                "state": state,
                "collection": collection,
                "articles": live,
                "lexical_segments": segments,
                "vectors_file": vectors.path.name,
                "vector_rows": vectors.rows,
                "updated_at": now_iso(),
            }
        )
        w.db.commit(mended, todo, done.sentences)
    finally:
        vectors.close()
    if collection != manifest.collection:
        drop_collection(client, manifest.collection)
    remove_leftovers(w.settings, Leftovers(paths=stray_paths(w.index_dir, mended)), None)
    result = [f"embedded {len(todo)} articles again ({done.chunks} chunks)"]
    if segments != manifest.lexical_segments:
        result.append("rebuilt the keyword index")
    if collection != manifest.collection:
        result.append(f"moved the index into a new collection {collection}")
    return result
