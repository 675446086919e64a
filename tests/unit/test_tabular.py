import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq

from transforms.languages import LANGUAGES
from transforms.sources import jsonl, parquet, tabular
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
    assert rows[1] == (tabular.Row(str(path), 2, {}), tabular.INVALID_JSON)
    assert rows[2] == (tabular.Row(str(path), 3, {}), tabular.INVALID_JSON)
    assert rows[3] == tabular.Row(str(path), 4, {"language": "hindi"})
    assert jsonl.jsonl_columns(str(path)) == {"targets", "language", "extra"}
