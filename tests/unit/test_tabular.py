import bz2
import gzip
import json
import logging
import lzma

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from transforms.languages import LANGUAGES
from transforms.sources import jsonl, parquet, tabular
from transforms.sources.cc100 import InputError
from transforms.sources.tabular import Spec

AYA = Spec(
    text_field="targets",
    id_field="id",
    lang_field="language",
    lang_values={"tel": "telugu", "hin": "hindi"},
    where={"task_type": ["qa", "summarization"], "translated": False},
)
RUN = [LANGUAGES["tel"], LANGUAGES["hin"]]


def verdict(**fields):
    base = {"targets": "ఒక సమాధానం", "language": "telugu", "task_type": "qa", "translated": False}
    return tabular.row_verdict({**base, **fields}, AYA, tabular.value_map(AYA, RUN), None)


def test_columns_are_only_those_needed_in_a_stable_order():
    assert tabular.columns(AYA) == ["targets", "id", "language", "task_type", "translated"]
    assert tabular.columns(Spec("text")) == ["text"]


def test_row_verdicts_name_every_reason():
    assert verdict() == ("tel", "ఒక సమాధానం", None)
    assert verdict(language="hindi", targets="उत्तर") == ("hin", "उत्तर", None)
    assert verdict(targets=None).reason == tabular.MISSING_TEXT
    assert verdict(targets=7).reason == tabular.TEXT_NOT_STRING
    assert verdict(targets="  \n").reason == tabular.EMPTY_TEXT
    assert verdict(task_type="translation").reason == tabular.FILTERED_OUT
    assert verdict(translated=True).reason == tabular.FILTERED_OUT
    # a language we know but did not ask for is not ours; a value nobody knows is a reject
    assert verdict(language="spanish").reason == tabular.OTHER_LANGUAGE
    assert verdict(language="klingon").reason == tabular.UNKNOWN_LANGUAGE
    assert verdict(language=None).reason == tabular.UNKNOWN_LANGUAGE


def test_without_a_language_field_the_path_gives_the_language():
    spec = Spec("text")
    assert tabular.row_verdict({"text": "hola"}, spec, {}, "spa") == ("spa", "hola", None)


def test_default_language_values_are_our_codes():
    assert tabular.value_map(Spec("t", lang_field="l"), RUN) == {"tel": "tel", "hin": "hin"}


def test_parquet_row_groups_keep_row_positions_and_read_only_needed_columns(tmp_path):
    path = tmp_path / "aya.parquet"
    n = 25
    table = pa.table({
        "id": [f"r{i}" for i in range(n)],
        "targets": [f"answer {i}" for i in range(n)],
        "language": ["telugu"] * n,
        "inputs": ["question"] * n,
    })
    pq.write_table(table, path, row_group_size=10)
    pieces = parquet.parquet_pieces(str(path))
    assert [(group, first) for _, group, first in pieces] == [(0, 0), (1, 10), (2, 20)]
    rows = [row for piece in pieces for row in parquet.read_parquet_piece(piece, ["targets", "id"])]
    assert [row.row for row in rows] == list(range(n))
    assert rows[13].fields == {"targets": "answer 13", "id": "r13"}
    assert set(parquet.parquet_columns(str(path))) == {"id", "targets", "language", "inputs"}


def test_jsonl_rows_with_line_positions_and_invalid_lines(tmp_path):
    lines = [json.dumps({"targets": "a", "language": "telugu", "extra": 1}), "", "{not json", "[1, 2]",
             json.dumps({"language": "hindi"})]
    path = tmp_path / "aya.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    rows = list(jsonl.read_jsonl(str(path), ["targets", "language"]))
    assert rows[0] == tabular.Row(str(path), 0, {"targets": "a", "language": "telugu"})
    assert rows[1] == tabular.Rejected(tabular.Row(str(path), 2, {}), tabular.INVALID_JSON)
    assert rows[2] == tabular.Rejected(tabular.Row(str(path), 3, {}), tabular.INVALID_JSON)
    assert rows[3] == tabular.Row(str(path), 4, {"language": "hindi"})
    assert jsonl.jsonl_columns(str(path)) == {"targets", "language", "extra"}


# Issue 28: a curated or seed JSONL file reads through the CC-100 reader's decompressors.
ROWS = [{"targets": f"సమాధానం {i}: " + "పదం " * (i % 9 + 3), "language": "telugu", "id": i} for i in range(2000)]
JSONL_BYTES = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS).encode()
COMPRESSORS = {"gz": gzip.compress, "xz": lzma.compress, "bz2": bz2.compress,
               "zst": lambda data: zstandard.ZstdCompressor().compress(data)}


@pytest.mark.parametrize("ext", COMPRESSORS)
def test_whole_compressed_jsonl_files_read_whole(tmp_path, ext):
    path = tmp_path / f"aya.jsonl.{ext}"
    cut = JSONL_BYTES.index(b"\n", len(JSONL_BYTES) // 2) + 1
    # two streams (members, frames) one after the other, as concatenated files are
    path.write_bytes(COMPRESSORS[ext](JSONL_BYTES[:cut]) + COMPRESSORS[ext](JSONL_BYTES[cut:]))
    rows = list(jsonl.read_jsonl(str(path), ["targets", "id"]))
    assert [r.fields for r in rows] == [{"targets": r["targets"], "id": r["id"]} for r in ROWS]
    assert jsonl.count_rows(str(path)) == len(ROWS)


@pytest.mark.parametrize("ext", COMPRESSORS)
@pytest.mark.parametrize("damage", ["cut", "corrupt"])
def test_a_broken_jsonl_archive_keeps_the_rows_before_the_break_and_says_where(tmp_path, caplog, ext, damage):
    data = COMPRESSORS[ext](JSONL_BYTES)
    path = tmp_path / f"aya.jsonl.{ext}"
    if damage == "cut":
        path.write_bytes(data[: len(data) // 2])
    else:
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0x55 for b in data[middle:middle + 64]) + data[middle + 64:])
    with caplog.at_level(logging.WARNING, logger="transforms.sources.cc100"):
        items = list(jsonl.read_jsonl(str(path), ["id"]))
    *rows, last = items
    # the partial row where the stream broke is the one reject, at the position it had
    assert isinstance(last, tabular.Rejected) and last.reason == "input_truncated"
    assert last.row == tabular.Row(str(path), len(rows), {})
    assert last.detail["error"] and last.detail["stored_bytes_read"] <= len(data)
    assert f"input_truncated: {path}" in caplog.text and str(last.detail["byte_offset"]) in caplog.text
    assert jsonl.count_rows(str(path)) == len(items)  # the dry run's count: every row, rejects too
    assert jsonl.jsonl_columns(str(path)) <= {"targets", "language", "id"}  # the check does not fail on it
    with pytest.raises(InputError, match=f"input file {path} is truncated or corrupt"):
        list(jsonl.read_jsonl(str(path), ["id"], strict_input=True))
    if damage == "corrupt":  # gzip finds a bad byte only at its member's end (the CRC)
        return
    assert [r.fields for r in rows] == [{"id": i} for i in range(len(rows))] and len(rows) < len(ROWS)
    assert JSONL_BYTES[: last.detail["byte_offset"]].count(b"\n") == len(rows)
    if ext in ("gz", "xz"):  # stream decoders: bz2 and zstd decode whole blocks (100+ KB)
        assert len(rows) > len(ROWS) // 4


@pytest.mark.parametrize("damage", ["empty", "cut"])
def test_a_parquet_file_that_cannot_be_opened_is_one_error_naming_it(tmp_path, damage):
    path = tmp_path / "aya.parquet"
    pq.write_table(pa.table({"targets": ["a"] * 10}), path)
    path.write_bytes(b"" if damage == "empty" else path.read_bytes()[:-20])
    for read in (parquet.parquet_columns, parquet.pieces, parquet.count_rows):
        with pytest.raises(tabular.UnreadableFile, match=f"cannot read {path} as Parquet: "):
            read(str(path))


def test_a_corrupt_parquet_row_group_is_one_error_naming_the_file(tmp_path):
    path = tmp_path / "aya.parquet"
    pq.write_table(pa.table({"targets": [f"answer {i}" for i in range(300)]}), path, row_group_size=100)
    data = bytearray(path.read_bytes())
    middle = len(data) // 3  # inside the second row group's pages; the footer stays whole
    data[middle:middle + 200] = bytes(b ^ 0x5A for b in data[middle:middle + 200])
    path.write_bytes(bytes(data))
    pieces = parquet.parquet_pieces(str(path))
    assert len(list(parquet.read_parquet_piece(pieces[0], ["targets"]))) == 100
    with pytest.raises(tabular.UnreadableFile, match=f"cannot read {path} as Parquet: "):
        list(parquet.read_parquet_piece(pieces[1], ["targets"]))
