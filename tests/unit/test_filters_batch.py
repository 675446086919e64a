"""The batch path of the filters (``batch_text_stats``: code point tables, numpy) against the
per-text regexes (``text_stats``, the oracle): the same counts, so the same reasons, on the bundled
sample, the furniture development set and random text in every script set of the languages."""

import json
import random
from pathlib import Path

import pytest

from pipeline.config import load
from transforms.languages import LANGUAGES, get
from transforms.select import filters
from transforms.select.config import FilterConfig

ROOT = Path(__file__).resolve().parents[2]
CFG = load("demo").select.filters
SAMPLE = ("hin", "jpn", "spa", "tel")  # tests/data: the bundled sample's paragraphs, labelled
SCRIPT_SETS = sorted({lang.scripts for lang in LANGUAGES.values()})

# Characters the classes disagree on: letters of many scripts in both cases, combining marks
# (Devanagari and Telugu vowel signs, an acute accent), digits of several systems, symbols and
# the ASCII punctuation _SYMBOL counts, whitespace of every kind str.split() splits at
# (ideographic space, NEL, the C0 separators, no-break, line and paragraph separators) and a
# zero-width space (not whitespace), U+FFFD, control characters, astral letters, digits and
# symbols, a lone surrogate.
POOL = (
    "aAzZßſǅΣσЖжאبक\u093eత\u0c3fあア漢한\u0301\u0300"
    "09٣९౬１"
    "★€©#*@|_\\<>{}[]•«».,!?;:-'\""
    " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000\u200b"
    "\ufffd\x00\x7f\x9f"
    "😀𝐀𝐚𝟎𐌰𠀀𝔸\ud800"
)


def _texts_of(path: Path) -> list[str]:
    if path.suffix == ".jsonl":
        return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _labelled() -> dict[str, list[str]]:
    """Language code -> paragraphs: the sample's labelled paragraphs and the furniture dev set."""
    out: dict[str, list[str]] = {}
    paths = sorted((ROOT / "tests" / "data").glob("*.labels.jsonl"))
    paths += sorted((ROOT / "benchmarks" / "furniture_dev").glob("*.labels.jsonl"))
    paths += sorted((ROOT / "benchmarks" / "furniture_dev").glob("*.txt"))
    for path in paths:
        out.setdefault(path.name.split(".")[0], []).extend(_texts_of(path))
    return out


def _random_texts(rng: random.Random, n: int) -> list[str]:
    """Mixtures of ``POOL``, any code point at all, and repeated units of 1-9 characters
    repeated 4-7 times (the repeat check's edges), some split over two neighbouring texts so a
    repeat runs across the boundary; empty and one-character texts between them."""
    texts = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.05:
            texts.append(rng.choice(["", " ", "a", "\x85", "\u3000"]))
            continue
        chars = [rng.choice(POOL) if rng.random() < 0.8 else chr(rng.randrange(0x110000))
                 for _ in range(rng.randrange(1, 80))]
        text = "".join(chars)
        if kind < 0.5:
            unit = "".join(rng.choice(POOL) for _ in range(rng.randrange(1, 10)))
            times = rng.randrange(4, 8)
            cut = rng.randrange(len(text) + 1)
            text = text[:cut] + unit * times + text[cut:]
            if kind < 0.2:  # the repeat's second half opens the next text
                half = cut + len(unit) * (times // 2)
                texts.append(text[:half])
                text = text[half:]
        texts.append(text)
    return texts


@pytest.mark.parametrize("code, texts", sorted(_labelled().items()))
def test_batch_counts_equal_regex_counts_on_the_sample_and_the_furniture_dev_set(code, texts):
    lang = get(code)
    for max_repeats in (CFG.max_repeats, 2):
        batch = filters.batch_text_stats(texts, lang.scripts, max_repeats)
        assert batch == [filters.text_stats(t, lang.scripts, max_repeats) for t in texts]
    batch = filters.batch_text_stats(texts, lang.scripts, CFG.max_repeats)
    reasons = [filters.paragraph_reject_reason(t, lang, CFG, filters.text_stats(t, lang.scripts, CFG.max_repeats))
               for t in texts]
    assert [filters.paragraph_reject_reason(t, lang, CFG, s) for t, s in zip(texts, batch)] == reasons
    if code in SAMPLE:  # junk among its paragraphs: several checks fire
        assert len(set(reasons)) > 2


@pytest.mark.parametrize("scripts", SCRIPT_SETS, ids="+".join)
def test_batch_counts_equal_regex_counts_on_random_text(scripts):
    texts = _random_texts(random.Random("+".join(scripts)), 300)
    for max_repeats in (5, 1, 0, None):
        batch = filters.batch_text_stats(texts, scripts, max_repeats)
        assert batch == [filters.text_stats(t, scripts, max_repeats) for t in texts]
        if max_repeats == 5:
            assert 0 < sum(s.repeated_chars for s in batch) < len(texts)
        if max_repeats == 5 and scripts == ("Latin",):
            assert 0 < sum(s.script_letters for s in batch) < sum(s.letters for s in batch)


def test_random_text_reaches_every_ratio_check():
    """The same reasons on random text under configs that let it reach the later checks (no
    control-character text, the earlier checks off)."""
    rng = random.Random(7)
    texts = [t for t in _random_texts(rng, 3000) if not filters._CONTROL.search(t) and "\ufffd" not in t]
    loose = FilterConfig(max_urls=None, max_menu_separators=None, special_tokens=None,
                         max_symbol_ratio=0.3, max_digit_ratio=0.3, max_upper_ratio=0.5)
    for code in ("spa", "hin", "jpn", "tel", "rus", "kor"):
        lang = get(code)
        for cfg in (CFG, loose):
            batch = filters.batch_text_stats(texts, lang.scripts, cfg.max_repeats)
            reasons = [filters.paragraph_reject_reason(t, lang, cfg, filters.text_stats(t, lang.scripts, cfg.max_repeats))
                       for t in texts]
            assert [filters.paragraph_reject_reason(t, lang, cfg, s) for t, s in zip(texts, batch)] == reasons
        assert {filters.REPEATED_CHARS, filters.TOO_MANY_SYMBOLS, filters.WRONG_SCRIPT} <= set(reasons)


def test_a_repeat_split_over_two_texts_is_in_neither():
    texts = ["abc" + "xy" * 3, "xy" * 3 + "abc", "", "x", "xy" * 6]
    assert [s.repeated_chars for s in filters.batch_text_stats(texts, ("Latin",), 5)] == [
        False, False, False, False, True]


def test_batches_counted_in_chunks_equal_one_pass(monkeypatch):
    texts = _random_texts(random.Random(5), 500)
    whole = filters.batch_text_stats(texts, ("Latin",), 5)
    monkeypatch.setattr(filters, "_CHUNK_CHARS", 100)  # texts up to ~130 characters: many chunks
    assert filters.batch_text_stats(texts, ("Latin",), 5) == whole


def test_batch_of_nothing():
    assert filters.batch_text_stats([], ("Latin",), 5) == []
