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

Bucket entries travel as numpy columns (``Entries``), one table a key shard and worker buffer,
and are linked by sorting them; only linked paragraphs become Python objects. Paragraph positions
``(source, file, doc, index)`` are the node ids: they are unique, sortable and say where the
kept copy is (the reject line's ``duplicate_of``). All of a language's sources meet here, so a
curated answer that is also CC-100 text is kept once.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from functools import lru_cache
from itertools import groupby
from typing import NamedTuple

import apache_beam as beam
import numpy as np

from transforms.records.shapes import pickled, unpickled
from transforms.select.config import DedupConfig
from transforms.select.minhash import normalize

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"

Position = tuple[str, str, int, int]  # (source, file, doc, paragraph index)


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


def _mix(values: np.ndarray, salt: int = 0) -> np.ndarray:
    """A 64-bit hash of each row of a (..., k) uint32 array: a random linear combination
    (wrapping modulo 2**64) and splitmix64's finaliser, which spreads it over every bit."""
    k = values.shape[-1]
    x = (values.astype(np.uint64) * _ROW_MIX[salt:salt + k]).sum(axis=-1, dtype=np.uint64)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(texts, bands) bucket keys, 8 bytes: a hash of the band's index and its rows' values
    (texts alike in a band share its key; two bands that differ share one with a chance of
    ~2**-64, and even then no link follows: members are verified on ``band_fingerprints``)."""
    n = len(signatures)
    values = signatures[:, :bands * rows].reshape(n, bands, rows)
    index = np.broadcast_to(np.arange(bands, dtype=np.uint32)[None, :, None], (n, bands, 1))
    return _mix(np.concatenate([values, index], axis=2), salt=64).view("S8")


def band_fingerprints(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(texts, bands) uint32: a hash of each band's rows, so that two bucket entries can count
    the bands their texts share without carrying whole signatures. (16 bits are too few: on the
    benchmark's heavy-duplication corpus their chance collisions, ~(bands - 1) / 65,536 a
    comparison, linked 17 pairs of Jaccard 0.14-0.44.)"""
    n = len(signatures)
    return (_mix(signatures[:, :bands * rows].reshape(n, bands, rows)) >> np.uint64(32)).astype(np.uint32)


def fingerprint_window(bands: int, min_matches: int) -> int:
    """How many bands' fingerprints a band entry carries: those of the bands after its own
    (cyclically). A link needs ``min_matches`` shared bands, its own bucket's counted as one:

    - 1: none (sharing the bucket is enough);
    - 2: the next ``bands // 2``. Of two bands b1 and b2 that a pair shares, one is within
      ``bands // 2`` after the other (their cyclic distances add up to ``bands``), so the
      pair is counted in at least one of its two buckets, at half the bytes: a band entry is
      shuffled 25 times a paragraph;
    - more: all the others (three shared bands can each lie beyond a half window of the next).

    A count over a window is never above the true count: a link still means ``min_matches``
    shared bands."""
    return 0 if min_matches <= 1 else bands // 2 if min_matches == 2 else bands - 1


def window_fingerprints(fingerprints: np.ndarray, width: int) -> np.ndarray:
    """(texts, bands) fingerprints -> (texts, bands, width): for each band, the next ``width``
    bands' (cyclically)."""
    bands = fingerprints.shape[1]
    return fingerprints[:, (np.arange(bands)[:, None] + np.arange(1, width + 1)) % bands]


_ROW_MIX = np.random.default_rng(0).integers(0, 2**64, 4096, np.uint64, endpoint=False) | np.uint64(1)
BAND_KEY_WIDTH = 8  # bytes of a band_keys key
EXACT_WIDTH = 13  # bytes of an exact_key
# bytes of a band entry's text key (an exact key's last 4): compared only within a bucket, to
# skip a member's exact copies (their exact bucket links them); a chance match of two texts that
# differ (2**-32 a comparison) costs that one comparison's link, never a wrong one
TEXT_WIDTH = 4


class Entries(NamedTuple):
    """Bucket entries as columns: ``files`` (the (source, file) pairs ``rows["file"]`` indexes) and a numpy
    structured array with a row per entry: ``key`` (fixed-width bytes), the paragraph's
    position (``file``, ``doc``, ``index``), its ``length``, and for band entries its
    exact-text key ``text`` and band fingerprints ``fp`` (``fingerprint_window``). One array a key shard
    instead of a Python tuple an entry: encoding, shuffling and linking cost per batch."""

    files: tuple[tuple[str, str], ...]
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def _dtype(key_width: int, fingerprints: int | None = None) -> np.dtype:
    """An exact table's row (``fingerprints`` None) or a band table's, with that many
    fingerprints."""
    fields = [("key", f"S{key_width}"), ("file", "<i4"), ("doc", "<i8"), ("index", "<i4"), ("length", "<i4")]
    if fingerprints is not None:
        fields.append(("text", f"S{TEXT_WIDTH}"))
    if fingerprints:
        fields.append(("fp", "<u4", (fingerprints,)))
    return np.dtype(fields)


def _fingerprints(rows: np.ndarray) -> int | None:
    """The fingerprints a band table's rows carry; None for an exact table."""
    if "text" not in rows.dtype.names:
        return None
    return rows.dtype["fp"].shape[0] if "fp" in rows.dtype.names else 0


def bucket_entries(
    kept: list[tuple[Position, str]], hasher, bands: int, rows: int, min_matches: int, exact: bool, near: bool
) -> tuple[Entries, Entries]:
    """``(position, text)`` pairs -> their exact-text bucket entries (key: ``exact_key``) and
    their band bucket entries (a key per band, with the text key and the fingerprints of the
    bands ``fingerprint_window`` asks for); the texts are MinHashed in one call."""
    files = tuple(sorted({(source, file) for (source, file, _, _), _ in kept}))
    number = {file: i for i, file in enumerate(files)}
    n = len(kept)
    # without exact dedup every copy is its own text, so band buckets still link copies
    keys = [exact_key(text) if exact else b"p" + hashlib.blake2b(repr(p).encode(), digest_size=12).digest()
            for p, text in kept]
    exact_rows = np.zeros(n if exact else 0, _dtype(EXACT_WIDTH))
    width = fingerprint_window(bands, min_matches)
    band_rows = np.zeros(n * bands if near else 0, _dtype(BAND_KEY_WIDTH, width))
    for table, copies in ((exact_rows, 1), (band_rows, bands)):
        if len(table):
            table["file"] = np.repeat([number[source, file] for (source, file, _, _), _ in kept], copies)
            table["doc"] = np.repeat([doc for (_, _, doc, _), _ in kept], copies)
            table["index"] = np.repeat([i for (_, _, _, i), _ in kept], copies)
            table["length"] = np.repeat([len(text) for _, text in kept], copies)
    if exact:
        exact_rows["key"] = keys
    if near and n:
        signatures = hasher.signatures([text for _, text in kept])
        band_rows["key"] = band_keys(signatures, bands, rows).ravel()
        band_rows["text"] = np.repeat(np.array([k[-TEXT_WIDTH:] for k in keys], f"S{TEXT_WIDTH}"), bands)
        if width:
            fingerprints = band_fingerprints(signatures, bands, rows)
            band_rows["fp"] = window_fingerprints(fingerprints, width).reshape(n * bands, width)
    return Entries(files, exact_rows), Entries(files, band_rows)


def key_shards(rows: np.ndarray, shards: int) -> np.ndarray:
    """The shard each entry's key travels in (entries of one key always meet in one shard):
    its last 4 bytes (of a blake2b digest or a 64-bit hash: uniform) modulo ``shards``."""
    width = rows.dtype["key"].itemsize
    raw = np.ascontiguousarray(rows["key"]).view(np.uint8).reshape(-1, width)[:, width - 4:]
    return np.ascontiguousarray(raw).view("<u4").ravel() % shards


def take(rows: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``rows[order]`` for a structured array, copied as whole rows of bytes: numpy copies a
    structured array's rows field by field, ~6x slower (500,000 band entries: 0.15 s, 0.02 s)."""
    return rows.view(np.dtype((np.void, rows.dtype.itemsize)))[order].view(rows.dtype)


def by_shard(entries: Entries, shards: int) -> Iterator[tuple[int, Entries]]:
    """``(shard, its entries)`` for each key shard that ``entries`` has rows for."""
    if not len(entries):
        return
    shard = key_shards(entries.rows, shards)
    if shards <= 1 << 16:
        shard = shard.astype(np.uint16)  # numpy sorts 16-bit integers by radix: linear
    order = np.argsort(shard, kind="stable")
    rows, shard = take(entries.rows, order), shard[order]
    cuts = np.flatnonzero(np.diff(shard)) + 1
    for part in np.split(np.arange(len(rows)), cuts):
        yield int(shard[part[0]]), Entries(entries.files, rows[part[0]:part[-1] + 1])


def by_key_shard(exact: Entries, band: Entries, shards: int) -> Iterator[tuple[int, tuple[Entries, Entries]]]:
    """``(shard, (its exact entries, its band entries))`` for each key shard with entries."""
    parts = defaultdict(lambda: [Entries(exact.files, exact.rows[:0]), Entries(band.files, band.rows[:0])])
    for kind, entries in enumerate((exact, band)):
        for s, part in by_shard(entries, shards):
            parts[s][kind] = part
    for s, (e, b) in parts.items():
        yield s, (e, b)


def concat(parts: Iterable[Entries]) -> Entries:
    """Entries of the same kind (exact or band) as one table, file numbers in (source, file)
    order, so that ``(file, doc, index)`` sorts as positions do."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Entries((), np.zeros(0, _dtype(EXACT_WIDTH)))
    if len(parts) == 1:
        return parts[0]
    files = tuple(sorted({f for p in parts for f in p.files}))
    tables = []
    for names, group in groupby(sorted(parts, key=_files), key=_files):
        rows = np.concatenate([p.rows for p in group])
        if names != files:
            rows["file"] = np.array([files.index(f) for f in names], np.int32)[rows["file"]]
        tables.append(rows)
    return Entries(files, tables[0] if len(tables) == 1 else np.concatenate(tables))


def _files(entries: Entries) -> tuple[tuple[str, str], ...]:
    return entries.files


def pack(exact: Entries, band: Entries) -> tuple:
    """A batch's entries of one key shard as plain values (names, bytes, ints), which Beam
    encodes without pickling."""
    width, fingerprints = band.rows.dtype["key"].itemsize, _fingerprints(band.rows) if len(band) else None
    return exact.files, exact.rows.tobytes(), band.files, band.rows.tobytes(), width, fingerprints


def unpack(packed: tuple) -> tuple[Entries, Entries]:
    exact_files, exact, band_files, band, width, fingerprints = packed
    band_rows = (np.frombuffer(band, _dtype(width, fingerprints)) if fingerprints is not None
                 else np.zeros(0, _dtype(EXACT_WIDTH)))
    return Entries(exact_files, np.frombuffer(exact, _dtype(EXACT_WIDTH))), Entries(band_files, band_rows)


class ShardBuffer:
    """Bucket entries of many batches, held as they come and split by key shard once they pass
    ``max_bytes`` (and at the end): one packed table a key shard and flush (one shuffle element,
    not one a key shard and batch: 100,346 elements for the benchmark's 50,000 documents), and
    one sort by shard over the buffer instead of one a batch."""

    def __init__(self, max_bytes: int, shards: dict[str, int]):
        self.max_bytes, self.shards = max_bytes, shards  # key shards per language
        self.held: dict[str, list[tuple[Entries, Entries]]] = defaultdict(list)
        self.size = 0

    def add(self, lang: str, exact: Entries, band: Entries) -> Iterator[tuple[tuple[str, int], tuple]]:
        """Take a batch's entries; yields ``((lang, shard), packed)`` when the buffer is full."""
        self.held[lang].append((exact, band))
        self.size += exact.rows.nbytes + band.rows.nbytes
        if self.size >= self.max_bytes:
            yield from self.flush()

    def flush(self) -> Iterator[tuple[tuple[str, int], tuple]]:
        for lang, batches in self.held.items():
            exact, band = concat(e for e, _ in batches), concat(b for _, b in batches)
            for s, parts in by_key_shard(exact, band, self.shards[lang]):
                yield (lang, s), pack(*parts)
        self.held.clear()
        self.size = 0


_SHARD_MIX = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9)
_MASK64 = (1 << 64) - 1


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


# A fact about one paragraph, sent to its node shard: (node, parent, copies, length).
# parent None: node is the first member of a bucket that linked others (a "marker");
# copies 0: node is a later copy of the exact text of parent (never kept);
# else node is linked to parent (a bucket's first member) and is a candidate to keep.
Fact = tuple[Position, "Position | None", int, int]
Rank = tuple[int, int, Position]  # (-copies of the text, length, position): the smallest is kept
_VERIFY_BLOCK = 1 << 14  # band members compared with their bucket's heads at once


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
        yield s, (position, None, n, length)
    later = np.flatnonzero(np.arange(len(rows)) != first[bucket])
    for position, s, parent, length in zip(*_nodes(entries.files, rows, later, shards),
                                           _positions(entries.files, rows, first[bucket[later]]),
                                           rows["length"][later].tolist()):
        yield s, (position, parent, 0, length)


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
            yield s, (position, None, 1, length)
    for position, s, up, length in zip(*_nodes(entries.files, rows, member, shards),
                                       _positions(entries.files, rows, parent), rows["length"][member].tolist()):
        yield s, (position, up, 1, length)


def local_components(facts: Iterable[Fact]) -> tuple[list, list, list]:
    """One node shard's facts -> union-find over their links; per local component (root: its
    smallest paragraph, this shard's or a parent from another shard):

    - own rows ``(node, root, first copy of its text)``: the shard's own paragraphs;
    - boundary rows ``(node, root)``: the paragraphs other shards see too (parents from other
      shards, and this shard's paragraphs that are a bucket's first member);
    - summaries ``(root, best rank)``: the component's best candidate to keep (None when all
      its own paragraphs are later exact copies).

    Memory: this shard's facts, about 1/shards of a language's links however they cluster.
    A fact seen again changes nothing (a member of a template's cluster links to the same first
    member in many bands: 42% of the facts of the benchmark's heavy corpus), so it is skipped."""
    parent: dict = {}
    rank: dict = {}  # own node -> smallest rank seen, None for a later exact copy
    head: dict = {}  # later exact copy -> first copy of its text
    marked: set = set()
    for node, up, copies, length in dict.fromkeys(facts):  # each fact once, in order
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


class TooManyRoots(RuntimeError):
    """More local roots to join than ``dedup.max_union_roots``: the run fails instead of one
    worker's memory."""


def roots_union(links: Iterable[tuple[Position, Position]], bound: float, lang: str = "") -> dict:
    """Links between local roots (``root_conflicts``) -> {root: its component's root}, by one
    union-find per language. It holds the roots the shards disagree on, not paragraphs, and
    at most ``bound`` of them: past that it raises ``TooManyRoots``."""
    parent: dict = {}
    for a, b in links:
        _union(parent, a, b)
        if len(parent) > bound:
            raise TooManyRoots(
                f"dedup ({lang}): more than {bound:,} local roots to join across component shards "
                "(dedup.max_union_roots); raise it: each costs about 300 bytes on one worker, and "
                "again in every worker's copy of the result"
            )
    return {node: _find(parent, node) for node in list(parent)}


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
    batches: Iterable[tuple[Entries, Entries]], min_matches: int, shards: int = 1,
    heads: int = DedupConfig.bucket_heads,
    max_roots: float = math.inf,
) -> dict:
    """{duplicate position: (reason, kept position)} of one language's bucket entries (``(exact,
    band)`` per batch, as ``bucket_entries`` makes them): the steps of ``FindDuplicates`` in one
    process (the benchmark's plain loop and ``--dry-run``)."""
    grouped = defaultdict(list)
    for exact, band in batches:
        for s, parts in by_key_shard(exact, band, shards):
            grouped[s].append(parts)
    facts = defaultdict(list)
    for parts in grouped.values():
        for s, shard_facts in facts_by_node_shard(parts, min_matches, heads, shards).items():
            facts[s] += shard_facts
    own, boundary, summaries = {}, defaultdict(list), []
    for s, shard_facts in facts.items():
        own[s], rows, shard_summaries = local_components(shard_facts)
        for t, shard_rows in by_node_shard(rows, shards).items():
            boundary[t] += shard_rows
        summaries += [(s, root, best) for root, best in shard_summaries]
    links = (link for rows in boundary.values() for link in root_conflicts(rows))
    roots = roots_union(links, max_roots)
    components = defaultdict(list)
    for s, root, best in summaries:
        components[roots.get(root, root)].append((s, root, best))
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

Params = dict  # language code -> (min_matches, component shards, bucket heads, max union roots)


def _held(step: str, n: int) -> None:
    """The size of what a step holds at once (paragraphs, rows or bucket keys), for tests
    and monitoring."""
    beam.metrics.Metrics.distribution("dedup", f"held_{step}").update(n)


class _LinkBuckets(beam.DoFn):
    def __init__(self, params: Params):
        self.params = params

    def process(self, element):
        (lang, _), batches = element
        min_matches, shards, heads, _ = self.params[lang]
        by_shard = facts_by_node_shard(map(unpack, batches), min_matches, heads, shards)
        for s, facts in by_shard.items():
            yield (lang, s), pickled(facts)


class _LocalComponents(beam.DoFn):
    def __init__(self, params: Params):
        self.params = params

    def process(self, element):
        (lang, s), batches = element
        own, boundary, summaries = local_components(unpickled(batches))
        _held("components", len(own) + len(boundary))
        for t, rows in by_node_shard(boundary, self.params[lang][1]).items():
            yield beam.pvalue.TaggedOutput("boundary", ((lang, t), pickled(rows)))
        yield beam.pvalue.TaggedOutput("summaries", (lang, s, summaries))
        yield (lang, s), pickled(own)


def _conflicts(element):
    (lang, _), batches = element
    rows = list(unpickled(batches))
    _held("boundary", len(rows))
    yield lang, pickled(list(root_conflicts(rows)))


def _roots_union(element, params: Params):
    lang, links = element
    roots = roots_union(unpickled(links), params[lang][3], lang)
    _held("residual", len(roots))
    return lang, roots


class _ByComponent(beam.DoFn):
    def __init__(self, params: Params):
        self.params = params

    def process(self, element, roots: dict):
        lang, s, summaries = element
        lang_roots = roots.get(lang, {})
        rows = ((lang_roots.get(root, root), s, root, best) for root, best in summaries)
        for t, shard_rows in by_node_shard(rows, self.params[lang][1]).items():
            yield (lang, t), pickled(shard_rows)


def _keep(element):
    (lang, _), batches = element
    components = defaultdict(list)
    for component, s, root, best in unpickled(batches):
        components[component].append((s, root, best))
    kept = defaultdict(list)
    for rows in components.values():
        _held("component", len(rows))
        for s, root, k in keep_per_component(rows):
            kept[s].append((root, k))
    for s, rows in kept.items():
        yield (lang, s), pickled(rows)


def _shard_duplicates(element, group):
    (lang, _), grouped = element
    kept_of = dict(unpickled(grouped["kept"]))
    own = list(unpickled(grouped["own"]))
    _held("duplicates", len(own) + len(kept_of))
    by_group = defaultdict(list)
    for (source, file, doc, i), reason, kept in shard_duplicates(own, kept_of):
        by_group[group(lang, source, file, doc)].append((doc, i, reason, kept))
    yield from by_group.items()


def _by_document(lang: str, source: str, file: str, doc: int) -> tuple[str, str, str, int]:
    return lang, source, file, doc


class FindDuplicates(beam.PTransform):
    """Bucket entries ``((lang, key shard), (exact Entries, band Entries))`` -> ``(group,
    [(doc, index, reason, kept position), ...])`` for the duplicate paragraphs, where
    ``group(lang, source, file, doc)`` is the key their documents are joined under (default:
    the document).

        entries --GroupByKey(key shard)--facts_by_node_shard--> facts --GroupByKey(node shard)
            --local_components--> own rows, boundary rows, summaries
        boundary --GroupByKey(node shard)--root_conflicts--> root links --GroupByKey(lang)
            --roots_union (at most max_union_roots)--> {root: component root} per language
        summaries (+ those maps as side input) --GroupByKey(component shard)--keep_per_component
        own rows + kept --CoGroupByKey(node shard)--shard_duplicates--> duplicates by document

    Bucket entries travel in ``dedup.shards`` shards of keys, the rest in ``component_shards``
    shards of paragraphs; every group is one shard's entries, facts or rows, and a component
    has at most one summary per shard and local root. Only ``roots_union`` is per language,
    over the local roots the shards disagree on, and bounded by ``dedup.max_union_roots``."""

    def __init__(self, params: Params, group=_by_document):
        super().__init__()
        self.params, self.group = params, group

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
            | "ByLang" >> beam.GroupByKey()
            | "RootsUnion" >> beam.Map(_roots_union, self.params)
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
            | "Duplicates" >> beam.FlatMap(_shard_duplicates, self.group)
        )
