import logging
from collections import Counter

import pytest

from transforms.records import shapes as records
from transforms.records.progress import Progress
from transforms.records.shapes import RouteResults, score_stats


@pytest.mark.parametrize(
    "name, score, bin_",
    [
        ("qe_response", 0.7, 14),  # floor(0.7 * 20) is 14, not the 13 of 0.7 / 0.05
        ("qe_response", 0.7499, 14),
        ("qe_instruction", 0.0, 0),
        ("qe_instruction", -0.3, 0),  # a random model may score anything: clamped
        ("qe_instruction", 1.0, 20),
        ("qe_instruction", 3.5, 20),
        ("judge", 0, 0),
        ("judge", 5, 5),
    ],
)
def test_scores_fall_in_their_bins(name, score, bin_):
    pairs = dict(score_stats({name: score}, (name,)))
    assert pairs[f"scores.{name}.hist.{bin_}"] == 1
    assert pairs[f"scores.{name}.sum_x10000"] == round(score * 10_000)


def test_only_the_named_scores_present_are_counted():
    scores = {"lid": 0.9, "qe_response": 0.8, "judge": float("nan")}
    assert score_stats(scores, ("judge", "qe_instruction")) == [("scores.judge.invalid", 1)]


def tally(stage: str, done: int, kept: int) -> Counter:
    names = ("paragraphs.read", "paragraphs.kept") if stage == "select" else (f"stages.{stage}.in", f"stages.{stage}.out")
    return Counter({("tel", names[0]): done, ("hin", names[0]): 0, ("tel", names[1]): kept})


def test_progress_logs_at_most_every_interval_and_only_stages_that_moved(caplog):
    now = [100.0]
    progress = Progress(every_s=10, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="pipeline.progress")

    def start_at(t: float, stage: str) -> None:
        now[0] = t
        progress.start(stage)

    def add_at(t: float, stage: str, done: int, kept: int) -> list[str]:
        now[0] = t
        caplog.clear()
        progress.add(stage, tally(stage, done, kept))
        return [r.getMessage() for r in caplog.records]

    start_at(100, "translate")  # the first bundle starts the clock
    assert add_at(104, "translate", 5, 4) == []
    assert add_at(105, "translate", 5, 4) == []
    start_at(106, "select")
    assert add_at(110, "select", 1500, 1200) == [
        "progress: translate 10 records in (1.0/s), 8 out",
        "progress: select 1,500 paragraphs in (375.0/s), 1,200 out",  # over the 4 s it ran
    ]
    assert add_at(119, "translate", 30, 30) == []
    start_at(126, "generate")
    assert add_at(130, "generate", 2, 1) == [
        "progress: translate 40 records in (1.5/s), 38 out",  # 30 in the 20 s since the last line
        "progress: generate 2 records in (0.5/s), 1 out",
    ]
    assert add_at(145, "generate", 0, 0) == []  # nothing moved


def test_a_long_bundle_feeds_progress_as_it_goes_and_counts_each_record_once(monkeypatch):
    progress = Progress(every_s=1000)
    monkeypatch.setattr(records, "PROGRESS", progress)
    monkeypatch.setattr(records, "FEED_EVERY_S", 0.0)  # feed after every record
    route = RouteResults("judge")
    route.start_bundle()
    results = [({"id": "a", "lang": "tel", "scores": {"judge": 4}}, None),
               ({"id": "b", "lang": "tel", "response": "", "source": {}, "scores": {"judge": 1}}, "judge_low")]
    for result in results:
        list(route.process(result))
    assert progress.done == {"judge": [2, 1]}  # before the bundle ends
    list(route.finish_bundle())
    assert progress.done == {"judge": [2, 1]}
