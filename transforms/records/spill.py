"""Spill files: the bulky values of a shuffle written to files, so that only a reference to each
crosses the shuffle (datatrove's design: its MinHash signatures go to files by bucket).

The local runner (FnApiRunner) holds every shuffled element in memory until the step after the
shuffle has read them all, so a value that crosses a shuffle costs memory that grows with the
input. A ``Ref`` (path, offset, length) costs ~100 bytes whatever the value; the step that takes
it reads the value back when it needs it, one group at a time. On Dataflow or Flink the same
graph runs with the files on the run's filesystem (a bucket).

A bundle writes its values to files of its own (``SpillWriter``), closed when the bundle ends:
a shuffle only hands on a bundle's output once the bundle has finished, so every ``Ref`` a step
receives points into a complete file. Files of a failed bundle attempt are never referenced; the
whole directory is removed when the run ends (``remove``).
"""

from __future__ import annotations

import contextlib
import pickle
import uuid
from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import Any, NamedTuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.records.write import writing

# A writer starts a new file past this many bytes: files of a size any filesystem handles well.
FILE_BYTES = 256 << 20


class Ref(NamedTuple):
    """Where one spilled value lies: ``length`` bytes of ``path`` from ``offset``."""

    path: str
    offset: int
    length: int


class SpillWriter:
    """Values pickled into files under ``directory``, one open at a time; ``put`` gives each
    value's ``Ref``. Close it at the bundle's end."""

    def __init__(self, directory: str, file_bytes: int = FILE_BYTES):
        self.directory, self.file_bytes = directory, file_bytes
        self.file, self.path, self.offset = None, "", 0

    def put(self, value: Any) -> Ref:
        data = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        if self.file is None or self.offset >= self.file_bytes:
            self.close()
            self.path, self.offset = f"{self.directory}/{uuid.uuid4().hex}.spill", 0
            with writing(self.path):
                self.file = FileSystems.create(self.path, compression_type=CompressionTypes.UNCOMPRESSED)
        try:
            with writing(self.path):  # a full disk: one line naming the file
                self.file.write(data)
        except OSError:
            self._abandon()  # its space back at once: the run's error lines have room
            raise
        ref = Ref(self.path, self.offset, len(data))
        self.offset += len(data)
        return ref

    def _abandon(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            FileSystems.delete([self.path])
        self.file = None

    def close(self) -> None:
        if self.file is not None:
            with writing(self.path):
                self.file.close()
            self.file = None


def take(refs: Iterable[Ref]) -> Iterator[Any]:
    """The values of ``refs``, read file by file in the order they lie in (each file opened
    once); the order of the values follows the files', not ``refs``'."""
    for path, group in groupby(sorted(refs), key=lambda ref: ref.path):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            for ref in group:
                f.seek(ref.offset)
                yield pickle.loads(f.read(ref.length))


def directory(output: str) -> str:
    """Where a run writing to ``output`` keeps its spill files."""
    return f"{output}/.spill"


def remove(directory: str) -> None:
    """Remove ``directory``'s spill files and the directory, if any (on a bucket, where a
    directory is only a prefix, its files one by one)."""
    files = [m.path for m in FileSystems.match([f"{directory}/*.spill"])[0].metadata_list]
    if files:
        FileSystems.delete(files)
    if FileSystems.exists(directory):
        FileSystems.delete([directory])
