"""A record-level cache of model calls, so a re-run never pays twice for an output.

A model's output is keyed by a hash of everything that determines it: the call's parameters
(model, prompt, sampling, seed) and its input. Each batch's new outputs are flushed as one
JSON-lines file under ``{directory}/{namespace}/`` (any Beam filesystem) before the batch's
results move on, so a run killed in the middle of a stage keeps every batch it finished; a
file cut short by the kill loses only its broken last line. Processes never write the same
file, so workers need no locking; each reads the files present when it first looks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

logger = logging.getLogger(__name__)


def digest(value: Any) -> str:
    """A stable hash of plain data (dataclasses included)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_plain)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    raise TypeError(f"cannot hash {type(value).__name__}")


class CallCache:
    """Outputs of one kind of model call (``namespace``, e.g. ``generate``) made with fixed
    ``params``. ``directory`` None disables caching (every call is made)."""

    def __init__(self, directory: str | None, namespace: str, params: Any):
        self.directory, self.namespace = directory, namespace
        self.salt = digest(params)
        self.entries: dict[str, Any] | None = None
        self.hits = Metrics.counter("model_calls", f"{namespace}.cached")
        self.misses = Metrics.counter("model_calls", f"{namespace}.made")

    def key(self, item: Any) -> str:
        return digest([self.salt, item])

    def run(
        self,
        items: Sequence[Any],
        compute: Callable[[list], list],
        keep: Callable[[Any], bool] = lambda value: True,
    ) -> list:
        """The output of each item: cached ones from the cache, the others from one
        ``compute`` call on the misses (in order). New outputs that ``keep`` accepts (e.g.
        not an error) are flushed before returning."""
        if self.directory is None:
            self.misses.inc(len(items))
            return list(compute(list(items)))
        entries = self._load()
        keys = [self.key(item) for item in items]
        missing = [i for i, k in enumerate(keys) if k not in entries]
        computed = list(compute([items[i] for i in missing])) if missing else []
        fresh = {keys[i]: value for i, value in zip(missing, computed, strict=True) if keep(value)}
        self._flush(fresh)
        entries.update(fresh)
        out = [entries.get(k) for k in keys]
        for i, value in zip(missing, computed, strict=True):
            out[i] = value  # also the ones not kept
        self.hits.inc(len(items) - len(missing))
        self.misses.inc(len(missing))
        return out

    def _load(self) -> dict[str, Any]:
        if self.entries is None:
            self.entries = {}
            pattern = f"{self.directory}/{self.namespace}/*.jsonl"
            for meta in FileSystems.match([pattern])[0].metadata_list:
                self.entries.update(read_entries(meta.path))
            logger.info("%s cache: %d outputs from earlier runs", self.namespace, len(self.entries))
        return self.entries

    def _flush(self, fresh: dict[str, Any]) -> None:
        if not fresh:
            return
        path = f"{self.directory}/{self.namespace}/{uuid.uuid4().hex}.jsonl"
        lines = "".join(json.dumps({"k": k, "v": v}, ensure_ascii=False) + "\n" for k, v in fresh.items())
        with FileSystems.create(path) as f:
            f.write(lines.encode("utf-8"))


def read_entries(path: str) -> dict[str, Any]:
    """The entries of one cache file; a line cut short by a killed writer is skipped."""
    entries = {}
    with FileSystems.open(path) as f:
        for line in f.read().decode("utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            entries[entry["k"]] = entry["v"]
    return entries
