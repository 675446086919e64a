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
    """A bad config value. ``key``: the field it is about, for ``pipeline/config.py``'s
    ``build`` to name (``config.judge.min_score``)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a numeric setting may take: ``low`` .. ``high``, either end open or absent."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is out of range (timeouts: > 0)

    def __contains__(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"


COUNT = Range(1)  # batch sizes, concurrency, n-gram lengths
NON_NEGATIVE = Range(0)  # retries, seeds, caps where 0 means none allowed
POSITIVE = Range(0, low_open=True)  # timeouts, ratios of lengths
SHARE = Range(0, 1)  # probabilities, COMET scores, shares of a text
JUDGE_SCORE = Range(0, 5)  # the judges' scales (prompts/files/judge@*, conversation_judge@*)


def check_ranges(section: Any, **ranges: Range) -> None:
    """Each named field of ``section`` is None (a check turned off) or within its range, or a
    ``ConfigError`` names the field."""
    for key, allowed in ranges.items():
        value = getattr(section, key)
        if value is not None and value not in allowed:
            raise ConfigError(f"must be {allowed}, got {value!r}", key)


def check_order(section: Any, low: str, high: str) -> None:
    """Fields ``low`` <= ``high`` of ``section`` (either None: nothing to compare)."""
    a, b = getattr(section, low), getattr(section, high)
    if a is not None and b is not None and a > b:
        raise ConfigError(f"must be <= {high} ({b!r}), got {a!r}", low)


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


def check(ok: bool, message: str, key: str | None = None) -> None:
    """Raise ``ConfigError(message)`` unless ``ok``: the one line a ``__post_init__`` check is."""
    if not ok:
        raise ConfigError(message, key)
