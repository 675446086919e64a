"""A checkpoint shard holds every row it is given, in row groups of ROWS_PER_GROUP, and reads
back as the records written."""

import json

import pyarrow.parquet as pq
import pytest

from transforms.records import checkpoint


def test_a_shard_written_in_several_row_groups_reads_back_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "ROWS_PER_GROUP", 2)
    records = [{"id": f"r{i}", "lang": "tel", "response": "పాఠం " * i} for i in range(5)]
    rows = [(r["id"], json.dumps(r, ensure_ascii=False)) for r in records]
    lang, (kind, path, count) = checkpoint._write_shard((("tel", "records", 3), rows), str(tmp_path), "select", 4)
    assert (lang, kind, count) == ("tel", "records", 5)
    assert path.endswith("/stages/select/tel/records-00003-of-00004.parquet")
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
            str(tmp_path), "generate", {"tel": "fp"}, 2, max_share, inputs)
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
