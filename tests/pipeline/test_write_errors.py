"""A disk that fills up, or a file size limit, during a run (issue 28, item 5): one line
(``no space left on device writing PATH``), exit 1, ``OUT/error.txt`` written or the line says
why not, and the previous complete output whole. Real mechanisms, no mocks: a subprocess under
``RLIMIT_FSIZE``, and a small tmpfs in a private mount namespace where the machine allows one."""

import hashlib
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.ops import outdir

ROOT = Path(__file__).resolve().parents[2]
LANGS = "tel,hin"


def select(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.main", "--langs", LANGS, "--until", "select", "--output", str(out),
            *extra]


def user_output(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*"))
            if p.is_file() and p.relative_to(out).parts[0] in ("data", "rejects", "stats", "plots", "report.md",
                                                               "run.json")}


@pytest.fixture(scope="module")
def complete(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("complete") / "out"
    done = subprocess.run(select(out), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def limit_file_size(size: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


@pytest.mark.slow
def test_a_file_size_limit_is_one_line_naming_the_file_and_leaves_the_output_whole(complete, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(complete, out)
    before = user_output(out)
    # the data shards (~30 kB) are over the limit; the lock, the checkpoints' files and error.txt are not
    result = subprocess.run(select(out, "--from-stage", "select"), cwd=ROOT, capture_output=True, text=True,
                            timeout=300, preexec_fn=limit_file_size(20_000))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr  # one line, no traceback
    line = result.stderr.strip()
    assert line.startswith(f"error: the run failed: file too large writing {out}/"), line
    assert line.endswith(f"(traceback: {out}/error.txt)"), line
    assert "Traceback" in (out / "error.txt").read_text()
    assert user_output(out) == before
    assert not (out / outdir.STAGING).exists() and not (out / outdir.LOCK).exists()


def _tmpfs_works(where: Path) -> bool:
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {where}"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.slow
def test_a_full_disk_is_one_line_naming_the_file_and_leaves_the_output_whole(complete, tmp_path):
    if shutil.which("unshare") is None or not _tmpfs_works(tmp_path):
        pytest.skip("no private mount namespace with a tmpfs here (needs root or user namespaces)")
    disk, after = tmp_path / "disk", tmp_path / "after"
    disk.mkdir()
    # A 4 MB tmpfs holding a copy of the complete output, filled up but for 16 kB: enough for the
    # lock, not for the run's outputs. What is left is copied out before the namespace goes.
    script = f"""
        set -e
        mount -t tmpfs -o size=4m tmpfs {disk}
        cp -a {complete} {disk}/out
        dd if=/dev/zero of={disk}/filler bs=4k 2>/dev/null || true
        truncate -s -16K {disk}/filler
        set +e
        {" ".join(select(disk / "out", "--from-stage", "select"))} 2>{disk}/stderr
        echo $? > {disk}/rc
        rm {disk}/filler
        cp -a {disk}/out {after}
        cp {disk}/stderr {disk}/rc {tmp_path}/
    """
    subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=ROOT, check=True, timeout=300)
    stderr = (tmp_path / "stderr").read_text()
    assert (tmp_path / "rc").read_text().strip() == "1", stderr
    assert stderr.strip().count("\n") == 0, stderr
    line = stderr.strip()
    assert line.startswith(f"error: the run failed: no space left on device writing {disk}/out/"), line
    if line.endswith(f"(traceback: {disk}/out/error.txt)"):  # written once the run's own files were gone
        assert "Traceback" in (after / "error.txt").read_text()
    else:
        assert line.endswith(f"(no traceback: no space left on device writing {disk}/out/error.txt)"), line
    assert user_output(after) == user_output(complete)
    assert not (after / outdir.STAGING).exists() and not (after / outdir.LOCK).exists()


def test_when_error_txt_cannot_be_written_the_line_says_why(tmp_path):
    # the failure path of a run, in a process whose files may not pass 100 bytes
    code = (
        "import errno, sys; from pipeline.main import _failed; from transforms.records.write import WriteError; "
        f"sys.exit(_failed({str(tmp_path)!r}, WriteError(errno.ENOSPC, 'No space left on device', 'OUT/data/x'), "
        "'Traceback ' * 100))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            preexec_fn=limit_file_size(100))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: the run failed: no space left on device writing OUT/data/x (no traceback: file too large "
        f"writing {tmp_path}/error.txt)")
