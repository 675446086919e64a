"""Exact and near-duplicate removal across all documents of a language.

Every kept paragraph emits bucket keys: one for its normalised-text hash (exact) and one per
LSH band of its MinHash signature (near). Copies in an exact bucket are linked; two texts are
linked as near duplicates when they share at least ``min_band_matches`` bands (counted per
pair, which sharpens the LSH curve without more hashing). Links go through a union-find combine
into connected components, and each component keeps one representative (``ConnectedComponents``),
the same whichever worker saw which copy. The rest are dropped as ``exact_duplicate`` or
``near_duplicate``.

Paragraph positions ``(file, doc, index)`` are the node ids: they are unique, sortable and say
where the kept copy is (the reject line's ``duplicate_of``).
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np

from pipeline.config import DedupConfig
from transforms.minhash import normalize

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"

Position = tuple[str, int, int]  # (file, doc, paragraph index)


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


def shard_of(key: bytes, shards: int) -> int:
    """The shard a bucket key travels in: entries of one key always meet in one shard."""
    return zlib.crc32(key) % shards


def shard_links(batches: Iterable[list[tuple[bytes, tuple]]], min_matches: int):
    """Group one shard's (key, value) entries into buckets; ("link", exact link) for exact-text
    buckets, ("pair", ((a, b), n)) for band buckets."""
    buckets = defaultdict(list)
    for entries in batches:
        for key, value in entries:
            buckets[key].append(value)
    for key, members in buckets.items():
        if len(members) < 2:
            continue
        if key[:1] == b"x":
            for link in exact_links(key, members):
                yield "link", link
        else:
            for pair in band_pairs(key, members, min_matches):
                yield "pair", pair


def exact_key(text: str) -> bytes:
    return b"x" + hashlib.blake2b(normalize(text).encode(), digest_size=12).digest()


def band_keys(signature: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One bucket key per band: the band's index and its rows' values."""
    return [
        b"b" + i.to_bytes(2, "big") + signature[i * rows:(i + 1) * rows].tobytes()
        for i in range(bands)
    ]


Link = tuple[str, Position, Position, int, int]  # kind, a, b, length of a, length of b


def exact_links(key: bytes, members: Iterable[tuple[Position, int]]) -> Iterator[Link]:
    """Links from the earliest paragraph of an exact-text bucket to each of its copies."""
    (first, length), *rest = sorted(set(members))
    for other, _ in rest:
        yield "exact", first, other, length, length


# Above this many distinct texts a band bucket links each to its earliest member instead of
# counting every pair: so many texts sharing a band are near-duplicates of one template.
MAX_PAIRS_BUCKET = 64


def band_pairs(
    key: bytes, members: Iterable[tuple[Position, bytes, int]], min_matches: int
) -> Iterator[tuple[tuple[tuple[Position, int], tuple[Position, int]], int]]:
    """(((a, len a), (b, len b)), 1) for each pair of distinct texts sharing this band (exact
    copies are linked by their exact bucket, so each text counts once: by its earliest copy)."""
    earliest: dict[bytes, tuple[Position, int]] = {}
    for position, text_key, length in members:
        if text_key not in earliest or position < earliest[text_key][0]:
            earliest[text_key] = (position, length)
    texts = sorted(earliest.values())
    if len(texts) > MAX_PAIRS_BUCKET:
        for other in texts[1:]:
            yield (texts[0], other), min_matches
        return
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            yield (a, b), 1


def near_links(pair_count, min_matches: int) -> Iterator[Link]:
    ((a, len_a), (b, len_b)), count = pair_count
    if count >= min_matches:
        yield "near", a, b, len_a, len_b


class ConnectedComponents(beam.CombineFn):
    """Union-find over links -> {duplicate position: (reason, kept position)}.

    Each component keeps one paragraph, the earliest copy of its canonical text: the most copied
    version (the one the web repeats is the likeliest original), then the shortest (variants
    tend to add words: appended boilerplate, insertions), then the earliest. Members with the
    kept text are ``exact_duplicate``, the others ``near_duplicate``. The accumulator holds
    only linked paragraphs, so it grows with the duplicates, not the corpus; partial
    accumulators merge on the way to one worker.
    """

    def create_accumulator(self):
        # union-find parents; exact copy -> earliest copy of its text; text lengths
        return {}, {}, {}

    def add_input(self, acc, link: Link):
        parent, copy_of, length = acc
        kind, a, b, length[a], length[b] = link
        _union(parent, a, b)
        if kind == "exact":
            copy_of[b] = a
        return acc

    def merge_accumulators(self, accs):
        accs = iter(accs)
        parent, copy_of, length = next(accs)
        for other_parent, other_copy_of, other_length in accs:
            for node, up in other_parent.items():
                _union(parent, node, up)
            copy_of.update(other_copy_of)
            length.update(other_length)
        return parent, copy_of, length

    def extract_output(self, acc):
        parent, copy_of, length = acc
        components: dict[Position, list[Position]] = {}
        for node in parent:
            components.setdefault(_find(parent, node), []).append(node)
        copies = Counter(copy_of.get(node, node) for node in parent)
        out = {}
        for members in components.values():
            heads = [m for m in members if m not in copy_of]
            kept = min(heads, key=lambda h: (-copies[h], length[h], h))
            for m in members:
                if m != kept:
                    same_text = copy_of.get(m, m) == kept
                    out[m] = (EXACT_DUPLICATE if same_text else NEAR_DUPLICATE, kept)
        return out


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
