"""A checkpoint file holds every row it is given, in row groups of ROWS_PER_GROUP, and reads back
as the records written; SaveStage writes a bundle's rows where they are made and renames them
before its marker; the error budget."""

import json

import pyarrow.parquet as pq
import pytest

from transforms.records import checkpoint


def test_a_file_written_in_several_row_groups_reads_back_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "ROWS_PER_GROUP", 2)
    records = [{"id": f"r{i}", "lang": "tel", "response": "పాఠం " * i} for i in range(5)]
    rows = [(r["id"], json.dumps(r, ensure_ascii=False)) for r in records]
    path = str(tmp_path / "records.parquet")
    checkpoint.write_rows(path, "tel", rows)
    assert pq.ParquetFile(path).num_row_groups == 3
    assert list(checkpoint._read_rows(path)) == records


def stage_output(p, in_, llm_errors):
    """A generate stage's output for tel: ``in_`` records, ``llm_errors`` of them rejected."""
    import apache_beam as beam

    from transforms.records.shapes import StageOutput

    records = [{"id": f"r{i}", "lang": "tel"} for i in range(in_ - llm_errors)]
    rejects = [{"id": f"e{i}", "lang": "tel", "reason": "llm_error"} for i in range(llm_errors)]
    stats = [(("tel", "stages.generate.in"), in_), (("tel", "stages.generate.out"), in_ - llm_errors),
             (("tel", "stages.generate.rejected.llm_error"), llm_errors)]
    return StageOutput(p | "R" >> beam.Create(records), p | "J" >> beam.Create(rejects), p | "S" >> beam.Create(stats))


def save(tmp_path, in_, llm_errors, max_share, with_inputs=False):
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline

    with TestPipeline(runner="FnApiRunner") as p:
        inputs = p | "In" >> beam.Create([{"id": f"i{i}", "lang": "tel"} for i in range(in_)]) if with_inputs else None
        stage_output(p, in_, llm_errors) | checkpoint.SaveStage(
            str(tmp_path), "generate", {"tel": "fp"}, max_share, inputs)
    return checkpoint.read_marker(str(tmp_path), "generate", "tel")


def test_transient_errors_within_the_budget_leave_a_marker_that_counts_them(tmp_path):
    marker = save(tmp_path, 100, 5, 0.05)
    assert marker["counts"] == {"records": 95, "rejects": 5}
    assert checkpoint.transient_errors("generate", marker["stats"]) == {"llm_error": 5}


def test_transient_errors_over_the_budget_fail_the_run_and_leave_no_marker(tmp_path):
    with pytest.raises(Exception, match=r"generate \(tel\): 6 of 100 records \(6.0%\) ended in llm_error, "
                                        r"over the error budget of 5%"):
        save(tmp_path, 100, 6, 0.05)
    assert checkpoint.read_marker(str(tmp_path), "generate", "tel") is None
    assert save(tmp_path / "unlimited", 100, 100, None)["counts"] == {"records": 0, "rejects": 100}


def test_given_the_stages_inputs_the_budget_stops_the_run_at_the_first_reject_past_it(tmp_path):
    with pytest.raises(Exception, match=r"generate \(tel\): at least 6 of 100 records \(6.0%\) ended in llm_error"):
        save(tmp_path, 100, 40, 0.05, with_inputs=True)
    assert checkpoint.read_marker(str(tmp_path), "generate", "tel") is None
    assert save(tmp_path / "within", 100, 5, 0.05, with_inputs=True)["counts"] == {"records": 95, "rejects": 5}


def test_saved_rows_are_renamed_before_the_marker_and_a_failed_attempts_files_removed(tmp_path):
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    directory = tmp_path / "stages" / "generate" / "tel"
    directory.mkdir(parents=True)
    (directory / ".tmp-failed-attempt.parquet").write_bytes(b"partial")
    with TestPipeline(runner="FnApiRunner") as p:
        saved = stage_output(p, 50, 3) | checkpoint.SaveStage(str(tmp_path), "generate", {"tel": "fp"})
        assert_that(saved.records, equal_to([("tel", f'{{"id": "r{i}", "lang": "tel"}}') for i in range(47)]),
                    label="Lines")
    marker = checkpoint.read_marker(str(tmp_path), "generate", "tel")
    assert marker["counts"] == {"records": 47, "rejects": 3}
    assert sorted(path.name for path in directory.iterdir()) == sorted([checkpoint.MARKER, *marker["files"]])
    assert all(name.split("-")[0] in checkpoint.KINDS and name.endswith(".parquet") for name in marker["files"])
    rows = [row for name in marker["files"] for row in checkpoint._read_rows(str(directory / name))]
    assert sorted(row["id"] for row in rows) == sorted([f"r{i}" for i in range(47)] + ["e0", "e1", "e2"])
