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
