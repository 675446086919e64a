"""NLLB translation (``nllb.py``, the engine behind a Beam ModelHandler): translate (R_x -> R_en)
and backtranslate (I_en -> I_x) are the same handler with other fields and directions.

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

import logging
from collections.abc import Sequence

import apache_beam as beam

from transforms.models import segment
from transforms.models.config import QeConfig, TranslateConfig
from transforms.models.qe import QE_RESPONSE_LOW, SCORE_INVALID, below_threshold
from transforms.records import counts
from transforms.records.shapes import StageOutput, route, with_provenance
from transforms.stages import Call, Stage, fingerprint_of, pass_rate, section_hints

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


def _with_provenance(result, stage: str, model: str):
    record, reason, *info = result
    return ((with_provenance(record, stage, model) if reason is None else record), reason, *info)


def flag_stats(result, stage: str):
    """((lang, name), 1) per check a kept record failed that is switched off."""
    record, reason, *info = result
    if reason is None and info:
        for name in info[0].get("flagged", ()):
            yield (record["lang"], counts.stage_flagged(stage, name)), 1


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
        stage: str = "translate",  # or backtranslate
        source_field: str = "response",
        target_field: str = "response_en",
        to_english: bool = True,
        cache_dir: str | None = None,
    ):
        super().__init__()
        self.cfg, self.qe, self.stage, self.cache_dir = cfg, qe, stage, cache_dir
        self.source_field, self.target_field, self.to_english = source_field, target_field, to_english

    def expand(self, records):
        from apache_beam.ml.inference.base import RunInference

        from transforms.models.comet import QeHandler
        from transforms.models.nllb import NllbHandler

        handler = NllbHandler(self.cfg, self.source_field, self.target_field, self.to_english, self.cache_dir,
                              self.stage)
        results = (
            records
            | "Translate" >> RunInference(handler)
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
        scores = ("qe_response",) if self.qe is not None else ()
        out = route(results | "Settled" >> beam.Map(settled), self.stage, scores=scores)
        stats = (out.stats, flagged) | "AllStats" >> beam.Flatten()
        return StageOutput(out.records, out.rejects, stats)


def _setting(config: dict, section: str, key: str) -> str:
    return config.get(section, {}).get(key, "?")


TRANSLATE = Stage(
    "translate",
    fingerprint=fingerprint_of("translate", "qe"),  # the R_x -> R_en QE threshold applies here
    report=lambda c: (f"{_setting(c, 'translate', 'model')}; COMET {_setting(c, 'qe', 'model')}", ""),
    transform=lambda ctx: Translate(ctx.config.translate, ctx.config.qe, cache_dir=ctx.cache),
    hints=lambda config: section_hints(config.translate),
    pass_rate=lambda cfg: pass_rate(cfg.qe.min_response, cfg.cost.qe_response_pass_rate),
    calls=lambda p: [Call("nllb", p.src, p.src, p.en), Call("comet", p.src + p.en, p.src + p.en)],
    reasons=(NO_TRANSLATION_MODEL, segment.SEGMENT_TOO_LONG, TRANSLATION_EMPTY, TRANSLATION_TRUNCATED,
             TRANSLATION_DEGENERATE, QE_RESPONSE_LOW, SCORE_INVALID),
)

BACKTRANSLATE = Stage(
    "backtranslate",
    fingerprint=fingerprint_of("translate"),
    report=lambda c: (_setting(c, "translate", "model"), ""),
    transform=lambda ctx: Translate(ctx.config.translate, None, BACKTRANSLATE.name, "instruction_en", "instruction",
                                    to_english=False, cache_dir=ctx.cache),
    hints=lambda config: section_hints(config.translate),
    calls=lambda p: [Call("nllb", p.instr_en, p.instr_en, p.instr_x)],
    reasons=(NO_TRANSLATION_MODEL, segment.SEGMENT_TOO_LONG, TRANSLATION_EMPTY, TRANSLATION_TRUNCATED,
             TRANSLATION_DEGENERATE),
)
