"""Evol generation throughput, through the pipeline against direct use, in one run.

The same planned conversations (the bundled seeds, repeated under new ids) are generated
twice on one vLLM server (the demo preset's tiny Llama on CPU):

- direct: a plain loop over the pipeline's batches (``llm.records_per_batch`` conversations),
  each advanced round by round with ``evol.next_request`` / ``evol.apply_answer``, every round's
  requests sent at once with the same async client and concurrency: the same requests (the
  per-call sampling seeds make the answers, so the follow-up requests, the same);
- through the pipeline: Beam (FnApiRunner) running the evol method's three LLM stages, evolve ->
  turns -> judge, with the fusion breaks between them and a fresh model-call cache.

Pipeline rates are marginal (a run on 2N conversations minus a run on N), so Beam's start-up
cancels out. Conversations per second; both paths make the same number of calls.

    python benchmarks/evol_bench.py [--conversations 64]

Needs the vLLM environment (`make vllm-env`). The model is random: the figures measure the
plumbing's overhead, not a real model's speed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import apache_beam as beam  # noqa: E402

from pipeline import config as config_mod  # noqa: E402
from pipeline.options import SAMPLE_SEEDS  # noqa: E402
from transforms import languages  # noqa: E402
from transforms.models import evol, llm, tiny_models  # noqa: E402
from transforms.models.evol_stages import EVOLVE, JUDGE, TURNS  # noqa: E402
from transforms.stages import Context  # noqa: E402

LLM_STAGES = (EVOLVE, TURNS, JUDGE)


def planned(n: int, cfg) -> list[dict]:
    rows = [json.loads(line) for line in Path(SAMPLE_SEEDS).read_text(encoding="utf-8").splitlines()]
    states = []
    for i in range(n):
        row = {**rows[i % len(rows)], "id": f"bench-{i}"}
        seed, reason, _ = evol.seed_from_row(row, cfg)
        assert reason is None
        states.append(evol.plan_conversation(seed, cfg))
    return states


def direct(states: list[dict], client: llm.LlmClient, cfg, batch: int) -> tuple[float, int]:
    """Seconds and calls to take every conversation through evolve, turns and judge, batch by batch."""
    calls, start = 0, time.perf_counter()
    for first in range(0, len(states), batch):
        active = list(states[first:first + batch])
        while True:
            pending = [(i, *evol.next_request(s, cfg)) for i, s in enumerate(active) if s is not None]
            pending = [(i, step, request) for i, step, request in pending if request is not None]
            if not pending:
                break
            answers = client.complete([request for _, _, request in pending])
            calls += len(pending)
            for (i, step, _), answer in zip(pending, answers, strict=True):
                state, reason, _ = evol.apply_answer(active[i], step, answer.text, answer.finish_reason, cfg)
                active[i] = None if reason or answer.error else state
    return time.perf_counter() - start, calls


def through_pipeline(states: list[dict], config) -> float:
    langs = tuple(languages.get(code) for code in ("tel", "hin", "jpn", "spa"))
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        with beam.Pipeline(runner="FnApiRunner") as p:
            records = p | beam.Create(states)
            for stage in LLM_STAGES:
                records = records | f"Spread{stage.name}" >> beam.Reshuffle()
                records = (records | stage.name.title() >> stage.transform(Context(config, langs, cache))).records
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=64)
    args = ap.parse_args()
    config = config_mod.load("demo")
    cfg = config.evol
    model = tiny_models.resolve(config.llm.model)
    server = llm.VllmServer(str(ROOT / config.llm.server_python), model, config.llm.server_args,
                            config.llm.server_env, config.llm.startup_timeout_s).start()
    try:
        llm_cfg = dataclasses.replace(config.llm, endpoint=server.base_url)
        client = llm.LlmClient(server.base_url, model, concurrency=llm_cfg.concurrency)
        states = planned(2 * args.conversations, cfg)
        direct(planned(8, cfg), client, cfg, llm_cfg.records_per_batch)  # warm up
        half = states[:args.conversations]
        seconds, calls = direct(half, client, cfg, llm_cfg.records_per_batch)
        served = dataclasses.replace(config, llm=llm_cfg)
        marginal = through_pipeline(states, served) - through_pipeline(half, served)
    finally:
        server.stop()
    rate_direct, rate_pipeline = len(half) / seconds, len(half) / marginal
    print(f"\n{len(half)} conversations, {calls} calls (direct), tiny Llama on CPU, "
          f"concurrency {llm_cfg.concurrency}, {llm_cfg.records_per_batch} conversations a batch")
    print("| evol generation (evolve, turns, judge) | conversations/s |")
    print("|---|---:|")
    print(f"| direct (same requests, same client, straight to the server) | {rate_direct:.2f} |")
    print(f"| through the pipeline (Beam FnApiRunner, marginal 2N - N) | {rate_pipeline:.2f} |")
    print(f"\npipeline / direct: {rate_pipeline / rate_direct:.2f}")


if __name__ == "__main__":
    main()
