"""CC-100 and curated sources together (issue 10): the bundled CC-100 sample plus Aya-shaped
Parquet and JSONL files (``tests/pipeline/aya.py``) for tel and hin, through select on two
worker processes (pickling like a cluster), then the demo chain with a real vLLM server."""

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from pipeline.methods import NATURAL

STAGES = NATURAL.names
from pipeline.main import main
from pipeline.options import SAMPLE_TEMPLATE
from tests.pipeline import aya
from tests.pipeline.conftest import read_jsonl, require_vllm_env

ROOT = Path(__file__).resolve().parents[2]
LANGS = ("tel", "hin")
SOURCES = ("cc100", "aya", "aya-jsonl")


def write_inputs(directory: Path) -> Path:
    """The Aya-shaped files and a config naming them beside the CC-100 sample."""
    aya.write_parquet(directory / "aya.parquet", aya.rows())
    aya.write_jsonl(directory / "aya.jsonl", aya.jsonl_rows(), (aya.INVALID_LINE,))
    config = directory / "sources.yaml"
    config.write_text(aya.config_yaml(str(directory / "aya.parquet"), str(directory / "aya.jsonl")))
    return config


@pytest.fixture(scope="module")
def select_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sources")
    config = write_inputs(tmp)
    out = tmp / "out"
    assert main(["--langs", ",".join(LANGS), "--input", SAMPLE_TEMPLATE, "--config", str(config),
                 "--output", str(out), "--until", "select", "--direct_num_workers=2",
                 "--direct_running_mode=multi_processing"]) == 0
    return out


def stats(out: Path, lang: str) -> dict:
    return json.loads((out / "stats" / f"{lang}.json").read_text())


@pytest.mark.parametrize("lang", LANGS)
def test_the_accounting_identity_holds_per_source_and_overall(select_run, lang):
    s = stats(select_run, lang)
    records, rejects = read_jsonl(select_run / "data" / lang), read_jsonl(select_run / "rejects" / lang)
    assert set(s["sources"]) == set(SOURCES)
    for name, c in s["sources"].items():
        assert c["read"] == c["kept"] + sum(c["rejected"].values()) > 0, name
        mine = [r for r in records if r["source"]["name"] == name]
        assert c["selected"] == c["records"] == len(mine) > 0, name
        spans = Counter()
        for r in rejects:
            if r["source"]["name"] == name:
                first, last = r["source"].get("paragraphs", (0, 0))
                spans[r["reason"]] += last - first + 1
        assert dict(spans) == c["rejected"], name
    p = s["paragraphs"]
    assert p["read"] == p["kept"] + sum(p["rejected"].values())
    for key in ("read", "kept"):
        assert p[key] == sum(c[key] for c in s["sources"].values())
    assert s["selected_records"] == sum(c["selected"] for c in s["sources"].values()) == len(records)


@pytest.mark.parametrize("lang", LANGS)
def test_every_row_for_the_language_is_a_record_or_a_reject_once(select_run, lang):
    units = Counter()
    for r in read_jsonl(select_run / "data" / lang) + read_jsonl(select_run / "rejects" / lang):
        if r["source"]["kind"] != "cc100":
            units[r["source"]["name"], r["source"]["row"]] += 1
    assert max(units.values()) == 1
    expected = {("aya", i) for i, row in enumerate(aya.rows()) if row["language"] == aya.NAMES[lang]}
    expected |= {("aya-jsonl", i) for i, row in enumerate(aya.jsonl_rows()) if row["language"] == aya.NAMES[lang]}
    if lang == LANGS[0]:  # rows of no language (unknown value, not JSON) count under the first
        expected |= {("aya", len(aya.rows()) - 1), ("aya-jsonl", len(aya.jsonl_rows()))}
    assert set(units) == expected


@pytest.mark.parametrize("lang", LANGS)
def test_text_shared_with_cc100_is_kept_once(select_run, lang):
    shared = aya.shared_paragraph(lang)
    records = read_jsonl(select_run / "data" / lang)
    holding = [r for r in records if shared in r["response"].split("\n")]
    assert len(holding) == 1
    copies = [r for r in read_jsonl(select_run / "rejects" / lang) if r["text"] == shared]
    assert copies and {r["reason"] for r in copies} == {"exact_duplicate"}
    # both sources held it: the kept copy is one, the other is the reject
    assert {holding[0]["source"]["name"], *(r["source"]["name"] for r in copies)} == {"cc100", "aya"}


@pytest.mark.parametrize("lang", LANGS)
def test_curated_rows_are_kept_or_rejected_with_their_reasons(select_run, lang):
    rows = [r for r in read_jsonl(select_run / "data" / lang) if r["source"]["kind"] != "cc100"]
    rejects = [r for r in read_jsonl(select_run / "rejects" / lang) if r["source"]["kind"] != "cc100"]
    kept = Counter(r["response"] for r in rows)
    by_text = {}
    for r in rejects:
        by_text.setdefault(r["text"], Counter())[r["reason"]] += 1
    assert all(kept[text] == 1 for text in aya.GENUINE[lang] + [aya.JSONL_GENUINE[lang]])
    # a templated answer repeated in both files: one copy kept, the rest are duplicates
    assert kept[aya.TEMPLATED[lang]] == 1
    assert by_text[aya.TEMPLATED[lang]] == {"exact_duplicate": aya.REPEATS + 5 - 1}
    assert by_text[aya.YES[lang]] == {"no_sentence_end": aya.REPEATS}  # a label word, not a response
    assert by_text[aya.WRONG_LANGUAGE] == {"wrong_script": 1}  # labelled the language, not written in it
    assert by_text[aya.GENUINE[lang][0] + " (1)"] == {"filtered_out": 1}  # task_type not asked for
    assert by_text[aya.GENUINE[lang][1] + " (2)"] == {"filtered_out": 1}  # translated
    assert by_text[""] == ({"empty_text": 1, "missing_text": 1, "invalid_json": 1} if lang == "tel"
                           else {"empty_text": 1, "missing_text": 1})
    assert by_text["12345"] == {"text_not_string": 1}
    if lang == "hin":
        assert by_text[aya.MARATHI] == {"lid_mismatch": 1}  # same script, another language
    else:
        assert by_text["A row in a language nobody knows."] == {"unknown_language": 1}
    # the Spanish row is not this run's: counted, never a reject
    assert not any("español" in r["text"] for r in rejects)


@pytest.mark.parametrize("lang", LANGS)
def test_records_carry_their_source(select_run, lang):
    records = read_jsonl(select_run / "data" / lang)
    rejects = read_jsonl(select_run / "rejects" / lang)
    for r in records + rejects:
        src = r["source"]
        assert src["name"] in SOURCES and src["kind"] == {"cc100": "cc100", "aya": "parquet", "aya-jsonl": "jsonl"}[src["name"]]
        if src["kind"] == "cc100":
            assert set(src) == {"name", "kind", "file", "doc", "paragraphs"} and src["file"] == f"{lang}.txt.xz"
        else:
            assert {"name", "kind", "file", "row"} <= set(src) and src["file"] in ("aya.parquet", "aya.jsonl")
    assert all(r["source"]["id"] == 1 for r in records if r["source"]["name"] == "aya")  # id_field
    assert len({r["id"] for r in records + rejects}) == len(records + rejects)


def test_the_report_and_run_summary_break_counts_down_per_source(select_run):
    report = (select_run / "report.md").read_text()
    assert "## Sources" in report
    for lang in LANGS:
        for name in SOURCES:
            assert f"| {lang} | {name} |" in report
    run = json.loads((select_run / "run.json").read_text())
    assert run["sources_not_read"] == {"aya": {"other_language": 1}}


def test_a_changed_source_file_redoes_select(select_run, tmp_path):
    config = write_inputs(tmp_path)
    args = ["--langs", ",".join(LANGS), "--config", str(config), "--input", SAMPLE_TEMPLATE,
            "--output", str(tmp_path / "out"), "--until", "select"]
    assert main(args) == 0
    assert main(args) == 0
    assert json.loads((tmp_path / "out" / "run.json").read_text())["stages"]["reused"] == ["select"]
    before = stats(tmp_path / "out", "tel")["sources"]["aya"]["read"]
    aya.write_parquet(tmp_path / "aya.parquet", aya.rows() + [aya.row("tel", aya.JSONL_GENUINE["tel"] + " 2")])
    assert main(args) == 0
    assert json.loads((tmp_path / "out" / "run.json").read_text())["stages"]["run"] == ["select"]
    assert stats(tmp_path / "out", "tel")["sources"]["aya"]["read"] == before + 1


@pytest.mark.slow
def test_the_demo_chain_over_cc100_and_curated_sources(tmp_path):
    """One small chain run (tel, hin) with the real vLLM server: every stage accounts for its
    records, and the final records of each source add up to the data."""
    require_vllm_env(ROOT / ".venv-vllm" / "bin" / "python")
    config = write_inputs(tmp_path)
    # the first CC-100 documents only: the random tiny NLLB runs every segment to its limit
    config.write_text(config.read_text() + "select:\n  read: {max_documents: 6}\n")
    out = tmp_path / "out"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["--langs", ",".join(LANGS), "--config", str(config), "--input", SAMPLE_TEMPLATE,
                     "--output", str(out)]) == 0
    finally:
        os.chdir(cwd)
    for lang in LANGS:
        s = stats(out, lang)
        assert list(s["stages"]) == list(STAGES[1:])
        expected_in = s["selected_records"]
        for name, stage in s["stages"].items():
            assert stage["in"] == expected_in == stage["out"] + sum(stage["rejected"].values()), name
            expected_in = stage["out"]
        records = read_jsonl(out / "data" / lang)
        assert len(records) == s["stages"]["qe"]["out"] == sum(c["records"] for c in s["sources"].values())
        for name, c in s["sources"].items():
            assert c["records"] == sum(r["source"]["name"] == name for r in records)
            assert c["read"] == c["kept"] + sum(c["rejected"].values())
        assert s["sources"]["aya"]["selected"] > 0
        assert all(r["messages"][1]["content"] == r["response"] for r in records)


def test_the_dry_run_estimates_each_source_as_the_run_selects(select_run, tmp_path, capsys):
    config = write_inputs(tmp_path)
    assert main(["--langs", ",".join(LANGS), "--input", SAMPLE_TEMPLATE, "--config", str(config),
                 "--output", str(tmp_path / "dry"), "--dry-run"]) == 0
    assert "aya-jsonl: ~8 paragraphs/rows read" in capsys.readouterr().out
    estimate = json.loads((tmp_path / "dry" / "dryrun.json").read_text())
    for lang in LANGS:
        run = stats(select_run, lang)["sources"]
        # everything is read (no sampling here), so the estimate is the run's count
        assert estimate["languages"][lang]["selection"]["sources"] == {
            name: {"read": c["read"], "records": c["selected"]} for name, c in run.items()}
