"""Heuristic quality filters for paragraphs of natural text: pure functions, no I/O.

Built for short paragraphs in any script, not whole documents (see the README's design notes):
every ratio is over the paragraph's own characters, and nothing counts words, so scripts
written without spaces are judged the same way.

``paragraph_reject_reason`` runs the checks cheapest and most specific first and returns the
stable name of the first that fails (a reason from ``REASONS``), or None to keep the paragraph.
Each threshold comes from ``FilterConfig``; a threshold of None disables its check.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence

import regex

from pipeline.config import FilterConfig
from pipeline.languages import Language

# Stable reason names, in the order the checks run. Documented in the README.
INVALID_UTF8 = "invalid_utf8"
CONTAINS_URL = "contains_url"
BOILERPLATE = "boilerplate"
REPEATED_CHARS = "repeated_chars"
TOO_MANY_SYMBOLS = "too_many_symbols"
TOO_MANY_DIGITS = "too_many_digits"
TOO_MANY_CAPITALS = "too_many_capitals"
WRONG_SCRIPT = "wrong_script"
REPEATED_LINES = "repeated_lines"

_URL = regex.compile(
    r"https?://|www\.|[\w.+-]+@[\w-]+\.\w{2,}|\b[\w-]+\.(?:com|net|org|info|biz|html?|php)\b",
    regex.IGNORECASE,
)
# Symbols: Unicode S* categories plus the ASCII punctuation that markup, menus and spam use.
_SYMBOL = regex.compile(r"[\p{S}#*@|_\\<>{}\[\]]")
_DIGIT = regex.compile(r"\p{Nd}")
_UPPER = regex.compile(r"\p{Lu}")
_CASED = regex.compile(r"[\p{Lu}\p{Ll}]")
_NOT_LETTER = regex.compile(r"[^\p{L}\p{M}]+")
# A unit of 1-20 characters repeated back to back: "!!!!!!", "hahahaha", "buy now buy now ...".
_MAX_UNIT = 20
# Below this many cased letters a capitals share says little ("NASA", "OK").
_MIN_CASED_LETTERS = 10


@functools.lru_cache(maxsize=None)
def _script_pattern(scripts: tuple[str, ...]) -> regex.Pattern:
    """Runs of characters that are not letters (or marks) of ``scripts``."""
    union = "".join(f"\\p{{Script_Extensions={s}}}" for s in scripts)
    return regex.compile(f"(?V1)[^[\\p{{L}}\\p{{M}}]&&[{union}]]+")


@functools.lru_cache(maxsize=None)
def _unit_repeat(max_repeats: int, max_unit: int) -> re.Pattern:
    return re.compile(f"(.{{1,{max_unit}}}?)\\1{{{max_repeats},}}", re.DOTALL)


def has_repeated_unit(text: str, max_repeats: int) -> bool:
    """Whether a unit repeats back to back more than ``max_repeats`` times: a character
    ("!!!!!!"), a short syllable run inside a word ("hahahaha", "jajaja") or a few words
    ("buy now buy now buy now ...").

    One backtracking search over a whole paragraph costs ~1 ms, so each search runs where it is
    cheap: character runs over the text, word units over the string of word ids, and syllable
    units only inside long words made of few distinct characters.
    """
    if _unit_repeat(max_repeats, 1).search(text):
        return True
    words = text.split()
    ids: dict[str, str] = {}
    word_ids = "".join(ids.setdefault(w, chr(0x4E00 + len(ids) % 20000)) for w in words)
    if _unit_repeat(max_repeats, 4).search(word_ids):
        return True
    shortest = 2 * (max_repeats + 1)
    return any(
        len(w) >= shortest
        and 3 * len(set(w)) <= len(w)
        and _unit_repeat(max_repeats, _MAX_UNIT).search(w)
        for w in words
    )


def _ratio(pattern: regex.Pattern, text: str, total: int) -> float:
    return len(pattern.findall(text)) / total if total else 0.0


def script_ratio(text: str, scripts: tuple[str, ...]) -> float:
    """Share of the letters (and combining marks) of ``text`` that belong to ``scripts``."""
    letters = len(_NOT_LETTER.sub("", text))  # counting by deletion: no list of matches
    return len(_script_pattern(scripts).sub("", text)) / letters if letters else 0.0


def paragraph_reject_reason(text: str, lang: Language, cfg: FilterConfig) -> str | None:
    """The reason to drop one paragraph, or None to keep it."""
    if "\ufffd" in text:  # the reader decodes invalid UTF-8 as U+FFFD
        return INVALID_UTF8
    if cfg.max_urls is not None and len(_URL.findall(text)) > cfg.max_urls:
        return CONTAINS_URL
    if cfg.boilerplate_phrases:
        folded = text.casefold()
        if any(phrase in folded for phrase in cfg.boilerplate_phrases):
            return BOILERPLATE
    if cfg.max_repeats is not None and has_repeated_unit(text, cfg.max_repeats):
        return REPEATED_CHARS
    visible = len("".join(text.split()))
    if cfg.max_symbol_ratio is not None and _ratio(_SYMBOL, text, visible) > cfg.max_symbol_ratio:
        return TOO_MANY_SYMBOLS
    if cfg.max_digit_ratio is not None and _ratio(_DIGIT, text, visible) > cfg.max_digit_ratio:
        return TOO_MANY_DIGITS
    if cfg.max_upper_ratio is not None:
        cased = len(_CASED.findall(text))
        if cased >= _MIN_CASED_LETTERS and _ratio(_UPPER, text, cased) > cfg.max_upper_ratio:
            return TOO_MANY_CAPITALS
    if cfg.min_script_ratio is not None and script_ratio(text, lang.scripts) < cfg.min_script_ratio:
        return WRONG_SCRIPT
    return None


def repeated_paragraphs(paragraphs: Sequence[str]) -> set[int]:
    """Indices of paragraphs whose exact text occurs more than once in the same document.

    Repetition inside one page (menus, banners, footers) marks boilerplate, so every copy goes.
    """
    counts = Counter(p.strip() for p in paragraphs)
    return {i for i, p in enumerate(paragraphs) if counts[p.strip()] > 1}
