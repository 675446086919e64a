"""``target`` in config: the final records a language ends with (``--target N``). Light: no
Beam, so ``pipeline/config.py`` composes it without importing the engine (``stage.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from transforms.settings import check


@dataclass(frozen=True)
class TargetConfig:
    """``target`` in config (per language under ``languages.<code>.target``): how many final
    records a language ends with. ``records`` None: no target (every selected record goes
    through every stage, no draw)."""

    records: int | None = None
    # drawn over what the pass rates predict, as a share: spares a second tranche when the
    # rates run a little low, at the price of records trimmed (over_target)
    margin: float = 0.05
    seed: int = 0  # of the draw's hash: another seed, another (equally stratified) draw
    # the tranche's draw size: set by the run (pipeline/ops/tranches.py) for each tranche,
    # not by hand; None: every selected record
    draw: int | None = None

    def __post_init__(self):
        for key in ("records", "draw"):
            value = getattr(self, key)
            check(value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0),
                  f"target.{key} must be a positive integer, got {value!r}")
        check(0 <= self.margin <= 1, f"target.margin must be between 0 and 1, got {self.margin!r}")


def parse_target(text: str) -> int:
    """``--target``'s value as a positive integer; ValueError (its one line) otherwise."""
    text = str(text).strip()
    if not text.isdecimal() or not text.isascii() or int(text) == 0:
        raise ValueError(f"--target must be a positive integer (the final records a language ends with), got {text!r}")
    return int(text)


def has_target(config) -> bool:
    """Whether any language of ``config`` (a ``pipeline.config.Config``) has a target."""
    return config.target.records is not None or any(
        config.for_lang(code).target.records is not None for code in config.languages)
