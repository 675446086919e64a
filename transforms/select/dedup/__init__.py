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

    params.py      LSH banding and the steps' bounds: ``DedupParams``
    entries.py     hashing, band keys and fingerprints, ``Entries`` columns, packing, key shards
    components.py  facts, union-find, components, the kept paragraph of each; the steps in
                   one process (``find_duplicates``)
    transform.py   the Beam shell: the same steps as DoFns (``FindDuplicates``), imported on
                   first use so that the pure parts load without Beam
"""

from transforms.select.dedup.components import (
    COPY,
    EXACT_DUPLICATE,
    HEAD,
    LINK,
    NEAR_DUPLICATE,
    Fact,
    Rank,
    TooManyRoots,
    bucket_facts,
    by_node_shard,
    facts_by_node_shard,
    find,
    find_duplicates,
    keep_per_component,
    local_components,
    node_shard,
    node_shards,
    root_conflicts,
    roots_union,
    shard_duplicates,
    union,
)
from transforms.select.dedup.entries import (
    BAND_KEY_WIDTH,
    EXACT_WIDTH,
    TEXT_WIDTH,
    Entries,
    Position,
    ShardBuffer,
    band_fingerprints,
    band_keys,
    bucket_entries,
    by_key_shard,
    by_shard,
    concat,
    exact_key,
    fingerprint_window,
    key_shards,
    pack,
    take,
    unpack,
    window_fingerprints,
)
from transforms.select.dedup.params import (
    MAX_BAND_MATCHES,
    MIN_ROWS,
    DedupParams,
    bands_of,
    collision_probability,
    lsh_params,
)

__all__ = [
    "BAND_KEY_WIDTH",
    "COPY",
    "EXACT_DUPLICATE",
    "EXACT_WIDTH",
    "HEAD",
    "LINK",
    "MAX_BAND_MATCHES",
    "MIN_ROWS",
    "NEAR_DUPLICATE",
    "TEXT_WIDTH",
    "DedupParams",
    "Entries",
    "Fact",
    "FindDuplicates",
    "Params",
    "Position",
    "Rank",
    "ShardBuffer",
    "TooManyRoots",
    "band_fingerprints",
    "band_keys",
    "bands_of",
    "bucket_entries",
    "bucket_facts",
    "by_key_shard",
    "by_node_shard",
    "by_shard",
    "collision_probability",
    "concat",
    "exact_key",
    "facts_by_node_shard",
    "find",
    "find_duplicates",
    "fingerprint_window",
    "keep_per_component",
    "key_shards",
    "local_components",
    "lsh_params",
    "node_shard",
    "node_shards",
    "pack",
    "root_conflicts",
    "roots_union",
    "shard_duplicates",
    "take",
    "union",
    "unpack",
    "window_fingerprints",
]


def __getattr__(name: str):
    if name in ("FindDuplicates", "Params"):
        from transforms.select.dedup import transform

        return getattr(transform, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
