"""The select stage: documents -> clean, deduplicated response fragments, every drop explained.

    documents --ScoreParagraphs--> kept paragraphs by document, rejects, dedup bucket keys
    exact keys --GroupByKey--> exact links \
    band keys --GroupByKey--> pairs --count--> near links --ConnectedComponents--> duplicates
    kept paragraphs + duplicates --CoGroupByKey(document)--MakeFragments--> records, rejects

Paragraph checks (filters, language ID, MinHash) run per document in one DoFn, so a document
costs one element and its paragraphs are hashed as one batch.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.config import SelectConfig
from pipeline.languages import Language
from transforms import dedup, filters, langid
from transforms.fragment import fragment_document
from transforms.read import Document
from transforms.records import StageOutput, record_id, reject, source

STAGE = "select"
# Histogram edges (characters) of response lengths in the stats.
LENGTH_BINS = (0, 50, 100, 200, 400, 800, 1600, 3200)


def _bin(n: int) -> int:
    return max(edge for edge in LENGTH_BINS if edge <= n)


class _Counted(beam.DoFn):
    """Counts each reason as a Beam metric, so progress shows on every runner."""

    def __init__(self, lang: Language):
        self.lang = lang

    def count(self, reason: str, n: int = 1) -> None:
        Metrics.counter(f"{STAGE}/{self.lang.code}", reason).inc(n)


class ScoreParagraphs(_Counted):
    """Document -> (doc key, (index, text, lid prob)) per kept paragraph; rejects; bucket keys."""

    def __init__(self, lang: Language, cfg: SelectConfig):
        super().__init__(lang)
        self.cfg = cfg

    def setup(self):
        from transforms.minhash import MinHasher

        self.expected = langid.expected_label(self.lang, self.cfg.lid.labels)
        self.lid = langid.LanguageIdentifier(self.cfg.lid) if self.expected else None
        d = self.cfg.dedup
        words = d.shingles == "words" or (d.shingles == "auto" and self.lang.spaced)
        self.hasher = MinHasher(d.num_perm, d.word_ngram if words else d.char_ngram, words, d.seed)
        self.bands, self.rows, _ = dedup.bands_of(d)

    def process(self, doc: Document):
        lang, cfg = self.lang.code, self.cfg
        yield beam.pvalue.TaggedOutput("stats", ("paragraphs.read", len(doc.paragraphs)))
        repeated = (
            filters.repeated_paragraphs(doc.paragraphs) if cfg.filters.drop_repeated_paragraphs else ()
        )
        kept = []
        for i, text in enumerate(doc.paragraphs):
            reason = filters.REPEATED_LINES if i in repeated else None
            reason = reason or filters.paragraph_reject_reason(text, self.lang, cfg.filters)
            detail, prob = None, None
            if reason is None and self.lid is not None:
                label, prob = self.lid.predict(text)
                reason = langid.lid_reject_reason(label, prob, self.expected, cfg.lid.min_confidence)
                detail = {"lid_label": label, "lid_prob": round(prob, 4)} if reason else None
            if reason:
                self.count(reason)
                yield beam.pvalue.TaggedOutput(
                    "rejects", reject(lang, STAGE, reason, text, doc.file, doc.doc, i, i, detail)
                )
            else:
                kept.append((i, text, prob))
        if not kept:
            return
        if cfg.dedup.near:
            signatures = self.hasher.signatures([text for _, text, _ in kept])
        for k, (i, text, prob) in enumerate(kept):
            position = (doc.file, doc.doc, i)
            # without exact dedup every copy is its own text, so band pairs still link copies
            text_key = dedup.exact_key(text) if cfg.dedup.exact else repr(position).encode()
            if cfg.dedup.exact:
                yield beam.pvalue.TaggedOutput("exact", (text_key, (position, len(text))))
            if cfg.dedup.near:
                for key in dedup.band_keys(signatures[k], self.bands, self.rows):
                    yield beam.pvalue.TaggedOutput("bands", (key, (position, text_key, len(text))))
            yield (doc.file, doc.doc), (i, text, prob)


class MakeFragments(_Counted):
    """(doc key, {kept, duplicates}) -> records; rejects for duplicates and bad lengths."""

    def __init__(self, lang: Language, cfg: SelectConfig):
        super().__init__(lang)
        self.cfg = cfg

    def process(self, element):
        (file, doc), grouped = element
        lang = self.lang.code
        duplicates = {i: (reason, root) for i, reason, root in grouped["duplicates"]}
        paragraphs, probs = {}, {}
        for i, text, prob in grouped["kept"]:
            if i in duplicates:
                reason, root = duplicates[i]
                self.count(reason)
                yield beam.pvalue.TaggedOutput(
                    "rejects",
                    reject(lang, STAGE, reason, text, file, doc, i, i, {"duplicate_of": list(root)}),
                )
            else:
                paragraphs[i], probs[i] = text, prob
        for frag in fragment_document(paragraphs, self.cfg.fragment, f"{file}/{doc}"):
            n = len(frag.texts)
            if frag.reject_reason:
                self.count(frag.reject_reason, n)
                yield beam.pvalue.TaggedOutput(
                    "rejects",
                    reject(lang, STAGE, frag.reject_reason, frag.text, file, doc, frag.first, frag.last),
                )
                continue
            self.count("kept_paragraphs", n)
            text = frag.text
            for name, value in (
                ("paragraphs.kept", n),
                ("selected_records", 1),
                ("response_chars.sum", len(text)),
                ("response_chars.sumsq", len(text) ** 2),
                (f"response_chars.hist.{_bin(len(text))}", 1),
            ):
                yield beam.pvalue.TaggedOutput("stats", (name, value))
            record = {
                "id": record_id(lang, file, doc, frag.first, frag.last),
                "lang": lang,
                "response": text,
                "source": source(file, doc, frag.first, frag.last),
            }
            lid = [probs[i] for i in range(frag.first, frag.last + 1) if probs[i] is not None]
            if lid:
                record["scores"] = {"lid": round(min(lid), 4)}
            yield record


def _reject_stat(line: dict) -> tuple[str, int]:
    """A reject line counts every paragraph it spans under its reason."""
    first, last = line["source"]["paragraphs"]
    return f"paragraphs.rejected.{line['reason']}", last - first + 1


def _duplicates_by_doc(duplicates: dict):
    for (file, doc, i), (reason, root) in duplicates.items():
        yield (file, doc), (i, reason, root)


class Select(beam.PTransform):
    def __init__(self, lang: Language, cfg: SelectConfig):
        super().__init__()
        self.lang, self.cfg = lang, cfg

    def expand(self, documents) -> StageOutput:
        scored = documents | "Score" >> beam.ParDo(ScoreParagraphs(self.lang, self.cfg)).with_outputs(
            "rejects", "exact", "bands", "stats", main="kept"
        )
        _, _, min_matches = dedup.bands_of(self.cfg.dedup)
        exact_links = (
            scored.exact
            | "ExactBuckets" >> beam.GroupByKey()
            | "ExactLinks" >> beam.FlatMapTuple(dedup.exact_links)
        )
        near_links = (
            scored.bands
            | "BandBuckets" >> beam.GroupByKey()
            | "BandPairs" >> beam.FlatMap(lambda kv: dedup.band_pairs(*kv, min_matches))
            | "CountPairs" >> beam.CombinePerKey(sum)
            | "NearLinks" >> beam.FlatMap(lambda kv: dedup.near_links(kv, min_matches))
        )
        duplicates = (
            (exact_links, near_links)
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
        reject_stats = rejects | "RejectStats" >> beam.Map(_reject_stat)
        stats = (scored.stats, reject_stats, made.stats) | "Stats" >> beam.Flatten()
        return StageOutput(made.records, rejects, stats)
