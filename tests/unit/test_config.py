import pytest

from pipeline import config


@pytest.mark.parametrize("preset", config.PRESETS)
def test_every_preset_loads(preset):
    cfg = config.load(preset)
    assert cfg.preset == preset
    for code in cfg.languages:
        cfg.for_lang(code)


def test_language_overrides_apply_to_that_language_only():
    cfg = config.load("demo")
    assert cfg.for_lang("jpn").select.fragment.min_chars < cfg.select.fragment.min_chars
    assert cfg.for_lang("spa").select.fragment == cfg.select.fragment


def test_user_file_merges_over_the_preset(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("select:\n  lid: {min_confidence: 0.9}\n  filters: {max_urls: null}\n")
    cfg = config.load("demo", str(f))
    assert cfg.select.lid.min_confidence == 0.9
    assert cfg.select.filters.max_urls is None
    assert cfg.select.filters.boilerplate_phrases  # untouched keys keep the preset's values


@pytest.mark.parametrize(
    "text, message",
    [
        ("select:\n  filterz: {}\n", "unknown key"),
        ("select:\n  fragment: {min_chars: many}\n", "expected int"),
        ("languages:\n  xx: {select: {}}\n", "unknown language"),
        ("- a list\n", "mapping"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises((config.ConfigError, ValueError), match=message):
        config.load("demo", str(f))


def test_unknown_preset():
    with pytest.raises(config.ConfigError, match="unknown preset"):
        config.load("huge")


@pytest.mark.parametrize("preset", config.PRESETS)
def test_every_preset_names_its_models_and_sane_thresholds(preset):
    import prompts

    cfg = config.load(preset)
    assert cfg.translate.model and cfg.qe.model and cfg.llm.model
    for minimum in (cfg.qe.min_response, cfg.qe.min_instruction):
        assert minimum is None or 0.0 <= minimum <= 1.0
    assert cfg.judge.min_score is None or 0 <= cfg.judge.min_score <= 5
    assert cfg.generate.tasks and all(w > 0 for w in cfg.generate.tasks.values())
    for name in [*cfg.generate.tasks, cfg.judge.prompt]:
        prompts.load(name)


def test_paper_preset_is_the_method_at_full_scale():
    cfg = config.load("paper")
    assert cfg.translate.model == "facebook/nllb-200-3.3B"
    assert cfg.llm.model == "meta-llama/Meta-Llama-3-70B-Instruct"
    assert cfg.qe.model == "Unbabel/wmt23-cometkiwi-da-xl"
    assert (cfg.judge.min_score, cfg.qe.min_response, cfg.qe.min_instruction) == (3, 0.7, 0.7)
    assert "--tensor-parallel-size" in cfg.llm.server_args


def test_demo_runs_on_local_stand_ins():
    cfg = config.load("demo")
    assert all(m.startswith("tiny:") for m in (cfg.translate.model, cfg.qe.model, cfg.llm.model))


@pytest.mark.parametrize(
    "text, key, message",
    [
        ("judge: {min_score: 7}", "config.judge.min_score", "must be in [0, 5], got 7"),
        ("judge: {min_score: -1}", "config.judge.min_score", "got -1"),
        ("evol: {judge_min_score: 6}", "config.evol.judge_min_score", "in [0, 5]"),
        ("qe: {min_response: 1.5}", "config.qe.min_response", "in [0, 1], got 1.5"),
        ("qe: {min_instruction: -0.5}", "config.qe.min_instruction", "in [0, 1], got -0.5"),
        ("select: {fragment: {min_chars: 3000, max_chars: 2500}}", "config.select.fragment.min_chars",
         "must be <= max_chars (2500), got 3000"),
        ("select: {lid: {min_confidence: 2}}", "config.select.lid.min_confidence", "in [0, 1]"),
        ("select: {filters: {max_symbol_ratio: 1.2}}", "config.select.filters.max_symbol_ratio", "in [0, 1]"),
        ("select: {dedup: {threshold: 0}}", "config.select.dedup.threshold", "in (0, 1]"),
        ("select: {dedup: {bands: 8, min_band_matches: 9}}", "config.select.dedup.min_band_matches", "<= bands"),
        ("select: {read: {max_documents: 0}}", "config.select.read.max_documents", ">= 1"),
        ("llm: {retries: -1}", "config.llm.retries", "must be >= 0, got -1"),
        ("llm: {concurrency: 0}", "config.llm.concurrency", "must be >= 1, got 0"),
        ("llm: {records_per_batch: 0}", "config.llm.records_per_batch", ">= 1"),
        ("llm: {timeout_s: -5}", "config.llm.timeout_s", "must be > 0, got -5"),
        ("llm: {timeout_s: 0}", "config.llm.timeout_s", "> 0"),
        ("llm: {startup_timeout_s: 0}", "config.llm.startup_timeout_s", "> 0"),
        ("llm: {backoff_s: -1}", "config.llm.backoff_s", ">= 0"),
        ("translate: {records_per_batch: 0}", "config.translate.records_per_batch", ">= 1"),
        ("translate: {num_beams: 0}", "config.translate.num_beams", ">= 1"),
        ("qe: {batch_size: 0}", "config.qe.batch_size", ">= 1"),
        ("generate: {top_p: 0}", "config.generate.top_p", "in (0, 1]"),
        ("generate: {max_tokens: 0}", "config.generate.max_tokens", ">= 1"),
        ("generate: {tasks: {open_ended@2: 0}}", "config.generate.tasks", "one at least > 0"),
        ("cost: {judge_pass_rate: 1.5}", "config.cost.judge_pass_rate", "in [0, 1]"),
        ("max_transient_error_share: 2", "config.max_transient_error_share", "in [0, 1]"),
        ("languages: {tel: {judge: {min_score: 9}}}", "config.languages.tel.judge.min_score", "in [0, 5]"),
    ],
)
def test_an_out_of_range_setting_names_its_key(tmp_path, text, key, message):
    f = tmp_path / "c.yaml"
    f.write_text(text + "\n")
    with pytest.raises(config.ConfigError) as failure:
        config.load("demo", str(f))
    assert str(failure.value).startswith(f"{key}: "), str(failure.value)
    assert message in str(failure.value)


@pytest.mark.parametrize("text", [
    "judge: {min_score: 0}", "judge: {min_score: 5}", "judge: {min_score: null}", "qe: {min_response: 0.0}",
    "qe: {min_instruction: 1.0}", "select: {fragment: {min_chars: 100, max_chars: 100}}", "llm: {retries: 0}",
    "max_transient_error_share: null",
])
def test_the_ends_of_each_range_are_allowed(tmp_path, text):
    f = tmp_path / "c.yaml"
    f.write_text(text + "\n")
    config.load("demo", str(f))
