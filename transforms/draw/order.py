"""The pure core of the draw and the trim (``stage.py``): one deterministic, stratified order of
a language's records, and the tranche sizes of ``--target``.

Records fall into strata (source, response length bin, the task prompt ``generate.draw_task``
gives the record); each stratum is ordered by a hash of the record id, and the strata are
interleaved in proportion to their sizes. The first k of that order are the draw of size k, and
the draw of a larger k holds the smaller one's: a later tranche (or a larger target) only adds
records, and the model-call cache answers the ones done before.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import islice

# Response-length bins (characters) of the strata: select's histogram edges
LENGTH_BINS = (0, 50, 100, 200, 400, 800, 1600, 3200)
STRATA = "source/length/task@1"  # what a stratum is made of: a new one redoes the draw


def draw_hash(record_id: str, seed: int = 0) -> int:
    """A record's place in its stratum: 64 bits of a hash of its id (and the draw's seed)."""
    return int.from_bytes(hashlib.sha1(f"draw/{seed}/{record_id}".encode()).digest()[:8], "big")


def length_bin(chars: int) -> int:
    return max(edge for edge in LENGTH_BINS if edge <= chars)


def stratum(record: dict, task: str | None = None) -> str:
    """A record's stratum: its source, its response's length bin and (where known) its task."""
    source = record.get("source", {}).get("name", "cc100")
    return f"{source}|{length_bin(len(record['response']))}|{task or '-'}"


def _offset(name: str, seed: int) -> float:
    """Where a stratum's records start among the others' (in [0, 1)): spreads small strata."""
    return int.from_bytes(hashlib.sha1(f"stratum/{seed}/{name}".encode()).digest()[:4], "big") / 2**32


def allocate(sizes: Mapping[str, int], k: int, seed: int = 0) -> dict[str, int]:
    """How many records of each stratum (``sizes``: stratum -> records) the first ``k`` of the
    stratified order take. The order puts a stratum of n records' r-th record (by hash) at
    ``(r + offset) / n``: every prefix takes each stratum in proportion to its size, to within
    two records (one of the prefix's own cut), and a longer prefix holds a shorter one."""
    def keys(name: str, n: int):
        offset = _offset(name, seed)
        return (((r + offset) / n, name) for r in range(n))

    merged = heapq.merge(*(keys(name, n) for name, n in sorted(sizes.items()) if n > 0))
    taken = Counter(name for _, name in islice(merged, max(0, k)))
    return {name: taken.get(name, 0) for name in sorted(sizes)}


def cutoffs(hashes: Mapping[str, Iterable[int]], k: int, seed: int = 0) -> dict[str, int]:
    """stratum -> the largest hash drawn (-1: none) when the first ``k`` of the stratified
    order of records with these ``hashes`` (per stratum) are drawn: a record is drawn if its
    hash is at most its stratum's cut-off."""
    ordered = {name: sorted(values) for name, values in hashes.items()}
    taken = allocate({name: len(values) for name, values in ordered.items()}, k, seed)
    return {name: ordered[name][m - 1] if m else -1 for name, m in taken.items()}


def stratified_order(items: Iterable[tuple[str, str]], seed: int = 0) -> list[str]:
    """(id, stratum) pairs -> the ids in the draw's order (the first k are the draw of k):
    for tests and the docs; the pipeline cuts by ``cutoffs``."""
    by_stratum: dict[str, list[tuple[int, str]]] = {}
    for record_id, name in items:
        by_stratum.setdefault(name, []).append((draw_hash(record_id, seed), record_id))
    keyed = []
    for name, members in by_stratum.items():
        offset, n = _offset(name, seed), len(members)
        keyed += [((r + offset) / n, name, record_id) for r, (_, record_id) in enumerate(sorted(members))]
    return [record_id for _, _, record_id in sorted(keyed)]


def first_draw(target: int, pass_rate: float, margin: float) -> int:
    """The first tranche: what ``target`` final records take at the expected ``pass_rate`` (the
    stages' product), with ``margin`` more."""
    return max(1, math.ceil(target * (1 + margin) / max(pass_rate, 1e-9) - 1e-9))


def next_draw(target: int, candidates: int, drawn: int, kept: int, margin: float) -> int | None:
    """The next tranche's draw size after one of ``drawn`` records kept ``kept`` (of
    ``candidates`` selected), sized from the pass rate measured on it; None when the language
    is done (the target reached, or every candidate drawn)."""
    if kept >= target or drawn >= candidates:
        return None
    if kept == 0:  # no rate to go by: twice the draw
        return min(candidates, 2 * drawn)
    more = math.ceil((target - kept) * (1 + margin) * drawn / kept - 1e-9)
    return min(candidates, drawn + max(1, more))
