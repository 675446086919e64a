"""Exact and near-duplicate removal across all documents of a language, at a cost that grows
with the paragraphs, whatever their duplication (design and measurements: docs/dedup.md).

Every kept paragraph emits bucket keys: one for its normalised-text hash (exact) and one per
LSH band of its MinHash signature (near). In each bucket the later members are linked to the
first (earliest) ones, not to each other: every later copy of an exact text to its first copy,
a band member to the earliest of the bucket's first ``bucket_heads`` members with which it
shares at least ``min_band_matches`` bands (the precision of counting pairs, checked on the spot
from per-band fingerprints the entries carry). Links go into connected components in bounded
steps: a union-find per shard of paragraphs, then one over what the shards left to join (the
local roots one paragraph has in different shards). Each component keeps one paragraph, the
same whichever worker saw which copy; the rest are dropped as ``exact_duplicate`` or
``near_duplicate``.

Paragraph positions ``(source, file, doc, index)`` are the node ids: they are unique, sortable
and say where the kept copy is (the reject line's ``duplicate_of``). All of a language's
sources meet here, so a curated answer that is also CC-100 text is kept once. The steps only
need a position to be a tuple ending in the paragraph's index: ``(*document, index)``.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from itertools import chain

import apache_beam as beam
import numpy as np

from pipeline.config import DedupConfig
from transforms.select.minhash import normalize

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"

Position = tuple  # (source, file, doc, paragraph index): the document's key, then the index


# Fewer rows per band make buckets so large that unrelated paragraphs flood the pair counts.
MIN_ROWS = 5
MAX_BAND_MATCHES = 3


def collision_probability(similarity, bands: int, rows: int, min_matches: int):
    """Chance that two texts of Jaccard ``similarity`` share at least ``min_matches`` bands."""
    p = np.asarray(similarity, dtype=float) ** rows
    miss = sum(math.comb(bands, k) * p**k * (1 - p) ** (bands - k) for k in range(min_matches))
    return 1.0 - miss


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int, int]:
    """(bands, rows, min_matches) with bands * rows <= num_perm that minimise the false positive
    plus false negative probability mass around ``threshold`` (datasketch's criterion, extended
    to pairs that must share ``min_matches`` bands, which sharpens the curve at no extra hashing).
    """
    s = np.linspace(0.0, 1.0, 1001)
    below, above = s <= threshold, s >= threshold
    best = None
    for rows in range(MIN_ROWS, num_perm + 1):
        bands = num_perm // rows
        for matches in range(1, min(bands, MAX_BAND_MATCHES) + 1):
            p = collision_probability(s, bands, rows, matches)
            error = p[below].sum() + (1.0 - p[above]).sum()
            if best is None or error < best[0]:
                best = (error, bands, rows, matches)
    return best[1:]


def bands_of(cfg: DedupConfig) -> tuple[int, int, int]:
    """(bands, rows, min_matches) of the config: given, or derived from its threshold."""
    if cfg.bands is None:
        return lsh_params(cfg.threshold, cfg.num_perm)
    if not 1 <= cfg.bands <= cfg.num_perm:
        raise ValueError(f"dedup.bands must be in 1..num_perm ({cfg.num_perm}), got {cfg.bands}")
    return cfg.bands, cfg.num_perm // cfg.bands, cfg.min_band_matches


def exact_key(text: str) -> bytes:
    return b"x" + hashlib.blake2b(normalize(text).encode(), digest_size=12).digest()


def band_keys(signature: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One bucket key per band: the band's index and its rows' values."""
    return [
        b"b" + i.to_bytes(2, "big") + signature[i * rows:(i + 1) * rows].tobytes()
        for i in range(bands)
    ]




def band_fingerprints(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(texts, bands) uint32: one hash of each band's rows, so that two bucket entries can count
    the bands their texts share without carrying whole signatures."""
    n = len(signatures)
    rows_ = signatures[:, :bands * rows].reshape(n, bands, rows).astype(np.uint64)
    mixed = (rows_ * _ROW_MIX[:rows]).sum(axis=2, dtype=np.uint64)  # wraps modulo 2**64
    return (mixed >> np.uint64(32)).astype(np.uint32)


_ROW_MIX = np.random.default_rng(0).integers(0, 2**64, 4096, np.uint64, endpoint=False) | np.uint64(1)


def bucket_entries(
    kept: list[tuple[Position, str]], hasher, bands: int, rows: int, exact: bool, near: bool
) -> Iterator[tuple[list, list]]:
    """Per ``(position, text)``: its exact-text bucket entry ``(key, (position, length))`` and
    its band bucket entries ``(key, (position, text key, length, band fingerprints))``; the
    texts are MinHashed in one call."""
    if near:
        signatures = hasher.signatures([text for _, text in kept])
        fingerprints = band_fingerprints(signatures, bands, rows)
    for j, (position, text) in enumerate(kept):
        # without exact dedup every copy is its own text, so band buckets still link copies
        text_key = exact_key(text) if exact else repr(position).encode()
        exact_entries = [(text_key, (position, len(text)))] if exact else []
        band_entries = []
        if near:
            value = (position, text_key, len(text), fingerprints[j].tobytes())
            band_entries = [(key, value) for key in band_keys(signatures[j], bands, rows)]
        yield exact_entries, band_entries


def shard_of(key: bytes, shards: int) -> int:
    """The shard a bucket key travels in: entries of one key always meet in one shard."""
    return zlib.crc32(key) % shards


def node_shard(position: Position, shards: int) -> int:
    """The shard a paragraph's facts travel in."""
    return zlib.crc32("\0".join(map(str, position)).encode()) % shards


# A fact about one paragraph, sent to its node shard: (node, parent, copies, length).
# parent None: node is the first member of a bucket that linked others (a "marker");
# copies 0: node is a later copy of the exact text of parent (never kept);
# else node is linked to parent (a bucket's first member) and is a candidate to keep.
Fact = tuple[Position, "Position | None", int, int]
Rank = tuple[int, int, Position]  # (-copies of the text, length, position): the smallest is kept


def bucket_facts(
    batches: Iterable[list[tuple[bytes, tuple]]], min_matches: int, heads: int = 4
) -> Iterator[Fact]:
    """One shard's bucket entries -> facts linking each bucket's members to its first (earliest)
    member: every later copy of an exact text; a band member whose text differs and that shares
    at least ``min_matches`` bands with one of the bucket's ``heads`` earliest members (the
    earliest such), which keeps the precision of counting pairs without the pairs. Two passes
    over the entries hold at most ``heads`` values per bucket key, never a bucket's members:
    cost and memory grow with the entries, whatever the duplication."""
    first: dict[bytes, list] = {}  # key -> [members, earliest values (sorted)]
    for entries in batches:
        for key, value in entries:
            seen = first.get(key)
            if seen is None:
                first[key] = [1, [value]]
                continue
            seen[0] += 1
            earliest = seen[1]
            limit = heads if key[:1] == b"b" else 1
            if value[0] < earliest[-1][0] or len(earliest) < limit:
                earliest.append(value)
                earliest.sort(key=_position)
                del earliest[limit:]
    marked: set = set()  # markers already sent
    for entries in batches:
        near = []  # (band member, its bucket's summary): their shared bands counted together
        for key, value in entries:
            n, earliest = first[key]
            if n < 2 or value[0] == earliest[0][0]:
                continue
            if key[:1] == b"x":
                head = earliest[0]
                yield from _marker((head[0], None, n, head[1]), marked)
                yield value[0], head[0], 0, value[1]
            else:
                near.append((value, earliest))
        if near:
            yield from _verified(near, min_matches, heads, marked)


def _verified(near: list, min_matches: int, heads: int, marked: set) -> Iterator[Fact]:
    """Band members linked to the earliest of their bucket's first members (other than
    themselves and their own exact text) that shares ``min_matches`` bands with them; all of a
    list's comparisons in one numpy call."""
    ours = np.frombuffer(b"".join(value[3] for value, _ in near), np.uint32).reshape(len(near), 1, -1)
    candidates = [earliest + [value] * (heads - len(earliest)) for value, earliest in near]  # padded
    theirs = np.frombuffer(
        b"".join(head[3] for row in candidates for head in row), np.uint32
    ).reshape(len(near), heads, -1)
    shared = ((ours == theirs).sum(axis=2) >= min_matches).tolist()
    for (value, _), row, ok in zip(near, candidates, shared, strict=True):
        for head, enough in zip(row, ok, strict=True):
            if enough and head[1] != value[1]:  # not itself, nor its own exact text
                yield from _marker((head[0], None, 1, head[2]), marked)
                yield value[0], head[0], 1, value[2]
                break


def _marker(fact: Fact, sent: set) -> Iterator[Fact]:
    """A bucket's first member is told once per shard that it is a parent, with its copy count
    (its exact bucket's marker and its band buckets' differ: the copy count is its rank)."""
    if fact not in sent:
        sent.add(fact)
        yield fact


def _position(value):
    return value[0]


def local_components(facts: Iterable[Fact]) -> tuple[list, list, list]:
    """One node shard's facts -> union-find over their links; per local component (root: its
    smallest paragraph, this shard's or a parent from another shard):

    - own rows ``(node, root, first copy of its text)``: the shard's own paragraphs;
    - boundary rows ``(node, root)``: the paragraphs other shards see too (parents from other
      shards, and this shard's paragraphs that are a bucket's first member);
    - summaries ``(root, best rank)``: the component's best candidate to keep (None when all
      its own paragraphs are later exact copies).

    Memory: this shard's facts, about 1/shards of a language's links however they cluster."""
    parent: dict = {}
    rank: dict = {}  # own node -> smallest rank seen, None for a later exact copy
    head: dict = {}  # later exact copy -> first copy of its text
    marked: set = set()
    for node, up, copies, length in facts:
        _merge_rank(rank, node, (-copies, length, node) if copies else None)
        if up is None:
            marked.add(node)
        else:
            _union(parent, up, node)
            if not copies:
                head[node] = up
    members = defaultdict(list)
    for node in parent.keys() | rank.keys():
        members[_find(parent, node)].append(node)
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


def find_duplicates(
    entries: Iterable[tuple[bytes, tuple]], min_matches: int, shards: int = 1, heads: int = 4
) -> dict:
    """{duplicate position: (reason, kept position)} of one language's bucket entries: the steps
    of ``FindDuplicates`` in one process (the benchmark's plain loop and ``--dry-run``)."""
    by_shard = defaultdict(list)
    for key, value in entries:
        by_shard[shard_of(key, shards)].append((key, value))
    facts = defaultdict(list)
    for shard_entries in by_shard.values():
        for fact in bucket_facts([shard_entries], min_matches, heads):
            facts[node_shard(fact[0], shards)].append(fact)
    own, boundary, summaries = {}, defaultdict(list), []
    for s, shard_facts in facts.items():
        own[s], rows, shard_summaries = local_components(shard_facts)
        for node, root in rows:
            boundary[node_shard(node, shards)].append((node, root))
        summaries += [(s, root, best) for root, best in shard_summaries]
    roots: dict = {}
    for rows in boundary.values():
        for a, b in root_conflicts(rows):
            _union(roots, a, b)
    components = defaultdict(list)
    for s, root, best in summaries:
        components[_find(roots, root)].append((s, root, best))
    kept = defaultdict(dict)
    for rows in components.values():
        for s, root, k in keep_per_component(rows):
            kept[s][root] = k
    return {
        node: (reason, k)
        for s, rows in own.items()
        for node, reason, k in shard_duplicates(rows, kept[s])
    }


def _find(parent: dict, node):
    root = node
    while parent.get(root, root) != root:
        root = parent[root]
    while node != root:  # path compression
        parent[node], node = root, parent[node]
    return root


def _union(parent: dict, a, b) -> None:
    ra, rb = _find(parent, a), _find(parent, b)
    parent.setdefault(ra, ra)
    parent.setdefault(rb, rb)
    if ra != rb:
        lo, hi = (ra, rb) if ra < rb else (rb, ra)
        parent[hi] = lo


# --- The Beam shell: each step above, its input grouped by shard ---------------------------

Params = dict  # language code -> (min_matches, component shards, bucket heads)


def _held(step: str, n: int) -> None:
    """The size of what a step holds at once (paragraphs, rows or bucket keys), for tests
    and monitoring."""
    beam.metrics.Metrics.distribution("dedup", f"held_{step}").update(n)


class _LinkBuckets(beam.DoFn):
    def __init__(self, params: Params):
        self.params = params

    def process(self, element):
        (lang, _), batches = element
        min_matches, shards, heads = self.params[lang]
        by_shard = defaultdict(list)
        for fact in bucket_facts(batches, min_matches, heads):
            by_shard[node_shard(fact[0], shards)].append(fact)
        for s, facts in by_shard.items():
            yield (lang, s), facts


class _LocalComponents(beam.DoFn):
    def __init__(self, params: Params):
        self.params = params

    def process(self, element):
        (lang, s), batches = element
        own, boundary, summaries = local_components(chain.from_iterable(batches))
        _held("components", len(own) + len(boundary))
        shards = self.params[lang][1]
        by_shard = defaultdict(list)
        for row in boundary:
            by_shard[node_shard(row[0], shards)].append(row)
        for t, rows in by_shard.items():
            yield beam.pvalue.TaggedOutput("boundary", ((lang, t), rows))
        yield beam.pvalue.TaggedOutput("summaries", (lang, s, summaries))
        yield (lang, s), own


def _conflicts(element):
    (lang, _), batches = element
    rows = list(chain.from_iterable(batches))
    _held("boundary", len(rows))
    for link in root_conflicts(rows):
        yield lang, link


class RootsUnion(beam.CombineFn):
    """Union-find over the links between local roots -> {root: component root}. It holds only
    what per-shard union-find left: a root per shard a component spans, not its paragraphs."""

    def create_accumulator(self):
        return {}

    def add_input(self, parent, link):
        _union(parent, *link)
        return parent

    def merge_accumulators(self, accs):
        accs = iter(accs)
        parent = next(accs)
        for other in accs:
            for node, up in other.items():
                _union(parent, node, up)
        return parent

    def extract_output(self, parent):
        return {node: _find(parent, node) for node in list(parent)}


class _ByComponent(beam.DoFn):
    def __init__(self, params: Params):
        self.params = params

    def process(self, element, roots: dict):
        lang, s, summaries = element
        lang_roots, shards = roots.get(lang, {}), self.params[lang][1]
        by_shard = defaultdict(list)
        for root, best in summaries:
            component = lang_roots.get(root, root)
            by_shard[node_shard(component, shards)].append((component, s, root, best))
        for t, rows in by_shard.items():
            yield (lang, t), rows


def _keep(element):
    (lang, _), batches = element
    components = defaultdict(list)
    for component, s, root, best in chain.from_iterable(batches):
        components[component].append((s, root, best))
    kept = defaultdict(list)
    for rows in components.values():
        _held("component", len(rows))
        for s, root, k in keep_per_component(rows):
            kept[s].append((root, k))
    for s, rows in kept.items():
        yield (lang, s), rows


def _shard_duplicates(element):
    (lang, _), grouped = element
    kept_of = dict(chain.from_iterable(grouped["kept"]))
    own = list(chain.from_iterable(grouped["own"]))
    _held("duplicates", len(own) + len(kept_of))
    for (*document, i), reason, kept in shard_duplicates(own, kept_of):
        yield (lang, *document), (i, reason, kept)


def _residual_size(element):
    _held("residual", len(element[1]))
    return element


class FindDuplicates(beam.PTransform):
    """Bucket entries ``((lang, shard), [(key, value), ...])`` -> ``((lang, *document), (index,
    reason, kept position))`` for every duplicate paragraph.

        entries --GroupByKey(key shard)--bucket_facts--> facts --GroupByKey(node shard)
            --local_components--> own rows, boundary rows, summaries
        boundary --GroupByKey(node shard)--root_conflicts--> root links --RootsUnion (per lang)
        summaries (+ RootsUnion as side input) --GroupByKey(component shard)--keep_per_component
        own rows + kept --CoGroupByKey(node shard)--shard_duplicates--> duplicates by document

    Bucket entries travel in ``dedup.shards`` shards of keys, the rest in ``component_shards``
    shards of paragraphs; every group is one shard's entries, facts or rows, and a component
    has at most one summary per shard and local root. Only RootsUnion is per language, over
    the local roots the shards disagree on."""

    def __init__(self, params: Params):
        super().__init__()
        self.params = params

    def expand(self, entries):
        parts = (
            entries
            | "BucketShards" >> beam.GroupByKey()
            | "LinkBuckets" >> beam.ParDo(_LinkBuckets(self.params))
            | "NodeShards" >> beam.GroupByKey()
            | "LocalComponents" >> beam.ParDo(_LocalComponents(self.params)).with_outputs(
                "boundary", "summaries", main="own"
            )
        )
        roots = (
            parts.boundary
            | "BoundaryShards" >> beam.GroupByKey()
            | "Conflicts" >> beam.FlatMap(_conflicts)
            | "RootsUnion" >> beam.CombinePerKey(RootsUnion())
            | "ResidualSize" >> beam.Map(_residual_size)
        )
        kept = (
            parts.summaries
            | "ByComponent" >> beam.ParDo(_ByComponent(self.params), beam.pvalue.AsDict(roots))
            | "Components" >> beam.GroupByKey()
            | "Keep" >> beam.FlatMap(_keep)
        )
        return (
            {"own": parts.own, "kept": kept}
            | "Join" >> beam.CoGroupByKey()
            | "Duplicates" >> beam.FlatMap(_shard_duplicates)
        )
