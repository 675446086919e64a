"""Broken curated and seed files through real Beam runs (issue 28, items 1 and 8): a cut
``.jsonl.gz`` keeps the rows before the break, rejects the partial one as ``input_truncated``
with its file and offsets, warns naming the file and fails under ``--strict-input``, as a
CC-100 file does; every row of a shared seed file is a seed or a reject line."""

import gzip
import json
import logging
import lzma
from collections import Counter
from pathlib import Path

from pipeline.main import main
from pipeline.options import SAMPLE_SEEDS, SAMPLE_TEMPLATE
from tests.pipeline.conftest import read_jsonl


def cut_gzip(path: Path, lines: list[str]) -> None:
    """``lines`` gzipped into ``path``, cut in half."""
    data = gzip.compress("".join(line + "\n" for line in lines).encode())
    path.write_bytes(data[: len(data) // 2])


def rows_seen(out: Path, lang: str, key) -> Counter:
    """How often each source row is a record or a reject line of ``lang``."""
    return Counter(key(r) for kind in ("data", "rejects") for r in read_jsonl(out / kind / lang))


def test_a_cut_curated_jsonl_gz_loses_no_row_and_fails_when_strict(tmp_path, caplog, capsys):
    text = lzma.open(SAMPLE_TEMPLATE.format(lang="tel"), "rt", encoding="utf-8", errors="replace").read()
    paragraphs = list(dict.fromkeys(p.strip() for p in text.splitlines() if 80 <= len(p.strip()) <= 400))
    rows = [json.dumps({"targets": p, "language": "telugu", "id": f"r{i}"}, ensure_ascii=False)
            for i, p in enumerate(paragraphs[:75])]
    path = tmp_path / "curated.jsonl.gz"
    cut_gzip(path, rows)
    config = tmp_path / "c.yaml"
    config.write_text(f"sources:\n  - {{name: cur, kind: jsonl, path: '{path}', text_field: targets, "
                      "id_field: id, lang_field: language, lang_values: {tel: telugu}}\n")
    args = ["--langs", "tel", "--config", str(config), "--until", "select"]
    with caplog.at_level(logging.WARNING):
        assert main([*args, "--output", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    assert f"input_truncated: {path} breaks after" in caplog.text
    (cut,) = [r for r in read_jsonl(out / "rejects" / "tel") if r["reason"] == "input_truncated"]
    before = cut["source"]["row"]  # the partial row's position: every row before it was whole
    assert 0 < before < 75 and cut["source"]["file"] == "curated.jsonl.gz"
    assert cut["detail"]["byte_offset"] > 0 and cut["detail"]["error"]
    # each row before the break is a record or a reject exactly once; the cut one is the reject
    seen = rows_seen(out, "tel", lambda r: r["source"]["row"])
    assert seen == Counter(range(before + 1))
    stats = json.loads((out / "stats" / "tel.json").read_text())
    para = stats["paragraphs"]
    assert para["read"] == before + 1 == para["kept"] + sum(para["rejected"].values())
    assert para["rejected"]["input_truncated"] == 1 and stats["selected_records"] > 0
    capsys.readouterr()

    assert main([*args, "--output", str(tmp_path / "strict"), "--strict-input"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: the run failed:")
    assert f"input file {path} is truncated or corrupt" in last


def test_every_row_of_a_cut_shared_seed_file_is_a_seed_or_a_reject(tmp_path, capsys):
    bundled = Path(SAMPLE_SEEDS).read_text(encoding="utf-8").splitlines()
    odd = [json.dumps({"instruction": "ఒక ప్రశ్న", "response": "ఒక సమాధానం"}, ensure_ascii=False),  # no lang
           json.dumps({"instruction": "ఒక ప్రశ్న", "response": "ఒక సమాధానం", "lang": "xx-bogus"}, ensure_ascii=False),
           "{not json"]
    copies = []  # the bundled seeds ten times over, each copy with ids of its own
    for n in range(10):
        for line in bundled:
            row = json.loads(line)
            copies.append(json.dumps({**row, "id": f"{row['id']}-{n}", "instruction": f"{row['instruction']} {n}"},
                                     ensure_ascii=False))
    path = tmp_path / "seeds.jsonl.gz"
    cut_gzip(path, odd + copies)
    args = ["--method", "evol", "--langs", "tel", "--input", str(path), "--until", "select"]
    out = tmp_path / "out"
    assert main([*args, "--output", str(out)]) == 0
    rejects = read_jsonl(out / "rejects" / "tel")
    (cut,) = [r for r in rejects if r["reason"] == "input_truncated"]
    before = cut["source"]["row"]
    assert 3 < before < len(odd + copies) and cut["source"]["file"] == str(path)
    reasons = {r["source"]["row"]: r["reason"] for r in rejects}
    assert [reasons[0], reasons[1], reasons[2]] == ["seed_missing_field", "seed_lang_unknown", "invalid_json"]
    # every row before the break that is tel's, or no language's, is a seed or a reject once
    theirs = [i for i, line in enumerate((odd + copies)[:before]) if i < 3 or json.loads(line)["lang"] == "tel"]
    seen = rows_seen(out, "tel", lambda r: (r.get("seed") or r)["source"]["row"])
    assert seen == Counter([*theirs, before])
    stats = json.loads((out / "stats" / "tel.json").read_text())
    assert stats["seeds"]["read"] == len(theirs) + 1
    assert stats["seeds"]["read"] == stats["seeds"]["kept"] + sum(stats["seeds"]["rejected"].values())
    other = sum(1 for line in copies[: before - 3] if json.loads(line)["lang"] != "tel")
    assert json.loads((out / "run.json").read_text())["unassigned_seed_rows"] == {"other_language": other}
    capsys.readouterr()

    assert main([*args, "--output", str(tmp_path / "strict"), "--strict-input"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: the run failed:") and f"input file {path} is truncated or corrupt" in last


def test_a_parquet_file_that_breaks_during_the_run_is_one_line_naming_it(tmp_path, capsys):
    """A row group whose pages are corrupt (the footer, which the check before work reads, is
    whole), and a 0-byte Parquet seed file (seed files get no column check): exit 1, naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "aya.parquet"
    texts = [f"ప్రతి రోజు కొంత సమయం పుస్తకాలు చదవడం వల్ల మన జ్ఞానం పెరుగుతుంది {i}." for i in range(300)]
    pq.write_table(pa.table({"targets": texts, "language": ["telugu"] * 300}), path, row_group_size=100)
    data = bytearray(path.read_bytes())
    middle = len(data) // 3
    data[middle:middle + 200] = bytes(b ^ 0x5A for b in data[middle:middle + 200])
    path.write_bytes(bytes(data))
    config = tmp_path / "c.yaml"
    config.write_text(f"sources:\n  - {{name: aya, kind: parquet, path: '{path}', text_field: targets, "
                      "lang_field: language, lang_values: {tel: telugu}}\n")
    assert main(["--langs", "tel", "--config", str(config), "--until", "select", "--output", str(tmp_path / "a")]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: the run failed:") and f"cannot read {path} as Parquet: " in last

    seeds = tmp_path / "seeds.parquet"
    seeds.write_bytes(b"")
    assert main(["--method", "evol", "--langs", "tel", "--input", str(seeds), "--until", "select",
                 "--output", str(tmp_path / "b")]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"cannot read {seeds} as Parquet: Parquet file size is 0 bytes" in last
