"""Sources in config (CONTRACT.md, "Sources"): parsing and its errors, --input as the cc100
source, one row -> one document, and a text field that does not exist: exit 2 before work."""

import json

import pytest

from pipeline import config
from pipeline.config import ConfigError
from pipeline.main import main
from pipeline.ops import resume
from transforms.languages import LANGUAGES
from transforms.records.shapes import record_id, span_id
from transforms.sources import inputs, jsonl, parquet, tabular
from transforms.sources.config import ReadConfig, SourceConfig

AYA = """sources:
  - name: aya
    kind: parquet
    path: gs://bucket/aya_collection/*.parquet
    text_field: targets
    id_field: id
    lang_field: language
    lang_values: {tel: telugu, hin: hindi}
    where: {task_type: [qa, summarization], translated: false}
"""


def load(tmp_path, text: str) -> config.Config:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return config.load("demo", str(path))


def test_the_contract_example_parses_into_frozen_dataclasses(tmp_path):
    (aya,) = load(tmp_path, AYA).sources
    assert aya == SourceConfig("aya", "parquet", "gs://bucket/aya_collection/*.parquet", "targets", "id",
                               "language", {"tel": "telugu", "hin": "hindi"},
                               {"task_type": ["qa", "summarization"], "translated": False})
    assert aya.tabular and not aya.per_lang_path
    with pytest.raises(AttributeError):
        aya.name = "other"


def test_input_sets_the_cc100_source_or_adds_it(tmp_path):
    cfg = load(tmp_path, AYA)
    assert [s.name for s in config.with_input(cfg, None, "SAMPLE").sources] == ["aya"]
    added = config.with_input(cfg, "/data/{cc100}.txt.xz", "SAMPLE").sources
    assert [(s.name, s.kind, s.path) for s in added] == [("cc100", "cc100", "/data/{cc100}.txt.xz"), *[("aya", "parquet", cfg.sources[0].path)]]
    replaced = config.with_input(config.with_input(cfg, "/a/{lang}", "S"), "/b/{lang}", "S").sources
    assert [(s.name, s.path) for s in replaced] == [("cc100", "/b/{lang}"), ("aya", cfg.sources[0].path)]
    plain = config.with_input(config.load("demo"), None, "SAMPLE").sources
    assert plain == (SourceConfig("cc100", "cc100", "SAMPLE"),)


@pytest.mark.parametrize("entry, message", [
    ("{name: Aya, kind: jsonl, path: a, text_field: t, lang_field: l}", "lower-case"),
    ("{name: a, kind: csv, path: a}", "kind must be one of cc100, jsonl, parquet"),
    ("{name: a, kind: jsonl, text_field: t, lang_field: l}", "path is required"),
    ("{name: a, kind: jsonl, path: a.jsonl, lang_field: l}", "text_field is required"),
    ("{name: a, kind: jsonl, path: a.jsonl, text_field: t}", "give lang_field"),
    ("{name: a, kind: jsonl, path: '{lang}.jsonl', text_field: t, lang_values: {tel: te}}", "lang_values needs lang_field"),
    ("{name: a, kind: jsonl, path: a, text_field: t, lang_field: l, lang_values: {xx: x}}", "unknown language"),
    ("{name: a, kind: jsonl, path: a, text_field: t, lang_field: l, where: {k: {a: 1}}}", "where.k"),
    ("{name: a, kind: jsonl, path: a, text_field: t, lang_field: l, where: {k: []}}", "non-empty list"),
    ("{name: a, kind: cc100, path: a, text_field: t}", "text_field apply to jsonl and parquet sources"),
    ("{name: a, kind: cc100, path: a, colour: red}", "unknown key"),
])
def test_bad_sources_are_clear_config_errors(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, f"sources:\n  - {entry}\n")


def test_source_names_are_distinct_and_not_per_language(tmp_path):
    with pytest.raises(ConfigError, match="two sources are named 'a'"):
        load(tmp_path, "sources:\n  - {name: a, path: x}\n  - {name: a, path: y}\n")
    with pytest.raises(ConfigError, match="sources are set for the whole run"):
        load(tmp_path, "languages:\n  tel: {sources: []}\n")


RUN = [LANGUAGES["tel"], LANGUAGES["hin"]]


def aya_input(fixed=None) -> inputs.TabularInput:
    spec = tabular.Spec("targets", "id", None if fixed else "language", {} if fixed else {"tel": "telugu", "hin": "hindi"},
                        {"task_type": ["qa"]})
    return inputs.TabularInput("aya", "parquet", "x", spec, fixed, tabular.value_map(spec, RUN) if not fixed else {}, "tel")


def doc(fields, reason=None, source=None):
    return inputs.row_document(source or aya_input(), "aya.parquet", tabular.Row("/d/aya.parquet", 7, fields), reason)


def test_a_kept_row_is_a_one_paragraph_document_with_its_origin():
    d = doc({"targets": "  उत्तर यह है।\n", "language": "hindi", "task_type": "qa", "id": "r7"})
    assert (d.lang, d.paragraphs, d.rejected, d.doc) == ("hin", ("उत्तर यह है।",), (), 7)
    assert d.origin() == {"name": "aya", "kind": "parquet", "file": "aya.parquet", "row": 7, "id": "r7"}


def test_rows_that_cannot_be_responses_are_documents_the_reader_rejected():
    assert doc({"targets": "x", "language": "hindi", "task_type": "mcq"}).rejected == ((0, "filtered_out", None),)
    assert doc({"targets": 5, "language": "telugu", "task_type": "qa"}).paragraphs == ("5",)
    unknown = doc({"targets": "x", "language": "Telugu ", "task_type": "qa"})
    assert unknown.lang == "tel"  # no language: counted under the run's first
    assert unknown.rejected == ((0, "unknown_language", {"lang_value": "Telugu"}),)
    broken = doc({}, tabular.INVALID_JSON)
    assert (broken.lang, broken.paragraphs, broken.rejected) == ("tel", ("",), ((0, "invalid_json", None),))
    # a language the run does not ask for is not read
    assert doc({"targets": "x", "language": "spa", "task_type": "qa"}) is None
    # a path that names the language gives every row of the file that language
    fixed = doc({"targets": "x", "task_type": "qa"}, source=aya_input(fixed="hin"))
    assert fixed.lang == "hin" and not fixed.rejected


def test_record_ids_are_distinct_across_sources_and_cc100_keeps_its_ids():
    cc100 = {"name": "cc100", "kind": "cc100", "file": "a", "doc": 3}
    assert span_id("tel", cc100, 0, 1) == record_id("tel", "a", 3, 0, 1)
    other = {"name": "web", "kind": "cc100", "file": "a", "doc": 3}
    row = {"name": "aya", "kind": "jsonl", "file": "a", "row": 3}
    assert len({span_id("tel", cc100, 0, 0), span_id("tel", other, 0, 0), span_id("tel", row, 0, 0)}) == 3


def test_fingerprints_follow_every_source(tmp_path):
    data = tmp_path / "aya.jsonl"
    data.write_text(json.dumps({"targets": "a", "language": "telugu"}) + "\n")
    cc100 = tmp_path / "tel.txt"
    cc100.write_text("para\n")
    source = SourceConfig("aya", "jsonl", str(data), "targets", lang_field="language")
    both = (SourceConfig("cc100", "cc100", str(tmp_path / "{lang}.txt")), source)
    before = resume.source_identities(both, RUN[:1])
    # the one --input source alone keeps the identity checkpoints were made with before sources
    assert resume.source_identities(both[:1], RUN[:1])["tel"] == resume.input_identity(str(cc100))
    filtered = (both[0], SourceConfig(**{**source.__dict__, "where": {"task_type": "qa"}}))
    assert resume.source_identities(filtered, RUN[:1]) != before
    data.write_text(json.dumps({"targets": "ab", "language": "telugu"}) + "\n")
    assert resume.source_identities(both, RUN[:1]) != before
    # rows of no language are the first language's
    assert resume.source_identities(both, RUN)["hin"][-1] != "rows of no language"


def test_a_text_field_that_does_not_exist_is_exit_2_naming_the_source_and_its_columns(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"inputs": ["q"], "answer": ["a"], "language": ["telugu"]}), tmp_path / "aya.parquet")
    (tmp_path / "c.yaml").write_text(
        f"sources:\n  - {{name: aya, kind: parquet, path: '{tmp_path}/*.parquet', text_field: targets, "
        "lang_field: language}\n")
    code = main(["--langs", "tel", "--config", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "source aya" in err and "no column targets" in err and "answer, inputs, language" in err
    assert not (tmp_path / "out").exists()  # before any work
    (tmp_path / "rows.jsonl").write_text(json.dumps({"answer": "a", "language": "telugu"}) + "\n")
    (tmp_path / "c.yaml").write_text(
        f"sources:\n  - {{name: rows, kind: jsonl, path: '{tmp_path}/rows.jsonl', text_field: targets, "
        "lang_field: language}\n")
    assert main(["--langs", "tel", "--config", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "out")]) == 2
    assert "source rows" in capsys.readouterr().err


def test_every_file_of_a_source_is_checked_in_sorted_order_before_any_work(tmp_path, capsys):
    """Issue 28: a later file without the text column, a 0-byte or cut Parquet file: exit 2,
    one line naming the file, whatever order the directory lists them in."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def run(kind: str) -> tuple[int, str]:
        (tmp_path / "c.yaml").write_text(
            f"sources:\n  - {{name: aya, kind: {kind}, path: '{tmp_path}/*.{kind}', text_field: targets, "
            "lang_field: language}\n")
        code = main(["--langs", "tel", "--config", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "out")])
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and not (tmp_path / "out").exists()
        return code, lines[0]

    good = pa.table({"targets": ["a"], "language": ["telugu"]})
    for name in ("a", "d"):
        pq.write_table(good, tmp_path / f"{name}.parquet")
    pq.write_table(pa.table({"answer": ["a"], "language": ["telugu"]}), tmp_path / "c.parquet")
    (tmp_path / "b.parquet").write_bytes(b"")
    assert run("parquet") == (2, f"error: source aya: cannot read {tmp_path}/b.parquet as Parquet: "
                                 "Parquet file size is 0 bytes")
    (tmp_path / "b.parquet").write_bytes((tmp_path / "a.parquet").read_bytes()[:-30])
    code, line = run("parquet")
    assert code == 2 and line.startswith(f"error: source aya: cannot read {tmp_path}/b.parquet as Parquet: ")
    (tmp_path / "b.parquet").unlink()
    assert run("parquet") == (2, f"error: source aya: {tmp_path}/c.parquet has no column targets; its columns: "
                                 "answer, language")
    (tmp_path / "a.jsonl").write_text(json.dumps({"targets": "a", "language": "telugu"}) + "\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"answer": "a", "language": "telugu"}) + "\n")
    assert run("jsonl") == (2, f"error: source aya: {tmp_path}/b.jsonl has no column targets; its columns: "
                               "answer, language")


def test_a_tabular_source_without_files_is_exit_2(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(
        f"sources:\n  - {{name: aya, kind: jsonl, path: '{tmp_path}/none-*.jsonl', text_field: t, lang_field: l}}\n")
    assert main(["--langs", "tel", "--config", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "out")]) == 2
    assert "source aya: no files match" in capsys.readouterr().err


def test_reading_by_column_judges_every_row_as_row_document_does(tmp_path):
    """The readers' fast path (columns, one language verdict per distinct value) gives what
    ``row_document`` gives row by row, for Parquet row groups and JSONL lines alike."""
    from tests.pipeline import aya

    rows = aya.rows() + [aya.row("hin", "x", task_type=["qa"])]  # an unhashable filter value
    aya.write_parquet(tmp_path / "a.parquet", [r for r in rows if r["task_type"] != ["qa"]], row_group_size=7)
    aya.write_jsonl(tmp_path / "a.jsonl", rows + aya.jsonl_rows(), (aya.INVALID_LINE,))
    for kind in ("parquet", "jsonl"):
        path = str(tmp_path / f"a.{kind}")
        spec = tabular.Spec("targets", "template_id", "language", {"tel": "telugu", "hin": "hindi"},
                            {"task_type": ["qa", "summarization"], "translated": False})
        source = inputs.TabularInput("aya", kind, path, spec, None, tabular.value_map(spec, RUN), "tel")
        fast = [d for group, first in inputs.file_pieces(kind, path)
                for d in inputs.piece_documents(source, path, "a", group, first)]
        if kind == "parquet":
            items = [r for piece in parquet.parquet_pieces(path) for r in parquet.read_parquet_piece(piece, tabular.columns(spec))]
        else:
            items = list(jsonl.read_jsonl(path, tabular.columns(spec)))
        slow = [inputs.row_document(source, "a", *(item if not isinstance(item, tabular.Row) else (item,)))
                for item in items]
        assert fast == slow and len(fast) > 90
        assert {d.rejected[0][1] for d in fast if d and d.rejected} >= {"filtered_out", "empty_text", "missing_text"}


def test_stats_and_report_break_counts_down_per_source():
    from pipeline.ops import report
    from transforms.records.write import build_stats, dataset_stats

    sums = {"paragraphs.read": 10, "paragraphs.kept": 6, "paragraphs.rejected.too_short": 4,
            "sources.cc100.read": 7, "sources.cc100.kept": 5, "sources.cc100.rejected.too_short": 2,
            "sources.cc100.selected": 3, "sources.aya.read": 3, "sources.aya.kept": 1,
            "sources.aya.rejected.too_short": 2, "sources.aya.selected": 1, "selected_records": 4}
    for pair in dataset_stats({"lang": "tel", "response": "x", "source": {"name": "aya", "row": 1}}):
        sums[pair[0][1]] = sums.get(pair[0][1], 0) + pair[1]
    stats = build_stats("tel", sums, {})
    assert stats["sources"] == {
        "aya": {"read": 3, "kept": 1, "rejected": {"too_short": 2}, "selected": 1, "records": 1},
        "cc100": {"read": 7, "kept": 5, "rejected": {"too_short": 2}, "selected": 3, "records": 0},
    }
    text = report.render([{**stats, "lengths": {"response_chars": None}}], "demo")
    assert "## Sources" in text and "| tel | aya | 3 | 1 | 2 | too_short 2 | 1 | 1 |" in text
    # an evol record has no top-level source: no source counts
    assert all("sources." not in name for (_, name), _ in dataset_stats({"lang": "tel", "messages": []}))


def test_a_cc100_path_without_the_language_is_read_as_each_languages():
    cc100, tabulars = inputs.plan((SourceConfig("cc100", "cc100", "/d/one.txt"),), RUN,
                                  {"tel": "r-tel", "hin": "r-hin"})
    assert cc100 == [("tel", "/d/one.txt", "r-tel", "cc100"), ("hin", "/d/one.txt", "r-hin", "cc100")]
    assert tabulars == []
    aya = SourceConfig("aya", "jsonl", "/d/{lang}.jsonl", "t")
    read = {"tel": ReadConfig(strict_input=True), "hin": ReadConfig()}
    (_, [tel, hin]) = inputs.plan((aya,), RUN, read)
    assert (tel.pattern, tel.fixed_lang, hin.pattern, hin.fixed_lang) == ("/d/tel.jsonl", "tel", "/d/hin.jsonl", "hin")
    # --strict-input reaches a tabular source's reader: per language, or any of them for a shared file
    assert (tel.strict_input, hin.strict_input) == (True, False)
    shared = SourceConfig("aya", "jsonl", "/d/all.jsonl", "t", lang_field="l")
    assert inputs.plan((shared,), RUN, read)[1][0].strict_input
    assert not inputs.plan((shared,), RUN, {"tel": ReadConfig(), "hin": ReadConfig()})[1][0].strict_input
