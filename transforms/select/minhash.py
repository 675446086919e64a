"""Batched MinHash signatures and LSH band keys, vectorised with numpy.

Per-shingle hashing in Python (datasketch's ``MinHash.update``) costs a hash call and several
numpy calls per shingle. Here a whole batch of texts is one array of code points:

1. every shingle is a character span; its 64-bit polynomial hash comes from prefix sums,
   ``(H[end] - H[start]) * P**-start`` (mod 2**64), so spans of any length hash in O(1) each;
2. character n-grams are spans ``[i, i+n)``; word n-grams are spans from the start of word i to
   the end of word i+n-1 of the normalised text;
3. permutation k maps shingle hash x to the top 32 bits of ``a_k * x + b_k`` (mod 2**64), a
   multiply-shift universal hash, and the signature is the per-text minimum (``reduceat``).

All arithmetic wraps modulo 2**64 in uint64 arrays, and every constant comes from ``seed``, so
signatures are identical across processes and machines.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np
import regex

_NOT_WORD = regex.compile(r"[^\p{L}\p{M}\p{N}]+")
_P = np.uint64(0x100000001B3)  # odd, so invertible modulo 2**64
_P_INV = np.uint64(pow(int(_P), -1, 2**64))
_BLOCK_SHINGLES = 4096  # shingles hashed at once: the block stays in cache (measured fastest)
# Memory stays bounded for a text of any length: a longer text is hashed in overlapping windows
# of at most _WINDOW_CHARS characters (its signature is their minimum, as its shingles are
# theirs), and texts are hashed in groups of at most _GROUP_CHARS characters.
_WINDOW_CHARS = 1 << 16
_GROUP_CHARS = 1 << 20


def normalize(text: str) -> str:
    """Text as dedup sees it: NFKC, casefolded, punctuation and symbols as single spaces."""
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


_POWERS = {"n": 0}  # P**i and P**-i modulo 2**64, grown on demand


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    if _POWERS["n"] < n:
        size = max(n, 2 * _POWERS["n"], 1 << 16)
        _POWERS.update(n=size, pw=_cumpow(_P, size), inv=_cumpow(_P_INV, size))
    return _POWERS["pw"][:n], _POWERS["inv"][:n]


def _cumpow(base: np.uint64, n: int) -> np.ndarray:
    """[1, base, base**2, ...] modulo 2**64 (uint64 products wrap)."""
    out = np.ones(n, np.uint64)
    np.cumprod(np.full(n - 1, base, np.uint64), out=out[1:])
    return out


def _span_hashes(codes: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit polynomial hash of each span ``codes[start:end]``, independent of its position."""
    pw, inv = _powers(len(codes) + 1)
    prefix = np.zeros(len(codes) + 1, np.uint64)
    np.cumsum(codes * pw[: len(codes)], out=prefix[1:])
    return (prefix[ends] - prefix[starts]) * inv[starts] + (ends - starts).astype(np.uint64)


class MinHasher:
    def __init__(self, num_perm: int = 128, ngram: int = 5, words: bool = False, seed: int = 1):
        if num_perm < 1 or ngram < 1:
            raise ValueError("num_perm and ngram must be positive")
        rng = np.random.default_rng(seed)
        self.a = rng.integers(0, 2**64, num_perm, dtype=np.uint64, endpoint=False) | np.uint64(1)
        self.b = rng.integers(0, 2**64, num_perm, dtype=np.uint64, endpoint=False)
        self.num_perm, self.ngram, self.words = num_perm, ngram, words

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), num_perm) uint32 MinHash signatures of the normalised texts."""
        if not texts:
            return np.empty((0, self.num_perm), np.uint32)
        windows, first = [], []  # every text's windows; the index of each text's first one
        for text in texts:
            first.append(len(windows))
            windows += self._windows(normalize(text))
        parts, start = [], 0
        while start < len(windows):  # groups of up to _GROUP_CHARS characters (at least one)
            end, size = start + 1, len(windows[start])
            while end < len(windows) and size + len(windows[end]) < _GROUP_CHARS:
                size, end = size + len(windows[end]) + 1, end + 1
            parts.append(self._signatures(windows[start:end]))
            start = end
        signatures = np.concatenate(parts)
        if len(windows) == len(texts):
            return signatures
        return np.minimum.reduceat(signatures, first, axis=0)

    def _windows(self, text: str) -> list[str]:
        """``text`` cut into windows of at most ``_WINDOW_CHARS`` characters that overlap by
        ``ngram - 1`` units, so every shingle lies whole in one (word windows end at spaces; a
        word longer than a window is cut)."""
        if len(text) <= _WINDOW_CHARS:
            return [text]
        windows, start = [], 0
        while True:
            if start + _WINDOW_CHARS >= len(text):
                return [*windows, text[start:]]
            if not self.words:
                windows.append(text[start:start + _WINDOW_CHARS])
                start += _WINDOW_CHARS - (self.ngram - 1)
                continue
            end = text.rfind(" ", start + 1, start + _WINDOW_CHARS)
            end = end if end > start else start + _WINDOW_CHARS
            windows.append(text[start:end])
            back = end  # the next window starts ngram - 1 words before this one's end
            for _ in range(self.ngram - 1):
                back = text.rfind(" ", start + 1, back) if back > start else back
            start = back + 1 if back > start else end

    def _signatures(self, normalized: list[str]) -> np.ndarray:
        joined = " ".join(normalized)
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        starts, ends, owners = self._shingle_spans(codes, normalized)
        return self._min_per_text(_span_hashes(codes, starts, ends), owners, len(normalized))

    def _shingle_spans(self, codes: np.ndarray, normalized: list[str]):
        """(start, end, text) of every shingle of the texts joined by single spaces in ``codes``,
        sorted by text."""
        lengths = np.fromiter((len(t) for t in normalized), dtype=np.int64, count=len(normalized))
        text_start = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
        text_end = text_start + lengths
        if self.words:  # units are the space-separated tokens
            edges = np.flatnonzero(np.diff(np.concatenate(([0], codes != 32, [0])).astype(np.int8)))
            unit_start, unit_end = edges[0::2], edges[1::2]
        else:  # units are the characters, the joining spaces excluded
            is_char = np.ones(len(codes), bool)
            is_char[text_end[:-1]] = False
            unit_start = np.flatnonzero(is_char)
            unit_end = unit_start + 1
        unit_owner = np.searchsorted(text_end, unit_start, side="left")
        first = np.arange(max(0, len(unit_start) - self.ngram + 1))
        last = first + self.ngram - 1
        whole = unit_owner[first] == unit_owner[last]  # n-grams never cross texts
        first, last = first[whole], last[whole]
        starts, ends, owners = unit_start[first], unit_end[last], unit_owner[first]
        # a text shorter than one shingle is one shingle: itself (empty text: the empty span)
        short = np.flatnonzero(np.bincount(owners, minlength=len(normalized)) == 0)
        starts = np.concatenate((starts, text_start[short]))
        ends = np.concatenate((ends, text_end[short]))
        owners = np.concatenate((owners, short))
        order = np.argsort(owners, kind="stable")
        return starts[order], ends[order], owners[order]

    def _min_per_text(self, hashes: np.ndarray, owners: np.ndarray, n_texts: int) -> np.ndarray:
        """Per-text minimum of every permutation of the shingle hashes (grouped by text)."""
        sig = np.empty((n_texts, self.num_perm), np.uint32)
        seg_starts = np.concatenate(([0], np.flatnonzero(np.diff(owners)) + 1))
        a, b = self.a[:, None], self.b[:, None]
        t = 0
        while t < n_texts:  # blocks of whole texts, about _BLOCK_SHINGLES shingles each
            lo = seg_starts[t]
            t_end = max(t + 1, int(np.searchsorted(seg_starts, lo + _BLOCK_SHINGLES)))
            hi = seg_starts[t_end] if t_end < n_texts else len(hashes)
            # (num_perm, shingles): the reduction runs over contiguous memory
            block = np.multiply(a, hashes[None, lo:hi])
            block += b
            block >>= np.uint64(32)
            sig[t:t_end] = np.minimum.reduceat(block, seg_starts[t:t_end] - lo, axis=1).T
            t = t_end
        return sig
