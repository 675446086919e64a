"""Read CC-100 files: one paragraph a line, documents separated by blank lines.

Files are streamed line by line (CC-100 files run to tens of GB, so a file is never held in
memory), through any Beam filesystem, plain or compressed (``.xz``, ``.gz``, ``.bz2``, ``.zst``,
``.deflate`` by extension). What the reader cannot use becomes a paragraph it rejects, with a
reason, in the document where it stood (``Document.rejected``), so select counts it like any
other drop:

- ``line_too_long``: a line over ``read.max_line_bytes``. Only its first bytes are kept (as the
  reject's text); the rest is skipped while streaming, so neither memory nor any filter ever
  sees it.
- ``input_truncated``: a compressed file that ends early or is corrupt. The paragraphs before
  the break are kept; the partial one being read when the stream broke (empty if the break
  fell at a line's end) is the reject, one per broken file, with the byte offsets in its
  detail; a warning names the file. With ``read.strict_input`` (``--strict-input``) the run
  fails instead.

Bytes that are not valid UTF-8 become U+FFFD and the filters drop the paragraph as
``invalid_utf8``; a byte-order mark at the start of a line is removed.

JSONL files (curated sources, seeds) stream through the same ``InputFile``
(``transforms/sources/jsonl.py``), so a broken one is handled as a CC-100 file is.
"""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import lzma
import posixpath
import zlib
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, BinaryIO, NamedTuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.languages import Language
from transforms.records.shapes import origin
from transforms.sources.config import ReadConfig

logger = logging.getLogger(__name__)

# Documents read and scored together: their paragraphs are MinHashed in one vectorised call
# and their dedup bucket entries travel as one list per shard.
BATCH_DOCS = 128
# Reasons of the paragraphs the reader rejects (documented in the README).
LINE_TOO_LONG = "line_too_long"
INPUT_TRUNCATED = "input_truncated"
_BOM = "\ufeff"
_BUFFER = 1 << 20  # decompressed bytes buffered; also the step an over-long line is skipped by
# A file is read in parts of interleaved blocks of this many documents (``in_part``).
PART_DOCS = 256
# Parts a file is read in on a cluster's runner, unless ``read.file_parts`` says otherwise.
REMOTE_FILE_PARTS = 16
_STEP = 1 << 14  # decompressed bytes asked of a decoder at a time: at most this is lost at a break


class InputError(RuntimeError):
    """A truncated or corrupt input file when ``read.strict_input`` is set."""


def input_pattern(template: str, lang: Language) -> str:
    """The input file pattern of ``lang``: ``{lang}`` is our code, ``{cc100}`` CC-100's."""
    return template.format(lang=lang.code, cc100=lang.cc100)


class Document(NamedTuple):
    """A unit of input for select: a CC-100 document, or a tabular source's row (one paragraph,
    ``doc`` its row; ``transforms/sources/inputs.py``)."""

    lang: str  # language code
    file: str  # path relative to the input template's directory, e.g. "tel.txt.xz"
    doc: int  # 0-based position of the document (row) in its file
    paragraphs: tuple[str, ...]
    # (index, reason, detail) of the paragraphs the reader rejected (see the module's notes)
    rejected: tuple[tuple[int, str, dict], ...] = ()
    source: str = "cc100"  # the source's name (config ``sources``)
    kind: str = "cc100"  # cc100, jsonl or parquet
    row_id: Any = None  # a tabular row's own id (the source's ``id_field``)

    @property
    def unit(self) -> tuple[str, str, int]:
        """(source, file, doc): unique among a language's documents and rows."""
        return self.source, self.file, self.doc

    def origin(self) -> dict:
        """Where it comes from, as a record's ``source`` says it (without a paragraph span)."""
        return origin(self.source, self.kind, self.file, self.doc, self.row_id)


class Line(NamedTuple):
    text: str  # decoded and stripped (``lines(decode)`` says); of a rejected line, what the reader kept of it
    reason: str | None = None  # LINE_TOO_LONG or INPUT_TRUNCATED
    detail: dict | None = None


class _Reader(io.RawIOBase):
    """A raw stream over a ``read(size) -> bytes`` function (for ``io.BufferedReader`` and
    the decompressors)."""

    def __init__(self, read):
        self.read_bytes = read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.read_bytes(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _ChunkDecoder(io.RawIOBase):
    """Decompressed bytes of ``raw`` through a ``decompressobj()`` (zstd, deflate), fed small
    chunks so one call's output stays bounded; frames follow one another. Raises as the
    standard library's readers do: EOFError where the input ends inside a frame, OSError
    where it is corrupt."""

    def __init__(self, raw: BinaryIO, factory):
        self.raw, self.factory, self.decoder, self.pending = raw, factory, factory(), b""
        self.fed = False  # input given to the current frame

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            chunk = b""
            if self.decoder.eof:
                chunk, self.decoder, self.fed = self.decoder.unused_data, self.factory(), False
            chunk = chunk or self.raw.read(4096)
            if not chunk:
                if self.fed and not self.decoder.eof:
                    raise EOFError("compressed file ended before the end-of-stream marker")
                return 0
            self.fed = True
            try:
                self.pending = self.decoder.decompress(chunk)
            except Exception as e:  # noqa: BLE001 - zlib.error, zstandard.ZstdError
                raise OSError(f"corrupt input: {e}") from e
        n = min(len(buffer), len(self.pending))
        buffer[:n], self.pending = self.pending[:n], self.pending[n:]
        return n


def _zstd_decoder():
    import zstandard

    return zstandard.ZstdDecompressor(max_window_size=1 << 31).decompressobj()


_DECOMPRESSORS = {
    CompressionTypes.GZIP: lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    CompressionTypes.LZMA: lzma.LZMAFile,
    CompressionTypes.BZIP2: bz2.BZ2File,
    CompressionTypes.ZSTD: lambda raw: _ChunkDecoder(raw, _zstd_decoder),
    CompressionTypes.DEFLATE: lambda raw: _ChunkDecoder(raw, zlib.decompressobj),
}
# What a decompressor raises where its input ends early (EOFError) or is corrupt
_BROKEN = (EOFError, OSError, lzma.LZMAError, zlib.error)


class StoredReadError(RuntimeError):
    """Reading the stored file failed (a filesystem error, not a broken stream): the run fails
    (and a runner may retry) instead of counting the file as truncated."""


class InputFile:
    """One input file, streamed as ``Line``s; a stream that breaks ends with an
    ``input_truncated`` line instead of an exception. ``read_size`` caps each read of the
    stored file, so that ``position()`` (its bytes read so far) says what was used."""

    def __init__(self, path: str, max_line_bytes: int | None, read_size: int | None = None):
        self.path, self.max_line_bytes, self.read_size = path, max_line_bytes, read_size
        self.raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        stored = _Reader(self._read_stored)
        kind = CompressionTypes.detect_compression_type(path)
        self.decoded = _DECOMPRESSORS[kind](stored) if kind in _DECOMPRESSORS else stored
        self.error: str | None = None

    def position(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> InputFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read_stored(self, size: int) -> bytes:
        try:
            return self.raw.read(min(size, self.read_size or size))
        except OSError as e:
            raise StoredReadError(f"cannot read {self.path}: {e}") from e

    def _read(self, size: int) -> bytes:
        """Up to ``size`` decompressed bytes; b"" at the end or where the stream breaks."""
        if self.error:
            return b""
        try:  # one small step of the decoder: what it decoded before a break comes out
            step = min(size, _STEP)
            return self.decoded.read1(step) if hasattr(self.decoded, "read1") else self.decoded.read(step)
        except _BROKEN as e:
            self.error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            return b""

    def lines(self, decode: Callable[[bytes], Any] | None = None) -> Iterator[Line]:
        """The file's lines; ``decode`` makes a line's bytes its ``text`` (default: UTF-8,
        stripped, without a byte-order mark; the JSONL reader passes ``bytes`` and parses them
        itself)."""
        decode = decode or _decode
        stream = io.BufferedReader(_Reader(self._read), self.read_size or _BUFFER)
        cap = self.max_line_bytes
        offset, partial = 0, b""  # decompressed bytes before the current line; a cut line
        while raw := stream.readline(-1 if cap is None else cap + 1):
            size, complete = len(raw), raw.endswith(b"\n")
            too_long = cap is not None and size > cap and not complete
            while too_long and not complete and (more := stream.readline(_BUFFER)):
                size, complete = size + len(more), more.endswith(b"\n")  # skip the rest
            if not complete and self.error:  # the stream broke inside this line
                partial = raw
                break
            offset += size
            if too_long:
                detail = {"bytes": size - complete, "max_line_bytes": cap}
                yield Line(decode(raw[:cap]), LINE_TOO_LONG, detail)
            else:
                yield Line(decode(raw))
        if self.error:
            detail = {"error": self.error, "byte_offset": offset, "stored_bytes_read": self.position()}
            logger.warning(
                "input_truncated: %s breaks after %d decompressed bytes (%d bytes of the file "
                "read; %s); the paragraphs before the break are kept",
                self.path, offset, detail["stored_bytes_read"], self.error,
            )
            yield Line(decode(partial[:cap]), INPUT_TRUNCATED, detail)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").strip().lstrip(_BOM).lstrip()


def read_lines(f: Iterable[bytes]) -> Iterator[Line]:
    """``Line``s of an open binary file, unchecked (benchmarks, tests)."""
    return (Line(_decode(raw)) for raw in f)


def split_documents(lines: Iterable[Line]) -> Iterator[tuple[int, list[str], list[tuple]]]:
    """(document index, paragraphs, rejected) for each blank-line separated document of
    ``lines``; ``rejected`` holds (index, reason, detail) of the paragraphs the reader rejected."""
    doc, paragraphs, rejected = 0, [], []
    for line in lines:
        if line.reason:
            rejected.append((len(paragraphs), line.reason, line.detail))
            paragraphs.append(line.text)
        elif line.text:
            paragraphs.append(line.text)
        elif paragraphs:
            yield doc, paragraphs, rejected
            doc, paragraphs, rejected = doc + 1, [], []
    if paragraphs:
        yield doc, paragraphs, rejected


def documents(
    lang: str, name: str, lines: Iterable[Line], cfg: ReadConfig, source: str = "cc100",
    part: tuple[int, int] = (0, 1),
) -> Iterator[Document]:
    """The ``Document``s of one file's lines that are in ``part`` (``in_part``; default: all),
    up to ``cfg.max_documents``; with ``cfg.strict_input`` a broken file raises ``InputError``
    (in the part that holds the break). ``source`` is the source's name."""
    for doc, paragraphs, rejected in split_documents(lines):
        if cfg.max_documents is not None and doc >= cfg.max_documents:
            return
        if not in_part(doc, part):
            continue
        for _, reason, detail in rejected:
            if reason == INPUT_TRUNCATED and cfg.strict_input:
                raise broken_input(name, detail)
        yield Document(lang, name, doc, tuple(paragraphs), tuple(rejected), source)


def broken_input(name: str, detail: dict) -> InputError:
    """The error a broken file (``detail`` of its ``input_truncated`` line) is when
    ``read.strict_input`` is set, for any source that reads through ``InputFile``."""
    return InputError(
        f"input file {name} is truncated or corrupt after {detail['byte_offset']} "
        f"decompressed bytes ({detail['error']}); strict input is set"
    )


def relative_name(path: str, base_dir: str) -> str:
    """``path`` relative to ``base_dir`` when below it, else its base name."""
    base = base_dir.rstrip("/") + "/"
    return path[len(base):] if base_dir and path.startswith(base) else posixpath.basename(path)


def _match(source: tuple):
    """(lang, pattern, read config[, source name]) -> (lang, path, name, read config, source
    name) per matching file."""
    lang, pattern, cfg, *named = source
    base_dir = template_dir(pattern)
    for metadata in FileSystems.match([pattern])[0].metadata_list:
        yield lang, metadata.path, relative_name(metadata.path, base_dir), cfg, *(named or ["cc100"])


def in_part(doc: int, part: tuple[int, int]) -> bool:
    """Whether document ``doc`` of a file is in ``part`` (k, n): the k-th of n interleaved sets
    of blocks of ``PART_DOCS`` documents."""
    k, n = part
    return doc // PART_DOCS % n == k




def _read_documents(piece: tuple[str, str, str, ReadConfig, str, tuple[int, int]], batch_size: int):
    """Lists of up to ``batch_size`` documents of one part of a file: the unit later stages work
    on (a batch costs one element, not one per document)."""
    lang, path, name, cfg, source, part = piece
    with InputFile(path, cfg.max_line_bytes) as f:
        yield from batches(documents(lang, name, f.lines(), cfg, source, part), batch_size)


def batches(items: Iterable, size: int) -> Iterator[list]:
    """Lists of up to ``size`` consecutive items."""
    items = iter(items)
    while batch := list(islice(items, size)):
        yield batch


def template_dir(pattern: str) -> str:
    """The directory part of a file pattern before its first glob character."""
    head = pattern
    for ch in "*?[":
        head = head.split(ch, 1)[0]
    return posixpath.dirname(head)


class ReadPieces(beam.PTransform):
    """Sources -> the pieces ``match(source, parts)`` finds of each (parts of files, a Parquet
    file's row groups), spread over workers -> the lists of up to ``batch_size`` documents
    ``read(piece, batch_size)`` makes of each, where they are read (a batch costs one element,
    not one per document). Only pieces cross a shuffle, never documents: on the local runner,
    which holds a shuffle's elements in memory, reading costs no memory that grows with the
    input. With nobody to spread to (``local_workers`` 1), read where matched."""

    def __init__(self, sources: list, match, read, batch_size: int = 128):
        super().__init__()
        self.sources, self.match, self.read, self.batch_size = sources, match, read, batch_size

    def expand(self, pbegin):
        workers = local_workers(pbegin.pipeline)
        pieces = (pbegin | "Sources" >> beam.Create(self.sources, reshuffle=False)
                  | "Match" >> beam.FlatMap(self.match, workers or REMOTE_FILE_PARTS))
        if workers != 1:
            pieces = pieces | "SpreadPieces" >> beam.Reshuffle()
        return pieces | "Read" >> beam.FlatMap(self.read, self.batch_size)


def local_workers(pipeline: beam.Pipeline) -> int | None:
    """The worker processes of the local FnApiRunner that runs ``pipeline``; None on another
    runner."""
    import multiprocessing

    from apache_beam.options.pipeline_options import DirectOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    if not isinstance(pipeline.runner, FnApiRunner):
        return None
    return pipeline.options.view_as(DirectOptions).direct_num_workers or multiprocessing.cpu_count()


def _match_parts(source: tuple, parts: int):
    """A source's files (``_match``) -> their parts: (file..., (k, n)) for k < n, n the
    language's ``read.file_parts`` or else ``parts``."""
    for file in _match(source):
        n = file[3].file_parts or parts
        for k in range(n):
            yield *file, (k, n)


class ReadCC100(ReadPieces):
    """(lang, file pattern, read config[, source name]) sources -> lists of ``Document``s. A
    file is read in parts (``read.file_parts``; by default one a local worker, or
    ``REMOTE_FILE_PARTS`` on a cluster), each streamed by one worker from the file's start:
    its documents are numbered as the file's, and it keeps those of its blocks
    (``in_part``). Decompressing and splitting a file costs ~1% of selecting it (0.7 s of 60 for
    100,000 documents, measured), so each part reading the whole file is cheap next to a
    shuffle of its documents."""

    def __init__(self, sources: list[tuple], batch_size: int = 128):
        super().__init__(sources, _match_parts, _read_documents, batch_size)
