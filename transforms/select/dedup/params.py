"""What a language's dedup runs with: the LSH banding (bands, rows, bands to match) chosen
from the config's threshold, and the bounds of the steps, as one frozen ``DedupParams``."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from transforms.select.config import DedupConfig

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
    """(bands, rows, min_matches) of the config: given (``DedupConfig`` checked its range), or
    derived from its threshold."""
    if cfg.bands is None:
        return lsh_params(cfg.threshold, cfg.num_perm)
    return cfg.bands, cfg.num_perm // cfg.bands, cfg.min_band_matches


@dataclass(frozen=True)
class DedupParams:
    """One language's dedup, resolved from its ``DedupConfig`` (``of``): what every step reads."""

    bands: int  # LSH bands of a MinHash signature
    rows: int  # signature values a band hashes
    min_matches: int  # bands two texts must share to be linked
    heads: int  # a band bucket's first members a later member is compared with
    key_shards: int  # shards bucket entries travel in (entries of one key meet in one)
    component_shards: int  # shards facts, rows and summaries travel in (by paragraph)
    max_union_roots: float  # local roots the per-language union may hold; past it the run fails
    exact: bool = True  # exact-text buckets
    near: bool = True  # band buckets

    @classmethod
    def of(cls, cfg: DedupConfig) -> DedupParams:
        bands, rows, min_matches = bands_of(cfg)
        return cls(bands, rows, min_matches, cfg.bucket_heads, cfg.shards, cfg.component_shards,
                   cfg.max_union_roots, cfg.exact, cfg.near)

    def sharded(self, shards: int) -> DedupParams:
        """The same dedup with ``shards`` key shards and component shards (1: in one process)."""
        return replace(self, key_shards=shards, component_shards=shards)
