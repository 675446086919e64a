"""Read CC-100 files: one paragraph a line, documents separated by blank lines.

Files are streamed line by line (CC-100 files run to tens of GB, so a file is never held in
memory), through any Beam filesystem, plain or compressed (``.xz``, ``.gz``, ``.bz2``, ``.zst``
by extension). Bytes that are not valid UTF-8 become U+FFFD and the filters drop the paragraph
as ``invalid_utf8``: a bad byte never stops the run and is always counted.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

logger = logging.getLogger(__name__)


class Document(NamedTuple):
    file: str  # path relative to the input template's directory, e.g. "tel.txt.xz"
    doc: int  # 0-based position of the document in its file
    paragraphs: tuple[str, ...]


def split_documents(lines: Iterable[bytes]) -> Iterator[tuple[int, list[str]]]:
    """(document index, paragraphs) for each blank-line separated document of ``lines``."""
    doc, paragraphs = 0, []
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").strip()
        if line:
            paragraphs.append(line)
        elif paragraphs:
            yield doc, paragraphs
            doc, paragraphs = doc + 1, []
    if paragraphs:
        yield doc, paragraphs


def relative_name(path: str, base_dir: str) -> str:
    """``path`` relative to ``base_dir`` when below it, else its base name."""
    base = base_dir.rstrip("/") + "/"
    return path[len(base):] if base_dir and path.startswith(base) else posixpath.basename(path)


class _ReadDocuments(beam.DoFn):
    def __init__(self, base_dir: str, max_documents: int | None):
        self.base_dir = base_dir
        self.max_documents = max_documents

    def process(self, metadata):
        name = relative_name(metadata.path, self.base_dir)
        with FileSystems.open(metadata.path, compression_type=CompressionTypes.AUTO) as f:
            for doc, paragraphs in split_documents(iter(f.readline, b"")):
                if self.max_documents is not None and doc >= self.max_documents:
                    break
                yield Document(name, doc, tuple(paragraphs))


def template_dir(pattern: str) -> str:
    """The directory part of a file pattern before its first glob character."""
    head = pattern
    for ch in "*?[":
        head = head.split(ch, 1)[0]
    return posixpath.dirname(head)


class ReadCC100(beam.PTransform):
    """File pattern -> ``Document``s, spread over workers."""

    def __init__(self, pattern: str, max_documents: int | None = None):
        super().__init__()
        self.pattern = pattern
        self.max_documents = max_documents

    def expand(self, pbegin):
        return (
            pbegin
            | "Match" >> fileio.MatchFiles(self.pattern)
            | "Read" >> beam.ParDo(_ReadDocuments(template_dir(self.pattern), self.max_documents))
            | "Spread" >> beam.Reshuffle()
        )
