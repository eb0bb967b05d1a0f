"""Near-duplicate articles: syndicated copies and lightly edited re-publications of a story.

A wire story carried by five outlets is five articles with (almost) the same text; an
answer drawing on them would quote the same sentence five times. So at ingest the live
articles are grouped (`find_duplicates`, stored in the manifest), and at answer time a
sentence quoted from one copy names the others as "also reported by" (`matching_span`)
instead of taking up a citation each.

Grouping is MinHash + LSH over word shingles (datasketch), so it never compares all
pairs: 50k articles cost one signature each and a few bucket look-ups. LSH only
proposes pairs; each is confirmed by the exact Jaccard similarity of the two shingle
sets, so no pair below the threshold is ever grouped. The bands are chosen so a pair
at the threshold is proposed with probability >= 0.999 (`lsh_bands`): datasketch's own
optimum would miss over half of them. The seed is fixed, so the same articles always
give the same groups.

Sentences are near-duplicates too (`Said`): a copy often re-edits a word or two of a
sentence, which is still the one fact, to quote once; a changed number, day or "not"
makes it another fact, quoted on its own.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

import numpy as np

from index.dates import order_key
from index.text import NUMBER_WORDS, words
from index.types import Article

if TYPE_CHECKING:
    from datasketch import MinHash

SHINGLE_WORDS = 3  # short enough that one changed word costs only three shingles
NUM_PERM = 128
SEED = 1
RECALL_AT_THRESHOLD = 0.999  # least chance that LSH proposes a pair right at the threshold
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: the multiplier of a shingle's word hashes
SENTENCE_RATIO = 0.8  # two words changed in a 20-word sentence give 0.9; in 10 words, 0.8
FUZZY_MIN_WORDS = 8  # shorter sentences match only word for word
# Words a light edit must not change besides numbers. "t" ends "didn't" (`words` splits
# at apostrophes); "may" is no month here: as a verb it is a common light edit ("could").
_FACTS = """thirty forty fifty sixty seventy eighty ninety hundred thousand million billion
    dozen monday tuesday wednesday thursday friday saturday sunday yesterday today tomorrow
    january february march april june july august september october november december
    no not never nor none nobody nothing neither nowhere cannot without t"""
_FACT_WORDS = frozenset(_FACTS.split()) | NUMBER_WORDS.keys()


def shingles(text: str) -> set[str]:
    """The text's runs of SHINGLE_WORDS words (a shorter text is one shingle)."""
    tokens = words(text)
    n = SHINGLE_WORDS
    if len(tokens) <= n:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """Shared shingles over all shingles; two empty sets share nothing (a text with no
    words is no copy of anything)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def lsh_bands(threshold: float, num_perm: int = NUM_PERM) -> tuple[int, int]:
    """(bands, rows) with the most rows per band (fewest stray candidates) that still
    propose a pair of Jaccard `threshold` with probability >= RECALL_AT_THRESHOLD."""
    if not 0 < threshold <= 1:
        raise ValueError(f"the duplicate threshold must be in (0, 1], got {threshold}")
    best = (num_perm, 1)
    for rows in range(1, num_perm // 2 + 1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= RECALL_AT_THRESHOLD:
            best = (bands, rows)
    return best


def find_duplicates(articles: Iterable[Article], threshold: float) -> dict[str, str]:
    """Article id -> the canonical id of its group, for every article in a group of two
    or more (the canonical one maps to itself). Groups are the connected components of
    the pairs whose shingle sets have Jaccard >= `threshold`."""
    from datasketch import MinHash, MinHashLSH  # lazy: datasketch imports scipy (~0.5 s)

    bands = lsh_bands(threshold)
    lsh = MinHashLSH(num_perm=NUM_PERM, params=bands)
    # Shingles reach MinHash as 32-bit numbers made from hashes of their words: hashing
    # each shingle's text (datasketch's default sha1) took most of the time. A collision
    # can only add a candidate, which the exact check then settles.
    template = MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=int)
    vocabulary = _Vocabulary()
    kept: dict[str, Article] = {}
    candidates: list[tuple[str, str]] = []
    for article in articles:
        if article.id in kept:
            raise ValueError(f"article id {article.id!r} occurs twice")
        signature = _signature(template, words(article.text), vocabulary)
        if signature is None:
            continue
        candidates += [(other, article.id) for other in lsh.query(signature)]
        lsh.insert(article.id, signature, check_duplication=False)
        kept[article.id] = article
    parent: dict[str, str] = {}
    cache: dict[str, set[str]] = {}
    for a, b in sorted(candidates):
        if jaccard(_shingled(kept[a], cache), _shingled(kept[b], cache)) >= threshold:
            _union(parent, a, b)
    groups: dict[str, list[Article]] = {}
    for article_id in parent:
        groups.setdefault(_root(parent, article_id), []).append(kept[article_id])
    found: dict[str, str] = {}
    for group in groups.values():
        canonical = min(group, key=canonical_order)
        found.update((member.id, canonical.id) for member in group)
    return dict(sorted(found.items()))


def update_duplicates(
    duplicates: Mapping[str, str],
    touched: Sequence[Article],
    removed: Collection[str],
    neighbours: Callable[[Article], Collection[str]],
    texts: Callable[[Collection[str]], Mapping[str, Article]],
    threshold: float,
) -> dict[str, str]:
    """The groups after an update that added or changed `touched` and removed `removed`,
    without reading or hashing the whole collection again (that took 25 s of a
    one-article update at 2,500 long articles).

    Groups no touched or removed article belonged to stay as they were. The members
    left in the others are checked again pair by pair, since an edit can split a group.
    A touched article's possible copies come from `neighbours` (articles whose chunks
    lie next to its chunks in the vector index: copies of a story embed alike), and
    every pair is confirmed by the exact Jaccard, as in `find_duplicates`.
    """
    gone = {a.id for a in touched} | set(removed)
    groups = members(duplicates)
    intact = {c: ids for c, ids in groups.items() if not gone & set(ids)}
    broken = {i for c, ids in groups.items() if c not in intact for i in ids} - gone
    proposed = {a.id: set(neighbours(a)) - {a.id} - set(removed) for a in touched}
    wanted = broken | {i for found in proposed.values() for i in found}
    found_texts = {**texts(wanted - {a.id for a in touched}), **{a.id: a for a in touched}}
    parent: dict[str, str] = {}
    cache: dict[str, set[str]] = {}
    for canonical, ids in intact.items():
        for member in ids:
            _union(parent, canonical, member)
    pairs = {(a, b) for a in broken for b in broken if a < b}
    pairs |= {(min(a, b), max(a, b)) for a, found in proposed.items() for b in found}
    for a, b in sorted(pairs):
        if a not in found_texts or b not in found_texts:
            continue  # not live any more
        if jaccard(_shingled(found_texts[a], cache), _shingled(found_texts[b], cache)) >= threshold:
            _union(parent, a, b)
    components: dict[str, list[str]] = {}
    for article_id in parent:
        components.setdefault(_root(parent, article_id), []).append(article_id)
    result: dict[str, str] = {}
    for ids in components.values():
        if len(ids) < 2:
            continue
        known = duplicates.get(ids[0])
        if known is not None and known in intact and len(intact[known]) == len(ids):
            canonical = known  # a group the update left alone
        else:
            missing = set(ids) - set(found_texts)
            found_texts.update(texts(missing) if missing else {})
            canonical = min((found_texts[i] for i in ids), key=canonical_order).id
        result.update((i, canonical) for i in ids)
    return dict(sorted(result.items()))


def canonical_order(article: Article) -> tuple[float, int, str]:
    """Which copy a group is known by: the earliest dated, as the likeliest original
    (syndication and re-publication come after); then the longest, as the most
    complete (copies are often trimmed); then the smallest id, so the choice never
    depends on input order. Undated copies come after dated ones: their date is unknown."""
    return (order_key(article.date), -len(article.text), article.id)


def members(duplicates: Mapping[str, str]) -> dict[str, list[str]]:
    """Canonical id -> every id of its group, canonical first, then by id."""
    groups: dict[str, list[str]] = {}
    for article_id, canonical in sorted(duplicates.items()):
        groups.setdefault(canonical, []).append(article_id)
    for canonical, ids in groups.items():
        ids.sort(key=lambda i: (i != canonical, i))
    return groups


def same_sentence(a: str, b: str) -> bool:
    """Whether two sentences say the same thing (`Said.likeness`)."""
    return Said.of(a).same(Said.of(b))


@dataclass(frozen=True, slots=True)
class Said:
    """A sentence read once for many comparisons: rag.answer compares every candidate
    sentence with the others of its story on every answer."""

    words: tuple[str, ...]
    facts: tuple[str, ...]  # numbers (small ones in words as digits), days, months, negations
    vocabulary: frozenset[str]

    @classmethod
    def of(cls, text: str) -> Said:
        tokens = tuple(words(text))
        facts = (NUMBER_WORDS.get(t, t) for t in tokens if t in _FACT_WORDS or t[0].isdigit())
        return cls(tokens, tuple(facts), frozenset(tokens))

    def same(self, other: Said) -> bool:
        return self.likeness(other) > 0

    def likeness(self, other: Said) -> float:
        """The one definition of a near-duplicate sentence: 1.0 word for word, at least
        SENTENCE_RATIO for the same thing in other words, 0.0 for anything else.

        Typography never counts. A copy editor's light touch ("said" for "announced", a
        word dropped) keeps the fact, so word sequences alike by SequenceMatcher's ratio
        match, but only from FUZZY_MIN_WORDS words ("He said no." is not "She said
        yes."), and only with the same numbers, days, months and negations in the same
        order: "killed 12" and "killed 15", "will" and "will not", are different facts
        however alike the rest (rag.conflicts quotes such sources side by side).
        """
        a, b = self.words, other.words
        if a == b:
            return 1.0 if a else 0.0  # no words say nothing
        least = SENTENCE_RATIO * (len(a) + len(b)) / 2  # words that must match
        if min(len(a), len(b)) < max(FUZZY_MIN_WORDS, least) or self.facts != other.facts:
            return 0.0  # too short to tell, too unequal in length, or another fact
        # A word missing from the other sentence matches nothing there: a bound on the
        # ratio from one set intersection, which passes over most unrelated sentences.
        shared = len(self.vocabulary & other.vocabulary)
        repeats = min(len(a) - len(self.vocabulary), len(b) - len(other.vocabulary))
        if shared + repeats < least:
            return 0.0
        ratio = SequenceMatcher(None, a, b, autojunk=False).ratio()
        return ratio if ratio >= SENTENCE_RATIO else 0.0


class Heard:
    """Sentences met so far, by story (a group of copies, or one article), each with a
    key: which of them a new sentence says again. rag.answer asks this of every
    candidate sentence of every answer, so a sentence is compared only with those of
    its own story giving the same facts (no other can match), and word for word by one
    look-up first."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, tuple[str, ...]], int] = {}
        self._alike: dict[tuple[str, tuple[str, ...]], list[tuple[Said, int]]] = {}

    def find(self, story: str, said: Said) -> int | None:
        """The key of the first sentence of `story` saying what `said` says, if any."""
        key = self._exact.get((story, said.words))
        if key is not None:
            return key
        alike = self._alike.get((story, said.facts), [])
        return next((k for other, k in alike if said.same(other)), None)

    def add(self, story: str, said: Said, key: int) -> None:
        if said.words and (story, said.words) not in self._exact:
            self._exact[(story, said.words)] = key
            self._alike.setdefault((story, said.facts), []).append((said, key))


def matching_span(
    sentence: str, article: Article, spans: Sequence[tuple[int, int]]
) -> tuple[int, int] | None:
    """Of `spans` (sentence spans of `article`), the one saying `sentence` (`Said`) most
    nearly word for word (the first of equals), or None."""
    wanted = Said.of(sentence)
    best: tuple[float, tuple[int, int]] | None = None
    for start, end in spans:
        likeness = wanted.likeness(Said.of(article.text[start:end]))
        if likeness == 1.0:
            return start, end
        if likeness > 0 and (best is None or likeness > best[0]):
            best = (likeness, (start, end))
    return best[1] if best else None


class _Vocabulary(dict[str, int]):
    """Word -> crc32, each word hashed once per run."""

    def __missing__(self, word: str) -> int:
        found = self[word] = zlib.crc32(word.encode("utf-8"))
        return found


def _signature(template: MinHash, tokens: list[str], vocabulary: _Vocabulary) -> MinHash | None:
    """The MinHash of the text's shingles, each a polynomial hash of its words' crc32s."""
    if not tokens:
        return None
    hashes = np.array(list(map(vocabulary.__getitem__, tokens)), dtype=np.uint64)
    n = min(SHINGLE_WORDS, len(tokens))
    count = len(tokens) - n + 1
    mixed = np.zeros(count, dtype=np.uint64)
    for i in range(n):
        mixed = mixed * _MIX + hashes[i : i + count]  # wraps around mod 2**64
    signature = template.copy()
    signature.update_batch((mixed >> np.uint64(32)).tolist())
    return signature


def _shingled(article: Article, cache: dict[str, set[str]]) -> set[str]:
    """Shingles again, only for articles in candidate pairs: keeping every article's set
    for the whole run would cost gigabytes at 50k articles."""
    found = cache.get(article.id)
    if found is None:
        found = cache[article.id] = shingles(article.text)
    return found


def _root(parent: dict[str, str], node: str) -> str:
    parent.setdefault(node, node)
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


def _union(parent: dict[str, str], a: str, b: str) -> None:
    ra, rb = _root(parent, a), _root(parent, b)
    if ra != rb:
        parent[max(ra, rb)] = min(ra, rb)
