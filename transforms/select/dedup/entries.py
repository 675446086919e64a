"""Bucket entries: the keys a kept paragraph emits (one for its normalised-text hash, one per
LSH band of its MinHash signature) with its position, as numpy columns (``Entries``), and how
they travel: packed as plain values, in key shards, gathered by a worker's ``ShardBuffer``."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import NamedTuple

import numpy as np

from transforms.select.dedup.params import DedupParams
from transforms.select.minhash import normalize

Position = tuple[str, str, int, int]  # (source, file, doc, paragraph index)


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
    the bands their texts share without carrying whole signatures. 32 bits, not 16: chance
    matches of 16-bit ones, ~(bands - 1) / 65,536 a comparison, link unrelated texts
    (docs/dedup.md, "Where the figures went")."""
    n = len(signatures)
    return (_mix(signatures[:, :bands * rows].reshape(n, bands, rows)) >> np.uint64(32)).astype(np.uint32)


def fingerprint_window(bands: int, min_matches: int) -> int:
    """How many bands' fingerprints a band entry carries: those of the bands after its own
    (cyclically). A link needs ``min_matches`` shared bands, its own bucket's counted as one:

    - 1: none (sharing the bucket is enough);
    - 2: the next ``bands // 2``. Of two bands b1 and b2 that a pair shares, one is within
      ``bands // 2`` after the other (their cyclic distances add up to ``bands``), so the
      pair is counted in at least one of its two buckets, at half the bytes: a band entry is
      shuffled once per band of a paragraph;
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


def bucket_entries(kept: list[tuple[Position, str]], hasher, params: DedupParams) -> tuple[Entries, Entries]:
    """``(position, text)`` pairs -> their exact-text bucket entries (key: ``exact_key``) and
    their band bucket entries (a key per band, with the text key and the fingerprints of the
    bands ``fingerprint_window`` asks for); the texts are MinHashed in one call."""
    bands, exact, near = params.bands, params.exact, params.near
    files = tuple(sorted({(source, file) for (source, file, _, _), _ in kept}))
    number = {file: i for i, file in enumerate(files)}
    n = len(kept)
    # without exact dedup every copy is its own text, so band buckets still link copies
    keys = [exact_key(text) if exact else b"p" + hashlib.blake2b(repr(p).encode(), digest_size=12).digest()
            for p, text in kept]
    exact_rows = np.zeros(n if exact else 0, _dtype(EXACT_WIDTH))
    width = fingerprint_window(bands, params.min_matches)
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
        band_rows["key"] = band_keys(signatures, bands, params.rows).ravel()
        band_rows["text"] = np.repeat(np.array([k[-TEXT_WIDTH:] for k in keys], f"S{TEXT_WIDTH}"), bands)
        if width:
            fingerprints = band_fingerprints(signatures, bands, params.rows)
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
    structured array's rows field by field, several times slower."""
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
    not one a key shard and batch), and one sort by shard over the buffer instead of one a
    batch."""

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
