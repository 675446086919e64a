"""Links between bucket members (facts) -> connected components -> one kept paragraph each.

The steps, each over one shard's share (what ``FindDuplicates`` groups for it), in order:

    link_buckets       a key shard's entries -> facts, by the node shard of their paragraph
    shard_components   a node shard's facts -> own rows, boundary rows (by node shard), summaries
    root_conflicts     a node shard's boundary rows -> links between local roots
    roots_union        a language's root links -> {local root: component root}
    route_summaries    a shard's summaries -> rows by the component shard of their component
    keep_by_shard      a component shard's rows -> {node shard: [(local root, kept), ...]}
    shard_duplicates   a node shard's own rows and kept paragraphs -> duplicates

``find_duplicates`` runs them in one process; ``FindDuplicates`` (transform.py) runs the same
functions as Beam steps, with a shuffle between each two.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from transforms.select.config import DedupConfig
from transforms.select.dedup.entries import (
    Entries,
    Position,
    by_key_shard,
    concat,
    take,
)
from transforms.select.dedup.params import DedupParams

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"

# What a fact says about its node:
HEAD = "head"  # the first member of a bucket that linked others (no parent)
COPY = "copy"  # a later copy of the exact text of its parent (never kept)
LINK = "link"  # a band member linked to its parent (a bucket's first member): a candidate to keep


class Fact(NamedTuple):
    """A fact about one paragraph (``node``), sent to its node shard."""

    node: Position
    kind: str  # HEAD, COPY or LINK
    parent: Position | None  # the bucket's first member it is linked to; None for a HEAD
    copies: int  # copies of its text (a HEAD's exact bucket size; 1 for band facts; 0 for a COPY)
    length: int  # characters of its text


Rank = tuple[int, int, Position]  # (-copies of the text, length, position): the smallest is kept
_VERIFY_BLOCK = 1 << 14  # band members compared with their bucket's heads at once

_SHARD_MIX = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9)
_MASK64 = (1 << 64) - 1


def find(parent: dict, node):
    """The root of ``node`` in the union-find ``parent`` (a node absent from it is its own)."""
    root = node
    while parent.get(root, root) != root:
        root = parent[root]
    while node != root:  # path compression
        parent[node], node = root, parent[node]
    return root


def union(parent: dict, a, b) -> None:
    """Join the sets of ``a`` and ``b`` in ``parent``; the smaller root is the joined set's."""
    ra, rb = find(parent, a), find(parent, b)
    parent.setdefault(ra, ra)
    parent.setdefault(rb, rb)
    if ra != rb:
        lo, hi = (ra, rb) if ra < rb else (rb, ra)
        parent[hi] = lo


@lru_cache(maxsize=4096)
def _file_hash(source: str, file: str) -> int:
    return zlib.crc32(f"{source}\0{file}".encode())


def node_shard(position: Position, shards: int) -> int:
    """The shard a paragraph's facts and rows travel in: a multiplicative hash of its file's
    name, document and index (``node_shards`` gives the same for a table's rows)."""
    source, file, doc, index = position
    a, b, c = _SHARD_MIX
    return (((_file_hash(source, file) * a + doc * b + index * c) & _MASK64) >> 32) % shards


def node_shards(files: tuple, file: np.ndarray, doc: np.ndarray, index: np.ndarray, shards: int) -> list[int]:
    """``node_shard`` of each position given as columns (``file`` numbers ``files``), computed
    for all of them at once."""
    a, b, c = (np.uint64(k) for k in _SHARD_MIX)
    h = np.array([_file_hash(*name) for name in files], np.uint64)[file] * a
    h += doc.astype(np.uint64) * b + index.astype(np.uint64) * c  # wraps mod 2**64
    return ((h >> np.uint64(32)) % np.uint64(shards)).tolist()


def by_node_shard(rows: Iterable[tuple], shards: int) -> dict[int, list]:
    """Rows grouped by the node shard of their first field, a position; each position's shard
    is computed once (a templated paragraph is in many rows)."""
    shard_of, grouped = {}, defaultdict(list)
    for row in rows:
        s = shard_of.get(row[0])
        if s is None:
            s = shard_of[row[0]] = node_shard(row[0], shards)
        grouped[s].append(row)
    return grouped


def bucket_facts(
    batches: Iterable[tuple[Entries, Entries]], min_matches: int, heads: int = DedupConfig.bucket_heads
) -> Iterator[Fact]:
    """``facts_by_node_shard``'s facts, in the order they are made."""
    return (fact for _, fact in _facts(batches, min_matches, heads, 1))


def facts_by_node_shard(
    batches: Iterable[tuple[Entries, Entries]], min_matches: int, heads: int, shards: int
) -> dict[int, list[Fact]]:
    """One shard's bucket entries, ``(exact, band)`` per batch -> facts linking each bucket's
    members to its first (earliest) member: every later copy of an exact text; a band member
    whose text differs and that shares at least ``min_matches`` bands with one of the bucket's
    ``heads`` earliest members (the earliest such), which keeps the precision of counting pairs
    without the pairs. The entries are sorted by key and position and every member is compared
    with at most ``heads`` others: cost and memory grow with the entries, whatever the
    duplication. Grouped by the node shard of the paragraph each is about, computed from the
    entries' columns."""
    grouped = defaultdict(list)
    for s, fact in _facts(batches, min_matches, heads, shards):
        grouped[s].append(fact)
    return grouped


def link_buckets(batches: Iterable[tuple[Entries, Entries]], params: DedupParams) -> dict[int, list[Fact]]:
    """A key shard's entries -> its facts by node shard (``facts_by_node_shard``)."""
    return facts_by_node_shard(batches, params.min_matches, params.heads, params.component_shards)


def _facts(batches, min_matches: int, heads: int, shards: int) -> Iterator[tuple[int, Fact]]:
    batches = list(batches)
    exact = concat(e for e, _ in batches)
    if len(exact):
        yield from _exact_facts(exact, shards)
    band = concat(b for _, b in batches)
    if len(band):
        yield from _band_facts(band, min_matches, heads, shards)


def _buckets(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rows`` sorted by key then position; the first row of each bucket, each row's bucket,
    and each bucket's size."""
    order = np.lexsort((rows["index"], rows["doc"], rows["file"], rows["key"]))
    rows = take(rows, order)
    keys = rows["key"]
    first = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    bucket = np.repeat(np.arange(len(first)), np.diff(np.append(first, len(rows))))
    return rows, first, bucket


def _positions(files: tuple, rows: np.ndarray, which: np.ndarray) -> list[Position]:
    """The positions of ``rows[which]`` as tuples (only linked rows become Python objects)."""
    return _as_positions(files, *_position_columns(rows, which))


def _nodes(files: tuple, rows: np.ndarray, which: np.ndarray, shards: int) -> tuple[list[Position], list[int]]:
    """The positions of ``rows[which]`` and their node shards, from one gather of the columns."""
    columns = _position_columns(rows, which)
    return _as_positions(files, *columns), node_shards(files, *columns, shards)


def _position_columns(rows: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return rows["file"][which], rows["doc"][which], rows["index"][which]


def _as_positions(files: tuple, file: np.ndarray, doc: np.ndarray, index: np.ndarray) -> list[Position]:
    return [(*files[f], d, i) for f, d, i in zip(file.tolist(), doc.tolist(), index.tolist())]


def _exact_facts(entries: Entries, shards: int) -> Iterator[tuple[int, Fact]]:
    rows, first, bucket = _buckets(entries.rows)
    size = np.diff(np.append(first, len(rows)))
    head = first[size >= 2]
    for position, s, n, length in zip(*_nodes(entries.files, rows, head, shards),
                                      size[size >= 2].tolist(), rows["length"][head].tolist()):
        yield s, Fact(position, HEAD, None, n, length)
    later = np.flatnonzero(np.arange(len(rows)) != first[bucket])
    for position, s, parent, length in zip(*_nodes(entries.files, rows, later, shards),
                                           _positions(entries.files, rows, first[bucket[later]]),
                                           rows["length"][later].tolist()):
        yield s, Fact(position, COPY, parent, 0, length)


def _band_facts(entries: Entries, min_matches: int, heads: int, shards: int) -> Iterator[tuple[int, Fact]]:
    rows, first, bucket = _buckets(entries.rows)
    size = np.diff(np.append(first, len(rows)))
    later = np.flatnonzero(np.arange(len(rows)) != first[bucket])
    if not later.size:
        return
    member, parent = [], []
    for block in np.split(later, np.arange(_VERIFY_BLOCK, len(later), _VERIFY_BLOCK)):
        start, n = first[bucket[block]], size[bucket[block]]
        # each member's candidates: its bucket's first ``heads`` members, padded with itself
        candidates = start[:, None] + np.arange(heads)
        candidates = np.where(np.arange(heads) < n[:, None], candidates, block[:, None])
        shared = 1  # the bucket's band; then those in the fingerprint window
        if "fp" in rows.dtype.names:
            shared += (rows["fp"][candidates] == rows["fp"][block][:, None, :]).sum(axis=2)
        ok = (shared >= min_matches) & (rows["text"][candidates] != rows["text"][block][:, None])
        found = ok.any(axis=1)
        member.append(block[found])
        parent.append(candidates[found, ok[found].argmax(axis=1)])
    member, parent = np.concatenate(member), np.concatenate(parent)
    parents = np.unique(parent)
    marked = set()  # a bucket's first member is told once that it is a parent
    for position, s, length in zip(*_nodes(entries.files, rows, parents, shards),
                                   rows["length"][parents].tolist()):
        if position not in marked:
            marked.add(position)
            yield s, Fact(position, HEAD, None, 1, length)
    for position, s, up, length in zip(*_nodes(entries.files, rows, member, shards),
                                       _positions(entries.files, rows, parent), rows["length"][member].tolist()):
        yield s, Fact(position, LINK, up, 1, length)


def local_components(facts: Iterable[Fact]) -> tuple[list, list, list]:
    """One node shard's facts (``Fact``s, or plain tuples in their field order, as they cross a
    shuffle) -> union-find over their links; per local component (root: its
    smallest paragraph, this shard's or a parent from another shard):

    - own rows ``(node, root, first copy of its text)``: the shard's own paragraphs;
    - boundary rows ``(node, root)``: the paragraphs other shards see too (parents from other
      shards, and this shard's paragraphs that are a bucket's first member);
    - summaries ``(root, best rank)``: the component's best candidate to keep (None when all
      its own paragraphs are later exact copies).

    Memory: this shard's facts, about 1/shards of a language's links however they cluster.
    A fact seen again changes nothing (a member of a template's cluster links to the same first
    member in many bands), so it is skipped."""
    parent: dict = {}
    rank: dict = {}  # own node -> smallest rank seen, None for a later exact copy
    head: dict = {}  # later exact copy -> first copy of its text
    marked: set = set()
    for node, kind, up, copies, length in dict.fromkeys(facts):  # each fact once, in order
        if kind == COPY:
            _merge_rank(rank, node, None)
            union(parent, up, node)
            head[node] = up
            continue
        _merge_rank(rank, node, (-copies, length, node))
        if kind == HEAD:
            marked.add(node)
        else:
            union(parent, up, node)
    members = defaultdict(list)
    for node in parent.keys() | rank.keys():
        members[find(parent, node)].append(node)
    own, boundary, summaries = [], [], []
    for root, nodes in members.items():
        ranks = [rank[n] for n in nodes if rank.get(n) is not None]
        summaries.append((root, min(ranks) if ranks else None))
        for node in nodes:
            if node in rank:
                own.append((node, root, head.get(node, node)))
            if node not in rank or node in marked:
                boundary.append((node, root))
    return own, boundary, summaries


def shard_components(facts: Iterable[Fact], params: DedupParams) -> tuple[list, dict[int, list], list]:
    """A node shard's facts -> ``local_components``' own rows, its boundary rows by the node
    shard they go to, and its summaries."""
    own, boundary, summaries = local_components(facts)
    return own, by_node_shard(boundary, params.component_shards), summaries


def _merge_rank(rank: dict, node, r) -> None:
    if node not in rank:
        rank[node] = r
    elif rank[node] is not None:
        rank[node] = None if r is None else min(rank[node], r)


def root_conflicts(rows: Iterable[tuple[Position, Position]]) -> Iterator[tuple[Position, Position]]:
    """Boundary rows ``(node, local root)`` of one node shard -> links between the different
    local roots one paragraph has in different shards: what per-shard union-find left to join.
    A paragraph is in at most one local component per shard, so its roots are at most ``shards``."""
    roots = defaultdict(set)
    for node, root in rows:
        roots[node].add(root)
    for found in roots.values():
        if len(found) > 1:
            lowest = min(found)
            yield from ((lowest, root) for root in sorted(found) if root != lowest)


class TooManyRoots(RuntimeError):
    """More local roots to join than ``dedup.max_union_roots``: the run fails instead of one
    worker's memory."""


def roots_union(links: Iterable[tuple[Position, Position]], bound: float, lang: str = "") -> dict:
    """Links between local roots (``root_conflicts``) -> {root: its component's root}, by one
    union-find per language. It holds the roots the shards disagree on, not paragraphs, and
    at most ``bound`` of them: past that it raises ``TooManyRoots``."""
    parent: dict = {}
    for a, b in links:
        union(parent, a, b)
        if len(parent) > bound:
            raise TooManyRoots(
                f"dedup ({lang}): more than {bound:,} local roots to join across component shards "
                "(dedup.max_union_roots); raise it: each costs about 300 bytes on one worker, and "
                "again in every worker's copy of the result"
            )
    return {node: find(parent, node) for node in list(parent)}


def route_summaries(
    shard: int, summaries: Iterable[tuple[Position, Rank | None]], roots: dict, params: DedupParams
) -> dict[int, list[tuple[Position, int, Position, Rank | None]]]:
    """A node shard's summaries ``(local root, best rank)`` and the roots union's map -> rows
    ``(component, shard, local root, best rank)`` by the component shard of their component."""
    rows = ((roots.get(root, root), shard, root, best) for root, best in summaries)
    return by_node_shard(rows, params.component_shards)


def group_components(rows: Iterable[tuple[Position, int, Position, Rank | None]]) -> dict[Position, list]:
    """A component shard's rows -> {component: its summaries ``(shard, local root, best rank)``}."""
    components = defaultdict(list)
    for component, s, root, best in rows:
        components[component].append((s, root, best))
    return components


def keep_by_shard(components: Iterable[list]) -> dict[int, list[tuple[Position, Position]]]:
    """Components' summaries (``group_components``) -> {node shard: [(local root, kept), ...]}."""
    kept = defaultdict(list)
    for rows in components:
        for s, root, k in keep_per_component(rows):
            kept[s].append((root, k))
    return kept


def keep_per_component(
    rows: Iterable[tuple[int, Position, Rank | None]],
) -> list[tuple[int, Position, Position]]:
    """The summaries ``(shard, local root, best rank)`` of one component -> ``(shard, local
    root, kept paragraph)`` for each: the kept copy is the best rank's. Each component keeps
    one paragraph, the first copy of its canonical text: the most copied version (the one the
    web repeats is the likeliest original), then the shortest (variants tend to add words:
    appended boilerplate, insertions), then the earliest."""
    rows = list(rows)  # a summary per shard and local root: at most shards x local roots
    kept = min(best for _, _, best in rows if best is not None)[2]
    return [(shard, root, kept) for shard, root in sorted({(s, r) for s, r, _ in rows})]


def shard_duplicates(
    own: Iterable[tuple[Position, Position, Position]], kept_of: dict
) -> Iterator[tuple[Position, str, Position]]:
    """A node shard's own rows and ``{local root: kept}`` -> ``(duplicate, reason, kept)``: the
    kept paragraph's later copies are ``exact_duplicate``, the rest ``near_duplicate``."""
    for node, root, text_head in own:
        kept = kept_of[root]
        if node != kept:
            yield node, EXACT_DUPLICATE if text_head == kept else NEAR_DUPLICATE, kept


def find_duplicates(batches: Iterable[tuple[Entries, Entries]], params: DedupParams, lang: str = "") -> dict:
    """{duplicate position: (reason, kept position)} of one language's bucket entries (``(exact,
    band)`` per batch, as ``bucket_entries`` makes them): the steps of ``FindDuplicates`` in one
    process, each shard's share in turn, with dicts of lists where Beam groups by key."""
    batches = list(batches)
    exact, band = concat(e for e, _ in batches), concat(b for _, b in batches)  # as a ShardBuffer
    facts = defaultdict(list)
    for _, parts in by_key_shard(exact, band, params.key_shards):
        for s, shard_facts in link_buckets([parts], params).items():
            facts[s] += shard_facts
    own, boundary, summaries = {}, defaultdict(list), {}
    for s, shard_facts in facts.items():
        own[s], rows_by_shard, summaries[s] = shard_components(shard_facts, params)
        for t, rows in rows_by_shard.items():
            boundary[t] += rows
    links = (link for rows in boundary.values() for link in root_conflicts(rows))
    roots = roots_union(links, params.max_union_roots, lang)
    by_component = defaultdict(list)
    for s, shard_summaries in summaries.items():
        for t, rows in route_summaries(s, shard_summaries, roots, params).items():
            by_component[t] += rows
    kept = defaultdict(list)
    for rows in by_component.values():
        for s, shard_kept in keep_by_shard(group_components(rows).values()).items():
            kept[s] += shard_kept
    return {
        node: (reason, k)
        for s, rows in own.items()
        for node, reason, k in shard_duplicates(rows, dict(kept[s]))
    }
