"""Seed rows -> languages (transforms/sources/seeds.py)."""

import json

from transforms.sources import seeds


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
