"""``--calibrate``: measure the preset's models on this machine's hardware, for ``--dry-run``.

Selection runs as in ``--dry-run`` (in this process) and keeps the first ``--records``
records of each language; they go through every model stage in order, through the pipeline's
own ``ModelHandler``s (``run_inference`` on batches of the stage's ``records_per_batch``, no
Beam runner, no cache): NLLB (translate), COMET-kiwi (R_x -> R_en), the LLM (generate, judge,
started as the pipeline starts it), NLLB (backtranslate), COMET-kiwi (I_en -> I_x). Per model
it measures what ``--dry-run`` prices with, in the same additive form (seconds = tokens in /
input rate + tokens out / output rate), per device:

- NLLB: input tokens/s from the encoder alone on the same sentences; output tokens/s from the
  rest of the translation time. Tokens are NLLB's own (the translation re-tokenised).
- COMET: input tokens/s (source and translation, COMET's tokenizer), the whole forward pass.
- LLM: input tokens/s from the same requests cut to one output token (prefill), counted by
  the vLLM server's own metrics (prompt tokens not served from its prefix cache); output
  tokens/s from the full requests, less their uncached prompt tokens at that rate.

and each check's pass rate (records kept / records in). The first batch of each model is
run once untimed (weights load, the server starts, kernels compile). The result is
``OUT/calibration.yaml``, a config file whose ``cost`` holds the figures and, under
``cost.measured``, what was measured where: ``--dry-run --config OUT/calibration.yaml`` prices
from it and labels those figures as measured. A stage no record reached is not measured.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
import sys
import time
import traceback
import urllib.request
from collections.abc import Callable, Sequence

from pipeline.config import Config
from transforms.languages import Language

logger = logging.getLogger(__name__)

SAMPLE_DOCUMENTS = 2000  # per file: enough documents for --records records of a language


def select_records(args, langs: Sequence[Language], config: Config) -> list[dict]:
    """The first ``args.records`` records each language's select stage keeps."""
    from pipeline.ops import dryrun

    records = []
    for lang in langs:
        cfg = config.for_lang(lang.code).select
        records += dryrun.sample_records(lang, config.sources, cfg, SAMPLE_DOCUMENTS, langs[0].code)[:args.records]
    return records


def device() -> tuple[str, str]:
    """(the device name as config writes it, as the hardware calls itself)."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return re.sub(r"\s+", "-", name.strip().lower()), name
    return "cpu", f"cpu ({socket.gethostname()})"


def tensor_parallel(server_args: Sequence[str]) -> int:
    """The LLM server's GPUs: its ``--tensor-parallel-size`` (``-tp``), 1 without one."""
    args = list(server_args)
    for i, arg in enumerate(args):
        if arg.startswith("--tensor-parallel-size="):
            return int(arg.split("=", 1)[1])
        if arg in ("--tensor-parallel-size", "-tp") and i + 1 < len(args):
            return int(args[i + 1])
    return 1


def _batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _run(handler, model, items: list) -> tuple[list, float]:
    """The handler on ``items`` in batches of its size, and the seconds it took."""
    started = time.perf_counter()
    out = []
    for batch in _batches(items, handler.batch_elements_kwargs()["max_batch_size"]):
        out += list(handler.run_inference(batch, model))
    return out, time.perf_counter() - started


def _kept(results: list) -> list[dict]:
    return [r[0] for r in results if r[1] is None]


@dataclasses.dataclass
class Measure:
    """One model's work: tokens and seconds, summed over the stages that call it."""

    tokens_in: float = 0.0
    seconds_in: float = 0.0
    tokens_out: float = 0.0
    seconds_out: float = 0.0


def _translate(handler, model, records: list[dict], measure: Measure) -> list:
    """NLLB on ``records``: the encoder alone on the stage's sentences, then the stage."""
    from transforms.languages import LANGUAGES
    from transforms.models import segment
    from transforms.models.translate import sentence_language

    sentences = []
    for record in records:
        src = LANGUAGES[record["lang"]] if handler.to_english else LANGUAGES["eng"]
        if LANGUAGES[record["lang"]].nllb is None:
            continue
        try:
            sentences += [s for p in segment.segments(record[handler.source_field], sentence_language(src),
                                                      model.count_tokens, handler.cfg.max_segment_tokens) for s in p]
        except segment.SegmentTooLong:
            continue
    lengths = [model.count_tokens(s) for s in sentences]
    torch = model.torch
    started = time.perf_counter()
    for group in model.batches(lengths):
        batch = model.tokenizer([sentences[i] for i in group], padding=True, return_tensors="pt")
        with torch.inference_mode():
            model.model.get_encoder()(**{k: v.to(model.device) for k, v in batch.items()})
    if model.device.startswith("cuda"):
        torch.cuda.synchronize()
    encoder_s = time.perf_counter() - started
    results, seconds = _run(handler, model, records)
    measure.tokens_in += sum(lengths)
    measure.seconds_in += encoder_s
    measure.tokens_out += sum(model.count_tokens(r[0][handler.target_field]) for r in results if r[1] is None)
    measure.seconds_out += max(seconds - encoder_s, 0.0)
    return results


def _score(handler, model, results: list, measure: Measure) -> list:
    """COMET on the records of ``results`` not yet rejected; tokens as COMET encodes them."""
    pending = [(r, reason) for r, reason, *_ in results if reason is None]
    _run(handler, model, pending[:1])  # weights load, the first forward pass
    pairs = [{"src": r[handler.source_field], "mt": r[handler.target_field]} for r, _ in pending]
    for chunk in _batches(pairs, model.cfg.batch_size):
        for part in model.model.prepare_for_inference(chunk):
            measure.tokens_in += float(part["attention_mask"].sum())
    scored, seconds = _run(handler, model, results)
    measure.seconds_in += seconds
    return scored


def _vllm_counters(base_url: str) -> dict[str, float]:
    """The server's token counters, summed over its label sets."""
    names = ("vllm:prompt_tokens_total", "vllm:prompt_tokens_cached_total", "vllm:generation_tokens_total")
    totals = dict.fromkeys(names, 0.0)
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=30) as r:
        for line in r.read().decode("utf-8").splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in totals:
                totals[name] += float(line.rsplit(" ", 1)[1])
    return totals


class _FirstTokenOnly:
    """An LLM client whose requests stop after one token: the prompts' cost alone (prefill)."""

    def __init__(self, client):
        object.__setattr__(self, "_client", client)

    def __getattr__(self, name):
        return getattr(self._client, name)

    def __setattr__(self, name, value):  # the handler sets base_url on its client
        setattr(self._client, name, value)

    def complete(self, requests):
        return self._client.complete([dataclasses.replace(q, max_tokens=1) for q in requests])


def _llm(handler, client, records: list[dict], measure: Measure) -> list:
    """An LLM stage: prefill alone, then the stage; tokens from the server's own counters."""
    _run(handler, client, records[:1])  # the server starts (the first time) and warms up
    before = _vllm_counters(client.base_url)
    _, prefill_s = _run(handler, _FirstTokenOnly(client), records)
    middle = _vllm_counters(client.base_url)
    results, seconds = _run(handler, client, records)
    after = _vllm_counters(client.base_url)

    def computed(a, b):  # prompt tokens the server computed, not served from its prefix cache
        return (b["vllm:prompt_tokens_total"] - a["vllm:prompt_tokens_total"]
                - b["vllm:prompt_tokens_cached_total"] + a["vllm:prompt_tokens_cached_total"])

    rate_in = computed(before, middle) / prefill_s if prefill_s else 0.0
    measure.tokens_in += computed(before, middle)
    measure.seconds_in += prefill_s
    measure.tokens_out += after["vllm:generation_tokens_total"] - middle["vllm:generation_tokens_total"]
    measure.seconds_out += max(seconds - (computed(middle, after) / rate_in if rate_in else 0.0), 1e-9)
    return results


def measure(records: list[dict], config: Config) -> tuple[dict[str, Measure], dict[str, tuple[int, int]]]:
    """Every model stage on ``records``: per model its Measure, per check (records in, kept)."""
    from transforms.models.comet import QeHandler
    from transforms.models.generate import GenerateStep, JudgeStep
    from transforms.models.llm_handler import LlmHandler
    from transforms.models.nllb import NllbHandler
    from transforms.models.qe import QE_INSTRUCTION_LOW, QE_RESPONSE_LOW, below_threshold

    m = {"nllb": Measure(), "comet": Measure(), "llm": Measure()}
    checks: dict[str, tuple[int, int]] = {}

    def check(name: str, n_in: int, results: list, apply: Callable | None = None) -> list[dict]:
        results = [apply(r) for r in results] if apply else results
        kept = _kept(results)
        if n_in:
            checks[name] = (n_in, len(kept))
        return kept

    translate = NllbHandler(config.translate, "response", "response_en", True)
    nllb = translate.load_model()
    _run(translate, nllb, records[:1])  # weights load
    comet_handler = QeHandler(config.qe, "response", "response_en", "qe_response")
    comet = comet_handler.load_model()
    translated = _translate(translate, nllb, records, m["nllb"])
    scored = _score(comet_handler, comet, translated, m["comet"])
    kept = check("qe_response_pass_rate", len(records), scored,
                 lambda r: below_threshold(r, "qe_response", config.qe.min_response, QE_RESPONSE_LOW))
    generate = LlmHandler(GenerateStep(config.generate, config.llm.model), config.llm)
    client = generate.load_model()
    kept = check("generate_pass_rate", len(kept), _llm(generate, client, kept, m["llm"]) if kept else [])
    judge = LlmHandler(JudgeStep(config.judge, config.generate.seed, config.llm.model), config.llm)
    kept = check("judge_pass_rate", len(kept), _llm(judge, client, kept, m["llm"]) if kept else [],
                 judge.step.threshold)
    back = NllbHandler(config.translate, "instruction_en", "instruction", False)
    kept = _kept(_translate(back, nllb, kept, m["nllb"])) if kept else []
    qe = QeHandler(config.qe, "instruction_en", "instruction", "qe_instruction")
    check("qe_instruction_pass_rate", len(kept), _score(qe, comet, [(r, None) for r in kept], m["comet"]) if kept else [],
          lambda r: below_threshold(r, "qe_instruction", config.qe.min_instruction, QE_INSTRUCTION_LOW))
    return m, checks


def calibration(config: Config, measures: dict[str, Measure], checks: dict[str, tuple[int, int]],
                where: str, gpu: str) -> dict:
    """The ``cost`` config of the measurements: rates per device, pass rates, and under
    ``measured`` each measured figure with how it was measured."""
    devices = {"nllb": 1, "comet": 1, "llm": tensor_parallel(config.llm.server_args) if gpu != "cpu" else 1}
    engines, measured = {}, {}
    for name, mm in measures.items():
        preset = config.cost.engines[name]
        engine = {"gpu": gpu, "gpus_per_replica": devices[name],
                  "usd_per_gpu_hour": 0.0 if gpu == "cpu" or preset.get("gpu") is None else preset.get("usd_per_gpu_hour")}
        for figure, tokens, seconds in (("input_tokens_per_s", mm.tokens_in, mm.seconds_in),
                                        ("output_tokens_per_s", mm.tokens_out, mm.seconds_out)):
            if tokens > 0 and seconds > 0:
                engine[figure] = round(tokens / seconds / devices[name], 1)
                measured[f"engines.{name}.{figure}"] = f"{where}: {tokens:,.0f} tokens in {seconds:.2f} s"
            elif preset.get(figure) is not None:
                engine[figure] = preset[figure]
        engines[name] = engine
    cost: dict = {"engines": engines}
    for name, (n_in, n_kept) in checks.items():
        cost[name] = round(n_kept / n_in, 4)
        measured[name] = f"{where}: {n_kept} of {n_in} records kept"
    cost["measured"] = measured
    return {"cost": cost}


def write(path: str, preset: str, data: dict, header: str) -> None:
    import yaml
    from apache_beam.io.filesystems import FileSystems

    text = (f"# {header}\n# price a run from it: python -m pipeline.main --dry-run --preset {preset} "
            f"--config {path}\n" + yaml.safe_dump(data, sort_keys=False, width=120))
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))


def run(args, langs: Sequence[Language], config: Config) -> int:
    """``--calibrate``: measure, print a summary, write ``OUT/calibration.yaml``."""
    from apache_beam.io.filesystems import FileSystems

    from transforms.models import llm

    if args.records < 1:
        print("error: --records must be at least 1", file=sys.stderr)
        return 2
    logging.getLogger().setLevel(logging.INFO)
    for chatty in ("apache_beam", "httpx", "openai", "comet", "pytorch_lightning", "lightning"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    records = select_records(args, langs, config)
    gpu, name = device()
    where = (f"--calibrate {time.strftime('%Y-%m-%d', time.gmtime())} on {name}, preset {config.preset}, "
             f"{len(records)} records of {','.join(lang.code for lang in langs)}")
    logger.info("calibrating on %s", where)
    try:
        if not records:
            raise RuntimeError("select kept no record to calibrate on")
        measures, checks = measure(records, config)
    except Exception as e:  # noqa: BLE001 - as a failed run: one line, the traceback in a file
        path = f"{args.output}/error.txt"
        with FileSystems.create(path) as f:
            f.write(traceback.format_exc().encode("utf-8"))
        print(f"error: calibration failed: {str(e).strip()[-500:] or type(e).__name__} (traceback: {path})",
              file=sys.stderr)
        return 1
    finally:
        llm.stop_all()
    data = calibration(config, measures, checks, where, gpu)
    path = f"{args.output}/calibration.yaml"
    write(path, config.preset, data, f"measured by {where}")
    for figure, how in data["cost"]["measured"].items():
        value = data["cost"]
        for part in figure.split("."):
            value = value[part]
        print(f"{figure}: {value} ({how.split(': ', 1)[1]})")
    print(f"\nwritten: {path}")
    return 0
