"""Cut the kept paragraphs of a document into response fragments of varying length.

A fragment is one or more consecutive paragraphs of one document, never across a dropped
paragraph (the response must be verbatim source text). The number of paragraphs is drawn per
fragment from ``paragraph_weights`` with a generator seeded by the document, so runs are
reproducible on any runner; a fragment grows past its draw while shorter than ``min_chars``
and never past ``max_chars``. A short tail joins the fragment before it when it fits.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from transforms.select.config import FragmentConfig

TOO_SHORT = "too_short"
TOO_LONG = "too_long"


@dataclass(frozen=True)
class Fragment:
    first: int  # index of the first paragraph in the document
    texts: tuple[str, ...]
    reject_reason: str | None = None

    @property
    def last(self) -> int:
        return self.first + len(self.texts) - 1

    @property
    def text(self) -> str:
        return "\n".join(self.texts)


def runs(indices: Sequence[int]) -> list[list[int]]:
    """Maximal runs of consecutive integers in sorted ``indices``."""
    out: list[list[int]] = []
    for i in indices:
        if out and out[-1][-1] == i - 1:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def _length(texts: Sequence[str]) -> int:
    return sum(len(t) for t in texts) + max(0, len(texts) - 1)  # joined by "\n"


def fragment_document(paragraphs: dict[int, str], cfg: FragmentConfig, key: str) -> list[Fragment]:
    """Fragments of one document from its kept paragraphs ``{index: text}``; ``key`` names the
    document and seeds the draws."""
    rng = random.Random(f"{cfg.seed}/{key}")
    sizes = range(1, len(cfg.paragraph_weights) + 1)
    fragments: list[Fragment] = []
    for run in runs(sorted(paragraphs)):
        texts = [paragraphs[i] for i in run]
        cut: list[tuple[int, int]] = []  # (start, end) into run
        start = 0
        while start < len(run):
            want = rng.choices(sizes, weights=cfg.paragraph_weights)[0]
            end = start + 1
            while end < len(run) and (end - start < want or _length(texts[start:end]) < cfg.min_chars):
                if _length(texts[start:end + 1]) > cfg.max_chars:
                    break
                end += 1
            cut.append((start, end))
            start = end
        if len(cut) > 1 and _length(texts[cut[-1][0]:cut[-1][1]]) < cfg.min_chars:
            (s0, _), (_, e1) = cut[-2], cut[-1]
            if _length(texts[s0:e1]) <= cfg.max_chars:
                cut[-2:] = [(s0, e1)]
        for s, e in cut:
            part = tuple(texts[s:e])
            n = _length(part)
            reason = TOO_SHORT if n < cfg.min_chars else TOO_LONG if n > cfg.max_chars else None
            fragments.append(Fragment(run[s], part, reason))
    return fragments
