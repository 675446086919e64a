"""NLLB-200 through transformers behind a Beam ModelHandler: the translate and backtranslate
stages' engine (``translate.py``). Importing this module imports Beam's RunInference and torch:
the stage module imports it only when it builds its graph.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from apache_beam.ml.inference.base import ModelHandler

from transforms.languages import LANGUAGES
from transforms.models import model_store, segment
from transforms.models.config import TranslateConfig
from transforms.models.translate import (
    BACKTRANSLATE,
    ENGLISH,
    NO_TRANSLATION_MODEL,
    TRANSLATE,
    TRANSLATION_EMPTY,
    check_segments,
    sentence_language,
)
from transforms.records.cache import CallCache
from transforms.records.shapes import with_messages


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
                 cache_dir: str | None = None, stage: str | None = None):
        super().__init__(min_batch_size=1, max_batch_size=cfg.records_per_batch)
        self.cfg, self.source_field, self.target_field = cfg, source_field, target_field
        self.to_english = to_english
        # a sentence's translation depends on these, not on its batch (see NllbTranslator)
        params = {k: getattr(cfg, k) for k in ("model", "dtype", "num_beams", "max_new_tokens_ratio")}
        params["output"] = "text+truncated"  # what an entry holds (entries of plain text are stale)
        # the stage's name (translate or backtranslate) names the cache's and the metrics' namespace
        self.stage = stage or (TRANSLATE.name if to_english else BACKTRANSLATE.name)
        self.cache = CallCache(cache_dir, self.stage, params)

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
        return self.stage
