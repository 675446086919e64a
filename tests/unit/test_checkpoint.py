"""A checkpoint shard holds every row it is given, in row groups of ROWS_PER_GROUP, and reads
back as the records written."""

import json

import pyarrow.parquet as pq

from transforms import checkpoint


def test_a_shard_written_in_several_row_groups_reads_back_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "ROWS_PER_GROUP", 2)
    records = [{"id": f"r{i}", "lang": "tel", "response": "పాఠం " * i} for i in range(5)]
    rows = [(r["id"], json.dumps(r, ensure_ascii=False)) for r in records]
    lang, (kind, path, count) = checkpoint._write_shard((("tel", "records", 3), rows), str(tmp_path), "select", 4)
    assert (lang, kind, count) == ("tel", "records", 5)
    assert path.endswith("/stages/select/tel/records-00003-of-00004.parquet")
    assert pq.ParquetFile(path).num_row_groups == 3
    assert list(checkpoint._read_rows(path)) == records
