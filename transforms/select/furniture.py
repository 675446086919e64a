"""Page furniture: the lines of a web page that are not prose (menus, buttons, captions, lone
headings, UI messages with placeholders or markup). Pure functions, no I/O.

Each is clean text in the right language, so no ratio filter (``filters.py``) fires; these
rules look at the line's shape instead, per paragraph, before fragments are cut, so a fragment
never starts, ends or bridges across one. Four rules, each a stable reason:

- ``template_markup``: a placeholder or markup left in the text: ``$1``, ``${x}``, ``{ $x }``,
  ``{{...}}``, ``{0}``, ``%s``, ``%1$s``, ``%1``, ``<tag>``, ``&amp;``, ``[[``.
- ``no_sentence_end``: a short line (at most ``max_short_line_words`` words, or
  ``max_short_line_chars`` letters in scripts written without spaces) that does not end with a
  sentence terminator of its script (``Language.terminators``). Thai and Lao have none, so
  there every short line counts. Headings are short lines without an end too: they are dropped
  with the rest (see docs/furniture.md for why and what keeping them would cost).
- ``navigation``: a paragraph more than ``max_navigation_share`` of whose words (or
  ``max_unended_navigation_share`` without a sentence end) are navigation words: words of
  short lines without a sentence end (and of one-line menus and template sentences among
  them) on at least ``navigation_min_documents`` pages of the same batch (a one-line menu too long for
  ``no_sentence_end``, a button row, a site's cookie or login sentence). Counting over a batch
  (128 documents, one element of the select stage) keeps the cost bounded and needs no extra
  pass or shuffle; the trade-off is in docs/furniture.md.
- ``trailing_sentence``: the page's last short sentence (at most ``max_short_line_words``
  words) when only furniture lines follow it and at least ``trailing_sentence_gap`` furniture
  lines separate it from the page's prose: a cookie, login or newsletter prompt between the
  buttons and the footer, shown on one page only, where no count across pages sees it.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import regex

from transforms.languages import Language
from transforms.select.config import FurnitureConfig
from transforms.select.filters import code_point_mask

# Stable reason names, in the order the checks run. Documented in the README.
TEMPLATE_MARKUP = "template_markup"
NO_SENTENCE_END = "no_sentence_end"
NAVIGATION = "navigation"
TRAILING_SENTENCE = "trailing_sentence"

_MARKUP = re.compile(
    r"\$[1-9](?![\d.,])"  # $1: MediaWiki message parameters
    r"|\$\{|\{\{|\}\}"  # ${name}, {{template}}
    r"|\{\s*\$\w|\{\d+\}"  # { $name } (Fluent), {0} (.NET, Java)
    # %s, %1$s, %(name)s; Latin letters and digits only around them: in scripts written without
    # spaces a placeholder touches the words ("已将%d件商品")
    r"|(?<![A-Za-z0-9%])%(?:\d+\$)?[sdif](?![A-Za-z0-9])|(?<![A-Za-z0-9%])%\([\w.]+\)[sdif]"
    # %1 (Qt, Windows); not %5 or %50: Turkish and others write percentages that way
    r"|(?<![A-Za-z0-9%])%1(?![\d.,])"
    r"|</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>"  # <b>, </a>, <br/>, <a href=...>
    r"|&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);"  # &amp;, &#39;
    r"|\[\[|\]\]"  # [[wiki links]]
)
# After the sentence end: closing brackets and quotes, emoji, whitespace.
_TRAILING = regex.compile(r"[\s\p{Pe}\p{Pf}\p{So}\"'*]")
_TAIL = 16  # characters of a line that ``ends_sentence`` looks at: O(1) per line
_LETTER = regex.compile(r"[\p{L}\p{M}]")
_WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+")


_MARKUP_CHARS = re.compile(r"[$%{}<&\[\]]")  # one of these starts every form: a fast first pass


def has_template_markup(text: str) -> bool:
    return _MARKUP_CHARS.search(text) is not None and _MARKUP.search(text) is not None


@functools.lru_cache(maxsize=1)
def _trailing_chars() -> frozenset[str]:
    """The characters ``_TRAILING`` matches: a set lookup per character of a line's end is
    several times faster than a regex over it."""
    return frozenset(map(chr, code_point_mask(_TRAILING).nonzero()[0]))


def ends_sentence(text: str, terminators: str) -> bool:
    """Whether ``text`` ends with one of ``terminators`` (closing quotes and brackets after it
    allowed); an ellipsis ("...", "…") is a teaser, not an end."""
    body, trailing = text[-_TAIL:], _trailing_chars()
    end = len(body)
    while end and body[end - 1] in trailing:
        end -= 1
    return end > 0 and body[end - 1] in terminators and not body[:end].endswith("..")


def is_short(text: str, lang: Language, cfg: FurnitureConfig, times: int = 1) -> bool:
    """Whether ``text`` has at most ``times`` x the short-line bound of words (letters in
    scripts without spaces; a line over four times that many characters is never short)."""
    if lang.spaced:
        bound = times * cfg.max_short_line_words
        return len(text.split(None, bound)) <= bound  # splits no further than needed
    bound = times * cfg.max_short_line_chars
    return len(text) <= bound or (len(text) <= 4 * bound and len(_LETTER.findall(text)) <= bound)


def is_unended_short_line(text: str, lang: Language, cfg: FurnitureConfig) -> bool:
    return (
        cfg.max_short_line_words is not None
        and not ends_sentence(text, lang.terminators)
        and is_short(text, lang, cfg)
    )


def words(text: str) -> list[str]:
    """Casefolded runs of letters and digits: words, or phrases in scripts without spaces."""
    return _WORD.findall(text.casefold())


def navigation_words(
    documents: Iterable[Sequence[str]], lang: Language, cfg: FurnitureConfig
) -> frozenset[str]:
    """Words of the furniture lines of at least ``navigation_min_documents`` of ``documents``
    (each a sequence of paragraphs). Furniture lines: short lines without a sentence end (menu
    items, buttons, headings); one-line menus: a line without an end up to four times as long
    whose neighbours are such lines or the page's edge; and template lines: a line up to twice as
    long printed between two such lines on that many pages (a site's cookie, login or newsletter
    sentence). A line repeated among prose is a copied text: dedup keeps one copy of it."""
    n = cfg.navigation_min_documents
    if n is None or cfg.max_short_line_words is None:
        return frozenset()
    evidence = []  # per page: its furniture lines, and its lines between two of them
    for paragraphs in documents:
        furniture = [is_unended_short_line(p, lang, cfg) for p in paragraphs]
        lines = {p for p, f in zip(paragraphs, furniture) if f}
        lines |= {  # a one-line menu: a longer line without an end, in the page's chrome
            p
            for i, p in enumerate(paragraphs)
            if _in_chrome(furniture, i) and not ends_sentence(p, lang.terminators)
            and is_short(p, lang, cfg, times=4)
        }
        templates = {
            paragraphs[i]
            for i in range(1, len(paragraphs) - 1)
            if furniture[i - 1] and furniture[i + 1] and not furniture[i]
            and is_short(paragraphs[i], lang, cfg, times=2)
        }
        evidence.append((lines, templates))
    on_pages = Counter(p for _, templates in evidence for p in templates)
    seen_in = Counter()
    for lines, templates in evidence:
        found = lines | {p for p in templates if on_pages[p] >= n}
        seen_in.update({w for p in found for w in words(p)})
    return frozenset(w for w, k in seen_in.items() if k >= n)


def _in_chrome(furniture: Sequence[bool], i: int) -> bool:
    """Whether the neighbours of line ``i`` are furniture lines or the page's edge, one at least
    a furniture line."""
    before = furniture[i - 1] if i > 0 else None
    after = furniture[i + 1] if i + 1 < len(furniture) else None
    return before is not False and after is not False and bool(before or after)


def is_navigation(
    text: str, lang: Language, navigation: frozenset[str], cfg: FurnitureConfig, ended: bool
) -> bool:
    """Whether more than ``max_navigation_share`` of the words of ``text`` are navigation
    words, or more than ``max_unended_navigation_share`` of them where it has no sentence end
    (``ended``). Only lines up to twice the short-line bound are judged, four times without a
    sentence end (one-line menus): a longer line is not a menu."""
    if not is_short(text, lang, cfg, times=2 if ended else 4):
        return False
    found = words(text)
    share = cfg.max_navigation_share if ended else cfg.max_unended_navigation_share
    return bool(found) and sum(map(navigation.__contains__, found)) > share * len(found)


def trailing_sentences(
    paragraphs: Sequence[str], lang: Language, cfg: FurnitureConfig, navigation: frozenset[str]
) -> frozenset[int]:
    """The page's trailing sentence, as a set of at most one index: the last line that is not
    furniture, when it is a short sentence (``is_short``, ending with a terminator), only
    furniture lines follow it (at least one), and at least ``trailing_sentence_gap`` furniture
    lines separate it from a line before them that is not furniture (the page's prose). Reads
    the page's tail only."""
    return _trailing(
        paragraphs, lang, cfg, lambda j: furniture_reason(paragraphs[j], lang, cfg, navigation)
    )


def page_reasons(
    paragraphs: Sequence[str], lang: Language, cfg: FurnitureConfig, navigation: frozenset[str]
) -> Callable[[int], str | None]:
    """``furniture_reason`` of a page's paragraph by index, its ``trailing_sentences`` marked:
    each paragraph's rules run at most once (finding the trailing sentence reads the tail's)."""
    known: dict[int, str | None] = {}

    def reason(j: int) -> str | None:
        if j not in known:
            known[j] = furniture_reason(paragraphs[j], lang, cfg, navigation)
        return known[j]

    trailing = _trailing(paragraphs, lang, cfg, reason)
    return lambda j: reason(j) or (TRAILING_SENTENCE if j in trailing else None)


def _trailing(
    paragraphs: Sequence[str],
    lang: Language,
    cfg: FurnitureConfig,
    reason: Callable[[int], str | None],
) -> frozenset[int]:
    """``trailing_sentences``, ``reason`` giving each paragraph's ``furniture_reason``."""
    gap = cfg.trailing_sentence_gap
    if gap is None or cfg.max_short_line_words is None:
        return frozenset()
    last = len(paragraphs) - 1
    i = last
    while i >= 0 and reason(i) is not None:
        i -= 1
    if i < 0 or i == last:
        return frozenset()
    text = paragraphs[i]
    if not (ends_sentence(text, lang.terminators) and is_short(text, lang, cfg)):
        return frozenset()
    prose = i - 1
    while prose >= 0 and reason(prose) is not None:
        prose -= 1
    return frozenset({i}) if prose >= 0 and i - 1 - prose >= gap else frozenset()


def furniture_reason(
    text: str,
    lang: Language,
    cfg: FurnitureConfig,
    navigation: frozenset[str] = frozenset(),
    trailing: bool = False,
) -> str | None:
    """The reason ``text`` is page furniture, or None when it may be prose. ``navigation`` is
    the batch's ``navigation_words``; ``trailing``: ``text`` is its page's
    ``trailing_sentences``."""
    if cfg.template_markup and has_template_markup(text):
        return TEMPLATE_MARKUP
    if cfg.max_short_line_words is None:
        return None
    ended = ends_sentence(text, lang.terminators)
    if not ended and is_short(text, lang, cfg):
        return NO_SENTENCE_END
    if navigation and is_navigation(text, lang, navigation, cfg, ended):
        return NAVIGATION
    if trailing:
        return TRAILING_SENTENCE
    return None
