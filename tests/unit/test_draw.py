"""The draw of --target: one deterministic, stratified order; tranche sizes; its config."""

import random

import pytest

from pipeline import config as config_mod
from transforms.draw.config import TargetConfig, has_target, parse_target
from transforms.draw.order import allocate, cutoffs, draw_hash, first_draw, next_draw, stratified_order, stratum
from transforms.settings import ConfigError

SIZES = {"cc100|0|mcq": 3, "cc100|100|open_ended": 40, "aya|50|qa_context": 17, "cc100|400|-": 1}


def test_every_prefix_takes_each_stratum_in_proportion_to_within_two_records():
    total = sum(SIZES.values())
    for k in range(total + 1):
        taken = allocate(SIZES, k)
        assert sum(taken.values()) == k
        for name, n in SIZES.items():
            assert abs(taken[name] - k * n / total) < 2, (k, name)


def test_a_larger_draw_holds_the_smaller_one():
    previous = allocate(SIZES, 0)
    for k in range(1, sum(SIZES.values()) + 1):
        taken = allocate(SIZES, k)
        assert all(taken[name] >= previous[name] for name in SIZES)
        previous = taken


def test_cutoffs_draw_the_first_k_of_the_stratified_order():
    rng = random.Random(3)
    items = [(f"id{i}", rng.choice(sorted(SIZES))) for i in range(200)]
    order = stratified_order(items)
    assert sorted(order) == sorted(i for i, _ in items)
    hashes: dict[str, list[int]] = {}
    for record_id, name in items:
        hashes.setdefault(name, []).append(draw_hash(record_id))
    for k in (0, 1, 7, 50, 199, 200, 500):
        limit = cutoffs(hashes, k)
        drawn = {i for i, name in items if draw_hash(i) <= limit[name]}
        assert drawn == set(order[:k])


def test_the_order_is_deterministic_and_another_seed_draws_otherwise():
    items = [(f"id{i}", "cc100|0|-" if i % 3 else "cc100|50|-") for i in range(60)]
    assert stratified_order(items) == stratified_order(list(reversed(items)))
    assert stratified_order(items)[:20] != stratified_order(items, seed=1)[:20]


def test_a_stratum_is_source_length_bin_and_task():
    record = {"id": "x", "response": "a" * 120, "source": {"name": "aya"}}
    assert stratum(record, "mcq") == "aya|100|mcq"
    assert stratum({"id": "y", "response": "b" * 10, "source": {}}) == "cc100|0|-"


def test_the_first_tranche_is_sized_from_the_pass_rates_and_the_margin():
    assert first_draw(12, 0.95, 0.0) == 13
    assert first_draw(12, 0.95, 0.05) == 14
    assert first_draw(100, 1.0, 0.0) == 100  # no rounding up past an exact figure
    assert first_draw(5, 0.5, 0.0) == 10


def test_the_next_tranche_is_sized_from_the_measured_rate_and_stops_when_done():
    assert next_draw(12, 38, 14, 12, 0.05) is None  # reached
    assert next_draw(12, 14, 14, 9, 0.05) is None  # every candidate drawn: a shortfall
    assert next_draw(12, 38, 14, 7, 0.0) == 14 + 10  # 5 more at 7/14
    assert next_draw(12, 20, 14, 7, 0.0) == 20  # never past the candidates
    assert next_draw(12, 100, 10, 0, 0.0) == 20  # nothing passed: twice the draw
    assert next_draw(12, 100, 14, 11, 0.0) == 16  # one more record at 11/14: two drawn


@pytest.mark.parametrize("text", ["0", "-3", "x", "1.5", "", "١٢"])
def test_a_target_that_is_not_a_positive_integer_is_refused(text):
    with pytest.raises(ValueError, match="positive integer"):
        parse_target(text)


def test_a_target_is_a_positive_integer():
    assert parse_target("12") == 12 and parse_target(" 7 ") == 7


@pytest.mark.parametrize("values", [{"records": 0}, {"records": True}, {"records": 1.5}, {"margin": 2.0},
                                    {"draw": -1}])
def test_target_config_checks_itself(values):
    with pytest.raises(ConfigError):
        TargetConfig(**values)


def test_target_in_config_and_per_language(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("target: {records: 20}\nlanguages: {hin: {target: {records: 5}}}\n", encoding="utf-8")
    config = config_mod.load("demo", str(path))
    assert config.for_lang("tel").target.records == 20 and config.for_lang("hin").target.records == 5
    assert has_target(config) and not has_target(config_mod.load("demo"))
    path.write_text("languages: {hin: {target: {records: 0}}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="languages.hin.*target.records must be a positive integer"):
        config_mod.load("demo", str(path))


def test_the_command_line_target_is_the_runs_and_a_languages_own_wins(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("languages: {hin: {target: {records: 5}}}\n", encoding="utf-8")
    config = config_mod.with_target(config_mod.load("demo", str(path)), 12)
    assert config.for_lang("tel").target.records == 12 and config.for_lang("hin").target.records == 5
    drawn = config_mod.with_draws(config, {"tel": 14, "hin": 6})
    assert drawn.for_lang("tel").target.draw == 14 and drawn.for_lang("hin").target == TargetConfig(5, draw=6)
