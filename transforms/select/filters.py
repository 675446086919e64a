"""Heuristic quality filters for paragraphs of natural text: pure functions, no I/O.

Built for short paragraphs in any script, not whole documents (see the README's design notes):
every ratio is over the paragraph's own characters, and nothing counts words, so scripts
written without spaces are judged the same way.

Each check is a ``ParagraphFilter``: a name, the check, the reason it rejects with and the
``FilterConfig`` fields it reads (None turns it off). ``FILTERS`` lists them in the order they
run, cheapest and most specific first; ``paragraph_reject_reason`` returns the reason of the
first enabled one a paragraph fails, or None to keep it. To add a filter: one entry in
``FILTERS`` where it should run, its threshold a field of ``FilterConfig``.

The repeat and ratio checks read a paragraph's ``TextStats``, counted once for a batch of
paragraphs by ``batch_text_stats`` (a code point table per script set, counted with numpy).
``text_stats`` counts the same with regexes, one text at a time: the tests' independent oracle.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import regex

from transforms.languages import Language
from transforms.select.config import FilterConfig

# Stable reason names, in the order the checks run (``FILTERS``). Documented in the README.
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
# A part of every match of ``_URL``, same flags: where it is absent (most text) the slow
# lookbehind scan is skipped.
_URL_PART = regex.compile(
    r"https?://|www\.|@|\.(?:com|net|org|info|biz|html?|php)", regex.IGNORECASE
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
    ("!!!!!!", "hahahaha", "わらわらわら") or 1-4 words ("buy now buy now buy now ...")."""
    return _has_repeated_chars(text, max_repeats) or _has_repeated_words(text, max_repeats)


def _has_repeated_chars(text: str, max_repeats: int) -> bool:
    return any(p.search(text) for p in _char_repeats(max_repeats))


def _has_repeated_words(text: str, max_repeats: int) -> bool:
    """Word units are looked for only when some word occurs more than ``max_repeats`` times: a
    unit of n words repeats where word i equals word i + n for ``max_repeats * n`` words in a
    row, one pass per n."""
    words = text.split()
    if len(words) - len(set(words)) < max_repeats:  # no word can occur more often than that
        return False
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


@functools.lru_cache(maxsize=None)
def _phrases(phrases: tuple[str, ...]) -> re.Pattern:
    """Any of ``phrases`` as a substring: one scan, not one per phrase."""
    return re.compile("|".join(map(re.escape, phrases)))


def escape_special_tokens(text: str, cfg: FilterConfig) -> str:
    """``text`` with every special token of ``cfg.special_tokens`` broken up by a zero-width
    space after its first character, when ``cfg.escape_special_tokens`` is set."""
    if not (cfg.escape_special_tokens and cfg.special_tokens):
        return text
    return _special_tokens(cfg.special_tokens).sub(
        lambda m: m[0][0] + ZERO_WIDTH_SPACE + m[0][1:], text
    )


class TextStats(NamedTuple):
    """What the checks count in one paragraph: whether a unit of characters repeats, then the
    characters of each class (``_COUNTS``)."""

    repeated_chars: bool  # a unit of 1-8 characters follows itself more than max_repeats times
    controls: int  # ``_CONTROL``
    menu_separators: int  # ``_MENU``
    visible: int  # characters but whitespace (``str.isspace``)
    symbols: int  # ``_SYMBOL``
    digits: int  # ``\p{Nd}``
    upper: int  # ``\p{Lu}``
    cased: int  # ``\p{Lu}`` or ``\p{Ll}``
    letters: int  # letters and combining marks
    script_letters: int  # ... of the language's scripts


# The counts of ``TextStats``, each of one character class.
_COUNTS = TextStats._fields[1:]


def text_stats(text: str, scripts: tuple[str, ...], max_repeats: int | None) -> TextStats:
    """The ``TextStats`` of one text, counted with the regexes: the tests' oracle for
    ``batch_text_stats`` (which the stage runs), not a path of the pipeline."""
    return TextStats(
        repeated_chars=max_repeats is not None and _has_repeated_chars(text, max_repeats),
        controls=len(_CONTROL.findall(text)),
        menu_separators=len(_MENU.findall(text)),
        visible=len("".join(text.split())),
        symbols=len(_SYMBOL.findall(text)),
        digits=len(_DIGIT.findall(text)),
        upper=len(_UPPER.findall(text)),
        cased=len(_CASED.findall(text)),
        letters=len(_NOT_LETTER.sub("", text)),  # counting by deletion: no list of matches
        script_letters=len(_script_pattern(scripts).sub("", text)),
    )


def script_ratio(text: str, scripts: tuple[str, ...]) -> float:
    """Share of the letters (and combining marks) of ``text`` that belong to ``scripts``."""
    return _script_share(batch_text_stats([text], scripts, None)[0])


def _script_share(stats: TextStats) -> float:
    return stats.script_letters / stats.letters if stats.letters else 0.0


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


Check = Callable[[str, TextStats, FilterConfig], bool]


@dataclass(frozen=True, slots=True)
class ParagraphFilter:
    """One heuristic check. ``check(text, stats, cfg)`` is true when the paragraph fails it,
    then rejected as ``reason``; it reads the ``FilterConfig`` fields named in ``fields`` and is
    off when one of them is None (or an empty pattern or list of phrases), or when the flag
    ``off_if`` is set."""

    name: str
    reason: str
    check: Check
    fields: tuple[str, ...] = ()
    off_if: str | None = None

    def enabled(self, cfg: FilterConfig) -> bool:
        if self.off_if is not None and getattr(cfg, self.off_if):
            return False
        return all(_is_set(getattr(cfg, name)) for name in self.fields)


def _is_set(value) -> bool:
    return value is not None and not (isinstance(value, (str, tuple, list)) and not value)


def _has_urls(text: str, stats: TextStats, cfg: FilterConfig) -> bool:
    return _URL_PART.search(text) is not None and len(_URL.findall(text)) > cfg.max_urls


def _has_capitals(text: str, stats: TextStats, cfg: FilterConfig) -> bool:
    cased = stats.cased
    return cased >= _MIN_CASED_LETTERS and _share(stats.upper, cased) > cfg.max_upper_ratio


# The filters in the order they run: the first a paragraph fails names its reason.
FILTERS: tuple[ParagraphFilter, ...] = (
    # the reader decodes invalid UTF-8 as U+FFFD
    ParagraphFilter("invalid_utf8", INVALID_UTF8, lambda text, stats, cfg: "\ufffd" in text),
    ParagraphFilter("control_chars", CONTROL_CHARS, lambda text, stats, cfg: stats.controls > 0),
    ParagraphFilter(
        "special_tokens", SPECIAL_TOKENS,
        lambda text, stats, cfg: _special_tokens(cfg.special_tokens).search(text) is not None,
        ("special_tokens",), off_if="escape_special_tokens",  # then escaped instead
    ),
    ParagraphFilter("contains_url", CONTAINS_URL, _has_urls, ("max_urls",)),
    ParagraphFilter(
        "boilerplate_phrases", BOILERPLATE,
        lambda text, stats, cfg: _phrases(tuple(cfg.boilerplate_phrases)).search(text.casefold()) is not None,
        ("boilerplate_phrases",),
    ),
    ParagraphFilter(
        "menu_separators", BOILERPLATE,
        lambda text, stats, cfg: stats.menu_separators > cfg.max_menu_separators,
        ("max_menu_separators",),
    ),
    ParagraphFilter(
        "repeated_chars", REPEATED_CHARS,
        lambda text, stats, cfg: stats.repeated_chars or _has_repeated_words(text, cfg.max_repeats),
        ("max_repeats",),
    ),
    ParagraphFilter(
        "too_many_symbols", TOO_MANY_SYMBOLS,
        lambda text, stats, cfg: _share(stats.symbols, stats.visible) > cfg.max_symbol_ratio,
        ("max_symbol_ratio",),
    ),
    ParagraphFilter(
        "too_many_digits", TOO_MANY_DIGITS,
        lambda text, stats, cfg: _share(stats.digits, stats.visible) > cfg.max_digit_ratio,
        ("max_digit_ratio",),
    ),
    ParagraphFilter("too_many_capitals", TOO_MANY_CAPITALS, _has_capitals, ("max_upper_ratio",)),
    ParagraphFilter(
        "wrong_script", WRONG_SCRIPT,
        lambda text, stats, cfg: _script_share(stats) < cfg.min_script_ratio,
        ("min_script_ratio",),
    ),
)


def enabled_filters(cfg: FilterConfig) -> tuple[ParagraphFilter, ...]:
    """The filters of ``FILTERS`` that ``cfg`` turns on, in order: build once per config."""
    return tuple(f for f in FILTERS if f.enabled(cfg))


def paragraph_reject_reason(
    text: str,
    lang: Language,
    cfg: FilterConfig,
    stats: TextStats | None = None,
    enabled: Sequence[ParagraphFilter] | None = None,
) -> str | None:
    """The reason to drop one paragraph, or None to keep it. ``stats``: its ``TextStats`` when
    counted already (``batch_text_stats``), else counted here; ``enabled``: ``enabled_filters(cfg)``
    when built already."""
    if stats is None:
        stats = batch_text_stats([text], lang.scripts, cfg.max_repeats)[0]
    for f in enabled_filters(cfg) if enabled is None else enabled:
        if f.check(text, stats, cfg):
            return f.reason
    return None


# The batch path. Every count of ``TextStats`` is of a character class, a set of code points:
# a table per script set (built lazily, from the very regexes ``text_stats`` runs) gives each
# code point's combination of classes, and a batch's paragraphs are counted in one numpy pass.
_MAX_CODE_POINT = 0x10FFFF
# Characters counted in one pass, about 25 bytes of arrays each: bounds the memory a batch of
# long paragraphs takes (a longer paragraph is a pass of its own).
_CHUNK_CHARS = 1 << 20


@functools.lru_cache(maxsize=1)
def _all_code_points() -> str:
    points = np.arange(_MAX_CODE_POINT + 1, dtype=np.uint32)
    return points.tobytes().decode("utf-32-le", "surrogatepass")


def code_point_mask(pattern: regex.Pattern | re.Pattern) -> np.ndarray:
    """Whether each code point is (in) a match of ``pattern`` (a character class) in a string
    of all code points: a table for a class, built from the regex itself."""
    mask = np.zeros(_MAX_CODE_POINT + 1, dtype=bool)
    for m in pattern.finditer(_all_code_points()):
        mask[m.start():m.end()] = True
    return mask


@functools.lru_cache(maxsize=1)
def _script_free_bits() -> np.ndarray:
    """Per code point, a bit per count of ``TextStats`` but ``script_letters`` (its place in
    ``_COUNTS``): whether the code point is of the count's class."""
    chars = _all_code_points()
    visible = np.zeros(len(chars), dtype=bool)
    for piece in chars.split():  # what ``"".join(text.split())`` keeps
        visible[ord(piece[0]):ord(piece[0]) + len(piece)] = True
    masks = {
        "controls": code_point_mask(_CONTROL),
        "menu_separators": code_point_mask(_MENU),
        "visible": visible,
        "symbols": code_point_mask(_SYMBOL),
        "digits": code_point_mask(_DIGIT),
        "upper": code_point_mask(_UPPER),
        "cased": code_point_mask(_CASED),
        "letters": ~code_point_mask(_NOT_LETTER),
    }
    return sum(mask.astype(np.uint16) << _COUNTS.index(name) for name, mask in masks.items())


@functools.lru_cache(maxsize=None)
def _class_table(scripts: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(each code point's combination of classes as an index, 0/1 matrix: combination x count
    of ``_COUNTS``)."""
    letters = (~code_point_mask(_script_pattern(scripts))).astype(np.uint16)
    bits = _script_free_bits() | letters << _COUNTS.index("script_letters")
    present = np.flatnonzero(np.bincount(bits))
    index = np.zeros(present[-1] + 1, dtype=np.min_scalar_type(len(present)))
    index[present] = np.arange(len(present))
    return index[bits], (present[:, None] >> np.arange(len(_COUNTS))) & 1


def batch_text_stats(
    texts: Sequence[str], scripts: tuple[str, ...], max_repeats: int | None
) -> list[TextStats]:
    """The ``TextStats`` of each of ``texts``, counted together (``_CHUNK_CHARS`` at a time):
    the numbers ``text_stats`` counts, a fraction of the time for a batch of paragraphs, and
    the select stage's one way of counting them (a single text is a batch of one)."""
    out, chunk, size = [], [], 0
    for text in texts:
        if chunk and size + len(text) > _CHUNK_CHARS:
            out += _chunk_stats(chunk, scripts, max_repeats)
            chunk, size = [], 0
        chunk.append(text)
        size += len(text)
    return out + _chunk_stats(chunk, scripts, max_repeats) if chunk else out


def _chunk_stats(
    texts: list[str], scripts: tuple[str, ...], max_repeats: int | None
) -> list[TextStats]:
    n = len(texts)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    joined = "\0".join(texts) + "\0"
    points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    separators = np.cumsum(lengths + 1) - 1  # the "\0" after each text
    owner = np.repeat(np.arange(n), lengths + 1)
    owner[separators] = n  # counted apart, then dropped
    table, classes = _class_table(scripts)
    combos = np.bincount(owner * len(classes) + table[points], minlength=(n + 1) * len(classes))
    counts = combos.reshape(n + 1, len(classes))[:n] @ classes  # a column per count of ``_COUNTS``
    if max_repeats is None:
        repeated = np.zeros(n, dtype=bool)
    else:
        points = points.copy()
        points[separators] = _MAX_CODE_POINT + 1 + np.arange(n)  # equal to no other
        repeated = _repeated_chars(points, owner, lengths, max_repeats)
    return [TextStats(r, *c) for r, c in zip(repeated.tolist(), counts.tolist())]  # ``_COUNTS``'s order


def _repeated_chars(
    points: np.ndarray, owner: np.ndarray, lengths: np.ndarray, max_repeats: int
) -> np.ndarray:
    """Per text, ``_has_repeated_chars``: a unit of n characters follows itself ``max_repeats``
    times where ``points[j] == points[j + n]`` for ``max_repeats * n`` positions in a row. Texts
    are separated by code points equal to no other, so no such run crosses into the next text."""
    repeated = np.zeros(len(lengths), dtype=bool)
    for unit in range(1, _MAX_CHAR_UNIT + 1):
        run = max_repeats * unit
        if run <= 0:  # ``(.{n})`` alone: any text of n characters
            repeated |= lengths >= unit
            continue
        same = points[unit:] == points[:-unit]
        width = 1  # same[j]: points[j:j + width] == points[j + unit:j + unit + width]
        while 2 * width <= run:
            same = same[:-width] & same[width:]
            width *= 2
        if run > width:  # two overlapping windows of ``width`` cover ``run``
            same = same[:-(run - width)] & same[run - width:]
        repeated[owner[np.flatnonzero(same)]] = True
    return repeated


def repeated_paragraphs(paragraphs: Sequence[str]) -> set[int]:
    """Indices of paragraphs whose exact text occurs more than once in the same document.

    Repetition inside one page (menus, banners, footers) marks boilerplate, so every copy goes.
    """
    stripped = [p.strip() for p in paragraphs]
    if len(set(stripped)) == len(stripped):  # the common case: no copies
        return set()
    counts = Counter(stripped)
    return {i for i, p in enumerate(stripped) if counts[p] > 1}
