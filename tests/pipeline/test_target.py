"""--target N through the command line on real Beam runs of the sample: a toy model stage
(``coin``: keeps a record by a hash of its id, about half, through the model-call cache, so
``run.json`` counts its calls) after the draw, whose declared pass rate (0.9) is too hopeful, so
the run needs more than one tranche. The real stages run the same way (``docs/target.md``;
``benchmarks/target_calls.py`` runs the demo)."""

import dataclasses
import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import pytest

from pipeline.main import main
from pipeline.methods import METHODS, NATURAL
from tests.pipeline.conftest import read_jsonl
from transforms.draw.order import stratified_order, stratum
from transforms.draw.stage import NOT_DRAWN, OVER_TARGET, Cut, not_drawn_line
from transforms.models.generate import draw_task
from transforms.records.cache import CallCache
from transforms.records.shapes import route
from transforms.stages import Stage

LANGS = ("tel", "hin")
TAILS = "coin_tails"


class _Flip(beam.DoFn):
    def __init__(self, cache: str):
        self.cache = cache

    def setup(self):
        self.calls = CallCache(self.cache, "coin", {"coin": 1})

    def process(self, record):
        (heads,) = self.calls.run([record["id"]], lambda ids: [hashlib.sha1(i.encode()).digest()[0] % 2 == 0
                                                                for i in ids])
        yield record, None if heads else TAILS


class Coin(beam.PTransform):
    def __init__(self, cache: str):
        super().__init__()
        self.cache = cache

    def expand(self, records):
        return route(records | "Flip" >> beam.ParDo(_Flip(self.cache)), COIN.name)


COIN = Stage("coin", fingerprint=lambda cfg: {"coin": 1}, report=lambda c: ("coin", ""),
             transform=lambda ctx: Coin(ctx.cache), pass_rate=lambda cfg: 0.9, reasons=(TAILS,))


@pytest.fixture
def coin_method(monkeypatch):
    monkeypatch.setitem(METHODS, "natural", dataclasses.replace(NATURAL, stages=(NATURAL.stages[0], COIN)))


def run(out: Path, target: int) -> dict:
    assert main(["--langs", ",".join(LANGS), "--output", str(out), "--target", str(target)]) == 0
    return json.loads((out / "run.json").read_text(encoding="utf-8"))


def stats_of(out: Path, lang: str) -> dict:
    return json.loads((out / "stats" / f"{lang}.json").read_text(encoding="utf-8"))


def check_identities(out: Path, lang: str) -> dict:
    """CONTRACT.md's identities, with the draw first and the trim last; every selected record
    ends in the data or in one reject line of a later stage."""
    stats = stats_of(out, lang)
    stages = stats["stages"]
    assert list(stages) == ["draw", "coin", "trim"]
    expected_in = stats["selected_records"]
    for name, stage in stages.items():
        assert stage["in"] == expected_in, name
        assert stage["in"] == stage["out"] + sum(stage["rejected"].values()), name
        expected_in = stage["out"]
    records = read_jsonl(out / "data" / lang)
    assert len(records) == stages["trim"]["out"]
    rejects = [r for r in read_jsonl(out / "rejects" / lang) if r["stage"] != "select"]
    assert len(rejects) == sum(sum(s["rejected"].values()) for s in stages.values())
    assert len({r["id"] for r in records} | {r["id"] for r in rejects}) == stats["selected_records"]
    not_drawn = [r for r in rejects if r["reason"] == NOT_DRAWN]
    assert all(r["stage"] == "draw" and "text" not in r and r["source"] for r in not_drawn)  # cheap lines
    assert all(r["stage"] == "trim" and r["text"] for r in rejects if r["reason"] == OVER_TARGET)
    return stats


@pytest.mark.slow
def test_a_target_in_tranches_then_again_then_larger_then_beyond_the_input(coin_method, tmp_path, caplog):
    out = tmp_path / "out"
    first = run(out, 8)
    coin_in = {}
    for lang in LANGS:
        stats = check_identities(out, lang)
        assert stats["stages"]["trim"]["out"] == 8
        assert stats["stages"]["draw"]["out"] < stats["selected_records"]
        coin_in[lang] = stats["stages"]["coin"]["in"]
        assert first["target"][lang]["records"] == 8 and first["target"][lang]["draws"][-1] == coin_in[lang]
    assert any(first["target"][lang]["tranches"] > 1 for lang in LANGS)  # the 0.9 was too hopeful
    # each record was flipped once: the later tranches' repeats came from the cache
    assert first["model_calls"]["coin"]["made"] == sum(coin_in.values())
    tranches = max(first["target"][lang]["tranches"] for lang in LANGS)  # a language done early
    sent = sum(sum(d) + d[-1] * (tranches - len(d)) for d in (first["target"][lang]["draws"] for lang in LANGS))
    assert first["model_calls"]["coin"]["cached"] == sent - sum(coin_in.values())  # goes on, from the cache
    data = {lang: read_jsonl(out / "data" / lang) for lang in LANGS}

    again = run(out, 8)  # the same command: every stage from its checkpoint, no call
    assert again["stages"] == {"reused": ["select", "draw", "coin"], "run": []}
    assert again["model_calls"].get("coin", {}).get("made", 0) == 0
    assert {lang: read_jsonl(out / "data" / lang) for lang in LANGS} == data

    larger = run(out, 12)  # draws from the select checkpoint, flips only the new records
    assert larger["stages"]["reused"] == ["select"]
    for lang in LANGS:
        stats = check_identities(out, lang)
        assert stats["stages"]["trim"]["out"] == 12
    grown = {lang: stats_of(out, lang)["stages"]["coin"]["in"] for lang in LANGS}
    assert larger["model_calls"]["coin"]["made"] == sum(grown.values()) - sum(coin_in.values())

    caplog.set_level(logging.WARNING)
    beyond = run(out, 1000)  # more than the sample gives: all that passed, and a warning
    for lang in LANGS:
        stats = check_identities(out, lang)
        assert stats["stages"]["draw"]["rejected"].get(NOT_DRAWN, 0) == 0
        assert stats["stages"]["trim"]["out"] == stats["stages"]["coin"]["out"] < 1000
        assert beyond["target"][lang]["records"] == stats["stages"]["coin"]["out"]
        assert any(f"{lang}: {stats['stages']['coin']['out']} records, " in m and "short of the target of 1000" in m
                   for m in caplog.messages)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Target" in report and "| tel | 1000 |" in report


def test_the_draw_on_beam_takes_the_first_k_of_the_stratified_order():
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    records = [{"id": f"r{i}", "lang": "tel" if i % 3 else "hin", "response": "x" * (i * 37 % 900),
                "source": {"name": "cc100" if i % 5 else "aya"}} for i in range(150)]
    tasks = {"tel": ({"mcq": 1.0, "math": 2.0}, 0), "hin": ({"mcq": 1.0}, 0)}
    tel = [(r["id"], stratum(r, draw_task(r["id"], *tasks["tel"]))) for r in records if r["lang"] == "tel"]
    drawn = set(stratified_order(tel, seed=3)[:17])
    expected = [(r["id"], None if r["lang"] == "hin" or r["id"] in drawn else NOT_DRAWN) for r in records]
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(records) | Cut("draw", NOT_DRAWN, {"tel": 17, "hin": None}, tasks,
                                              {"tel": 3, "hin": 0}, not_drawn_line)
        kept = out.records | "Kept" >> beam.Map(lambda r: (r["id"], None))
        dropped = out.rejects | "Dropped" >> beam.Map(lambda r: (r["id"], r["reason"]))
        assert_that((kept, dropped) | beam.Flatten(), equal_to(expected))


def cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.main", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--target", "0"], "--target must be a positive integer"),
    (["--target", "many"], "--target must be a positive integer"),
    (["--target", "5", "--until", "select"], "not with --until select"),
    (["--target", "5", "--method", "evol"], "--target is not yet supported with --method evol"),
])
def test_a_bad_target_fails_fast_with_one_line(args, message, tmp_path):
    result = cli("--langs", "tel", "--output", str(tmp_path), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_a_target_in_config_that_is_not_a_positive_integer_fails_fast(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("languages: {tel: {target: {records: -2}}}\n", encoding="utf-8")
    result = cli("--langs", "tel", "--output", str(tmp_path), "--config", str(path))
    assert result.returncode == 2 and "target.records must be a positive integer" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_the_dry_run_prices_the_draw_the_target_takes(tmp_path):
    assert main(["--langs", "tel", "--dry-run", "--target", "12", "--output", str(tmp_path)]) == 0
    tel = json.loads((tmp_path / "dryrun.json").read_text(encoding="utf-8"))["languages"]["tel"]
    stages = {s["stage"]: s for s in tel["stages"]}
    assert list(stages) == ["select", "draw", "translate", "generate", "judge", "backtranslate", "qe", "trim"]
    assert tel["target"]["drawn"] == 14 == stages["draw"]["records_out"] == stages["translate"]["records_in"]
    assert stages["draw"]["records_in"] == stages["select"]["records_out"] == tel["target"]["selected"] > 14
    assert stages["trim"]["records_out"] == 12 and tel["target"]["tranches"] == 1
    assert tel["target"]["shortfall"] == 0
