"""Cut text into segments a translation model takes whole: sentences, and over-long sentences
at clause marks or spaces. Nothing is ever truncated: a piece that cannot be cut under the
limit is reported, and the caller rejects the record with ``segment_too_long``.

NLLB drops sentences when given many at once and is trained on inputs of at most 512 tokens,
so each sentence is translated alone and capped at ``max_tokens``.
"""

from __future__ import annotations

from collections.abc import Callable

import regex

SEGMENT_TOO_LONG = "segment_too_long"

# Places to cut an over-long sentence, tried in order: clause marks (Latin, CJK, Arabic,
# Devanagari danda), then spaces.
_CUTS = (
    regex.compile(r"(?<=[;:；：؛])\s*"),
    regex.compile(r"(?<=[,，、،])\s*"),
    regex.compile(r"\s+"),
)


class SegmentTooLong(ValueError):
    pass


def sentences(text: str, language: str) -> list[str]:
    """Sentences of ``text`` by sentencex (``language``: ISO 639-1, e.g. "te")."""
    from sentencex import segment

    return [s.strip() for s in segment(language, text) if s.strip()]


def cap(sentence: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    """``sentence`` as pieces of at most ``max_tokens`` tokens, cut at the coarsest marks that
    suffice; raises SegmentTooLong for a piece with no place left to cut."""
    if count_tokens(sentence) <= max_tokens:
        return [sentence]
    for cut in _CUTS:
        parts = [p for p in cut.split(sentence) if p]
        if len(parts) > 1:
            return _pack(parts, count_tokens, max_tokens)
    raise SegmentTooLong(f"{count_tokens(sentence)} tokens without a place to cut")


def _pack(parts: list[str], count_tokens, max_tokens: int) -> list[str]:
    """Greedily join consecutive parts (with a space) while they fit; cap each piece again."""
    pieces: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current} {part}" if current else part
        if current and count_tokens(candidate) > max_tokens:
            pieces.extend(cap(current, count_tokens, max_tokens))
            current = part
        else:
            current = candidate
    if current:
        pieces.extend(cap(current, count_tokens, max_tokens))
    return pieces


def segments(
    text: str, language: str, count_tokens: Callable[[str], int], max_tokens: int
) -> list[list[str]]:
    """Per paragraph (lines of ``text``), the segments to translate one by one."""
    return [
        [piece for s in sentences(line, language) for piece in cap(s, count_tokens, max_tokens)]
        for line in text.split("\n")
    ]
