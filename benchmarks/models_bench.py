"""Model-stage throughput on the tiny local models, pipeline against direct use, in one run:

1. generate: records/s through the Beam stage (RunInference + the async client + parsing)
   against the same requests sent straight to the same vLLM server with the same concurrency;
2. translate: sentences/s through the Beam stage against a plain loop of batched
   ``model.generate`` calls in input order (the naive HF loop), and length-sorted against
   unsorted batches of the same translator.

Pipeline rates are marginal: a run on 2N records minus a run on N, so Beam's start-up and the
model load (paid once per worker) cancel out and the steady state is compared.

    python benchmarks/models_bench.py [--records 256]

Needs the vLLM environment (`make vllm-env`). The tiny models are random: these figures
measure the plumbing's overhead, not a real model's speed.
"""

from __future__ import annotations

import argparse
import dataclasses
import lzma
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import apache_beam as beam  # noqa: E402

from pipeline import config as config_mod  # noqa: E402
from transforms.languages import LANGUAGES  # noqa: E402
from transforms.models import (  # noqa: E402
    generate,
    llm,
    segment,
    tiny_models,  # noqa: E402
)
from transforms.models.nllb import NllbTranslator  # noqa: E402
from transforms.models.translate import Translate, sentence_language  # noqa: E402


def sample_records(n: int) -> list[dict]:
    paragraphs = []
    for lang in ("tel", "hin", "jpn", "spa"):
        text = lzma.open(ROOT / "pipeline" / "sample" / f"{lang}.txt.xz").read().decode("utf-8", "ignore")
        paragraphs += [(lang, p) for p in text.splitlines() if len(p) > 80]
    return [
        {"id": f"r{i}", "lang": lang, "response": p, "response_en": p,
         "source": {"file": "bench", "doc": i, "paragraphs": [0, 0]}}
        for i, (lang, p) in enumerate(paragraphs[i % len(paragraphs)] for i in range(n))
    ]


def _language(record: dict) -> str:
    return sentence_language(LANGUAGES[record["lang"]])


def run_pipeline(records: list[dict], transform: beam.PTransform) -> float:
    start = time.perf_counter()
    with beam.Pipeline(runner="FnApiRunner") as p:
        _ = p | beam.Create(records) | transform
    return time.perf_counter() - start


def marginal_seconds(records: list[dict], make_transform) -> float:
    """Seconds the second half of ``records`` adds: the pipeline on all of them minus on the
    first half, so start-up and model loading (paid once per worker) cancel out."""
    half = len(records) // 2
    return run_pipeline(records, make_transform()) - run_pipeline(records[:half], make_transform())


def bench_generate(cfg: config_mod.Config, records: list[dict]) -> dict:
    model = tiny_models.resolve(cfg.llm.model)
    server = llm.VllmServer(str(ROOT / cfg.llm.server_python), model, cfg.llm.server_args,
                            cfg.llm.server_env, cfg.llm.startup_timeout_s).start()
    try:
        llm_cfg = dataclasses.replace(cfg.llm, endpoint=server.base_url)
        client = llm.LlmClient(server.base_url, model, concurrency=llm_cfg.concurrency)
        requests = [
            generate.generate_request(
                r, generate.prompts.load(generate.draw_task(r["id"], cfg.generate.tasks, cfg.generate.seed)),
                cfg.generate)
            for r in records
        ]
        client.complete(requests[:32])  # warm up
        start = time.perf_counter()
        for i in range(0, len(requests), llm_cfg.records_per_batch):  # the pipeline's batches
            client.complete(requests[i:i + llm_cfg.records_per_batch])
        direct = time.perf_counter() - start
        through = marginal_seconds(
            records, lambda: generate.LlmStage(generate.GenerateStep(cfg.generate, llm_cfg.model), llm_cfg)
        )
    finally:
        server.stop()
    return {"direct": len(records) / direct, "pipeline": (len(records) - len(records) // 2) / through}


def bench_translate(cfg: config_mod.Config, records: list[dict]) -> dict:
    translator = NllbTranslator(cfg.translate)
    sentences = [s for r in records for s in segment.sentences(r["response"], _language(r))]
    sentences = [s for s in sentences if translator.count_tokens(s) <= cfg.translate.max_segment_tokens]
    # the naive loop: fixed-size batches in input order, one generate call each
    tok, model = translator.tokenizer, translator.model
    start = time.perf_counter()
    for i in range(0, len(sentences), 16):
        batch = tok(sentences[i:i + 16], padding=True, return_tensors="pt")
        with translator.torch.inference_mode():
            model.generate(**batch, forced_bos_token_id=tok.convert_tokens_to_ids("eng_Latn"),
                           max_new_tokens=int(batch["input_ids"].shape[1] * 1.5) + 8)
    naive = time.perf_counter() - start
    rates = {"naive loop": len(sentences) / naive}
    for sort in (True, False):
        t = NllbTranslator(dataclasses.replace(cfg.translate, sort_by_length=sort))
        start = time.perf_counter()
        t.translate(sentences, "spa_Latn", "eng_Latn")
        rates["sorted" if sort else "unsorted"] = len(sentences) / (time.perf_counter() - start)
    second_half = records[len(records) // 2:]
    n = sum(len(segment.sentences(r["response"], _language(r))) for r in second_half)
    through = marginal_seconds(records, lambda: Translate(cfg.translate))
    rates["pipeline"] = n / through
    rates["sentences"] = len(sentences)
    return rates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=256)
    args = ap.parse_args()
    cfg = config_mod.load("demo")
    records = sample_records(args.records)
    t = bench_translate(cfg, records[: max(64, args.records // 2)])
    g = bench_generate(cfg, records)
    print("\n| stage (tiny models, CPU) | direct | through the pipeline | pipeline / direct |")
    print("|---|---:|---:|---:|")
    print(f"| generate, records/s (vLLM, concurrency {cfg.llm.concurrency}) | {g['direct']:.1f} "
          f"| {g['pipeline']:.1f} | {g['pipeline'] / g['direct']:.2f} |")
    print(f"| translate, sentences/s (naive batched generate loop) | {t['naive loop']:.1f} "
          f"| {t['pipeline']:.1f} | {t['pipeline'] / t['naive loop']:.2f} |")
    print(f"\ntranslate batches, {t['sentences']} sentences: length-sorted {t['sorted']:.1f}/s, "
          f"unsorted {t['unsorted']:.1f}/s ({t['sorted'] / t['unsorted']:.2f}x)")


if __name__ == "__main__":
    main()
