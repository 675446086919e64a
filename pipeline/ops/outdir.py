"""An output directory is one run's at a time, and a run's outputs replace the old ones whole.

- **The lock** (``OUT/.lock``): taken after the arguments are checked, before any work; it holds
  the owner's pid, host and start time. On a local disk the owner also holds an exclusive
  ``flock`` on it, which the kernel releases when the process dies however it ends, so a second
  run is told the owner at once, and a lock left by a killed run is *stale*: the next run on
  the same host takes it over with a warning (a lock naming another host is never taken over:
  that host's run may be alive; the message says how to remove it). On a bucket (``gs://``,
  ``s3://``) there is no such primitive through Beam's filesystems: the lock is a check, then a
  write read back, which tells a run started after the owner's lock was written, not two
  started at the same moment, and a stale one is detected only from the host that wrote it.
- **Staging** (``OUT/.staging/``): the run writes its user-facing outputs (``data/``,
  ``rejects/``, ``stats/``, ``report.md``, ``plots/``, ``run.json``) there, as they would lie in
  OUT. When the run has succeeded, ``swap`` writes the list of what it will replace
  (``_SWAP.json``: from then on the new output is the one OUT holds) and renames each
  ``data/{lang}``, ``rejects/{lang}``, ``stats/{lang}.json``, ``plots/NAME``, ``report.md`` and
  ``run.json`` into place: a few renames of directories. A run that fails, is interrupted or
  killed leaves OUT's previous output as it was; its staging is removed when it ends or, after
  a kill, by the next run, which also finishes a swap a kill cut short (so a reader never
  keeps a mix). On a bucket a "directory" is its objects: each file is renamed (copied and
  deleted), and a finished swap removes the old files the new output does not have.

Checkpoints (``OUT/stages``) and the model-call cache (``OUT/cache``) are written in place, as
before: a killed run resumes from them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass

from apache_beam.io.filesystems import FileSystems

from transforms.records.write import WriteError, write_json, writing

logger = logging.getLogger(__name__)

LOCK = ".lock"
STAGING = ".staging"
JOURNAL = "_SWAP.json"
OLD = ".old"  # under the staging dir: the entries a local swap moved out of the way


class OutputInUse(Exception):
    """Another run owns the output directory: one line naming it, exit status 2."""


def is_local(output: str) -> bool:
    return "://" not in output or output.startswith("file://")


def _local(path: str) -> str:
    return path.removeprefix("file://")


def staging_dir(output: str) -> str:
    """Where a run writes the outputs ``swap`` moves into ``output`` once it has succeeded."""
    return f"{output}/{STAGING}"


# --- the lock -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """Who holds a lock: the process, its host, when it started (and, on Linux, the process's
    own start time, so a pid reused by another process is not taken for the owner)."""

    pid: int
    host: str
    started: str
    proc_start: int | None = None

    @classmethod
    def me(cls) -> Owner:
        return cls(os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%dT%H:%M:%S%z"), _proc_start(os.getpid()))

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["started"]), data.get("proc_start"))
        except (ValueError, KeyError, TypeError):
            return None

    def text(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    def __str__(self) -> str:
        return f"pid {self.pid} on host {self.host}, started {self.started}"

    def running(self) -> bool:
        """Whether the owner's process still runs (asked only on its own host)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process: it exists
        start = _proc_start(self.pid)
        if start is None:  # no /proc here, or a zombie: only a live process has a start time we use
            return not os.path.exists("/proc/self/stat")
        return self.proc_start is None or start == self.proc_start


def _proc_start(pid: int) -> int | None:
    """A live process's start time (clock ticks since boot) from ``/proc``; None without one."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])  # state, then starttime (field 22)


def _in_use(output: str, owner: Owner | None, lock: str) -> OutputInUse:
    who = str(owner) if owner else "its owner is still writing the lock"
    return OutputInUse(f"the output directory {output} is in use by another run ({who}); wait for it "
                       f"to end, or use another --output (lock: {lock})")


def _other_host(output: str, owner: Owner, lock: str) -> OutputInUse:
    return OutputInUse(f"the output directory {output} is locked by a run on another host ({owner}); "
                       f"this host cannot tell whether it still runs: if it does not, remove {lock} "
                       "and run again")


def _check_stale(output: str, owner: Owner | None, lock: str) -> None:
    """Raise ``OutputInUse`` unless the lock's ``owner`` is gone (a lock left by a killed run
    on this host): that one is taken over with a warning."""
    if owner is None:
        logger.warning("taking over the unreadable lock %s", lock)
        return
    if owner.host != socket.gethostname():
        raise _other_host(output, owner, lock)
    if owner.running():
        raise _in_use(output, owner, lock)
    logger.warning("taking over the stale lock of a run that no longer runs (%s): its partial "
                   "outputs are removed, its checkpoints kept", owner)


class _LocalLock:
    """``OUT/.lock`` on a local disk, held with ``flock`` for as long as the run lasts."""

    def __init__(self, output: str):
        self.output, self.path, self.fd = output, f"{_local(output)}/{LOCK}", None

    def acquire(self) -> None:
        import fcntl

        self.created = not os.path.exists(os.path.dirname(self.path))  # removed again if left empty
        with writing(self.path):
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        for _ in range(10):  # the owner may remove the file between our open and our flock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = self._owner(fd, wait=True)
                os.close(fd)
                raise _in_use(self.output, owner, self.path) from None
            except OSError:  # a filesystem without flock: the content alone decides
                pass
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            try:
                if os.fstat(fd).st_size:
                    _check_stale(self.output, self._owner(fd), self.path)
                with writing(self.path):
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, Owner.me().text().encode("utf-8"), 0)
                    os.fsync(fd)
            except BaseException:
                os.close(fd)
                raise
            self.fd = fd
            return
        raise _in_use(self.output, None, self.path)

    @staticmethod
    def _owner(fd: int, wait: bool = False) -> Owner | None:
        for _ in range(20 if wait else 1):  # a fresh owner writes its lock just after its flock
            owner = Owner.parse(os.pread(fd, 4096, 0).decode("utf-8", errors="replace"))
            if owner or not wait:
                return owner
            time.sleep(0.05)
        return None

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if os.fstat(self.fd).st_ino == os.stat(self.path).st_ino:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            os.close(self.fd)
            self.fd = None
        if self.created:  # a run that stopped before writing anything (e.g. --from-stage, exit 2)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(self.path))


class _BucketLock:
    """``OUT/.lock`` on a bucket: checked, written and read back (see the module's docstring)."""

    def __init__(self, output: str):
        self.output, self.path, self.owner = output, f"{output}/{LOCK}", None

    def _read(self) -> Owner | None:
        with FileSystems.open(self.path) as f:
            return Owner.parse(f.read().decode("utf-8", errors="replace"))

    def acquire(self) -> None:
        if FileSystems.exists(self.path):
            _check_stale(self.output, self._read(), self.path)
        me = Owner.me()
        with writing(self.path), FileSystems.create(self.path) as f:
            f.write(me.text().encode("utf-8"))
        found = self._read()
        if found != me:  # another run wrote it at the same time
            raise _in_use(self.output, found, self.path)
        self.owner = me

    def release(self) -> None:
        if self.owner is not None and FileSystems.exists(self.path) and self._read() == self.owner:
            FileSystems.delete([self.path])
        self.owner = None


@contextlib.contextmanager
def owned(output: str):
    """Hold ``output`` for one run: take its lock (``OutputInUse`` if another run has it), finish
    or remove what a killed run left in its staging dir, and at the end, however the run ends,
    remove this run's staging dir (unless ``swap`` has moved it in) and release the lock."""
    lock = _LocalLock(output) if is_local(output) else _BucketLock(output)
    lock.acquire()
    try:
        recover(output)
        yield
    finally:
        try:
            recover(output, quiet=True)
        except OSError as e:  # the run's own line says what failed; this one, what is left
            logger.warning("%s; the next run into %s finishes or removes %s", e, output, staging_dir(output))
        finally:
            lock.release()


# --- staging and the swap -------------------------------------------------------------------


def _exists(path: str) -> bool:
    return os.path.lexists(_local(path)) if is_local(path) else FileSystems.exists(path)


def _files(directory: str) -> list[str]:
    """Every file under ``directory``, relative to it, sorted."""
    if is_local(directory):
        root = _local(directory)
        found = [os.path.relpath(os.path.join(d, name), root) for d, _, names in os.walk(root) for name in names]
    else:
        found = [m.path[len(directory) + 1:] for m in FileSystems.match([f"{directory}/**"])[0].metadata_list]
    return sorted(found)


def entries(files: list[str]) -> dict[str, list[str]]:
    """What a swap replaces, from the staged files (relative paths): a file at the top
    (``report.md``) or one level down (``stats/tel.json``) is itself an entry; deeper files go
    with the directory one level down (``data/tel``). -> entry -> its files, relative to it."""
    out: dict[str, list[str]] = {}
    for path in files:
        parts = path.split("/")
        if parts[0] in (JOURNAL, OLD) or parts[0].startswith(JOURNAL):
            continue
        entry = "/".join(parts[:2])
        out.setdefault(entry, []).append("/".join(parts[2:]))
    return out


def swap(output: str) -> list[str]:
    """Move the staged outputs into ``output``, replacing what they replace (see the module's
    docstring); -> the entries moved. The journal is written first: a swap a kill cuts short is
    finished by the next run (``recover``)."""
    staging = staging_dir(output)
    found = entries(_files(staging))
    journal = f"{staging}/{JOURNAL}"
    write_json(f"{journal}.tmp", {"entries": found})
    with writing(journal):
        FileSystems.rename([f"{journal}.tmp"], [journal])
    _finish(output, found)
    return sorted(found)


def _finish(output: str, found: dict[str, list[str]]) -> None:
    """Every entry of a written journal moved in (those not moved yet), then the staging dir
    removed: run again after a kill, it finishes what is left."""
    staging = staging_dir(output)
    for entry, files in sorted(found.items()):
        new, dest = f"{staging}/{entry}", f"{output}/{entry}"
        with writing(dest):
            if is_local(output):
                _move_local(_local(new), _local(dest), _local(f"{staging}/{OLD}/{entry}"))
            else:
                _move_bucket(new, dest, files)
    _remove(staging)


def _move_local(new: str, dest: str, old: str) -> None:
    """``new`` in place of ``dest``, the old one moved to ``old`` first: two renames, each
    skipped when a previous attempt did it."""
    if not os.path.lexists(new):
        return  # moved in already
    if os.path.lexists(dest):
        os.makedirs(os.path.dirname(old), exist_ok=True)
        os.rename(dest, old)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    os.rename(new, dest)


def _move_bucket(new: str, dest: str, files: list[str]) -> None:
    """On a bucket, file by file: the staged files renamed over the old ones (those still in
    staging), then the old files the new entry does not have deleted."""
    paths = [new] if files == [""] else [f"{new}/{name}" for name in files]
    targets = [dest] if files == [""] else [f"{dest}/{name}" for name in files]
    pending = [(src, dst) for src, dst in zip(paths, targets, strict=True) if FileSystems.exists(src)]
    if pending:
        FileSystems.rename(*map(list, zip(*pending)))
    if files != [""]:
        keep = set(targets)
        old = [m.path for m in FileSystems.match([f"{dest}/**"])[0].metadata_list if m.path not in keep]
        if old:
            FileSystems.delete(old)


def _remove(directory: str) -> None:
    if is_local(directory):
        shutil.rmtree(_local(directory), ignore_errors=True)
    elif files := _files(directory):
        FileSystems.delete([f"{directory}/{name}" for name in files])


def recover(output: str, quiet: bool = False) -> None:
    """What a run left in the staging dir: a swap it began (a journal is there) is finished;
    anything else, the outputs of a run that did not succeed, is removed."""
    staging = staging_dir(output)
    journal = f"{staging}/{JOURNAL}"
    if _exists(journal):
        with FileSystems.open(journal) as f:
            found = json.loads(f.read().decode("utf-8"))["entries"]
        logger.warning("finishing the swap of a run that was stopped while moving its outputs into %s", output)
        _finish(output, found)
    elif _exists(staging) or not is_local(output) and _files(staging):
        if not quiet:
            logger.warning("removing the partial outputs of a run that did not finish (%s)", staging)
        _remove(staging)


def discard(output: str) -> None:
    """Remove this run's staged outputs (a failed run's: frees their space before the error is
    written); a swap that has begun is left to finish."""
    with contextlib.suppress(OSError, WriteError):
        if not _exists(f"{staging_dir(output)}/{JOURNAL}"):
            _remove(staging_dir(output))
