"""What every config type shares: the error a bad value raises, and the mark of a field that
changes how fast or where a stage runs, never what it outputs.

Config types live beside the stages they configure (``transforms/*/config.py``) and validate
their own values in ``__post_init__``, so a bad value fails when the config loads, with its key's
name (``pipeline/config.py`` adds where it was). ``pipeline/ops/resume.py`` fingerprints a stage
by its config less its ``operational`` fields.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class ConfigError(ValueError):
    pass


def operational(default: Any = dataclasses.MISSING, **kwargs) -> Any:
    """A dataclass field that changes speed or placement (batch sizes, devices, endpoints,
    timeouts), never output: a stage's fingerprint leaves it out, so changing it redoes nothing."""
    return dataclasses.field(default=default, metadata={"operational": True}, **kwargs)


def semantic(section: Any) -> Any:
    """A config section as plain data without its operational fields, recursively: what a
    stage's fingerprint hashes."""
    if dataclasses.is_dataclass(section):
        return {f.name: semantic(getattr(section, f.name)) for f in dataclasses.fields(section)
                if not f.metadata.get("operational")}
    if isinstance(section, (list, tuple)):
        return [semantic(v) for v in section]
    if isinstance(section, dict):
        return {k: semantic(v) for k, v in section.items()}
    return section


def check(ok: bool, message: str) -> None:
    """Raise ``ConfigError(message)`` unless ``ok``: the one line a ``__post_init__`` check is."""
    if not ok:
        raise ConfigError(message)
