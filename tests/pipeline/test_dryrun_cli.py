"""``--dry-run`` as users run it: the table and the JSON, its time, no model loaded, and the
selection it reports equal to the pipeline's own select stage."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.methods import NATURAL

STAGES = NATURAL.names
from pipeline.main import main
from tests.pipeline.conftest import SAMPLE_LANGS, read_jsonl

ROOT = Path(__file__).resolve().parents[2]
# Importing any of these means a model stage's code ran: a dry run must not.
MODEL_MODULES = ("torch", "transformers", "comet", "vllm", "sentencepiece", "ctranslate2")
# ``python -m pipeline.main`` run by runpy as ``-m`` does, writing the modules it imported
# when it exits: the same command, observed from outside the project's code.
WITH_MODULES = (
    "import atexit, runpy, sys; path = sys.argv.pop(1); "
    "atexit.register(lambda: open(path, 'w').write('\\n'.join(sorted(sys.modules)))); "
    "runpy.run_module('pipeline.main', run_name='__main__', alter_sys=True)"
)


def dry_run(tmp_path, *args, prefix=("-m", "pipeline.main")):
    """The dry run in its own process, with an empty tiny-model cache; (result, seconds)."""
    env = {**os.environ, "NATURAL_INSTRUCT_CACHE": str(tmp_path / "cache")}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *prefix, "--langs", "tel,hin", "--dry-run", *args],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    return result, time.perf_counter() - start


@pytest.mark.parametrize("preset", ["demo", "paper"])
def test_dry_run_prints_the_table_and_writes_json(tmp_path, preset):
    out = tmp_path / "out"
    result, seconds = dry_run(tmp_path, "--output", str(out), "--preset", preset)
    assert result.returncode == 0, result.stderr
    # the issue asks for under 10 s on the sample (measured ~2.5-4 s on a 2-core machine);
    # the bound here leaves room for a loaded CI machine
    assert seconds < 30, f"dry run took {seconds:.1f} s"
    table = result.stdout
    for lang in ("tel", "hin"):
        assert f"{lang}: select run on all 43 documents the run reads (1 file(s))" in table
        for stage in STAGES:
            assert re.search(rf"^{lang}\s+{stage}\s+[\d,]+\s+[\d,]+\s", table, re.MULTILINE), (lang, stage)
    assert re.search(r"^total\s+[\d,]+\s+[\d,]+\s+[\d,]+\s+[\d,]+\s+[\d.,]+\s+[\d.,]+$", table, re.MULTILINE)
    document = json.loads((out / "dryrun.json").read_text())
    assert document["preset"] == preset and list(document["languages"]) == ["tel", "hin"]
    for lang in document["languages"].values():
        assert [s["stage"] for s in lang["stages"]] == list(STAGES)
        assert lang["stages"][0]["records_out"] == lang["selection"]["records"] > 0
    total = document["total"]
    if preset == "paper":
        assert total["usd"] > 0
        assert f"cost per 1M selected fragments: ${total['usd_per_million_fragments']:,.0f}" in table
    else:  # the demo's models run on CPU
        assert total["gpu_hours"] == 0 and "cost per 1M" not in table
    assert not (tmp_path / "cache").exists()  # no tiny model built


def test_dry_run_loads_no_model(tmp_path):
    modules_file = tmp_path / "modules.txt"
    result, _ = dry_run(tmp_path, "--output", str(tmp_path / "out"), "--preset", "paper",
                        prefix=("-c", WITH_MODULES, str(modules_file)))
    assert result.returncode == 0, result.stderr
    modules = set(modules_file.read_text().split())
    assert "fasttext" in modules and "transforms.select.stage" in modules  # selection did run
    loaded = {m.split(".")[0] for m in modules} & set(MODEL_MODULES)
    assert not loaded, f"a dry run imported {sorted(loaded)}"


def test_dry_run_selects_what_the_pipeline_selects(sample_run, tmp_path, capsys):
    """Same paragraphs read, records and response characters as the select stage on Beam."""
    assert main(["--langs", ",".join(SAMPLE_LANGS), "--dry-run", "--output", str(tmp_path)]) == 0
    capsys.readouterr()
    document = json.loads((tmp_path / "dryrun.json").read_text())
    for lang in SAMPLE_LANGS:
        stats = json.loads((sample_run / "stats" / f"{lang}.json").read_text())
        records = read_jsonl(sample_run / "data" / lang)
        selection = document["languages"][lang]["selection"]
        assert selection["paragraphs"] == stats["paragraphs"]["read"]
        assert selection["records"] == stats["selected_records"] == len(records)
        assert selection["response_chars"] == sum(len(r["response"]) for r in records)


def test_a_sample_is_scaled_to_the_input(tmp_path, capsys):
    config = tmp_path / "sample.yaml"
    config.write_text("cost: {sample_documents: 10}\n")
    assert main(["--langs", "tel", "--dry-run", "--output", str(tmp_path), "--config", str(config)]) == 0
    assert "select run on the first 10 documents of each of 1 file(s)" in capsys.readouterr().out
    selection = json.loads((tmp_path / "dryrun.json").read_text())["languages"]["tel"]["selection"]
    # 10 of the file's 43 documents (a small file: its documents are counted)
    assert "scaled by input size to ~43 documents" in selection["note"]
    assert 89 / 2 < selection["paragraphs"] < 89 * 2  # the whole file: 89 paragraphs


def test_until_and_bad_input(tmp_path, capsys):
    assert main(["--langs", "tel", "--dry-run", "--output", str(tmp_path), "--until", "generate"]) == 0
    stages = json.loads((tmp_path / "dryrun.json").read_text())["languages"]["tel"]["stages"]
    assert [s["stage"] for s in stages] == ["select", "translate", "generate"]
    capsys.readouterr()
    assert main(["--langs", "tel", "--dry-run", "--input", str(tmp_path / "none-{lang}.txt")]) == 2
    assert "no input files match" in capsys.readouterr().err
