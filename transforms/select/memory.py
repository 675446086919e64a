"""What select holds at once, estimated before the run: the one thing that still grows with a
language's input is a dedup key shard, which one worker reads and links at a time.

Everything else select holds is bounded whatever the input: a bundle's buffers (bucket entries,
lines being written), the models, and the references that cross the shuffles (spill files hold
the kept paragraphs and bucket entries, ``transforms/records/spill.py``). A key shard holds
~1/``dedup.shards`` of a language's bucket entries, ~1 KB a kept paragraph; linking it copies
them about three times (concatenation, sort, the linked rows). ``check`` refuses a run whose
largest shard would not fit the machine, before any work, instead of meeting the kernel's OOM
killer halfway through.
"""

from __future__ import annotations

import math
import os

from transforms.select.dedup.entries import BAND_KEY_WIDTH, EXACT_WIDTH, _dtype, fingerprint_window
from transforms.select.dedup.params import DedupParams

# Stored bytes -> text bytes, per compression (the least CC-100-like text compresses to: an
# estimate errs towards more text).
EXPANSION = {".xz": 6.0, ".gz": 4.0, ".bz2": 5.0, ".zst": 5.0, ".deflate": 4.0}
TEXT_BYTES_PER_PARAGRAPH = 150  # CC-100's paragraphs run 200-400 bytes: more paragraphs, not fewer
LINK_COPIES = 3  # a shard's entries held at once while it is linked
MEMORY_SHARE = 0.5  # of the memory available to a worker, for one shard


def entry_bytes(params: DedupParams) -> int:
    """Bucket-entry bytes of one kept paragraph: its exact row and a row per band."""
    exact = _dtype(EXACT_WIDTH).itemsize if params.exact else 0
    width = fingerprint_window(params.bands, params.min_matches)
    return exact + (params.bands * _dtype(BAND_KEY_WIDTH, width).itemsize if params.near else 0)


def text_bytes(path: str, stored: int) -> int:
    """The text a stored file of ``stored`` bytes holds, estimated from its compression."""
    return int(stored * EXPANSION.get(os.path.splitext(path)[1], 1.0))


def shard_bytes(text: int, params: DedupParams) -> int:
    """The memory linking one key shard takes, for a language of ``text`` bytes of input."""
    paragraphs = text / TEXT_BYTES_PER_PARAGRAPH
    return int(LINK_COPIES * paragraphs * entry_bytes(params) / params.key_shards)


def shards_needed(text: int, params: DedupParams, available: int) -> int:
    """The fewest key shards whose largest fits ``MEMORY_SHARE`` of ``available`` bytes."""
    whole = shard_bytes(text, params) * params.key_shards
    return max(params.key_shards, math.ceil(whole / (MEMORY_SHARE * available)))


def available_bytes() -> int | None:
    """This machine's available memory (Linux ``MemAvailable``); None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check(text_by_lang: dict[str, int], params: dict[str, DedupParams], workers: int,
          available: int | None) -> str | None:
    """Why select would run out of memory on this machine (one line), or None: each of
    ``workers`` local workers may link a shard at once, with ``available`` bytes among them."""
    if available is None:
        return None
    per_worker = available / max(1, workers)
    for lang, text in sorted(text_by_lang.items()):
        need = shard_bytes(text, params[lang])
        if need > MEMORY_SHARE * per_worker:
            shards = shards_needed(text, params[lang], int(per_worker))
            return (f"select would hold ~{need / 2**30:.1f} GB a dedup shard for {lang} (~{text / 2**30:.1f} GB "
                    f"of text, dedup.shards {params[lang].key_shards}), more than this machine's "
                    f"{per_worker / 2**30:.1f} GB available a worker allow: set languages.{lang}.select.dedup.shards "
                    f"to {shards} or more (docs/dedup.md, \"Memory\")")
    return None

