"""The select stage: documents -> clean, deduplicated response fragments, every drop explained.

    document batches --ScoreParagraphs--> kept paragraphs by document group, rejects,
                                                  dedup bucket entries by key shard
    bucket entries --FindDuplicates (transforms/select/dedup/)--> duplicates by document group
    kept paragraphs + duplicates --CoGroupByKey(document group)--MakeFragments--> records, rejects

Kept paragraphs and bucket entries, the bulk of what select shuffles, are written to spill
files where they are made; only references to them cross the shuffles, and the step after each
reads back one group at a time (``transforms/records/spill.py``). The local runner holds every
shuffled element in memory: so select's memory does not grow with the input.

Paragraph checks (filters, language ID, MinHash) run on batches of documents in one DoFn: a
document costs one element and a batch's paragraphs are MinHashed in one vectorised call.
Pure functions (``ParagraphScorer``, ``make_fragments``) do the work; the DoFns only route.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from functools import partial
from itertools import chain
from typing import NamedTuple

import apache_beam as beam
from apache_beam.transforms import window

from transforms.languages import Language
from transforms.records import counts, spill
from transforms.records.shapes import (
    StageOutput,
    Tallied,
    origin,
    paragraphs_of,
    span_id,
    span_reject,
    span_source,
)
from transforms.select import dedup, filters, furniture, langid
from transforms.select.config import SelectConfig
from transforms.select.fragment import fragment_document
from transforms.sources.cc100 import BATCH_DOCS, Document
from transforms.stages import Stage, fingerprint_of

STAGE = "select"
# Histogram edges (characters) of response lengths in the stats.
LENGTH_BINS = (0, 50, 100, 200, 400, 800, 1600, 3200)
# Kept paragraphs and duplicates meet per group of this many consecutive documents of a file:
# one shuffle element a group, not one a document.
GROUP_DOCS = 256
# Bucket entries a worker gathers before it hands them on, per bundle (~2 KB a paragraph at
# 25 bands): bounds its memory; fewer, larger shuffle elements below it.
BUCKET_BUFFER_BYTES = 32 << 20


def doc_group(lang: str, source: str, file: str, doc: int) -> tuple[str, str, str, int]:
    """The key under which a document's (or row's) kept paragraphs and duplicates meet."""
    return lang, source, file, doc // GROUP_DOCS


def _bin(n: int) -> int:
    return max(edge for edge in LENGTH_BINS if edge <= n)


class Scored(NamedTuple):
    kept: list  # (index, text, lid probability)
    rejects: list  # reject lines


class ParagraphScorer:
    """The pure core of ScoreParagraphs: a batch of documents -> per document, kept paragraphs,
    reject lines and dedup bucket entries.

    A paragraph's checks, in the order they run; the first to give a reason rejects it:

    1. the reader's rejects (``line_too_long``, ...), then paragraphs repeated in their
       document (``repeated_lines``): ``_decided``, before anything is counted;
    2. the heuristic filters, ``filters.FILTERS`` as the config enables them (``self.filters``),
       over the counts of the batch's paragraphs (``filters.batch_text_stats``);
    3. page furniture (``furniture.page_reasons``: its page and batch taken into account);
    4. language ID (``langid``), whose probability a kept paragraph carries.

    Holds the loaded fastText model and MinHasher; build one per process (in ``setup``).
    """

    def __init__(self, lang: Language, cfg: SelectConfig):
        from transforms.select.minhash import MinHasher

        self.lang, self.cfg = lang, cfg
        self.filters = filters.enabled_filters(cfg.filters)
        self.expected = langid.expected_label(lang, cfg.lid.labels)
        self.lid = langid.LanguageIdentifier(cfg.lid) if self.expected else None
        d = cfg.dedup
        words = d.shingles == "words" or (d.shingles == "auto" and lang.spaced)
        self.hasher = MinHasher(d.num_perm, d.word_ngram if words else d.char_ngram, words, d.seed)
        self.dedup = dedup.DedupParams.of(d)

    def reject_reason(
        self, text: str, stats: filters.TextStats, furniture_reason: Callable[[], str | None]
    ) -> tuple[str | None, float | None, dict | None]:
        """(reason or None, LID probability, detail) of one paragraph past ``_decided``: checks
        2-4 of the class docstring, in order. ``stats``: its ``filters.TextStats``, counted
        with its batch's; ``furniture_reason``: gives its furniture reason, asked only when
        the filters pass it."""
        reason = (
            filters.paragraph_reject_reason(text, self.lang, self.cfg.filters, stats, self.filters)
            or furniture_reason()
        )
        if reason or self.lid is None:
            return reason, None, None
        label, prob = self.lid.predict(text)
        reason = langid.lid_reject_reason(label, prob, self.expected, self.cfg.lid.min_confidence)
        return reason, prob, {"lid_label": label, "lid_prob": round(prob, 4)} if reason else None

    def score(self, docs: list[Document]) -> list[Scored]:
        """Score a batch of documents: per document, its kept paragraphs and reject lines.
        Navigation words are a signal across the pages of a site: CC-100 documents give them,
        tabular rows (independent answers) do not. The paragraphs left to judge are counted
        together (``filters.batch_text_stats``)."""
        pages = (d.paragraphs for d in docs if d.kind == "cc100")
        navigation = furniture.navigation_words(pages, self.lang, self.cfg.furniture)
        decided = [self._decided(doc) for doc in docs]
        judged = [
            p for doc, done in zip(docs, decided) for i, p in enumerate(doc.paragraphs) if i not in done
        ]
        max_repeats = self.cfg.filters.max_repeats
        stats = iter(filters.batch_text_stats(judged, self.lang.scripts, max_repeats))
        return [
            self._filter(doc, navigation if doc.kind == "cc100" else frozenset(), done, stats)
            for doc, done in zip(docs, decided)
        ]

    def buckets(self, docs: list[Document], scored: list[Scored]) -> tuple[dedup.Entries, dedup.Entries]:
        """The dedup bucket entries (exact, band) of a scored batch's kept paragraphs, MinHashed
        together."""
        kept = [((*doc.unit, i), text) for doc, s in zip(docs, scored) for i, text, _ in s.kept]
        return dedup.bucket_entries(kept, self.hasher, self.dedup)

    def _decided(self, doc: Document) -> dict[int, tuple[str, dict | None]]:
        """Paragraphs rejected before anything is counted (check 1 of the class docstring): by
        the reader (its reasons win), or repeated in their document."""
        repeated = (
            filters.repeated_paragraphs(doc.paragraphs)
            if self.cfg.filters.drop_repeated_paragraphs
            else ()
        )
        decided = {i: (filters.REPEATED_LINES, None) for i in repeated}
        decided.update({i: (reason, detail) for i, reason, detail in doc.rejected})
        return decided

    def _filter(self, doc: Document, navigation: frozenset[str], decided: dict, stats) -> Scored:
        """``stats``: an iterator over the ``TextStats`` of the batch's paragraphs to judge,
        from this document's on."""
        where = doc.origin()
        page = furniture.page_reasons(doc.paragraphs, self.lang, self.cfg.furniture, navigation)
        out = Scored([], [])
        for i, text in enumerate(doc.paragraphs):
            if i in decided:
                (reason, detail), prob = decided[i], None
            else:
                reason, prob, detail = self.reject_reason(text, next(stats), partial(page, i))
            if reason:
                out.rejects.append(span_reject(self.lang.code, STAGE, reason, text, where, i, i, detail))
            else:
                out.kept.append((i, filters.escape_special_tokens(text, self.cfg.filters), prob))
        return out


def make_fragments(
    lang: str, cfg: SelectConfig, file: str, doc: int, kept, duplicates: dict, where: dict | None = None
) -> tuple[list[dict], list[dict]]:
    """Records and reject lines of one document from its kept paragraphs and its duplicates
    ``{index: (reason, kept position)}``; ``where`` is its origin (default: a document of the
    CC-100 source ``cc100``). A tabular row is one paragraph: its fragment is itself, checked
    against the same length limits, never joined with other rows."""
    where = where or origin("cc100", "cc100", file, doc)
    records, rejects = [], []
    paragraphs, probs = {}, {}
    for i, text, prob in kept:
        if i in duplicates:
            reason, root = duplicates[i]
            detail = {"duplicate_of": list(root)}
            rejects.append(span_reject(lang, STAGE, reason, text, where, i, i, detail))
        else:
            paragraphs[i], probs[i] = text, prob
    for frag in fragment_document(paragraphs, cfg.fragment, f"{file}/{doc}"):
        if frag.reject_reason:
            rejects.append(span_reject(lang, STAGE, frag.reject_reason, frag.text, where, frag.first, frag.last))
            continue
        record = {
            "id": span_id(lang, where, frag.first, frag.last),
            "lang": lang,
            "response": frag.text,
            "source": span_source(where, frag.first, frag.last),
        }
        lid = [probs[i] for i in range(frag.first, frag.last + 1) if probs[i] is not None]
        if lid:
            record["scores"] = {"lid": round(min(lid), 4)}
        records.append(record)
    return records, rejects


def record_stats(record: dict) -> list[tuple[str, int]]:
    n, kept = len(record["response"]), paragraphs_of(record["source"])
    name = source_name(record)
    return [
        (counts.PARAGRAPHS_KEPT, kept),
        (counts.source(name, "kept"), kept),
        (counts.source(name, "selected"), 1),
        (counts.SELECTED_RECORDS, 1),
        (counts.response_chars("sum"), n),
        (counts.response_chars("sumsq"), n * n),
        (counts.response_chars(f"hist.{_bin(n)}"), 1),
    ]


LangConfigs = dict  # language code -> (Language, SelectConfig)


class _Tallied(Tallied):
    stage = STAGE

    def __init__(self, langs: LangConfigs):
        self.langs = langs

    def rejects(self, lang: str, lines: list[dict]):
        for line in lines:
            for name, n in reject_stats(line):
                self.tally[lang, name] += n
            yield beam.pvalue.TaggedOutput("rejects", line)


class ScoreParagraphs(_Tallied):
    """Batch of documents -> (document group, ``spill.Ref`` of [(doc, (origin, kept
    paragraphs)), ...]); rejects; ((lang, key shard), ``spill.Ref`` of dedup bucket entries as
    columns, gathered over the bundle). Kept paragraphs and bucket entries go to the bundle's
    spill files under ``spill_dir``: only their references cross the shuffles."""

    def __init__(self, langs: LangConfigs, spill_dir: str):
        super().__init__(langs)
        self.spill_dir = spill_dir

    def setup(self):
        self.scorers = {}  # built on first use: a worker may see few of the languages
        self.key_shards = {code: cfg.dedup.shards for code, (_, cfg) in self.langs.items()}

    def start_bundle(self):
        super().start_bundle()
        self.buckets = dedup.ShardBuffer(BUCKET_BUFFER_BYTES, self.key_shards)
        self.spill = spill.SpillWriter(self.spill_dir)

    def scorer(self, code: str) -> ParagraphScorer:
        if code not in self.scorers:
            self.scorers[code] = ParagraphScorer(*self.langs[code])
        return self.scorers[code]

    def process(self, docs: list[Document]):
        by_lang = defaultdict(list)
        for doc in docs:
            by_lang[doc.lang].append(doc)
        for code, lang_docs in by_lang.items():
            scorer, groups = self.scorer(code), defaultdict(list)
            scored = scorer.score(lang_docs)
            for doc, out in zip(lang_docs, scored, strict=True):
                self.tally[code, counts.PARAGRAPHS_READ] += len(doc.paragraphs)
                self.tally[code, counts.source(doc.source, "read")] += len(doc.paragraphs)
                yield from self.rejects(code, out.rejects)
                if out.kept:
                    groups[doc_group(code, *doc.unit)].append((doc.doc, (doc.origin(), out.kept)))
            for group, kept in groups.items():
                yield group, self.spill.put(kept)
            exact, band = scorer.buckets(lang_docs, scored)
            for key, packed in self.buckets.add(code, exact, band):
                yield beam.pvalue.TaggedOutput("buckets", (key, self.spill.put(packed)))
        self.feed_progress()  # a local runner's bundle can be the whole stage

    def finish_bundle(self):
        for key, packed in self.buckets.flush():
            ref = self.spill.put(packed)
            yield beam.pvalue.TaggedOutput("buckets", window.GlobalWindows.windowed_value_at_end_of_window((key, ref)))
        self.spill.close()  # before the bundle ends: every reference it handed on points into a whole file
        yield from super().finish_bundle()


class MakeFragments(_Tallied):
    """((lang, source, file, document group), {kept, duplicates}) -> records; rejects for
    duplicates and lengths."""

    def process(self, element):
        (lang, _, file, _), grouped = element
        kept = dict(chain.from_iterable(spill.take(grouped["kept"])))  # document -> (origin, kept paragraphs)
        duplicates = defaultdict(dict)  # document -> {index: (reason, kept position)}
        for doc, i, reason, root in chain.from_iterable(grouped["duplicates"]):
            duplicates[doc][i] = (reason, root)
        cfg = self.langs[lang][1]
        for doc in sorted(kept):
            where, paragraphs = kept[doc]
            records, rejects = make_fragments(lang, cfg, file, doc, paragraphs, duplicates[doc], where)
            yield from self.rejects(lang, rejects)
            for record in records:
                for name, n in record_stats(record):
                    self.tally[lang, name] += n
                yield record
        self.feed_progress()


def source_name(line: dict) -> str:
    """The source of a record or reject line (``cc100`` in checkpoints made before sources)."""
    return line["source"].get("name", "cc100")


def reject_stat(line: dict) -> tuple[str, int]:
    """A reject line counts every paragraph (row) it spans under its reason."""
    return counts.paragraphs_rejected(line["reason"]), paragraphs_of(line["source"])


def reject_stats(line: dict) -> list[tuple[str, int]]:
    """What a reject line adds to the stats: its paragraphs under its reason, overall and for
    its source."""
    name, n = reject_stat(line)
    return [(name, n), (counts.source_rejected(source_name(line), line["reason"]), n)]


class InProcess(NamedTuple):
    """What the select stage makes of one language's documents, in one process."""

    read: Counter  # paragraphs read per (source, file)
    records: list[dict]  # by document, in the order of the documents
    rejects: list[dict]  # the scoring rejects by document, then the duplicates' and fragments'
    stats: Counter  # stat name -> count, as ScoreParagraphs and MakeFragments tally them


def select_in_process(lang: Language, cfg: SelectConfig, docs: list[Document], batch_docs: int = BATCH_DOCS) -> InProcess:
    """The select stage on ``docs`` in one process: the functions ``Select``'s DoFns call
    (``ParagraphScorer``, ``dedup.find_duplicates``: FindDuplicates' steps, ``make_fragments``),
    in their order, with dicts where Beam groups. Dedup sees all of ``docs`` at once, as the
    pipeline sees a language, in one shard. For ``--dry-run`` and the benchmark's plain loop."""
    scorer = ParagraphScorer(lang, cfg)
    read, kept, entries, rejects = Counter(), {}, [], []
    for start in range(0, len(docs), batch_docs):
        batch = docs[start:start + batch_docs]
        scored = scorer.score(batch)
        for doc, out in zip(batch, scored, strict=True):
            read[doc.source, doc.file] += len(doc.paragraphs)
            rejects += out.rejects
            if out.kept:
                kept[doc.unit] = (doc.origin(), out.kept)
        entries.append(scorer.buckets(batch, scored))
    duplicates = defaultdict(dict)  # (source, file, doc) -> {index: (reason, kept position)}
    for (*unit, i), value in dedup.find_duplicates(entries, scorer.dedup.sharded(1), lang.code).items():
        duplicates[tuple(unit)][i] = value
    records = []
    for (source, file, doc), (where, paragraphs) in kept.items():
        made, more = make_fragments(lang.code, cfg, file, doc, paragraphs, duplicates[source, file, doc], where)
        records += made
        rejects += more
    stats = Counter()
    for (source, _), n in read.items():
        stats[counts.PARAGRAPHS_READ] += n
        stats[counts.source(source, "read")] += n
    for line in rejects:
        for name, n in reject_stats(line):
            stats[name] += n
    for record in records:
        for name, n in record_stats(record):
            stats[name] += n
    return InProcess(read, records, rejects, stats)


class Select(beam.PTransform):
    """Batches of documents of any languages -> StageOutput; ``langs`` maps each language code to its
    (Language, SelectConfig). Languages are data, not graph branches: one graph serves 1 or
    116 languages, and dedup never crosses languages (every key starts with the language)."""

    def __init__(self, langs: LangConfigs, spill_dir: str):
        super().__init__()
        self.langs, self.spill_dir = langs, spill_dir

    def expand(self, documents) -> StageOutput:
        params = {code: dedup.DedupParams.of(cfg.dedup) for code, (_, cfg) in self.langs.items()}
        scored = documents | "Score" >> beam.ParDo(ScoreParagraphs(self.langs, self.spill_dir)).with_outputs(
            "rejects", "buckets", "stats", main="kept"
        )
        duplicates = scored.buckets | "Dedup" >> dedup.FindDuplicates(params, doc_group)
        made = (
            {"kept": scored.kept, "duplicates": duplicates}
            | "Join" >> beam.CoGroupByKey()
            | "Fragment" >> beam.ParDo(MakeFragments(self.langs)).with_outputs(
                "rejects", "stats", main="records"
            )
        )
        stats = (scored.stats, made.stats) | "Stats" >> beam.Flatten()
        return StageOutput(made.records, (scored.rejects, made.rejects), stats)


# The natural method's first stage: built by the method from its sources (``Select`` above).
SELECT = Stage(STAGE, fingerprint=fingerprint_of("select"), report=lambda c: (langid.report_label(c), ""))
