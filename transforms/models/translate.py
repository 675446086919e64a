"""NLLB translation behind a Beam ModelHandler: translate (R_x -> R_en) and backtranslate
(I_en -> I_x) are the same handler with other fields and directions.

Each record's text is cut into sentences (``segment.py``), every sentence of a batch of
records is translated alone, longest first, in sub-batches under a token budget (sorting
cuts padding; 1.3-1.8x measured on CPU), and the translations are joined back per paragraph.
Zipping is strict everywhere, so a lost output can never shift onto another record.

Every segment's output is checked: one that stopped at its token limit without an
end-of-sequence token (``translation_truncated``) or that is mostly a loop of one short n-gram
(``translation_degenerate``) makes its record a reject; with a check switched off in config,
the record is kept and counted as ``flagged`` in the stats. The translate stage's QE scores
the record per segment (``qe.py``), with the (source, translation) pairs handed on in flight.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, RunInference

from pipeline.config import QeConfig, TranslateConfig
from pipeline.languages import LANGUAGES
from transforms.models import model_store, segment
from transforms.models.qe import QE_RESPONSE_LOW, QeHandler, below_threshold
from transforms.records.cache import CallCache
from transforms.records.shapes import StageOutput, route, with_messages, with_provenance

logger = logging.getLogger(__name__)

ENGLISH = "eng_Latn"
NO_TRANSLATION_MODEL = "no_translation_model"
TRANSLATION_EMPTY = "translation_empty"
TRANSLATION_TRUNCATED = "translation_truncated"
TRANSLATION_DEGENERATE = "translation_degenerate"
MIN_REPEAT_TOKENS = 8  # shorter translations are never called degenerate ("No, no, no.")
MIN_REPEATS = 3  # occurrences back to back that make a run


def repeat_share(units: Sequence, max_ngram: int) -> float:
    """The share of ``units`` (tokens) inside runs of ``MIN_REPEATS`` or more back-to-back
    occurrences of one n-gram of 1 to ``max_ngram`` units: ~0 for text, ~1 for a loop."""
    units = list(units)
    covered = [False] * len(units)
    for n in range(1, max_ngram + 1):
        i = 0
        while i + n <= len(units):
            j = i + n
            while units[j:j + n] == units[i:i + n]:
                j += n
            if (j - i) // n >= MIN_REPEATS:
                covered[i:j] = [True] * (j - i)
                i = j
            else:
                i += 1
    return sum(covered) / len(units) if units else 0.0


def check_segments(outputs: Sequence[dict], tokens: Sequence[list], cfg: TranslateConfig
                   ) -> tuple[str | None, dict, list[str]]:
    """(reject reason or None, its detail, checks that failed but are switched off) of one
    record's segment outputs (``{"text", "truncated"}``) and their translations' tokens."""
    shares = [repeat_share(t, cfg.max_repeat_ngram) if len(t) >= MIN_REPEAT_TOKENS else 0.0 for t in tokens]
    truncated = sum(bool(o["truncated"]) for o in outputs)
    failures = {}  # in the order they are reported: a loop is why a segment ran to its limit
    if max(shares, default=0.0) > cfg.max_repeat_share:
        failures[TRANSLATION_DEGENERATE] = (cfg.reject_degenerate, {"repeat_share": round(max(shares), 3)})
    if truncated:
        failures[TRANSLATION_TRUNCATED] = (cfg.reject_truncated, {"truncated_segments": truncated})
    for reason, (rejects, detail) in failures.items():
        if rejects:
            return reason, {**detail, "segments": len(outputs)}, []
    return None, {}, list(failures)


def sentence_language(lang) -> str:
    """The code sentencex knows a language by: CC-100's, without a script or variant suffix."""
    return lang.cc100.split("_")[0].split("-")[0]


class NllbTranslator:
    """An NLLB tokenizer and model; ``translate`` takes sentences of one language pair. The
    weights load on the first translation: a resumed run whose every sentence is in the cache
    needs only the tokenizer (to segment)."""

    def __init__(self, cfg: TranslateConfig):
        import torch
        from transformers import AutoTokenizer

        self.path = model_store.resolve(cfg.model)
        self.cfg, self.torch = cfg, torch
        self.device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)

    @functools.cached_property
    def model(self):
        from transformers import AutoModelForSeq2SeqLM

        torch = self.torch
        dtype = {"auto": torch.float16 if self.device.startswith("cuda") else torch.float32,
                 "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[self.cfg.dtype]
        return AutoModelForSeq2SeqLM.from_pretrained(self.path, dtype=dtype).to(self.device).eval()

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices grouped longest first, each group's padded size (count x longest) within
        ``batch_tokens`` (unless ``sort_by_length`` is off: then in input order)."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i]) if self.cfg.sort_by_length else range(len(lengths))
        groups: list[list[int]] = []
        for i in order:
            group = groups[-1] if groups else None
            longest = max((lengths[j] for j in group), default=0) if group else 0
            if group and (len(group) + 1) * max(longest, lengths[i]) <= self.cfg.batch_tokens:
                group.append(i)
            else:
                groups.append([i])
        return groups

    def tokens(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[dict]:
        """Per text ``{"text": translation, "truncated": whether it stopped at its token limit
        without an end-of-sequence token}``, in input order."""
        if not texts:
            return []
        self.tokenizer.src_lang = src
        encoded = self.tokenizer(list(texts))["input_ids"]  # one batched call, for lengths
        out: list[dict | None] = [None] * len(texts)
        forced_bos = self.tokenizer.convert_tokens_to_ids(tgt)
        # each text's own output limit, so its translation does not depend on its batch
        limits = [int(len(e) * self.cfg.max_new_tokens_ratio) + 8 for e in encoded]
        for group in self.batches([len(e) for e in encoded]):
            batch = self.tokenizer([texts[i] for i in group], padding=True, return_tensors="pt")
            with self.torch.inference_mode():
                generated = self.model.generate(
                    **{k: v.to(self.device) for k, v in batch.items()},
                    forced_bos_token_id=forced_bos,
                    num_beams=self.cfg.num_beams,
                    max_new_tokens=max(limits[i] for i in group),
                )
            rows = [generated[j, : 1 + limits[i]] for j, i in enumerate(group)]  # 1: start token
            decoded = self.tokenizer.batch_decode(rows, skip_special_tokens=True)
            eos = self.tokenizer.eos_token_id
            for i, row, text in zip(group, rows, decoded, strict=True):
                out[i] = {"text": text.strip(), "truncated": eos not in row[1:].tolist()}
        return out


class NllbHandler(ModelHandler[dict, tuple[dict, str | None, dict], NllbTranslator]):
    """Records -> (record with ``target_field`` set, None, in-flight info) or (record, reject
    reason, detail). The in-flight info of a kept record, for the stage's shell only:
    ``segments``, its (source, translation) pairs, and ``flagged``, the checks it failed that
    are switched off.

    ``to_english``: translate the record's language into English (translate stage), else
    English into the record's language (backtranslate stage).
    """

    def __init__(self, cfg: TranslateConfig, source_field: str, target_field: str, to_english: bool,
                 cache_dir: str | None = None):
        super().__init__(min_batch_size=1, max_batch_size=cfg.records_per_batch)
        self.cfg, self.source_field, self.target_field = cfg, source_field, target_field
        self.to_english = to_english
        # a sentence's translation depends on these, not on its batch (see NllbTranslator)
        params = {k: getattr(cfg, k) for k in ("model", "dtype", "num_beams", "max_new_tokens_ratio")}
        params["output"] = "text+truncated"  # what an entry holds (entries of plain text are stale)
        self.cache = CallCache(cache_dir, "translate" if to_english else "backtranslate", params)

    def load_model(self) -> NllbTranslator:
        return NllbTranslator(self.cfg)

    def share_model_across_processes(self) -> bool:
        return self.cfg.share_model

    def run_inference(self, batch: Sequence[dict], model: NllbTranslator, inference_args=None) -> Iterable[Any]:
        results: list[tuple] = [(r, None) for r in batch]
        # (pair of NLLB codes) -> [(record index, paragraph index, segment)]
        requests: dict[tuple[str, str], list[tuple[int, int, str]]] = defaultdict(list)
        for k, record in enumerate(batch):
            lang = LANGUAGES[record["lang"]]
            if lang.nllb is None:
                results[k] = (record, NO_TRANSLATION_MODEL)
                continue
            src_lang = lang if self.to_english else LANGUAGES["eng"]
            try:
                paragraphs = segment.segments(
                    record[self.source_field], sentence_language(src_lang),
                    model.count_tokens, self.cfg.max_segment_tokens,
                )
            except segment.SegmentTooLong:
                results[k] = (record, segment.SEGMENT_TOO_LONG)
                continue
            pair = (lang.nllb, ENGLISH) if self.to_english else (ENGLISH, lang.nllb)
            requests[pair] += [(k, p, s) for p, sentences in enumerate(paragraphs) for s in sentences]
        # record index -> paragraph index -> [(segment, its output)]
        pieces: dict[int, dict[int, list[tuple[str, dict]]]] = defaultdict(lambda: defaultdict(list))
        for (src, tgt), items in requests.items():
            outputs = self.cache.run(
                [(src, tgt, s) for _, _, s in items],
                lambda missing: model.translate([s for _, _, s in missing], src, tgt),
            )
            for (k, p, s), output in zip(items, outputs, strict=True):
                pieces[k][p].append((s, output))
        for k, record in enumerate(batch):
            if results[k][1] is not None:
                continue
            target = LANGUAGES["eng"] if self.to_english else LANGUAGES[record["lang"]]
            joiner = " " if target.spaced else ""
            paragraphs = [joiner.join(o["text"] for _, o in pieces[k][p] if o["text"]) for p in sorted(pieces[k])]
            if not paragraphs or not all(paragraphs):  # nothing to translate, or nothing came back
                results[k] = (record, TRANSLATION_EMPTY)
                continue
            pairs = [(s, o) for p in sorted(pieces[k]) for s, o in pieces[k][p]]
            outputs = [o for _, o in pairs]
            reason, detail, flagged = check_segments(outputs, [model.tokens(o["text"]) for o in outputs], self.cfg)
            if reason:
                results[k] = (record, reason, detail)
            else:
                info = {"segments": [(s, o["text"]) for s, o in pairs], "flagged": flagged}
                # a back-translated instruction completes the pair: it gets its chat ``messages``
                results[k] = (with_messages({**record, self.target_field: "\n".join(paragraphs)}), None, info)
        return results

    def get_metrics_namespace(self) -> str:
        return "translate" if self.to_english else "backtranslate"


def _with_provenance(result, stage: str, model: str):
    record, reason, *info = result
    return ((with_provenance(record, stage, model) if reason is None else record), reason, *info)


def flag_stats(result, stage: str):
    """((lang, name), 1) per check a kept record failed that is switched off."""
    record, reason, *info = result
    if reason is None and info:
        for name in info[0].get("flagged", ()):
            yield (record["lang"], f"stages.{stage}.flagged.{name}"), 1


def settled(result):
    """A result without a kept record's in-flight info (a reject's detail stays)."""
    record, reason, *info = result
    return (record, reason) if reason is None else result


class Translate(beam.PTransform):
    """Records -> StageOutput: NLLB through RunInference from ``source_field`` into
    ``target_field``; with ``qe``, the translation is scored per segment
    (``scores.qe_response``) and records under ``qe.min_response`` are rejected as
    ``qe_response_low`` before any LLM sees them."""

    def __init__(
        self,
        cfg: TranslateConfig,
        qe: QeConfig | None = None,
        stage: str = "translate",
        source_field: str = "response",
        target_field: str = "response_en",
        to_english: bool = True,
        cache_dir: str | None = None,
    ):
        super().__init__()
        self.cfg, self.qe, self.stage, self.cache_dir = cfg, qe, stage, cache_dir
        self.source_field, self.target_field = source_field, target_field
        self.handler = NllbHandler(cfg, source_field, target_field, to_english, cache_dir)

    def expand(self, records):
        results = (
            records
            | "Translate" >> RunInference(self.handler)
            | "Provenance" >> beam.Map(_with_provenance, self.stage, self.cfg.model)
        )
        flagged = results | "Flagged" >> beam.FlatMap(flag_stats, self.stage)
        if self.qe is not None:
            scorer = QeHandler(self.qe, self.source_field, self.target_field, "qe_response", self.cache_dir)
            results = (
                results
                | "Score" >> RunInference(scorer)
                | "QeProvenance" >> beam.Map(_with_provenance, "qe", self.qe.model)
                | "Threshold" >> beam.Map(below_threshold, "qe_response", self.qe.min_response, QE_RESPONSE_LOW)
            )
        out = route(results | "Settled" >> beam.Map(settled), self.stage)
        stats = (out.stats, flagged) | "AllStats" >> beam.Flatten()
        return StageOutput(out.records, out.rejects, stats)
