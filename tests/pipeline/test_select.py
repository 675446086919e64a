"""The select stage end to end on the labelled sample (FnApiRunner, real fastText LID)."""

import json
from collections import Counter

import pytest

from tests.pipeline.conftest import SAMPLE_LANGS, read_jsonl, run_select
from tests.quality import quality


@pytest.mark.parametrize("lang", SAMPLE_LANGS)
def test_every_paragraph_is_accounted_for(sample_run, lang):
    stats = json.loads((sample_run / "stats" / f"{lang}.json").read_text())
    records = read_jsonl(sample_run / "data" / lang)
    rejects = read_jsonl(sample_run / "rejects" / lang)
    p = stats["paragraphs"]
    assert p["read"] == p["kept"] + sum(p["rejected"].values()) > 0
    assert p["kept"] == sum(len(r["response"].split("\n")) for r in records)
    assert stats["selected_records"] == len(records) > 0
    spans = Counter()
    for r in rejects:
        first, last = r["source"]["paragraphs"]
        spans[r["reason"]] += last - first + 1
    assert dict(spans) == p["rejected"]
    # every paragraph position appears exactly once across records and rejects
    positions = Counter()
    for r in records + rejects:
        first, last = r["source"]["paragraphs"]
        positions.update((r["source"]["doc"], i) for i in range(first, last + 1))
    assert sum(positions.values()) == p["read"] and max(positions.values()) == 1
    assert stats["config"]["resolved"]["dedup"]["bands"] > 0


@pytest.mark.parametrize("lang", SAMPLE_LANGS)
def test_records_have_the_contract_shape(sample_run, lang):
    for r in read_jsonl(sample_run / "data" / lang):
        assert {"id", "lang", "response", "source"} <= set(r)
        assert r["lang"] == lang and r["source"]["file"] == f"{lang}.txt.xz"
        first, last = r["source"]["paragraphs"]
        assert last - first + 1 == len(r["response"].split("\n"))
    for r in read_jsonl(sample_run / "rejects" / lang):
        assert r["stage"] == "select" and r["reason"] and r["text"] and r["id"]


@pytest.mark.parametrize("lang", SAMPLE_LANGS)
def test_quality_on_the_labelled_sample(sample_run, lang):
    q = quality(sample_run, lang)
    assert q["unlabelled_kept"] == 0
    assert q["junk_share_of_kept"] <= 0.05
    assert q["foreign_kept_share"] <= 0.10
    assert q["max_copies_of_a_group"] == 1  # no duplicate or near-duplicate kept twice
    # Genuine paragraphs are lost only where a near-duplicate copy is kept in their place
    # (which copy survives is a tie for one-character edits); see docs/select.md's table.
    assert q["genuine_80_kept_share"] >= 0.75


def test_genuine_kept_over_all_four_languages(sample_run):
    shares = [quality(sample_run, lang)["genuine_80_kept_share"] for lang in SAMPLE_LANGS]
    assert sum(shares) / len(shares) >= 0.80


def test_fragments_vary_in_length(sample_run):
    sizes = Counter(
        len(r["response"].split("\n")) for lang in SAMPLE_LANGS for r in read_jsonl(sample_run / "data" / lang)
    )
    assert len(sizes) >= 2 and sizes[1] > 0


def test_report_summarises_the_run(sample_run):
    report = (sample_run / "report.md").read_text()
    for lang in SAMPLE_LANGS:
        assert f"| {lang} |" in report


@pytest.mark.slow
def test_two_worker_processes_give_the_same_output(sample_run, tmp_path):
    multi = run_select(
        tmp_path, "--direct_num_workers=2", "--direct_running_mode=multi_processing"
    )
    for lang in SAMPLE_LANGS:
        for kind in ("data", "rejects"):
            one = sorted(json.dumps(r, sort_keys=True) for r in read_jsonl(sample_run / kind / lang))
            two = sorted(json.dumps(r, sort_keys=True) for r in read_jsonl(multi / kind / lang))
            assert one == two, (lang, kind)
        one = json.loads((sample_run / "stats" / f"{lang}.json").read_text())
        two = json.loads((multi / "stats" / f"{lang}.json").read_text())
        assert one == two


def _outputs(out, lang):
    lines = {kind: sorted(json.dumps(r, sort_keys=True) for r in read_jsonl(out / kind / lang))
             for kind in ("data", "rejects")}
    stats = json.loads((out / "stats" / f"{lang}.json").read_text())
    del stats["config"]["select"]["read"]["file_parts"]  # the setting that differs
    return lines, stats


@pytest.mark.slow
def test_a_file_read_in_parts_by_any_number_of_workers_gives_the_same_output(tmp_path):
    """1,200 documents (a file of 5 blocks of cc100.PART_DOCS): one worker in one part, two
    worker processes in two parts, one worker in seven parts (some empty): the same records,
    rejects and stats; the spill files are gone after each run."""
    import random

    from benchmarks.select_bench import build_corpus

    build_corpus("spa", 1200, tmp_path / "spa.txt", random.Random(3))
    (tmp_path / "parts.yaml").write_text("languages:\n  spa:\n    select:\n      read: {file_parts: 7}\n")
    args = ["--input", str(tmp_path / "{lang}.txt")]
    runs = [run_select(tmp_path / name, *args, *extra, langs=("spa",)) for name, extra in (
        ("one", []), ("two", ["--direct_num_workers=2"]), ("seven", ["--config", str(tmp_path / "parts.yaml")]))]
    first = _outputs(runs[0], "spa")
    assert len(first[0]["data"]) > 500 and first[0]["rejects"]
    for out in runs[1:]:
        assert _outputs(out, "spa") == first, out.name
    assert not any((out / ".spill").exists() for out in runs)
