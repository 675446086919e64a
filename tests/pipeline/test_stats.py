import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.records.shapes import route
from transforms.records.write import DatasetStats


def record(i: int, lang: str = "tel", **fields) -> dict:
    return {"id": f"r{i}", "lang": lang, "response": "x" * 10, "source": {"file": "f", "doc": i, "paragraphs": [0, 0]},
            **fields}


def test_a_stage_tallies_its_own_scores_before_its_threshold():
    results = [
        (record(1, scores={"qe_response": 0.9, "judge": 4}), None),
        (record(2, scores={"qe_response": 0.9, "judge": 1}), "judge_low"),  # scored, then cut
        (record(3, scores={"qe_response": 0.9}), "judge_unparseable"),  # never scored
        (record(4, "hin", scores={"judge": 4}), None),
    ]
    with BeamPipeline(runner="FnApiRunner") as p:
        routed = route(p | beam.Create(results), "judge", scores=("judge",))
        stats = routed.stats | beam.CombinePerKey(sum)
        assert_that(stats, equal_to([
            (("tel", "stages.judge.in"), 3), (("tel", "stages.judge.out"), 1),
            (("tel", "stages.judge.rejected.judge_low"), 1),
            (("tel", "stages.judge.rejected.judge_unparseable"), 1),
            (("tel", "scores.judge.hist.4"), 1), (("tel", "scores.judge.hist.1"), 1),
            (("tel", "scores.judge.sum_x10000"), 50_000),
            (("hin", "stages.judge.in"), 1), (("hin", "stages.judge.out"), 1),
            (("hin", "scores.judge.hist.4"), 1), (("hin", "scores.judge.sum_x10000"), 40_000),
        ]))  # no qe_response: translate produced it
        assert_that(routed.rejects | beam.Map(lambda r: (r["id"], r["reason"])),
                    equal_to([("r2", "judge_low"), ("r3", "judge_unparseable")]), label="Rejects")


def test_dataset_stats_count_lengths_and_tasks_of_final_records():
    records = [
        record(1, instruction="abc", task="mcq"),
        record(2, instruction="abcde", task="math"),
        record(3, "hin"),  # a run that ended before instructions
    ]
    with BeamPipeline(runner="FnApiRunner") as p:
        pairs = p | beam.Create(records) | DatasetStats(["tel", "hin", "jpn"])
        assert_that(pairs, equal_to([
            (("tel", "dataset.records"), 2), (("tel", "sources.cc100.records"), 2),
            (("tel", "dataset.instruction_chars.count"), 2), (("tel", "dataset.instruction_chars.sum"), 8),
            (("tel", "dataset.instruction_chars.sumsq"), 34),
            (("tel", "dataset.response_chars.count"), 2), (("tel", "dataset.response_chars.sum"), 20),
            (("tel", "dataset.response_chars.sumsq"), 200),
            (("tel", "dataset.tasks.mcq"), 1), (("tel", "dataset.tasks.math"), 1),
            (("hin", "dataset.records"), 1), (("hin", "sources.cc100.records"), 1),
            (("hin", "dataset.response_chars.count"), 1), (("hin", "dataset.response_chars.sum"), 10),
            (("hin", "dataset.response_chars.sumsq"), 100),
            (("jpn", "dataset.records"), 0),  # nothing left: the stats say 0
        ]))
