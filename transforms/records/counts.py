"""The counts the stages tally, named in one place.

A count travels as ``((lang, name), n)``: through Beam's shuffle, in a checkpoint marker's
``stats``, as a Beam counter for progress. ``write.build_stats`` sums them per language into
``OUT/stats/{lang}.json``. Every name is built by a function here and read back only here, so a
stage never spells one out, and no other module splits one apart. The names are part of every
checkpoint marker written so far: they keep their spelling.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

# select: paragraphs (a tabular row is one), the records made of them and their lengths
PARAGRAPHS_READ = "paragraphs.read"
PARAGRAPHS_KEPT = "paragraphs.kept"
PARAGRAPHS_REJECTED = "paragraphs.rejected."
SELECTED_RECORDS = "selected_records"
RESPONSE_CHARS = "response_chars."  # .sum, .sumsq, .hist.{bin}
# the evol method's seed rows
SEEDS = "seeds."
SEEDS_READ = "seeds.read"
SEEDS_KEPT = "seeds.kept"
SEEDS_REJECTED = "seeds.rejected."
# per source: read, kept, selected, records, rejected.{reason}
SOURCES = "sources."
# per later stage: in, out, rejected.{reason}, flagged.{check}
STAGES = "stages."
# the records written (``write.dataset_stats``), and the evol method's conversation mix
DATASET = "dataset."
DATASET_RECORDS = "dataset.records"
EVOL = "evol."


def paragraphs_rejected(reason: str) -> str:
    return PARAGRAPHS_REJECTED + reason


def response_chars(what: str) -> str:
    """``sum``, ``sumsq`` or ``hist.{bin}`` of the selected records' lengths."""
    return RESPONSE_CHARS + what


def seeds_rejected(reason: str) -> str:
    return SEEDS_REJECTED + reason


def source(name: str, what: str) -> str:
    """``read``, ``kept``, ``selected`` or ``records`` of source ``name``."""
    return f"{SOURCES}{name}.{what}"


def source_rejected(name: str, reason: str) -> str:
    return source(name, f"rejected.{reason}")


def stage(name: str, what: str) -> str:
    """``in`` or ``out`` of stage ``name``."""
    return f"{STAGES}{name}.{what}"


def stage_rejected(name: str, reason: str) -> str:
    return stage(name, f"rejected.{reason}")


def stage_flagged(name: str, check: str) -> str:
    """A kept record that failed ``check``, a check switched off (its stage only flags it)."""
    return stage(name, f"flagged.{check}")


def score(name: str, what: str) -> str:
    """``invalid``, ``hist.{bin}`` or ``sum_x{scale}`` of score ``name`` (``shapes.score_stats``)."""
    return f"scores.{name}.{what}"


def dataset(what: str) -> str:
    """``records``, ``{field}_chars.{count,sum,sumsq}`` or ``tasks.{task}`` of the records written."""
    return DATASET + what


def evol(what: str) -> str:
    """The conversation mix: ``tasks.``, ``operations.``, ``structures.``, ``turns.``, ``chars.``,
    ``turn_chars.`` (``evol.record_stats``)."""
    return EVOL + what


# --- reading them back --------------------------------------------------------------------------


def prefixed(sums: dict[str, int], prefix: str) -> dict[str, int]:
    """The sums whose name starts with ``prefix``, by the rest of the name, in name order."""
    return {k[len(prefix):]: v for k, v in sorted(sums.items()) if k.startswith(prefix)}


def any_of(sums: Iterable[str], prefix: str) -> bool:
    return any(name.startswith(prefix) for name in sums)


class StageCount(NamedTuple):
    """A stage's count: ``kind`` in, out, rejected or flagged; ``reason`` of the last two."""

    stage: str
    kind: str
    reason: str | None = None


def stage_count(name: str) -> StageCount | None:
    """The stage count a name is, or None."""
    if not name.startswith(STAGES):
        return None
    stage_name, kind, *reason = name[len(STAGES):].split(".", 2)
    return StageCount(stage_name, kind, reason[0] if reason else None)


def source_count(name: str) -> tuple[str, str] | None:
    """(source, what) of a source count (``what``: read, kept, ..., ``rejected.{reason}``), or None."""
    if not name.startswith(SOURCES):
        return None
    source_name, what = name[len(SOURCES):].split(".", 1)
    return source_name, what
