"""Stage a preset's models into the user's storage, once, from a machine that may reach the hub.

``stage(config, to)`` copies the model of ``translate``, ``qe`` and ``llm`` to ``TO/NAME/``
through Beam's FileSystems (``gs://``, ``s3://``, ``hdfs://`` or a local directory): a hub id
is downloaded file by file with ``huggingface_hub`` (the token is the library's own:
``HF_TOKEN`` or a cached login; it is never written anywhere), a local directory or a
``tiny:`` stand-in (the demo preset) is copied as it is. Each model's ``MANIFEST.json`` (every
file's path, size and SHA-256) is written after its files, so a model without one is
incomplete; workers copy and verify against it (``transforms/models/model_store.py``). Then
``TO/models.yaml`` points the three sections at the copies: run with ``--config TO/models.yaml``.

A COMET checkpoint names its encoder (``hparams.yaml``: ``pretrained_model``, a hub id such as
``microsoft/infoxlm-large``) and loads that encoder's tokenizer and config at start-up: they
are staged into ``NAME/encoder/`` and ``pretrained_model`` rewritten to ``encoder``, so a
worker never reaches for the hub.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from pipeline.config import Config
from transforms.models import model_store

logger = logging.getLogger(__name__)

SECTIONS = ("translate", "qe", "llm")
MODELS_YAML = "models.yaml"
# Not needed to load with transformers, vLLM or COMET: other frameworks' weights, and Llama's
# ``original/`` (a second, Meta-format copy of every weight).
SKIP = ("original/*", "*.h5", "*.msgpack", "*.ot", "*.onnx", "*.onnx_data", "*.tflite", "*.mlmodel",
        "flax_model*", "tf_model*", "rust_model*", ".gitattributes", "*.md", "*.png", "*.jpg")
# PyTorch pickles, skipped when the same weights come as safetensors
PICKLES = ("*.bin", "*.pth", "*.pt")
# an encoder named by a COMET checkpoint: only what building it without its weights needs
ENCODER_FILES = ("*.json", "*.model", "*.txt", "sentencepiece*", "*.bpe", "*.tiktoken")
CHUNK = 8 * 1024 * 1024


class StageError(Exception):
    pass


def wanted(names: Iterable[str], encoder: bool = False) -> list[str]:
    """The files of a hub repository to stage: what transformers, vLLM or COMET load."""
    names = sorted(names)
    if encoder:
        return [n for n in names if "/" not in n and any(fnmatch.fnmatch(n, p) for p in ENCODER_FILES)]
    safetensors = any(n.endswith(".safetensors") for n in names)
    out = []
    for name in names:
        if any(fnmatch.fnmatch(name, p) for p in SKIP):
            continue
        if safetensors and any(fnmatch.fnmatch(name, p) for p in PICKLES):
            continue
        out.append(name)
    return out


def dir_name(ref: str) -> str:
    """The staged copy's directory name: ``tiny:nllb`` -> ``nllb``, ``org/model`` -> ``org--model``."""
    ref = ref.removeprefix("tiny:").rstrip("/")
    if model_store.is_remote(ref) or os.path.isabs(ref) or os.path.exists(ref):
        return ref.rsplit("/", 1)[-1]
    return ref.replace("/", "--")


class _Writer:
    """Files written to one staged model's directory, with their sizes and checksums."""

    def __init__(self, dest: str):
        self.dest, self.files = dest, []

    def put(self, rel: str, source) -> None:
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems

        digest, size = hashlib.sha256(), 0
        path = model_store.join(self.dest, rel)
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        self.files.append({"path": rel, "size": size, "sha256": digest.hexdigest()})

    def put_file(self, rel: str, path: str) -> None:
        with open(path, "rb") as f:
            self.put(rel, f)

    def put_tree(self, root: Path, prefix: str = "", skip=()) -> None:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if rel not in skip and rel not in (model_store.MANIFEST, model_store.LOCAL_MARKER, "READY"):
                self.put_file(prefix + rel, str(path))

    def finish(self, source: str, revision: str | None) -> None:
        """The manifest, last: its presence says every file above is complete."""
        import io

        manifest = {"source": source, "revision": revision, "files": self.files,
                    "staged": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.put(model_store.MANIFEST, io.BytesIO(json.dumps(manifest, indent=1).encode("utf-8")))


def _hub_files(repo: str, encoder: bool = False) -> tuple[str, list[str]]:
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(repo)
    except Exception as e:  # noqa: BLE001 - no access, gated without a token, no network
        raise StageError(f"cannot list {repo} on the Hugging Face hub ({type(e).__name__}): for a gated "
                         "model accept its licence and set HF_TOKEN (or `huggingface-cli login`)") from e
    return info.sha, wanted([s.rfilename for s in info.siblings], encoder)


def _from_hub(writer: _Writer, repo: str, prefix: str = "", encoder: bool = False) -> str:
    """Download ``repo`` a file at a time (only one file on local disk at once) and write it."""
    from huggingface_hub import hf_hub_download

    revision, files = _hub_files(repo, encoder)
    with tempfile.TemporaryDirectory(prefix="natural-instruct-stage-") as tmp:
        for name in files:
            path = hf_hub_download(repo, name, revision=revision, cache_dir=tmp)
            writer.put_file(prefix + name, path)
            os.remove(os.path.realpath(path))
    return revision


def _stage_comet_encoder(writer: _Writer, source_dir: Path | None) -> None:
    """After a COMET model's files (it has ``hparams.yaml``): its encoder into ``encoder/`` (or
    where it already is inside the model) and ``hparams.yaml`` naming it relative to the model."""
    import io

    import yaml

    staged = {f["path"] for f in writer.files}
    if "hparams.yaml" not in staged:
        return
    with model_store.open_raw(model_store.join(writer.dest, "hparams.yaml")) as f:
        hparams = yaml.safe_load(f.read().decode("utf-8"))
    encoder = hparams.get("pretrained_model")
    if not isinstance(encoder, str) or encoder == "encoder":
        return
    inside = source_dir is not None and os.path.isabs(encoder) and Path(encoder).resolve().is_relative_to(source_dir)
    if inside:
        rel = Path(encoder).resolve().relative_to(source_dir).as_posix()  # staged with the model
    elif os.path.isdir(encoder):
        writer.put_tree(Path(encoder), "encoder/")
        rel = "encoder"
    else:
        _from_hub(writer, encoder, "encoder/", encoder=True)
        rel = "encoder"
    writer.files = [f for f in writer.files if f["path"] != "hparams.yaml"]
    writer.put("hparams.yaml", io.BytesIO(yaml.safe_dump({**hparams, "pretrained_model": rel},
                                                         sort_keys=False).encode("utf-8")))


def stage_model(ref: str, dest: str) -> None:
    """Copy the model ``ref`` (a hub id, a local directory or ``tiny:``) to ``dest``."""
    from transforms.models import tiny_models

    writer = _Writer(dest)
    if ref.startswith("tiny:") or os.path.isdir(ref):
        local = Path(tiny_models.resolve(ref)).resolve()
        writer.put_tree(local)
        _stage_comet_encoder(writer, local)
        writer.finish(ref, None)
    else:
        revision = _from_hub(writer, ref)
        _stage_comet_encoder(writer, None)
        writer.finish(ref, revision)
    logger.info("staged %s: %d files, %.1f MB in %s", ref, len(writer.files),
                sum(f["size"] for f in writer.files) / 1e6, dest)


def models_yaml(config: Config, to: str) -> str:
    """``TO/models.yaml``: the config that points each model section at its copy under ``to``."""
    import yaml

    refs = {section: getattr(config, section).model for section in SECTIONS}
    text = ("# written by python -m pipeline.models: the models of preset "
            f"{config.preset}, staged; use with --preset {config.preset} --config THIS_FILE\n")
    return text + yaml.safe_dump({s: {"model": model_store.join(to, dir_name(ref))} for s, ref in refs.items()},
                                 sort_keys=False)


def stage(config: Config, to: str, in_place: bool = False) -> str:
    """Stage the models of ``config`` under ``to``; returns the path of ``TO/models.yaml``.
    ``in_place`` (a local ``to`` baked into an image): no manifests, so workers load the models
    where they are instead of copying them, and COMET's encoder path made absolute."""
    from apache_beam.io.filesystems import FileSystems

    to = to.rstrip("/")
    if not model_store.is_remote(to):
        os.makedirs(to, exist_ok=True)
        to = os.path.abspath(to)
    elif in_place:
        raise StageError(f"--in-place stages to a local directory, not {to}")
    done = set()
    for section in SECTIONS:
        ref = getattr(config, section).model
        if model_store.is_staged(ref):
            raise StageError(f"{section}.model {ref} is already a staged copy: stage from the preset itself")
        if ref in done:
            continue
        dest = model_store.join(to, dir_name(ref))
        logger.info("staging %s (%s.model) to %s", ref, section, dest)
        stage_model(ref, dest)
        if in_place:
            model_store.relocate(Path(dest), Path(dest))
            os.remove(os.path.join(dest, model_store.MANIFEST))
        done.add(ref)
    path = model_store.join(to, MODELS_YAML)
    with FileSystems.create(path) as f:
        f.write(models_yaml(config, to).encode("utf-8"))
    return path
