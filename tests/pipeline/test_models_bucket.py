"""Models from the user's storage, end to end: the demo preset's models staged into a "bucket"
(``python -m pipeline.models stage``, through Beam's FileSystems), the demo chain run with every
model referenced by its bucket path on two worker processes, against a run from the original
paths; a truncated local copy; and no Hugging Face token anywhere in what the job leaves."""

import json
import os
import subprocess
import sys

import pytest

from tests.pipeline.conftest import read_jsonl
from tests.pipeline.test_chain import ROOT, vllm_processes

TOKEN = "hf_PlantedTokenNeverToBeWritten0123456789"
MODELS = ("nllb", "comet", "llama")


def run(args: list[str], env: dict, logs: list[str]) -> None:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    logs += [done.stdout, done.stderr]
    assert done.returncode == 0, done.stderr[-3000:]


def without_model_paths(records: list[dict]) -> list[dict]:
    """Records with provenance.models dropped (it names the model references, which differ)."""
    out = []
    for r in sorted(records, key=lambda r: r["id"]):
        r = {**r, "provenance": {k: v for k, v in r["provenance"].items() if k != "models"}}
        out.append(r)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if not (ROOT / ".venv-vllm" / "bin" / "python").exists():
        pytest.skip("no vLLM environment: run `make vllm-env`")
    tmp = tmp_path_factory.mktemp("bucket-run")
    (tmp / "tmp").mkdir()
    env = {**os.environ, "HF_TOKEN": TOKEN, "NATURAL_INSTRUCT_MODELS": str(tmp / "local-models"),
           "TMPDIR": str(tmp / "tmp")}
    logs: list[str] = []
    bucket = tmp / "bucket" / "models"
    run(["-m", "pipeline.models", "stage", "--preset", "demo", "--to", str(bucket)], env, logs)
    main = ["-m", "pipeline.main", "--langs", "tel"]
    run([*main, "--output", str(tmp / "staged"), "--config", str(bucket / "models.yaml"),
         "--direct_num_workers=2", "--direct_running_mode=multi_processing"], env, logs)
    copies_after_first = (tmp / "local-models" / "copies.log").read_text().splitlines()
    # a local copy truncated (a disk filling up, a copy killed by hand): found and redone
    weights = next((tmp / "local-models").glob("nllb-*")) / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(100)
    run([*main, "--output", str(tmp / "retruncated"), "--config", str(bucket / "models.yaml"),
         "--until", "translate"], env, logs)
    run([*main, "--output", str(tmp / "original")], env, logs)
    return {"tmp": tmp, "bucket": bucket, "logs": logs, "copies_after_first": copies_after_first}


@pytest.mark.slow
def test_each_staged_model_is_copied_once_per_machine(runs):
    """Two worker processes, three models: three copies, counted by Beam metrics (run.json)."""
    bucket = runs["bucket"]
    copied = json.loads((runs["tmp"] / "staged" / "run.json").read_text())["model_copies"]
    sizes = {m: sum(f["size"] for f in json.loads((bucket / m / "MANIFEST.json").read_text())["files"]) for m in MODELS}
    assert copied == {m: {"copies": 1, "copied_bytes": sizes[m]} for m in MODELS}
    assert sorted(json.loads(line)["source"] for line in runs["copies_after_first"]) == sorted(
        str(bucket / m) for m in MODELS)
    # this test's servers only: other sessions on the machine may run their own
    ours = (str(runs["tmp"]), os.environ["NATURAL_INSTRUCT_CACHE"])
    assert [line for line in vllm_processes().splitlines() if any(p in line for p in ours)] == []


@pytest.mark.slow
def test_the_records_equal_those_of_a_run_from_the_original_paths(runs):
    staged = read_jsonl(runs["tmp"] / "staged" / "data" / "tel")
    original = read_jsonl(runs["tmp"] / "original" / "data" / "tel")
    assert staged and without_model_paths(staged) == without_model_paths(original)
    models = staged[0]["provenance"]["models"]
    assert models["translate"] == str(runs["bucket"] / "nllb") and models["generate"] == str(runs["bucket"] / "llama")


@pytest.mark.slow
def test_a_truncated_local_copy_is_detected_and_copied_again(runs):
    tmp = runs["tmp"]
    copied = json.loads((tmp / "retruncated" / "run.json").read_text())["model_copies"]
    assert set(copied) == {"nllb"} and copied["nllb"]["copies"] == 1  # comet's copy was intact
    assert len((tmp / "local-models" / "copies.log").read_text().splitlines()) == 4
    translated = {r["id"]: r["response_en"] for r in read_jsonl(tmp / "retruncated" / "data" / "tel")}
    final = read_jsonl(tmp / "staged" / "data" / "tel")
    assert final and all(translated[r["id"]] == r["response_en"] for r in final)


@pytest.mark.slow
def test_no_token_in_the_bucket_the_output_the_local_copies_or_the_logs(runs):
    token = TOKEN.encode()
    files = [p for p in runs["tmp"].rglob("*") if p.is_file()]
    assert len(files) > 50
    assert [str(p) for p in files if token in p.read_bytes()] == []
    assert not any(TOKEN in log for log in runs["logs"])
