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
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.languages import Language

logger = logging.getLogger(__name__)

# Documents read and scored together: their paragraphs are MinHashed in one vectorised call
# and their dedup bucket entries travel as one list per shard.
BATCH_DOCS = 128


def input_pattern(template: str, lang: Language) -> str:
    """The input file pattern of ``lang``: ``{lang}`` is our code, ``{cc100}`` CC-100's."""
    return template.format(lang=lang.code, cc100=lang.cc100)


class Document(NamedTuple):
    lang: str  # language code
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


def _match(source: tuple[str, str, int | None]):
    """(lang, pattern, max documents) -> (lang, path, name, max documents) per matching file."""
    lang, pattern, max_documents = source
    base_dir = template_dir(pattern)
    for metadata in FileSystems.match([pattern])[0].metadata_list:
        yield lang, metadata.path, relative_name(metadata.path, base_dir), max_documents


def _read_documents(file: tuple[str, str, str, int | None], batch_size: int):
    """Lists of up to ``batch_size`` documents of one file: the unit later stages work on
    (a batch costs one element, not one per document)."""
    lang, path, name, max_documents = file
    batch = []
    with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as f:
        for doc, paragraphs in split_documents(iter(f.readline, b"")):
            if max_documents is not None and doc >= max_documents:
                break
            batch.append(Document(lang, name, doc, tuple(paragraphs)))
            if len(batch) == batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def template_dir(pattern: str) -> str:
    """The directory part of a file pattern before its first glob character."""
    head = pattern
    for ch in "*?[":
        head = head.split(ch, 1)[0]
    return posixpath.dirname(head)


class ReadCC100(beam.PTransform):
    """(lang, file pattern, max documents per file) sources -> lists of ``Document``s, spread
    over workers. Each file is streamed by one worker; the Reshuffle spreads its batches."""

    def __init__(self, sources: list[tuple[str, str, int | None]], batch_size: int = 128):
        super().__init__()
        self.sources, self.batch_size = sources, batch_size

    def expand(self, pbegin):
        return (
            pbegin
            | "Sources" >> beam.Create(self.sources)
            | "Match" >> beam.FlatMap(_match)
            | "SpreadFiles" >> beam.Reshuffle()
            | "Read" >> beam.FlatMap(_read_documents, self.batch_size)
            | "SpreadBatches" >> beam.Reshuffle()
        )
