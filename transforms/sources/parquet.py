"""Parquet as a tabular source kind: a file is cut into its row groups, so one large file spreads
over workers, and a row group is read by column, for the columns a source needs only (the input
layer judges it as a table: ``inputs.piece_documents``). A file that cannot be read (0 bytes,
cut: its footer holds the schema and row groups) raises ``UnreadableFile`` naming it; the input
check opens every file's footer before any work, so such a file stops the run there."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.sources.tabular import Piece, Row, Spec, TabularFormat, UnreadableFile, columns


@contextmanager
def parquet_file(path: str):
    """``pyarrow.parquet.ParquetFile`` of ``path``; any error pyarrow raises reading it, opening
    or later, is an ``UnreadableFile`` that names the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        try:
            yield pq.ParquetFile(f)
        except (pa.ArrowException, OSError) as e:
            raise UnreadableFile(f"cannot read {path} as Parquet: {e}") from e


def parquet_pieces(path: str) -> list[tuple[str, int, int]]:
    """(path, row group, first row) for each row group of a Parquet file."""
    with parquet_file(path) as f:
        meta = f.metadata
    pieces, first = [], 0
    for group in range(meta.num_row_groups):
        pieces.append((path, group, first))
        first += meta.row_group(group).num_rows
    return pieces


def pieces(path: str) -> list[Piece]:
    return [(group, first) for _, group, first in parquet_pieces(path)]


def parquet_columns(path: str) -> list[str]:
    with parquet_file(path) as f:
        return list(f.schema_arrow.names)


def read_parquet_table(piece: tuple[str, int, int], names: list[str]):
    """One row group as a pyarrow Table of the columns ``names``."""
    path, group, _ = piece
    with parquet_file(path) as f:
        return f.read_row_group(group, columns=names)


def read_parquet_piece(piece: tuple[str, int, int], names: list[str]) -> Iterator[Row]:
    """The rows of one row group, with only the columns ``names``."""
    path, _, first = piece
    for i, fields in enumerate(read_parquet_table(piece, names).to_pylist()):
        yield Row(path, first + i, fields)


def count_rows(path: str) -> int:
    """A Parquet file's metadata says."""
    with parquet_file(path) as f:
        return f.metadata.num_rows


def required(spec: Spec) -> list[str]:
    """Every column a source reads: a Parquet file has a schema."""
    return columns(spec)


PARQUET = TabularFormat(
    "parquet",
    suffixes=(".parquet", ".pq"),
    pieces=pieces,
    rows=lambda path, piece, first, names, strict_input: read_parquet_piece((path, piece, first), names),
    columns=lambda path: set(parquet_columns(path)),
    required=required,
    count_rows=count_rows,
    table=lambda path, piece, names: read_parquet_table((path, piece, 0), names),
)
