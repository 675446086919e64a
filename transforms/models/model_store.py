"""Model references from config, made loadable on this machine.

A model reference (``translate.model``, ``qe.model``, ``llm.model``) is one of:

- ``tiny:NAME``: a random stand-in built here (``tiny_models``);
- a *staged* model: a directory written by ``python -m pipeline.models stage``, on any Beam
  filesystem (``gs://``, ``s3://``, ``hdfs://``) or a local path (an NFS or gcsfuse mount), with
  ``MANIFEST.json`` (every file's size and SHA-256) written last. It is copied to this
  machine's disk once: every SDK process of the machine shares the copy, a file lock makes one of
  them copy while the others wait, the copy goes to a temporary directory that is checked
  against the manifest and then renamed, and a later use checks every file's size again (a
  truncated or changed copy is copied again). Nothing partial is ever loaded;
- any other local directory (used in place) or a Hugging Face hub id (the library downloads it).

Copies land under ``$NATURAL_INSTRUCT_MODELS`` (default ``~/.cache/natural-instruct/models``).
Copy throughput and time to ready are logged and counted as Beam metrics (namespace ``models``):
a model resolved in a DoFn's ``setup`` (no metrics context there) is counted with the next
model resolved in that process while a bundle runs.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"  # in a staged model's directory, written last
LOCAL_MARKER = ".natural-instruct-copy.json"  # in a local copy: what it was copied from, sizes
COPIES_LOG = "copies.log"  # one line per copy made on this machine, for people and tests
CHUNK = 8 * 1024 * 1024
METRICS_NAMESPACE = "models"
_PENDING: list[tuple[str, str, int]] = []  # (kind, name, value) not yet reported to Beam
_READY: set[str] = set()  # references whose time to ready this process has counted


class ModelStoreError(RuntimeError):
    """A staged model that cannot be copied: no manifest, not enough disk, a corrupt file."""


def cache_root() -> Path:
    return Path(os.environ.get("NATURAL_INSTRUCT_MODELS", Path.home() / ".cache" / "natural-instruct" / "models"))


def open_raw(path: str):
    """A file on any Beam filesystem, its bytes as stored (Beam would otherwise decompress a
    name ending in .gz or .bz2: a model file is copied byte for byte)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def is_remote(ref: str) -> bool:
    """Whether ``ref`` names a path on a Beam filesystem other than the local one."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.get_scheme(ref) is not None


def join(base: str, *parts: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(base, *parts) if is_remote(base) else os.path.join(base, *parts)


def is_staged(ref: str) -> bool:
    """Whether ``ref`` is a staged model directory (remote, or local with a manifest)."""
    if ref.startswith("tiny:"):
        return False
    if is_remote(ref):
        return True
    return os.path.isfile(os.path.join(ref, MANIFEST))


def resolve(ref: str) -> str:
    """A path or hub id the loading code can use, for the model reference ``ref`` (see above)."""
    from transforms.models import tiny_models

    if ref.startswith("tiny:"):
        path = tiny_models.resolve(ref)
    elif is_staged(ref):
        path = local_copy(ref)
    else:
        path = ref
    _report_pending()
    return path


def read_manifest(ref: str) -> dict:
    path = join(ref, MANIFEST)
    try:
        with open_raw(path) as f:
            return json.loads(f.read().decode("utf-8"))
    except Exception as e:  # noqa: BLE001 - any filesystem error: not a usable staged model
        raise ModelStoreError(
            f"{ref} has no readable {MANIFEST} ({e}): a partial or unstaged copy; stage it with "
            "`python -m pipeline.models stage --preset P --to DIR`"
        ) from e


def check_space(ref: str, needed: int, free: int, where: Path) -> None:
    """Fail clearly, before copying, when ``needed`` bytes (plus 1%) do not fit in ``free``."""
    if needed * 1.01 > free:
        raise ModelStoreError(
            f"not enough local disk for model {ref}: {needed / 1e9:.2f} GB needed, "
            f"{free / 1e9:.2f} GB free in {where}; give workers a bigger disk (Dataflow "
            "--disk_size_gb) or set NATURAL_INSTRUCT_MODELS to a larger volume"
        )


def intact(local: Path, manifest_sha: str) -> str | None:
    """Why the local copy ``local`` cannot be used (None: it can): no marker, copied from
    another manifest, or a file whose size changed (a truncated copy)."""
    marker = local / LOCAL_MARKER
    if not marker.is_file():
        return "no complete copy"
    info = json.loads(marker.read_text(encoding="utf-8"))
    if info["manifest_sha256"] != manifest_sha:
        return "the staged model changed"
    for rel, size in info["sizes"].items():
        try:
            actual = (local / rel).stat().st_size
        except OSError:
            return f"{rel} is missing"
        if actual != size:
            return f"{rel} has {actual} bytes, not {size}"
    return None


def local_copy(ref: str) -> str:
    """This machine's verified copy of the staged model ``ref``, made on first use."""
    started = time.monotonic()
    manifest = read_manifest(ref)
    manifest_sha = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    root = cache_root()
    name = ref.rstrip("/").rsplit("/", 1)[-1] or "model"
    key = f"{name}-{hashlib.sha256(ref.encode()).hexdigest()[:12]}"
    local = root / key
    if intact(local, manifest_sha) is None:  # the common case: no lock needed
        _ready(ref, name, started)
        return str(local)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # every process of the machine: one copies, the rest wait
        why = intact(local, manifest_sha)
        if why is not None:
            if local.exists():
                logger.warning("local copy of %s unusable (%s): copying it again", ref, why)
                _remove(local, root)
            for stale in root.glob(f".{key}.partial-*"):  # a copy a killed process left
                shutil.rmtree(stale, ignore_errors=True)
            _copy(ref, manifest, manifest_sha, local, name)
    _ready(ref, name, started)
    return str(local)


def _copy(ref: str, manifest: dict, manifest_sha: str, local: Path, name: str) -> None:
    root = local.parent
    needed = sum(f["size"] for f in manifest["files"])
    check_space(ref, needed, shutil.disk_usage(root).free, root)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{local.name}.partial-"))
    try:
        for entry in manifest["files"]:
            target = tmp / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            digest, size = hashlib.sha256(), 0
            with open_raw(join(ref, entry["path"])) as src, open(target, "wb") as dst:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
            if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
                raise ModelStoreError(
                    f"{ref}/{entry['path']}: copied {size} bytes with SHA-256 {digest.hexdigest()[:12]}, "
                    f"the manifest says {entry['size']} bytes, {entry['sha256'][:12]}: the staged copy "
                    "is damaged or changing; stage it again"
                )
        relocate(tmp, local)
        sizes = {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
        (tmp / LOCAL_MARKER).write_text(json.dumps(
            {"source": ref, "manifest_sha256": manifest_sha, "sizes": sizes}, indent=1), encoding="utf-8")
        os.rename(tmp, local)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = max(time.monotonic() - started, 1e-6)
    rate = needed / seconds / 1e6
    logger.info("copied model %s to %s: %.1f MB in %.1f s (%.1f MB/s)", ref, local, needed / 1e6, seconds, rate)
    with open(root / COPIES_LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps({"source": ref, "local": str(local), "bytes": needed, "seconds": round(seconds, 3),
                              "pid": os.getpid()}) + "\n")
    _count("copies", name, 1)
    _count("copied_bytes", name, needed)
    _count("copy_mb_per_s", name, int(rate))


def relocate(copy: Path, final: Path) -> None:
    """Paths a model names inside itself, made absolute for where it will live. A staged COMET
    checkpoint names its encoder (``hparams.yaml``: ``pretrained_model``) relative to its own
    directory; COMET reads it as a path (``qe.py`` loads with ``reload_hparams``)."""
    import yaml

    hparams = copy / "hparams.yaml"
    if not hparams.is_file():
        return
    data = yaml.safe_load(hparams.read_text(encoding="utf-8"))
    encoder = data.get("pretrained_model") if isinstance(data, dict) else None
    if isinstance(encoder, str) and not os.path.isabs(encoder) and (copy / encoder).is_dir():
        data["pretrained_model"] = str(final / encoder)
        hparams.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _remove(path: Path, root: Path) -> None:
    """Move ``path`` aside (atomic: no process sees half of it), then delete it."""
    trash = Path(tempfile.mkdtemp(dir=root, prefix=".trash-"))
    os.rename(path, trash / path.name)
    shutil.rmtree(trash, ignore_errors=True)


def _ready(ref: str, name: str, started: float) -> None:
    """Time to ready, counted once per process and model (the LLM's is resolved every batch)."""
    if ref not in _READY:
        _READY.add(ref)
        seconds = time.monotonic() - started
        logger.info("model %s ready on local disk after %.1f s", ref, seconds)
        _count("ready_ms", name, int(seconds * 1000))


def _count(kind: str, name: str, value: int) -> None:
    if len(_PENDING) < 10_000:  # outside Beam (calibrate, tests) nothing reports them
        _PENDING.append((kind, name, value))


def _report_pending() -> None:
    """Report the counts kept so far to Beam, when a bundle is running (not in ``setup``)."""
    from apache_beam.metrics.metric import Metrics
    from apache_beam.runners.worker.statesampler import get_current_tracker

    if not _PENDING or get_current_tracker() is None:
        return
    while _PENDING:
        kind, name, value = _PENDING.pop(0)
        if kind in ("ready_ms", "copy_mb_per_s"):
            Metrics.distribution(METRICS_NAMESPACE, f"{kind}.{name}").update(value)
        else:
            Metrics.counter(METRICS_NAMESPACE, f"{kind}.{name}").inc(value)

