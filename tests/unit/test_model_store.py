"""Staging a preset's models (``python -m pipeline.models stage``) and the workers' local copy
(``transforms/models/model_store.py``), on the demo preset's tiny models in a local "bucket"."""

import hashlib
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from pipeline import config as config_mod
from pipeline.models import stage
from transforms.models import model_store


@pytest.fixture(scope="module")
def bucket(tmp_path_factory) -> Path:
    """The demo preset's models, staged through the command line's function."""
    to = tmp_path_factory.mktemp("bucket") / "models"
    stage.stage(config_mod.load("demo"), str(to))
    return to


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty per-test local model cache (this machine's disk)."""
    root = tmp_path / "local-models"
    monkeypatch.setenv("NATURAL_INSTRUCT_MODELS", str(root))
    return root


def copies(cache: Path) -> list[dict]:
    log = cache / model_store.COPIES_LOG
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_staging_writes_models_yaml_and_a_manifest_per_model(bucket):
    config = config_mod.load("demo", str(bucket / "models.yaml"))
    assert (config.translate.model, config.qe.model, config.llm.model) == tuple(
        str(bucket / name) for name in ("nllb", "comet", "llama"))
    for name in ("nllb", "comet", "llama"):
        manifest = json.loads((bucket / name / model_store.MANIFEST).read_text())
        assert manifest["source"] == f"tiny:{name}"
        files = {p.relative_to(bucket / name).as_posix() for p in (bucket / name).rglob("*") if p.is_file()}
        assert {f["path"] for f in manifest["files"]} == files - {model_store.MANIFEST}
        for f in manifest["files"]:
            assert (bucket / name / f["path"]).stat().st_size == f["size"]
            assert sha256(bucket / name / f["path"]) == f["sha256"]
    # the COMET checkpoint names its encoder inside its own directory
    assert "pretrained_model: encoder\n" in (bucket / "comet" / "hparams.yaml").read_text()


def test_a_staged_model_is_copied_once_and_a_truncated_copy_is_redone(bucket, cache):
    ref = str(bucket / "nllb")
    local = Path(model_store.resolve(ref))
    assert local.parent == cache and len(copies(cache)) == 1
    assert model_store.resolve(ref) == str(local) and len(copies(cache)) == 1  # verified, reused
    weights = local / "model.safetensors"
    original = sha256(weights)
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    assert model_store.resolve(ref) == str(local)
    assert len(copies(cache)) == 2 and sha256(weights) == original


def test_a_copy_left_half_done_is_never_used(bucket, cache):
    """A process killed mid-copy leaves a partial directory: never at the final path, never
    loaded, removed by the next copy."""
    ref = str(bucket / "llama")
    local = Path(model_store.resolve(ref))
    partial = cache / f".{local.name}.partial-killed"
    partial.mkdir()
    (partial / "config.json").write_text("{")
    os.remove(local / model_store.LOCAL_MARKER)  # as if the rename never happened
    assert model_store.intact(local, "x") == "no complete copy"
    assert model_store.resolve(ref) == str(local)
    assert not partial.exists() and len(copies(cache)) == 2


def test_a_damaged_staged_file_fails_with_its_name_and_leaves_nothing(tmp_path, bucket, cache):
    import shutil

    damaged = tmp_path / "nllb"
    shutil.copytree(bucket / "nllb", damaged)
    config = damaged / "config.json"
    text = config.read_text()
    config.write_text(text.replace('"d_model": 32', '"d_model": 64'))  # same size, other bytes
    assert config.stat().st_size == len(text)
    with pytest.raises(model_store.ModelStoreError, match="config.json: copied .* SHA-256"):
        model_store.resolve(str(damaged))
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".") or "partial" in p.name] == []


def test_not_enough_disk_is_a_clear_error_before_any_copy(tmp_path, bucket, cache):
    import shutil

    huge = tmp_path / "huge"
    shutil.copytree(bucket / "llama", huge)
    manifest = json.loads((huge / model_store.MANIFEST).read_text())
    manifest["files"][0]["size"] = 10**18  # an exabyte: more than any disk here
    (huge / model_store.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(model_store.ModelStoreError, match=r"not enough local disk for model .*huge: 1000000000\.00 GB needed"):
        model_store.resolve(str(huge))
    assert copies(cache) == [] and not any("partial" in p.name for p in cache.iterdir())


def test_a_directory_without_its_manifest_is_not_a_staged_model(tmp_path):
    (tmp_path / "m").mkdir()
    assert not model_store.is_staged(str(tmp_path / "m"))  # a local model dir: used in place
    assert model_store.resolve(str(tmp_path / "m")) == str(tmp_path / "m")
    with pytest.raises(model_store.ModelStoreError, match="no readable MANIFEST.json"):
        model_store.read_manifest(str(tmp_path / "m"))
    assert model_store.is_remote("gs://bucket/models/nllb") and not model_store.is_remote(str(tmp_path))
    assert model_store.resolve("facebook/nllb-200-distilled-600M") == "facebook/nllb-200-distilled-600M"


def _resolve_in_child(ref: str, root: str, queue) -> None:
    os.environ["NATURAL_INSTRUCT_MODELS"] = root
    queue.put(model_store.resolve(ref))


def test_processes_of_one_machine_share_one_copy(bucket, cache):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    children = [ctx.Process(target=_resolve_in_child, args=(str(bucket / "comet"), str(cache), queue))
                for _ in range(3)]
    for child in children:
        child.start()
    paths = {queue.get(timeout=120) for _ in children}
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert len(paths) == 1 and len(copies(cache)) == 1


def test_the_local_comet_copy_loads_its_own_encoder_with_the_same_weights(bucket, cache):
    """The staged checkpoint names its encoder relative to itself; the local copy names its own
    encoder (not the original build's), and COMET loads the same weights and scores."""
    import torch

    from transforms.models.comet import CometScorer
    from transforms.models.config import QeConfig

    staged = CometScorer(QeConfig(model=str(bucket / "comet"), device="cpu"))
    original = CometScorer(QeConfig(model="tiny:comet", device="cpu"))
    local = Path(model_store.resolve(str(bucket / "comet")))
    assert staged.model.hparams.pretrained_model == str(local / "encoder")
    theirs = original.model.state_dict()
    for name, tensor in staged.model.state_dict().items():
        assert torch.equal(tensor, theirs[name]), name
    pairs = [("hello world", "नमस्ते दुनिया"), ("a b c", "x y z")]
    assert staged.score(pairs) == original.score(pairs)


def test_hub_files_staged_are_the_ones_the_loaders_read():
    llama = ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
             "original/consolidated.00.pth", "pytorch_model-00001-of-00002.bin", "tokenizer.json",
             "README.md", ".gitattributes", "generation_config.json"]
    assert stage.wanted(llama) == ["config.json", "generation_config.json", "model-00001-of-00002.safetensors",
                                   "model-00002-of-00002.safetensors", "tokenizer.json"]
    nllb = ["config.json", "pytorch_model.bin", "sentencepiece.bpe.model", "tokenizer.json"]
    assert stage.wanted(nllb) == nllb  # no safetensors: the pickle is the weights
    comet = ["checkpoints/model.ckpt", "hparams.yaml", "LICENSE", "README.md"]
    assert stage.wanted(comet) == ["LICENSE", "checkpoints/model.ckpt", "hparams.yaml"]
    encoder = ["config.json", "model.safetensors", "pytorch_model.bin", "sentencepiece.bpe.model",
               "tokenizer.json", "tokenizer_config.json"]
    assert stage.wanted(encoder, encoder=True) == ["config.json", "sentencepiece.bpe.model", "tokenizer.json",
                                                   "tokenizer_config.json"]
    assert stage.dir_name("meta-llama/Meta-Llama-3-70B-Instruct") == "meta-llama--Meta-Llama-3-70B-Instruct"
    assert stage.dir_name("tiny:nllb") == "nllb"


def test_the_stage_command_line(tmp_path):
    from pipeline.models.__main__ import main

    assert main(["stage", "--preset", "demo", "--to", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "models.yaml").is_file()
    with pytest.raises(SystemExit):
        main(["stage", "--preset", "nope", "--to", str(tmp_path)])


def test_models_staged_in_place_for_an_image_load_where_they_are(tmp_path, cache):
    """--in-place (the Dockerfile's bake): no manifest, so no copy at worker start; COMET's
    encoder path absolute, so it loads from any working directory."""
    from transforms.models.comet import CometScorer
    from transforms.models.config import QeConfig

    path = stage.stage(config_mod.load("demo"), str(tmp_path / "image-models"), in_place=True)
    config = config_mod.load("demo", path)
    assert not list((tmp_path / "image-models").rglob(model_store.MANIFEST))
    assert [model_store.resolve(m) for m in (config.translate.model, config.qe.model)] == [
        config.translate.model, config.qe.model]
    assert f"pretrained_model: {tmp_path / 'image-models' / 'comet' / 'encoder'}\n" in (
        tmp_path / "image-models" / "comet" / "hparams.yaml").read_text()
    assert CometScorer(QeConfig(model=config.qe.model, device="cpu")).score([("a", "b")])[0] is not None
    assert copies(cache) == []


def test_files_are_staged_and_copied_byte_for_byte_even_when_named_like_archives(tmp_path, cache):
    """Beam's FileSystems decompress a *.gz by default: model files must not be touched."""
    import gzip

    model = tmp_path / "model"
    model.mkdir()
    packed = gzip.compress(b"weights" * 1000)
    (model / "extra.bin.gz").write_bytes(packed)
    (model / "config.json").write_text("{}")
    stage.stage_model(str(model), str(tmp_path / "bucket" / "model"))
    assert (tmp_path / "bucket" / "model" / "extra.bin.gz").read_bytes() == packed
    local = Path(model_store.resolve(str(tmp_path / "bucket" / "model")))
    assert (local / "extra.bin.gz").read_bytes() == packed
