"""The dry run's arithmetic on fixed inputs, its reading of a sampled file, and the presets'
cost figures against their own deployment settings."""

import dataclasses
import lzma
import random

import pytest

import prompts
from pipeline import config as config_mod
from pipeline.ops import dryrun
from pipeline.ops.dryrun import Engine, Selection
from transforms.stages import PromptChars

# every model at 1,000 tokens/s read and 100 tokens/s generated per GPU, $1 a GPU-hour
FLAT = {"gpu": "test-gpu", "input_tokens_per_s": 1000, "output_tokens_per_s": 100, "usd_per_gpu_hour": 1.0}


def flat_config(**cost) -> config_mod.Config:
    """Default thresholds; 4 characters a token everywhere, 200-character instructions,
    50-token judge outputs, every check keeping half."""
    values = dict(chars_per_token=4.0, english_chars_per_token=4.0, english_chars_ratio=1.0,
                  instruction_en_chars=200.0, judge_output_tokens=50.0, qe_response_pass_rate=0.5,
                  generate_pass_rate=0.5, judge_pass_rate=0.5, qe_instruction_pass_rate=0.5,
                  engines={name: dict(FLAT) for name in dryrun.ENGINES})
    values.update(cost)
    return dataclasses.replace(config_mod.Config(), cost=config_mod.CostConfig(**values))


# 100 records of 400 characters: 100 tokens of R_x and of R_en each; instructions 50 tokens
SELECTION = Selection(paragraphs=200, records=100, response_chars=40_000, note="")
GENERATE = PromptChars(shared=400, own=40)  # 100 tokens cached, 10 computed
JUDGE = PromptChars(shared=800, own=80)  # 200 cached, 20 computed


def fixed_prompts(weights: dict[str, float]) -> PromptChars:
    """GENERATE for generate's task prompts, JUDGE for the judge's one."""
    return JUDGE if list(weights) == [config_mod.JudgeConfig().prompt] else GENERATE


def estimate(config, until="qe"):
    return dryrun.estimate(SELECTION, config, dryrun.engines(config.cost), until, fixed_prompts)


def test_stage_records_tokens_hours_and_dollars():
    stages = {s.stage: s for s in estimate(flat_config())}
    assert list(stages) == ["select", "translate", "generate", "judge", "backtranslate", "qe"]
    assert (stages["select"].records_in, stages["select"].records_out) == (200, 100)
    # translate: NLLB reads 100 x 100 and writes 100 x 100 tokens; COMET reads both sides
    t = stages["translate"]
    assert (t.records_in, t.records_out, t.tokens_in, t.tokens_out) == (100, 50, 30_000, 10_000)
    assert t.gpu_hours == pytest.approx((10_000 / 1000 + 10_000 / 100 + 20_000 / 1000) / 3600)
    # generate: 50 records send prompt (110) + R_en (100), compute 10 + 100, write 50 each
    g = stages["generate"]
    assert (g.records_in, g.records_out, g.tokens_in, g.tokens_out) == (50, 25, 10_500, 2_500)
    assert g.gpu_hours == pytest.approx((5_500 / 1000 + 2_500 / 100) / 3600)
    # judge: 25 records send rubric (220) + I_en (50) + R_en (100), compute 170, write 50
    j = stages["judge"]
    assert (j.records_in, j.records_out, j.tokens_in, j.tokens_out) == (25, 12.5, 9_250, 1_250)
    assert j.gpu_hours == pytest.approx((4_250 / 1000 + 1_250 / 100) / 3600)
    # backtranslate keeps every record; qe reads I_en and I_x
    b, q = stages["backtranslate"], stages["qe"]
    assert (b.records_in, b.records_out, b.tokens_in, b.tokens_out) == (12.5, 12.5, 625, 625)
    assert (q.records_in, q.records_out, q.tokens_in, q.tokens_out) == (12.5, 6.25, 1_250, 0)
    total_hours = (130 + 30.5 + 16.75 + 6.875 + 1.25) / 3600
    assert sum(s.gpu_hours for s in stages.values()) == pytest.approx(total_hours)
    assert all(s.usd == pytest.approx(s.gpu_hours) for s in stages.values())  # $1 a GPU-hour
    assert dryrun.usd_per_million(list(stages.values())) == pytest.approx(total_hours / 100 * 1e6)


def test_price_and_language_lengths_scale_the_estimate():
    pricey = flat_config(engines={name: {**FLAT, "usd_per_gpu_hour": 3.0} for name in dryrun.ENGINES})
    base, dear = estimate(flat_config()), estimate(pricey)
    assert [s.usd for s in dear] == pytest.approx([3 * s.usd for s in base])
    # a dense script: twice the tokens per character of source, English twice as long
    dense = {s.stage: s for s in estimate(flat_config(chars_per_token=2.0, english_chars_ratio=2.0))}
    assert dense["translate"].tokens_in == 100 * (200 + 200 + 200)  # R_x, then R_x + R_en
    assert dense["translate"].tokens_out == 100 * 200
    assert dense["backtranslate"].tokens_out == 12.5 * 50  # I_x: 200 / 2 characters, 2 a token


def test_a_check_without_threshold_keeps_everything():
    config = flat_config()
    config = dataclasses.replace(
        config, qe=dataclasses.replace(config.qe, min_response=None, min_instruction=None),
        judge=dataclasses.replace(config.judge, min_score=None))
    stages = {s.stage: s for s in estimate(config)}
    assert stages["translate"].records_out == 100
    assert stages["judge"].records_out == stages["judge"].records_in == 50  # generate still validates
    assert stages["qe"].records_out == 50


def test_until_stops_the_estimate():
    assert [s.stage for s in estimate(flat_config(), until="generate")] == ["select", "translate", "generate"]
    assert [s.stage for s in estimate(flat_config(), until="select")] == ["select"]


def test_engine_hours_and_cpu_engines():
    engine = Engine(gpu="g", input_tokens_per_s=1000, output_tokens_per_s=100, usd_per_gpu_hour=2.5,
                    gpus_per_replica=8)
    # per-GPU rates: the replica's size changes wall time, not GPU-hours
    assert engine.cost(3_600_000, 360_000) == pytest.approx((2.0, 5.0))
    assert engine.cost(3_600_000, 0) == pytest.approx((1.0, 2.5))
    assert Engine(gpu=None).cost(1e9, 1e9) == (0.0, 0.0)


def test_engines_are_checked():
    ok = {name: dict(FLAT) for name in dryrun.ENGINES}
    with pytest.raises(config_mod.ConfigError, match="must name exactly"):
        dryrun.engines(config_mod.CostConfig(engines={k: v for k, v in ok.items() if k != "llm"}))
    with pytest.raises(config_mod.ConfigError, match="unknown key"):
        dryrun.engines(config_mod.CostConfig(engines={**ok, "llm": {**FLAT, "tokens_per_s": 1}}))
    with pytest.raises(config_mod.ConfigError, match="needs output_tokens_per_s, usd_per_gpu_hour"):
        dryrun.engines(config_mod.CostConfig(engines={**ok, "nllb": {"gpu": "g", "input_tokens_per_s": 1}}))
    with pytest.raises(config_mod.ConfigError, match="needs input_tokens_per_s"):
        dryrun.engines(config_mod.CostConfig(engines={**ok, "llm": {**FLAT, "input_tokens_per_s": 0}}))
    comet = {"gpu": "g", "input_tokens_per_s": 1, "usd_per_gpu_hour": 0}  # owned GPUs cost nothing extra
    assert dryrun.engines(config_mod.CostConfig(engines={**ok, "comet": comet}))
    assert dryrun.engines(config_mod.CostConfig(engines={name: {"gpu": None} for name in dryrun.ENGINES}))


def test_prompt_chars_split_at_the_first_field():
    chars = dryrun.prompt_chars('abc {{"x": 1}} {response}\n<i>{instruction}</i>')
    assert chars == PromptChars(shared=len('abc {"x": 1} '), own=len("\n<i></i>"))


def test_generate_prompt_is_the_task_weighted_mean():
    config = config_mod.Config()
    generate, judge = dryrun.prompt_mean(config.generate.tasks), dryrun.prompt_mean({config.judge.prompt: 1.0})
    tasks = config.generate.tasks
    fixed = {t: len(prompts.load(t).system.format().strip()) + len(prompts.load(t).template.format(response=""))
             for t in tasks}
    expected = sum(fixed[t] * w for t, w in tasks.items()) / sum(tasks.values())
    assert generate.shared + generate.own == pytest.approx(expected)
    assert judge.shared > 1000 > judge.own  # the rubric comes first: the judge's prefix is cached


@pytest.mark.parametrize(
    "documents, file_documents, max_documents, scale",
    [(43, 43, None, 1.0), (10, 43, None, 4.3), (10, 43, 20, 2.0), (20, 43, 20, 1.0), (0, 0, None, 1.0)],
)
def test_file_scale(documents, file_documents, max_documents, scale):
    assert dryrun.file_scale(documents, file_documents, max_documents) == pytest.approx(scale)


def _corpus(n_docs: int) -> bytes:
    """Documents of two paragraphs of random words: evenly compressible, all distinct."""
    rng = random.Random(0)
    words = [f"w{i}" for i in range(5000)]
    return b"".join(
        (" ".join(rng.choices(words, k=12)) + "\n" + " ".join(rng.choices(words, k=12)) + "\n\n").encode()
        for _ in range(n_docs)
    )


@pytest.mark.parametrize("suffix", ["txt", "txt.xz"])
def test_read_file_counts_the_documents_of_a_small_file(tmp_path, suffix):
    data = _corpus(500)
    path = tmp_path / f"small.{suffix}"
    path.write_bytes(lzma.compress(data) if suffix.endswith("xz") else data)
    docs, total = dryrun._read_file("tel", str(path), path.name, path.stat().st_size, 100)
    assert len(docs) == 100 and docs[0].file == path.name and len(docs[0].paragraphs) == 2
    assert total == 500


@pytest.mark.parametrize("suffix", ["txt", "txt.xz"])
def test_read_file_estimates_the_documents_of_a_large_file(tmp_path, suffix, monkeypatch):
    monkeypatch.setattr(dryrun, "COUNT_BYTES", 0)  # every file is "large"
    data = _corpus(8000)
    path = tmp_path / f"big.{suffix}"
    path.write_bytes(lzma.compress(data) if suffix.endswith("xz") else data)
    size = path.stat().st_size
    docs, total = dryrun._read_file("tel", str(path), path.name, size, 1000)
    assert len(docs) == 1000
    # by the share of bytes read: a compressed file's first documents take more than their
    # share (the compressor's dictionary is still empty), so the estimate runs a little low
    assert 8000 * (0.9 if suffix.endswith("xz") else 0.99) <= total <= 8000 * 1.01
    docs, total = dryrun._read_file("tel", str(path), path.name, size, None)
    assert len(docs) == total == 8000


def _accelerator(hint: str) -> tuple[str, int]:
    parts = dict(part.split(":", 1) for part in hint.split(";") if ":" in part)
    return parts["type"], int(parts["count"])


@pytest.mark.parametrize("preset", config_mod.PRESETS)
def test_cost_figures_match_the_presets_deployment(preset):
    """The estimate prices the GPUs the preset asks for: type and count of its accelerator
    hints, and the LLM's tensor-parallel size."""
    config = config_mod.load(preset)
    engine = dryrun.engines(config.cost)
    for name, section in (("nllb", config.translate), ("comet", config.qe), ("llm", config.llm)):
        if section.accelerator:
            assert (engine[name].gpu, engine[name].gpus_per_replica) == _accelerator(section.accelerator)
    args = list(config.llm.server_args)
    tp = int(args[args.index("--tensor-parallel-size") + 1]) if "--tensor-parallel-size" in args else 1
    if engine["llm"].gpu:
        assert engine["llm"].gpus_per_replica == tp
    # the translate stage runs COMET-kiwi on the translate stage's workers
    if config.translate.accelerator and config.qe.accelerator:
        assert _accelerator(config.translate.accelerator)[0] == _accelerator(config.qe.accelerator)[0]


def test_dense_scripts_have_their_own_token_figures():
    config = config_mod.load("paper")
    assert config.for_lang("jpn").cost.chars_per_token < config.for_lang("tel").cost.chars_per_token
    assert config.for_lang("zho").cost.english_chars_ratio > 1
