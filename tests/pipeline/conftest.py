import json
import os
from pathlib import Path

import pytest

from pipeline.main import main

SAMPLE_LANGS = ("tel", "hin", "jpn", "spa")


def read_jsonl(directory: Path) -> list[dict]:
    return [
        json.loads(line)
        for part in sorted(directory.glob("part-*.jsonl"))
        for line in part.read_text(encoding="utf-8").splitlines()
    ]


def load_with_datasets(out: Path, lang: str, cache: Path):
    """``OUT/data/{lang}`` as the Hugging Face ``datasets`` JSON loader reads it (a test
    dependency: chat-format trainers load data this way)."""
    import datasets

    return datasets.load_dataset("json", data_files=str(out / "data" / lang / "*.jsonl"), split="train",
                                 cache_dir=str(cache))


def run_select(out: Path, *extra: str, langs=SAMPLE_LANGS) -> Path:
    code = main(["--langs", ",".join(langs), "--output", str(out), "--until", "select", *extra])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> Path:
    """The select stage on the bundled sample, all four languages, one worker."""
    return run_select(tmp_path_factory.mktemp("select"))


def require_vllm_env(python: Path) -> None:
    """Tests that start a vLLM server need its environment: missing, it fails under CI (where
    `make test` builds it) and skips elsewhere."""
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail(".venv-vllm is missing: `make test` builds it (make vllm-env)")
        pytest.skip("no vLLM environment: run `make vllm-env`")
