"""Progress for people at a terminal: each process counts what its stages have done and logs
a line per stage now and then (Beam's metrics counters carry the same counts on Dataflow and
Flink, see ``records.Tallied``)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from transforms.records import counts

progress_log = logging.getLogger("pipeline.progress")

PROGRESS_EVERY_S = 10.0  # at most one progress line per stage this often, per process
FEED_EVERY_S = 1.0  # a bundle hands its counts so far to PROGRESS at most this often


class Progress:
    """This process's records done per stage, logged (``pipeline.progress``, INFO) at most
    every ``every_s`` seconds, one line per stage that moved since the last line: a local run
    shows how far it is without a line per record or per bundle. Thread-safe, since runners
    run bundles on several threads. A stage's rate is over the time since the last line, or
    since the stage's first bundle started if that is later."""

    def __init__(self, every_s: float = PROGRESS_EVERY_S, clock=time.monotonic):
        self.every_s, self.clock = every_s, clock
        self.lock = threading.Lock()
        self.started: dict[str, float] = {}  # stage -> when its first bundle started
        self.done: dict[str, list[int]] = {}  # stage -> [in, out]
        self.at_last_line: dict[str, int] = {}  # stage -> "in" when the last line was logged
        self.last_line: float | None = None

    def start(self, stage: str) -> None:
        """A bundle of ``stage`` starts: the first one starts its clock (and the first of all, ours)."""
        with self.lock:
            self._start(stage, self.clock())

    def _start(self, stage: str, now: float) -> None:
        self.started.setdefault(stage, now)
        if self.last_line is None:
            self.last_line = now

    def add(self, stage: str, tally: Counter) -> None:
        """Count a tally of ``stage``; log if the last lines are ``every_s`` old."""
        n_in, n_out = _progress_counts(stage, tally)
        with self.lock:
            counts = self.done.setdefault(stage, [0, 0])
            counts[0] += n_in
            counts[1] += n_out
            now = self.clock()
            self._start(stage, now)
            if now - self.last_line < self.every_s:
                return
            moved = [s for s, (done, _) in self.done.items() if done != self.at_last_line.get(s, 0)]
            lines = [self._line(s, now) for s in moved]
            self.at_last_line = {s: done for s, (done, _) in self.done.items()}
            self.last_line = now
        for line in lines:
            progress_log.info(line)

    def _line(self, stage: str, now: float) -> str:
        n_in, n_out = self.done[stage]
        elapsed = now - max(self.last_line, self.started[stage])
        rate = (n_in - self.at_last_line.get(stage, 0)) / elapsed if elapsed > 0 else 0.0
        unit = "paragraphs" if stage == "select" else "records"
        return f"progress: {stage} {n_in:,} {unit} in ({rate:,.1f}/s), {n_out:,} out"


def _progress_counts(stage: str, tally: Counter) -> tuple[int, int]:
    """(in, out) of a bundle's tally: paragraphs read and kept for select, records otherwise."""
    if stage == "select":
        done, kept = counts.PARAGRAPHS_READ, counts.PARAGRAPHS_KEPT
    else:
        done, kept = counts.stage(stage, "in"), counts.stage(stage, "out")
    n_in = sum(n for (_, name), n in tally.items() if name == done)
    n_out = sum(n for (_, name), n in tally.items() if name == kept)
    return n_in, n_out


PROGRESS = Progress()
