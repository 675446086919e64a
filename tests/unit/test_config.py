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
