"""The select stage: documents -> clean, deduplicated response fragments, every drop explained.

    documents --ScoreParagraphs--> kept paragraphs by document, rejects, dedup bucket keys
    exact keys --GroupByKey--> exact links \
    band keys --GroupByKey--> pairs --count--> near links --ConnectedComponents--> duplicates
    kept paragraphs + duplicates --CoGroupByKey(document)--MakeFragments--> records, rejects

Paragraph checks (filters, language ID, MinHash) run per document in one DoFn, so a document
costs one element and its paragraphs are hashed as one batch.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import chain
from typing import NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms import window

from pipeline.config import SelectConfig
from pipeline.languages import Language
from transforms import dedup, filters, langid
from transforms.fragment import fragment_document
from transforms.read import Document
from transforms.records import StageOutput, record_id, reject, source

STAGE = "select"
# Documents scored together: their paragraphs are MinHashed in one vectorised call, and
# their dedup bucket entries travel as one list per shard.
BATCH_DOCS = 128
# Histogram edges (characters) of response lengths in the stats.
LENGTH_BINS = (0, 50, 100, 200, 400, 800, 1600, 3200)


def _bin(n: int) -> int:
    return max(edge for edge in LENGTH_BINS if edge <= n)


class Scored(NamedTuple):
    kept: list  # (index, text, lid probability)
    rejects: list  # reject lines
    exact: list  # (exact-text key, (position, length))
    bands: list  # (band key, (position, exact-text key, length))


class ParagraphScorer:
    """The pure core of ScoreParagraphs: one document's paragraphs -> kept, rejects, dedup keys.

    Holds the loaded fastText model and MinHasher; build one per process (in ``setup``).
    """

    def __init__(self, lang: Language, cfg: SelectConfig):
        from transforms.minhash import MinHasher

        self.lang, self.cfg = lang, cfg
        self.expected = langid.expected_label(lang, cfg.lid.labels)
        self.lid = langid.LanguageIdentifier(cfg.lid) if self.expected else None
        d = cfg.dedup
        words = d.shingles == "words" or (d.shingles == "auto" and lang.spaced)
        self.hasher = MinHasher(d.num_perm, d.word_ngram if words else d.char_ngram, words, d.seed)
        self.bands, self.rows, _ = dedup.bands_of(d)

    def reject_reason(self, text: str) -> tuple[str | None, float | None, dict | None]:
        """(reason or None, LID probability, detail) for one paragraph."""
        reason = filters.paragraph_reject_reason(text, self.lang, self.cfg.filters)
        if reason or self.lid is None:
            return reason, None, None
        label, prob = self.lid.predict(text)
        reason = langid.lid_reject_reason(label, prob, self.expected, self.cfg.lid.min_confidence)
        return reason, prob, {"lid_label": label, "lid_prob": round(prob, 4)} if reason else None

    def score(self, docs: list[Document]) -> list[Scored]:
        """Score a batch of documents; their kept paragraphs are MinHashed together."""
        scored = [self._filter(doc) for doc in docs]
        if self.cfg.dedup.near:
            texts = [text for s in scored for _, text, _ in s.kept]
            signatures = iter(self.hasher.signatures(texts))
        for doc, out in zip(docs, scored, strict=True):
            for i, text, _ in out.kept:
                position = (doc.file, doc.doc, i)
                # without exact dedup every copy is its own text, so band pairs still link copies
                text_key = dedup.exact_key(text) if self.cfg.dedup.exact else repr(position).encode()
                if self.cfg.dedup.exact:
                    out.exact.append((text_key, (position, len(text))))
                if self.cfg.dedup.near:
                    for key in dedup.band_keys(next(signatures), self.bands, self.rows):
                        out.bands.append((key, (position, text_key, len(text))))
        return scored

    def _filter(self, doc: Document) -> Scored:
        repeated = (
            filters.repeated_paragraphs(doc.paragraphs)
            if self.cfg.filters.drop_repeated_paragraphs
            else ()
        )
        out = Scored([], [], [], [])
        for i, text in enumerate(doc.paragraphs):
            if i in repeated:
                reason, prob, detail = filters.REPEATED_LINES, None, None
            else:
                reason, prob, detail = self.reject_reason(text)
            if reason:
                out.rejects.append(
                    reject(self.lang.code, STAGE, reason, text, doc.file, doc.doc, i, i, detail)
                )
            else:
                out.kept.append((i, text, prob))
        return out


def make_fragments(
    lang: str, cfg: SelectConfig, file: str, doc: int, kept, duplicates: dict
) -> tuple[list[dict], list[dict]]:
    """Records and reject lines of one document from its kept paragraphs and its duplicates
    ``{index: (reason, kept position)}``."""
    records, rejects = [], []
    paragraphs, probs = {}, {}
    for i, text, prob in kept:
        if i in duplicates:
            reason, root = duplicates[i]
            detail = {"duplicate_of": list(root)}
            rejects.append(reject(lang, STAGE, reason, text, file, doc, i, i, detail))
        else:
            paragraphs[i], probs[i] = text, prob
    for frag in fragment_document(paragraphs, cfg.fragment, f"{file}/{doc}"):
        if frag.reject_reason:
            rejects.append(
                reject(lang, STAGE, frag.reject_reason, frag.text, file, doc, frag.first, frag.last)
            )
            continue
        record = {
            "id": record_id(lang, file, doc, frag.first, frag.last),
            "lang": lang,
            "response": frag.text,
            "source": source(file, doc, frag.first, frag.last),
        }
        lid = [probs[i] for i in range(frag.first, frag.last + 1) if probs[i] is not None]
        if lid:
            record["scores"] = {"lid": round(min(lid), 4)}
        records.append(record)
    return records, rejects


def record_stats(record: dict) -> list[tuple[str, int]]:
    first, last = record["source"]["paragraphs"]
    n = len(record["response"])
    return [
        ("paragraphs.kept", last - first + 1),
        ("selected_records", 1),
        ("response_chars.sum", n),
        ("response_chars.sumsq", n * n),
        (f"response_chars.hist.{_bin(n)}", 1),
    ]


class _Tallied(beam.DoFn):
    """Tallies counts per bundle and emits them once, at the bundle's end, as (name, n) pairs on
    the ``stats`` output and as Beam metrics (progress on every runner)."""

    def __init__(self, lang: Language, cfg: SelectConfig):
        self.lang, self.cfg = lang, cfg

    def start_bundle(self):
        self.tally = Counter()

    def rejects(self, lines: list[dict]):
        for line in lines:
            self.tally[f"paragraphs.rejected.{line['reason']}"] += _span(line)
            yield beam.pvalue.TaggedOutput("rejects", line)

    def finish_bundle(self):
        for name, n in self.tally.items():
            Metrics.counter(f"{STAGE}/{self.lang.code}", name).inc(n)
            yield beam.pvalue.TaggedOutput(
                "stats", window.GlobalWindows.windowed_value_at_end_of_window((name, n))
            )


class ScoreParagraphs(_Tallied):
    """Batch of documents -> (doc key, kept paragraphs) per document; rejects; dedup bucket
    entries grouped by shard (one element per shard and batch, not per bucket key)."""

    def setup(self):
        self.scorer = ParagraphScorer(self.lang, self.cfg)

    def process(self, docs: list[Document]):
        shards = defaultdict(list)
        for doc, scored in zip(docs, self.scorer.score(docs), strict=True):
            self.tally["paragraphs.read"] += len(doc.paragraphs)
            yield from self.rejects(scored.rejects)
            for key, value in chain(scored.exact, scored.bands):
                shards[dedup.shard_of(key, self.cfg.dedup.shards)].append((key, value))
            if scored.kept:
                yield (doc.file, doc.doc), scored.kept
        for shard, entries in shards.items():
            yield beam.pvalue.TaggedOutput("buckets", (shard, entries))


class LinkBuckets(beam.DoFn):
    """(shard, entry lists) -> exact links (main) and near-duplicate pair counts (``pairs``)."""

    def __init__(self, min_matches: int):
        self.min_matches = min_matches

    def process(self, element):
        _, batches = element
        for kind, item in dedup.shard_links(batches, self.min_matches):
            yield item if kind == "link" else beam.pvalue.TaggedOutput("pairs", item)


class MakeFragments(_Tallied):
    """(doc key, {kept, duplicates}) -> records; rejects for duplicates and bad lengths."""

    def process(self, element):
        (file, doc), grouped = element
        kept = [paragraph for part in grouped["kept"] for paragraph in part]
        duplicates = {i: (reason, root) for i, reason, root in grouped["duplicates"]}
        records, rejects = make_fragments(self.lang.code, self.cfg, file, doc, kept, duplicates)
        yield from self.rejects(rejects)
        for record in records:
            self.tally.update(dict(record_stats(record)))
            yield record


def _span(line: dict) -> int:
    first, last = line["source"]["paragraphs"]
    return last - first + 1


def reject_stat(line: dict) -> tuple[str, int]:
    """A reject line counts every paragraph it spans under its reason."""
    return f"paragraphs.rejected.{line['reason']}", _span(line)


def _duplicates_by_doc(duplicates: dict):
    for (file, doc, i), (reason, root) in duplicates.items():
        yield (file, doc), (i, reason, root)


class Select(beam.PTransform):
    def __init__(self, lang: Language, cfg: SelectConfig):
        super().__init__()
        self.lang, self.cfg = lang, cfg

    def expand(self, documents) -> StageOutput:
        scored = (
            documents
            | "Batch" >> beam.BatchElements(min_batch_size=BATCH_DOCS, max_batch_size=BATCH_DOCS)
            | "Score" >> beam.ParDo(ScoreParagraphs(self.lang, self.cfg)).with_outputs(
                "rejects", "buckets", "stats", main="kept"
            )
        )
        _, _, min_matches = dedup.bands_of(self.cfg.dedup)
        linked = (
            scored.buckets
            | "Shards" >> beam.GroupByKey()
            | "LinkBuckets" >> beam.ParDo(LinkBuckets(min_matches)).with_outputs("pairs", main="exact")
        )
        near_links = (
            linked.pairs
            | "CountPairs" >> beam.CombinePerKey(sum)
            | "NearLinks" >> beam.FlatMap(lambda kv: dedup.near_links(kv, min_matches))
        )
        duplicates = (
            (linked.exact, near_links)
            | "Links" >> beam.Flatten()
            | "Components" >> beam.CombineGlobally(dedup.ConnectedComponents())
            | "ByDocument" >> beam.FlatMap(_duplicates_by_doc)
        )
        made = (
            {"kept": scored.kept, "duplicates": duplicates}
            | "Join" >> beam.CoGroupByKey()
            | "Fragment" >> beam.ParDo(MakeFragments(self.lang, self.cfg)).with_outputs(
                "rejects", "stats", main="records"
            )
        )
        rejects = (scored.rejects, made.rejects) | "Rejects" >> beam.Flatten()
        stats = (scored.stats, made.stats) | "Stats" >> beam.Flatten()
        return StageOutput(made.records, rejects, stats)
