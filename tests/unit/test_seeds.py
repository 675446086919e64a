"""Seed rows -> languages (transforms/sources/seeds.py)."""

import gzip
import json

import pytest

from transforms.sources import seeds
from transforms.sources.cc100 import InputError


def test_a_shared_file_row_goes_to_its_own_language_if_the_run_asks_for_it():
    assert seeds.assign({"lang": "tel"}, None, {"tel", "hin"}) == ("tel", None)
    assert seeds.assign({"lang": "jpn"}, None, {"tel"}) == (None, "other_language")
    assert seeds.assign({"lang": "xx-bogus"}, None, {"tel"}) == (None, "seed_lang_unknown")
    assert seeds.assign({}, None, {"tel"}) == (None, "seed_missing_field")


def test_a_lang_file_row_goes_to_the_file_language_whatever_it_says():
    assert seeds.assign({"lang": "tel"}, "tel", {"tel"}) == ("tel", None)
    assert seeds.assign({}, "tel", {"tel"}) == ("tel", None)
    assert seeds.assign({"lang": "hin"}, "tel", {"tel", "hin"}) == ("tel", seeds.SEED_LANG_MISMATCH)


def test_every_row_of_a_lang_file_comes_with_its_source(tmp_path):
    path = tmp_path / "tel.jsonl"
    path.write_text(json.dumps({"instruction": "i", "response": "r"}) + "\nnot json\n\n"
                    + json.dumps({"instruction": "i", "response": "r", "lang": "hin"}) + "\n")
    (a, b, c) = list(seeds.read_seeds(("tel", str(path)), ["tel", "hin"]))
    assert a == ("tel", {"fields": {"instruction": "i", "response": "r", "lang": "tel"},
                         "source": {"name": "seeds", "kind": "jsonl", "file": str(path), "row": 0}})
    assert b[1]["reason"] == "invalid_json" and b[1]["source"]["row"] == 1
    assert c[1]["reason"] == seeds.SEED_LANG_MISMATCH and c[1]["source"]["row"] == 3


def test_a_template_without_lang_is_one_shared_file(tmp_path):
    (tmp_path / "all.jsonl").write_text("{}\n")
    (tmp_path / "tel.jsonl").write_text("{}\n")
    shared = str(tmp_path / "all.jsonl")
    assert seeds.seed_files(shared, {"tel": shared, "hin": shared}) == [(None, shared)]
    per_lang = str(tmp_path / "{lang}.jsonl")
    assert seeds.seed_files(per_lang, {"tel": str(tmp_path / "tel.jsonl"), "hin": str(tmp_path / "hin.jsonl")}) == [
        ("tel", str(tmp_path / "tel.jsonl"))]


def test_every_row_of_a_shared_file_is_a_seed_or_a_reject_of_the_first_language(tmp_path):
    """Issue 28: rows of no language (none, an unknown one, not JSON) are rejects under the
    run's first language, with their reasons; only another language's rows are not this run's."""
    path = tmp_path / "all.jsonl"
    lines = [json.dumps({"instruction": "i", "response": "r", "lang": "hin"}),
             json.dumps({"instruction": "i", "response": "r"}),
             json.dumps({"instruction": "i", "response": "r", "lang": "xx-bogus"}),
             "not json",
             json.dumps({"instruction": "i", "response": "r", "lang": "jpn"}),
             json.dumps({"instruction": "i", "response": "r", "lang": " tel "})]
    path.write_text("\n".join(lines) + "\n")
    got = [(lang, item["source"]["row"], item.get("reason"), item.get("detail"))
           for lang, item in seeds.read_seeds((None, str(path)), ["tel", "hin"])]
    assert got == [("hin", 0, None, None),
                   ("tel", 1, "seed_missing_field", {"field": "lang"}),
                   ("tel", 2, "seed_lang_unknown", {"lang": "xx-bogus"}),
                   ("tel", 3, "invalid_json", None),
                   ("tel", 5, None, None)]


def test_a_cut_seed_archive_keeps_the_rows_before_the_break(tmp_path):
    rows = [{"instruction": f"ప్రశ్న {i}", "response": f"సమాధానం {i} " * 20, "lang": "tel"} for i in range(3000)]
    data = gzip.compress("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
    path = tmp_path / "all.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    *kept, (lang, cut) = seeds.read_seeds((None, str(path)), ["tel"])
    assert len(kept) > len(rows) // 4
    assert [item["fields"]["instruction"] for _, item in kept] == [r["instruction"] for r in rows[: len(kept)]]
    assert (lang, cut["reason"], cut["source"]["row"]) == ("tel", "input_truncated", len(kept))
    assert cut["detail"]["byte_offset"] > 0 and cut["source"]["file"] == str(path)
    with pytest.raises(InputError, match=f"input file {path} is truncated or corrupt"):
        list(seeds.read_seeds((None, str(path)), ["tel"], strict_input=True))
