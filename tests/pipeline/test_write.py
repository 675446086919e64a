import json
import pickle
import re

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamPipeline

from transforms.records import write


def lines_of(directory) -> dict[str, list[dict]]:
    """language -> the records of its part files; fails on any other file left there."""
    out = {}
    for lang_dir in sorted(directory.iterdir()):
        names = sorted(p.name for p in lang_dir.iterdir())
        assert all(name.startswith("part-") and name.endswith(".jsonl") for name in names), names
        out[lang_dir.name] = [json.loads(line) for name in names for line in open(lang_dir / name, encoding="utf-8")]
    return out


def test_every_record_lands_in_its_language_and_every_language_gets_a_part(tmp_path):
    records = [{"id": f"r{i}", "lang": "tel" if i % 3 else "hin", "response": f"పాఠం {i}\nనం"} for i in range(50)]
    with BeamPipeline(runner="FnApiRunner") as p:
        lines = p | beam.Create(records) | beam.Map(write.json_line)
        lines | write.WritePerLang(str(tmp_path), "data", ["tel", "hin", "jpn"])
    found = lines_of(tmp_path / "data")
    assert sorted(found) == ["hin", "jpn", "tel"]
    assert found["jpn"] == []  # no records: one empty part, as Beam's text sink writes
    assert [p.name for p in (tmp_path / "data" / "jpn").iterdir()] == ["part-00000-of-00001.jsonl"]
    for lang in ("tel", "hin"):
        assert sorted(r["id"] for r in found[lang]) == sorted(r["id"] for r in records if r["lang"] == lang)


def test_large_bundles_are_split_into_numbered_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(write, "FLUSH_CHARS", 200)
    records = [{"id": f"r{i}", "lang": "tel", "response": "x" * 50} for i in range(40)]
    with BeamPipeline(runner="FnApiRunner") as p:
        p | beam.Create(records) | beam.Map(write.json_line) | write.WritePerLang(str(tmp_path), "rejects", ["tel"])
    names = sorted(p.name for p in (tmp_path / "rejects" / "tel").iterdir())
    assert len(names) > 1 and names[-1] == write.part_name(len(names) - 1, len(names))
    assert len(lines_of(tmp_path / "rejects")["tel"]) == 40


def test_finalize_drops_failed_attempts_files_and_can_be_retried(tmp_path):
    directory = tmp_path / "data"
    (directory / "tel").mkdir(parents=True)
    kept, orphan = directory / "tel" / ".tmp-a.jsonl", directory / "tel" / ".tmp-b.jsonl"
    kept.write_text('{"id": "1"}\n')
    orphan.write_text('{"id": "2"}\n')  # a failed bundle attempt's file: never emitted
    assert write._finalize(("tel", ["", str(kept)]), str(directory)) == ("tel", 1)
    assert write._finalize(("tel", ["", str(kept)]), str(directory)) == ("tel", 1)  # a retry: nothing left to move
    assert lines_of(directory) == {"tel": [{"id": "1"}]}


def test_a_write_that_fails_names_the_file_in_one_line(tmp_path):
    with pytest.raises(write.WriteError) as failed:
        write.write_text("/dev/full", "x" * 100_000)  # every write there ends in ENOSPC
    assert str(failed.value) == "no space left on device writing /dev/full"
    assert str(pickle.loads(pickle.dumps(failed.value))) == str(failed.value)  # from a worker to the runner
    (tmp_path / "f").write_text("a file, not a directory")
    with pytest.raises(write.WriteError, match=f"^file exists writing {re.escape(str(tmp_path))}/f/x.json$"):
        write.write_json(f"{tmp_path}/f/x.json", {})
