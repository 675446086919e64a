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
CONTROL_CHARS = "control_chars"
SPECIAL_TOKENS = "special_tokens"
CONTAINS_URL = "contains_url"
BOILERPLATE = "boilerplate"
REPEATED_CHARS = "repeated_chars"
TOO_MANY_SYMBOLS = "too_many_symbols"
TOO_MANY_DIGITS = "too_many_digits"
TOO_MANY_CAPITALS = "too_many_capitals"
WRONG_SCRIPT = "wrong_script"
REPEATED_LINES = "repeated_lines"

# Every alternative is linear in the text's length: a name or address starts only where no
# character of its own class precedes it (the lookbehinds), so a long run of letters is scanned
# once, not once per position (``\b`` alone made a 40,000-letter run take 17 s).
_URL = regex.compile(
    r"https?://|www\.|(?<![\w.+-])[\w.+-]+@[\w-]+\.\w{2,}"
    r"|(?<![\w-])[\w-]+\.(?:com|net|org|info|biz|html?|php)\b",
    regex.IGNORECASE,
)
# C0 and C1 control characters but tab and newline.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Inserted after the first character of an escaped special token: it no longer matches the
# tokenizer's special token, and reads the same.
ZERO_WIDTH_SPACE = "\u200b"
# Symbols: Unicode S* categories plus the ASCII punctuation that markup, menus and spam use.
_SYMBOL = regex.compile(r"[\p{S}#*@|_\\<>{}\[\]]")
_MENU = re.compile("[|•]")  # not «» ‹›: quotation marks in many languages
_DIGIT = regex.compile(r"\p{Nd}")
_UPPER = regex.compile(r"\p{Lu}")
_CASED = regex.compile(r"[\p{Lu}\p{Ll}]")
_NOT_LETTER = regex.compile(r"[^\p{L}\p{M}]+")
# Longest repeated units looked for: characters ("hahaha", "abcdefabcdef") and words ("buy now
# buy now"). Each character unit length is one linear scan (~1.5 us per 140-character paragraph).
_MAX_CHAR_UNIT = 8
_MAX_WORD_UNIT = 4
# Below this many cased letters a capitals share says little ("NASA", "OK").
_MIN_CASED_LETTERS = 10


@functools.lru_cache(maxsize=None)
def _script_pattern(scripts: tuple[str, ...]) -> regex.Pattern:
    """Runs of characters that are not letters (or marks) of ``scripts``."""
    union = "".join(f"\\p{{Script_Extensions={s}}}" for s in scripts)
    return regex.compile(f"(?V1)[^[\\p{{L}}\\p{{M}}]&&[{union}]]+")


@functools.lru_cache(maxsize=None)
def _char_repeats(max_repeats: int) -> tuple[re.Pattern, ...]:
    """One pattern per unit length 1-4, spelled out (``(..)\\1\\1\\1...``): several times
    faster in ``re`` than one counted, backtracking pattern over all lengths."""
    return tuple(
        re.compile(f"({'.' * n})" + "\\1" * max_repeats, re.DOTALL)
        for n in range(1, _MAX_CHAR_UNIT + 1)
    )


def has_repeated_unit(text: str, max_repeats: int) -> bool:
    """Whether a unit follows itself more than ``max_repeats`` times: 1-8 characters
    ("!!!!!!", "hahahaha", "わらわらわら") or 1-4 words ("buy now buy now buy now ...").

    Word units are looked for only when some word occurs more than ``max_repeats`` times: a
    unit of n words repeats where word i equals word i + n for ``max_repeats * n`` words in a
    row, one pass per n.
    """
    if any(p.search(text) for p in _char_repeats(max_repeats)):
        return True
    words = text.split()
    counts = Counter(words)
    if not counts or max(counts.values()) <= max_repeats:
        return False
    for n in range(1, _MAX_WORD_UNIT + 1):
        run = 0
        for a, b in zip(words, words[n:]):
            run = run + 1 if a == b else 0
            if run >= max_repeats * n:
                return True
    return False


@functools.lru_cache(maxsize=None)
def _special_tokens(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def escape_special_tokens(text: str, cfg: FilterConfig) -> str:
    """``text`` with every special token of ``cfg.special_tokens`` broken up by a zero-width
    space after its first character, when ``cfg.escape_special_tokens`` is set."""
    if not (cfg.escape_special_tokens and cfg.special_tokens):
        return text
    return _special_tokens(cfg.special_tokens).sub(
        lambda m: m[0][0] + ZERO_WIDTH_SPACE + m[0][1:], text
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
    if _CONTROL.search(text):
        return CONTROL_CHARS
    if (
        cfg.special_tokens
        and not cfg.escape_special_tokens
        and _special_tokens(cfg.special_tokens).search(text)
    ):
        return SPECIAL_TOKENS
    if cfg.max_urls is not None and len(_URL.findall(text)) > cfg.max_urls:
        return CONTAINS_URL
    if cfg.boilerplate_phrases:
        folded = text.casefold()
        if any(phrase in folded for phrase in cfg.boilerplate_phrases):
            return BOILERPLATE
    if cfg.max_menu_separators is not None and len(_MENU.findall(text)) > cfg.max_menu_separators:
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
