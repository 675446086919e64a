import bz2
import gzip
import logging
import lzma
import zlib

import apache_beam as beam
import pytest
import zstandard
from apache_beam.testing.test_pipeline import TestPipeline as BeamPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.sources.cc100 import (
    INPUT_TRUNCATED,
    LINE_TOO_LONG,
    InputError,
    PART_DOCS,
    InputFile,
    ReadCC100,
    documents,
    read_lines,
    relative_name,
    split_documents,
    local_workers,
    template_dir,
)
from transforms.sources.config import ReadConfig

RAW = "uno\ndos\n\n\ntres\n  \n".encode() + b"cuatro \xff roto\n"


def test_split_documents_on_blank_lines_and_decodes_bad_bytes():
    docs = list(split_documents(read_lines(RAW.splitlines(keepends=True))))
    assert docs == [(0, ["uno", "dos"], []), (1, ["tres"], []), (2, ["cuatro \ufffd roto"], [])]


def test_paths():
    assert template_dir("gs://b/cc100/*/{x}.txt.xz") == "gs://b/cc100"
    assert relative_name("gs://b/cc100/a/es.txt.xz", "gs://b/cc100") == "a/es.txt.xz"
    assert relative_name("/x/es.txt", "/y") == "es.txt"


def test_reads_plain_gzip_and_xz_through_beam(tmp_path):
    (tmp_path / "a.txt").write_bytes(RAW)
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(RAW))
    (tmp_path / "c.txt.xz").write_bytes(lzma.compress(RAW))
    expected = [
        (name, doc, n)
        for name in ("a.txt", "b.txt.gz", "c.txt.xz")
        for doc, n in ((0, 2), (1, 1), (2, 1))
    ]
    with BeamPipeline(runner="FnApiRunner") as p:
        docs = p | ReadCC100([("spa", str(tmp_path / "*"), ReadConfig())], batch_size=2) | beam.FlatMap(list)
        assert_that(docs | beam.Map(lambda d: (d.file, d.doc, len(d.paragraphs))), equal_to(expected))


def test_max_documents(tmp_path):
    (tmp_path / "a.txt").write_bytes(RAW)
    with BeamPipeline(runner="FnApiRunner") as p:
        sources = [("spa", str(tmp_path / "a.txt"), ReadConfig(max_documents=2)),
                   ("tel", str(tmp_path / "a.txt"), ReadConfig(max_documents=1))]
        docs = p | ReadCC100(sources) | beam.FlatMap(list)
        assert_that(docs | beam.Map(lambda d: (d.lang, d.doc)), equal_to([("spa", 0), ("spa", 1), ("tel", 0)]))


# Issue 12: broken archives, over-long lines, byte-order marks.
# 3000 documents of 1-3 numbered paragraphs: every paragraph is unique and says where it is.
PARAGRAPHS = [[f"documento {d} párrafo {i}" + " texto" * (d % 7 + 3) for i in range(d % 3 + 1)]
              for d in range(3000)]
TEXT = "".join("".join(p + "\n" for p in doc) + "\n" for doc in PARAGRAPHS).encode()
ALL = [p for doc in PARAGRAPHS for p in doc]


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def deflate(data: bytes) -> bytes:
    return zlib.compress(data)


COMPRESSORS = {"gz": gzip.compress, "xz": lzma.compress, "bz2": bz2.compress, "zst": zstd,
               "deflate": deflate}


def read_all(path, cfg=ReadConfig()):
    with InputFile(str(path), cfg.max_line_bytes) as f:
        return list(documents("spa", path.name, f.lines(), cfg))


def split(docs):
    """Kept paragraphs in order, and the (reason, text, detail) of every rejected one."""
    kept, rejected = [], []
    for doc in docs:
        reasons = {i: (reason, detail) for i, reason, detail in doc.rejected}
        for i, text in enumerate(doc.paragraphs):
            if i in reasons:
                rejected.append((reasons[i][0], text, reasons[i][1]))
            else:
                kept.append(text)
    return kept, rejected


@pytest.mark.parametrize("ext", COMPRESSORS)
def test_whole_compressed_files_read_whole(tmp_path, ext):
    path = tmp_path / f"a.txt.{ext}"
    half = len(TEXT) // 2
    cut = TEXT.index(b"\n\n", half) + 2
    # two streams (members, frames) one after the other, as concatenated files are
    path.write_bytes(COMPRESSORS[ext](TEXT[:cut]) + COMPRESSORS[ext](TEXT[cut:]))
    assert split(read_all(path)) == (ALL, [])


@pytest.mark.parametrize("ext", COMPRESSORS)
@pytest.mark.parametrize("damage", ["cut", "corrupt"])
def test_a_broken_archive_keeps_what_came_before_and_says_where(tmp_path, caplog, ext, damage):
    data = COMPRESSORS[ext](TEXT)
    path = tmp_path / f"a.txt.{ext}"
    if damage == "cut":
        path.write_bytes(data[: len(data) // 2])
    else:
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0x55 for b in data[middle:middle + 64])
                         + data[middle + 64:])
    with caplog.at_level(logging.WARNING, logger="transforms.sources.cc100"):
        kept, rejected = split(read_all(path))
    # exactly one reject, the partial paragraph being read at the break (never kept)
    assert [reason for reason, _, _ in rejected] == [INPUT_TRUNCATED]
    _, partial, detail = rejected[0]
    assert detail["error"] and detail["stored_bytes_read"] <= len(data)
    assert f"input_truncated: {path}" in caplog.text and str(detail["byte_offset"]) in caplog.text
    if damage == "corrupt":  # gzip finds a bad byte only at its member's end (the CRC)
        return
    assert kept == ALL[: len(kept)] and len(kept) < len(ALL)
    if ext in ("gz", "xz"):  # stream decoders: bz2 and zstd decode whole blocks (100+ KB)
        assert len(kept) > len(ALL) // 4
    nxt = ALL[len(kept)]
    assert partial != nxt and nxt.startswith(partial)
    assert TEXT[: detail["byte_offset"]].decode().split() == " ".join(kept).split()


def test_strict_input_makes_a_broken_archive_an_error(tmp_path):
    path = tmp_path / "a.txt.xz"
    data = lzma.compress(TEXT)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="a.txt.xz is truncated or corrupt"):
        read_all(path, ReadConfig(strict_input=True))


def test_a_plain_file_without_a_final_newline_is_whole(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(TEXT.rstrip(b"\n"))
    assert split(read_all(path)) == (ALL, [])


def test_over_long_lines_are_rejected_while_streaming(tmp_path):
    path = tmp_path / "a.txt.gz"
    lines = [b"a" * 99, b"b" * 100, b"c" * 101, ("\u0c24" * 4000).encode(), b"d" * 10]
    path.write_bytes(gzip.compress(b"\n".join(lines)))  # the last line has no newline
    kept, rejected = split(read_all(path, ReadConfig(max_line_bytes=100)))
    assert kept == ["a" * 99, "b" * 100, "d" * 10]
    assert [(reason, detail["bytes"]) for reason, _, detail in rejected] == [
        (LINE_TOO_LONG, 101), (LINE_TOO_LONG, 12000)
    ]
    assert rejected[0][1] == "c" * 100  # the reject keeps the line's first bytes
    assert split(read_all(path, ReadConfig(max_line_bytes=None)))[1] == []


def test_byte_order_marks_are_removed(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffprimera línea\n\n\ufeffotro archivo pegado\n".encode())
    assert split(read_all(path)) == (["primera línea", "otro archivo pegado"], [])


@pytest.mark.parametrize("args, workers", [
    (["--runner=FnApiRunner"], 1),
    (["--runner=FnApiRunner", "--direct_num_workers=4", "--direct_running_mode=multi_processing"], 4),
    (["--runner=DirectRunner"], None),  # decides at run time: read as a cluster would
])
def test_files_are_read_in_one_part_a_local_worker(args, workers):
    from apache_beam.options.pipeline_options import PipelineOptions

    assert local_workers(beam.Pipeline(options=PipelineOptions(args))) == workers


def test_the_parts_of_a_file_hold_each_document_once_numbered_as_the_file(tmp_path):
    """Documents in interleaved blocks: 3 parts of a file of 3.5 blocks give its documents,
    each once, with the numbers (and a cut last one's reject) of the whole file's reading."""
    n = 3 * PART_DOCS + PART_DOCS // 2
    path = tmp_path / "es.txt.gz"
    path.write_bytes(gzip.compress("".join(f"doc {i}\n\n" for i in range(n)).encode())[:-30])
    whole = list(documents("spa", "es", InputFile(str(path), None).lines(), ReadConfig()))
    parts = [list(documents("spa", "es", InputFile(str(path), None).lines(), ReadConfig(), part=(k, 3)))
             for k in range(3)]
    assert sorted(d for part in parts for d in part) == sorted(whole)
    assert [d.doc // PART_DOCS for d in parts[1]][:1] == [1] and all(len(p) >= PART_DOCS for p in parts)
    assert whole[-1].rejected and whole[-1].rejected[0][1] == INPUT_TRUNCATED
