"""The select stage's settings, one frozen dataclass per step (filters, furniture, language ID,
fragments, dedup), gathered in ``SelectConfig``. Field names say direction and unit
(``max_symbol_ratio``, ``min_chars``); None disables a check. Each validates itself when built."""

from __future__ import annotations

from dataclasses import dataclass, field

from transforms.settings import COUNT, NON_NEGATIVE, SHARE, Range, check, check_order, check_ranges, operational
from transforms.sources.config import ReadConfig


LID_LABELS = ("lid176", "glotlid")  # transforms/select/langid.py's label schemes
SHINGLES = ("chars", "words", "auto")


@dataclass(frozen=True)
class FilterConfig:
    max_urls: int | None = 0  # URLs or e-mail addresses allowed in a paragraph
    boilerplate_phrases: tuple[str, ...] = ()  # casefolded substrings that mark boilerplate
    max_menu_separators: int | None = 2  # "|" and "•": menus and link lists have more
    max_repeats: int | None = 5  # back-to-back repeats of a unit of 1-4 characters or words
    max_symbol_ratio: float | None = 0.1  # of non-space characters
    max_digit_ratio: float | None = 0.25  # of non-space characters
    max_upper_ratio: float | None = 0.4  # of cased letters, with at least 10 of them
    min_script_ratio: float | None = 0.6  # of letters in the language's own script(s)
    drop_repeated_paragraphs: bool = True  # a paragraph repeated in its own document
    # Chat-template special tokens (a regex): they would corrupt a fine-tuning run's
    # tokenisation. Rejected as special_tokens, or with escape_special_tokens broken up by a
    # zero-width space after their first character; None keeps them.
    special_tokens: str | None = (
        r"<\|[^|<>\s]{1,64}\|>|<｜[^｜<>\s]{1,64}｜>|<</?SYS>>|</?s>|<(?:start|end)_of_turn>"
        r"|<(?:bos|eos|pad|unk|mask)>|\[/?(?:INST|SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS)\]"
    )
    escape_special_tokens: bool = False

    def __post_init__(self):
        check_ranges(self, max_urls=NON_NEGATIVE, max_menu_separators=NON_NEGATIVE, max_repeats=COUNT,
                     max_symbol_ratio=SHARE, max_digit_ratio=SHARE, max_upper_ratio=SHARE,
                     min_script_ratio=SHARE)


@dataclass(frozen=True)
class FurnitureConfig:
    """Page furniture (``transforms/select/furniture.py``): lines that are not prose. None disables."""

    max_short_line_words: int | None = 10  # a line this short without a sentence end is furniture
    max_short_line_chars: int = 30  # the same, in letters, for scripts written without spaces
    template_markup: bool = True  # placeholders ($1, %s, { $x }, {{...}}) and markup (<b>, &amp;)
    # a word of lines without a sentence end (or of short sentences between them) on this many
    # pages of a batch is a navigation word, and a paragraph with more of its words such is navigation:
    navigation_min_documents: int | None = 2
    max_navigation_share: float = 0.7  # ... of a paragraph that ends a sentence
    max_unended_navigation_share: float = 0.5  # ... of one that does not
    # the page's last short sentence, with only furniture after it and at least this many
    # furniture lines between it and the page's prose, is furniture (a site's prompt):
    trailing_sentence_gap: int | None = 2

    def __post_init__(self):
        check_ranges(self, max_short_line_words=NON_NEGATIVE, max_short_line_chars=NON_NEGATIVE,
                     navigation_min_documents=COUNT, max_navigation_share=SHARE,
                     max_unended_navigation_share=SHARE, trailing_sentence_gap=NON_NEGATIVE)


@dataclass(frozen=True)
class LidConfig:
    model_path: str | None = None  # None: lid.176.ftz packaged in pipeline/models
    labels: str = "lid176"  # label scheme of the model: lid176 (``te``) or glotlid (``tel_Telu``)
    min_confidence: float | None = 0.5  # probability of the expected label

    def __post_init__(self):
        check(self.labels in LID_LABELS, f"must be one of {', '.join(LID_LABELS)}, got {self.labels!r}", "labels")
        check_ranges(self, min_confidence=SHARE)


@dataclass(frozen=True)
class FragmentConfig:
    min_chars: int = 50
    max_chars: int = 2500
    # Weights of 1, 2, 3, ... paragraphs per fragment; a fragment grows past its draw while
    # shorter than min_chars, and stops before max_chars.
    paragraph_weights: tuple[float, ...] = (0.45, 0.3, 0.15, 0.1)
    seed: int = 0

    def __post_init__(self):
        check_ranges(self, min_chars=NON_NEGATIVE, max_chars=COUNT)
        check_order(self, "min_chars", "max_chars")
        check(bool(self.paragraph_weights) and all(w >= 0 for w in self.paragraph_weights)
              and sum(self.paragraph_weights) > 0,
              f"must be weights >= 0, one at least > 0, got {list(self.paragraph_weights)}", "paragraph_weights")


@dataclass(frozen=True)
class DedupConfig:
    exact: bool = True  # normalised-text hash
    near: bool = True  # MinHash LSH
    num_perm: int = 128
    threshold: float = 0.55  # Jaccard similarity the LSH bands are tuned for
    bands: int | None = None  # None: bands, rows and min_band_matches chosen from threshold
    min_band_matches: int = 1  # bands two paragraphs must share to count as near duplicates
    shingles: str = "chars"  # chars, words, or auto (words for spaced scripts, else chars)
    word_ngram: int = 2
    char_ngram: int = 5
    seed: int = 1
    shards: int = operational(256)  # bucket entries travel grouped by shard: fewer, larger shuffle elements
    # a band bucket's member is linked to the earliest of its first N members it shares
    # min_band_matches bands with: cost grows with N, not with the bucket (docs/dedup.md)
    bucket_heads: int = 16
    # links and components travel in shards of paragraphs: a group holds ~1/N of a language's
    # linked paragraphs (raise it for languages with hundreds of millions of them)
    component_shards: int = 32
    # the roots that per-shard union-find leaves to join are joined on one worker per language:
    # past this many the run fails with a reason instead (docs/dedup.md, "Memory")
    max_union_roots: int = 2_000_000

    def __post_init__(self):
        check_ranges(self, num_perm=COUNT, threshold=Range(0, 1, low_open=True), min_band_matches=COUNT,
                     word_ngram=COUNT, char_ngram=COUNT, shards=COUNT, bucket_heads=COUNT,
                     component_shards=COUNT, max_union_roots=COUNT)
        check(self.shingles in SHINGLES, f"must be one of {', '.join(SHINGLES)}, got {self.shingles!r}", "shingles")
        check(self.bands is None or 1 <= self.bands <= self.num_perm,
              f"must be in 1..num_perm ({self.num_perm}), got {self.bands}", "bands")
        check_order(self, "min_band_matches", "bands")


@dataclass(frozen=True)
class SelectConfig:
    read: ReadConfig = field(default_factory=ReadConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    furniture: FurnitureConfig = field(default_factory=FurnitureConfig)
    lid: LidConfig = field(default_factory=LidConfig)
    fragment: FragmentConfig = field(default_factory=FragmentConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)

