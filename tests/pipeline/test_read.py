import gzip
import lzma

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.read import ReadCC100, relative_name, split_documents, template_dir

RAW = "uno\ndos\n\n\ntres\n  \n".encode() + b"cuatro \xff roto\n"


def test_split_documents_on_blank_lines_and_decodes_bad_bytes():
    docs = list(split_documents(RAW.splitlines(keepends=True)))
    assert docs == [(0, ["uno", "dos"]), (1, ["tres"]), (2, ["cuatro \ufffd roto"])]


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
        docs = p | ReadCC100([("spa", str(tmp_path / "*"), None)], batch_size=2) | beam.FlatMap(list)
        assert_that(docs | beam.Map(lambda d: (d.file, d.doc, len(d.paragraphs))), equal_to(expected))


def test_max_documents(tmp_path):
    (tmp_path / "a.txt").write_bytes(RAW)
    with BeamPipeline(runner="FnApiRunner") as p:
        sources = [("spa", str(tmp_path / "a.txt"), 2), ("tel", str(tmp_path / "a.txt"), 1)]
        docs = p | ReadCC100(sources) | beam.FlatMap(list)
        assert_that(docs | beam.Map(lambda d: (d.lang, d.doc)), equal_to([("spa", 0), ("spa", 1), ("tel", 0)]))
