"""One run at a time in an output directory, and a run that fails, is interrupted or killed
leaves the previous complete output whole (issue 28, items 2 and 3): real runs of
``python -m pipeline.main`` as subprocesses, killed and run two at once, against the project's
fault server; the swap's recovery on real directories."""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.ops import outdir
from tests.pipeline.fault_server import FaultServer, seed_translated

ROOT = Path(__file__).resolve().parents[2]
LANG = "tel"
LLM = {"model": "fault-model", "records_per_batch": 100, "concurrency": 16, "timeout_s": 2.0,
       "retries": 1, "backoff_s": 0.05}
N = 20


def write_config(path: Path, llm: dict, tasks=("open_ended@1", "mcq@1")) -> Path:
    path.write_text(json.dumps({"llm": llm, "generate": {"tasks": {t: 1.0 for t in tasks}}}), encoding="utf-8")
    return path


def command(tmp: Path, out: Path, config: Path, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.main", "--langs", LANG, "--input", str(tmp / "tel.txt"),
            "--output", str(out), "--config", str(config), "--until", "judge", "--llm-endpoint", url, *extra]


def run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, **kw)


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout: float = 120.0, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


def user_output(out: Path) -> dict[str, str]:
    """What a user reads in OUT, file by file (md5): data, rejects, stats, report, plots, run.json
    (the stats without the endpoint's URL: each fault server has its own port)."""
    found = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and rel.split("/")[0] in ("data", "rejects", "stats", "plots", "report.md", "run.json"):
            data = path.read_bytes()
            if rel.startswith("stats/"):
                data = re.sub(rb'"endpoint": "[^"]*"', b'"endpoint": null', data)
            found[rel] = hashlib.md5(data).hexdigest()
    return found


def content(out: Path) -> dict[str, str]:
    """``user_output`` with each language's data and rejects as sorted lines: another run of the
    same records may shard them otherwise (e.g. one that reads a stage back from its checkpoint)."""
    found = {rel: md5 for rel, md5 in user_output(out).items() if rel.split("/")[0] not in ("data", "rejects")}
    for kind in ("data", "rejects"):
        for lang_dir in sorted((out / kind).iterdir()):
            lines = sorted(line for part in lang_dir.glob("part-*") for line in part.read_bytes().splitlines())
            found[f"{kind}/{lang_dir.name}"] = hashlib.md5(b"\n".join(lines)).hexdigest()
    return found


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens: connection refused


@pytest.fixture
def complete(tmp_path):
    """A complete output of generate and judge (from a seeded translate checkpoint)."""
    config = write_config(tmp_path / "c.yaml", LLM)
    out = tmp_path / "out"
    seed_translated(out, tmp_path / "tel.txt", config, N)
    with FaultServer() as healthy:
        first = run(command(tmp_path, out, config, healthy.url))
    assert first.returncode == 0, first.stderr[-3000:]
    before = user_output(out)
    assert f"data/{LANG}/part-00000-of-00001.jsonl" in before and "report.md" in before and "run.json" in before
    return tmp_path, out, config, before


@pytest.mark.slow
def test_a_second_run_into_a_busy_output_exits_2_naming_the_owner_and_ctrl_c_releases_the_lock(complete):
    tmp, out, _, before = complete
    slow = write_config(tmp / "slow.yaml", {**LLM, "timeout_s": 120.0, "retries": 0}, tasks=("mcq@1",))
    with FaultServer({"hang": 1.0}, hang_s=120.0) as hanging:
        owner = start(command(tmp, out, slow, hanging.url))
        wait_for(lambda: hanging.calls > 0 or owner.poll() is not None)  # in generate, holding the lock
        assert owner.poll() is None, owner.stderr.read()[-3000:]
        lock = json.loads((out / ".lock").read_text())
        assert lock["pid"] == owner.pid and lock["host"] == socket.gethostname()
        # another input, another config: refused before it reads anything
        (tmp / "other.txt").write_text("another paragraph\n", encoding="utf-8")
        second = run([sys.executable, "-m", "pipeline.main", "--langs", LANG, "--input", str(tmp / "other.txt"),
                      "--output", str(out), "--until", "select"])
        assert second.returncode == 2
        assert second.stderr.strip().count("\n") == 0, second.stderr
        assert f"in use by another run (pid {owner.pid} on host {socket.gethostname()}, started " in second.stderr
        assert owner.poll() is None  # the owner runs on, undisturbed
        owner.send_signal(signal.SIGINT)  # Ctrl-C
        owner.wait(timeout=60)
    assert owner.returncode == 130, owner.stderr.read()[-3000:]
    assert "interrupted" in owner.stderr.read().strip().splitlines()[-1]
    assert not (out / ".lock").exists() and not (out / outdir.STAGING).exists()
    assert user_output(out) == before  # the interrupted run changed nothing a user reads


@pytest.mark.slow
def test_a_killed_from_stage_run_leaves_the_previous_output_whole_and_the_next_run_takes_over_its_lock(complete):
    tmp, out, config, before = complete
    # another task mix: prompts the model-call cache has not seen, so the run waits on the server
    slow = write_config(tmp / "slow.yaml", {**LLM, "timeout_s": 120.0, "retries": 0}, tasks=("mcq@1",))
    content_before = content(out)
    with FaultServer({"hang": 1.0}, hang_s=120.0) as hanging:
        killed = start(command(tmp, out, slow, hanging.url, "--from-stage", "generate"))
        wait_for(lambda: hanging.calls > 0 or killed.poll() is not None)
        assert killed.poll() is None, killed.stderr.read()[-3000:]
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
    assert user_output(out) == before
    assert json.loads((out / ".lock").read_text())["pid"] == killed.pid  # left behind: stale
    assert not (out / "stages" / "generate" / LANG / "_COMPLETE.json").exists()  # --from-stage cleared it

    with FaultServer() as healthy:
        again = run(command(tmp, out, config, healthy.url))
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"taking over the stale lock of a run that no longer runs (pid {killed.pid} on host" in again.stderr
    after = content(out)
    assert after.pop("run.json") != content_before.pop("run.json")  # this run's: the cache answered
    assert after == content_before  # the same records, rejects, stats and report
    assert not (out / ".lock").exists() and not (out / outdir.STAGING).exists()


@pytest.mark.slow
def test_a_failed_rerun_with_a_changed_setting_leaves_the_previous_output_whole(complete):
    tmp, out, _, before = complete
    changed = write_config(tmp / "changed.yaml", LLM, tasks=("open_ended@1",))  # generate redone
    failed = run(command(tmp, out, changed, closed_port_url()))
    assert failed.returncode == 1
    assert last_line(failed).startswith("error: the run failed: ErrorBudgetExceeded: generate (tel)"), failed.stderr
    assert "Traceback" in (out / "error.txt").read_text()
    assert user_output(out) == before  # data, rejects, stats, report and run.json: the last good run's
    assert not (out / ".lock").exists() and not (out / outdir.STAGING).exists()


def sample_select(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.main", "--langs", "tel,hin", "--until", "select", "--output", str(out),
            *extra]


@pytest.mark.slow
def test_a_run_killed_while_writing_its_outputs_is_cleaned_up_by_the_next(tmp_path):
    out = tmp_path / "out"
    assert run(sample_select(out)).returncode == 0
    before, content_before = user_output(out), content(out)
    killed = start(sample_select(out, "--from-stage", "select"))
    wait_for(lambda: (out / outdir.STAGING).exists() or killed.poll() is not None, every=0.005)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert (out / outdir.STAGING).exists(), "the run ended before it wrote anything"
    assert user_output(out) == before
    again = run(sample_select(out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "taking over the stale lock" in again.stderr and "removing the partial outputs" in again.stderr
    after = content(out)
    assert after.pop("run.json") and content_before.pop("run.json")
    assert after == content_before
    assert not (out / outdir.STAGING).exists() and not (out / ".lock").exists()


def test_a_lock_of_another_host_is_refused_naming_it_and_how_to_remove_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    lock = {"pid": os.getpid(), "host": "build-7.example.org", "started": "2026-12-07T10:00:00+0000"}
    (out / ".lock").write_text(json.dumps(lock))
    result = run(sample_select(out))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    assert "locked by a run on another host (pid" in result.stderr and "build-7.example.org" in result.stderr
    assert f"remove {out}/.lock and run again" in result.stderr
    assert json.loads((out / ".lock").read_text()) == lock  # left as it was
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # no work started


def test_a_lock_of_a_live_process_that_is_not_holding_it_is_refused(tmp_path):
    # a lock naming a process that runs (this test's): not taken for stale, even without its flock
    out = tmp_path / "out"
    out.mkdir()
    me = outdir.Owner.me()
    (out / ".lock").write_text(me.text())
    with pytest.raises(outdir.OutputInUse, match=f"pid {os.getpid()} on host"), outdir.owned(str(out)):
        pass
    dead = subprocess.Popen(["true"])
    dead.wait()
    (out / ".lock").write_text(outdir.Owner(dead.pid, me.host, me.started, me.proc_start).text())
    with outdir.owned(str(out)):  # a dead owner: taken over
        assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()
    assert not (out / ".lock").exists()


def staged(out: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


OLD = {"data/tel/part-00000-of-00002.jsonl": "old0\n", "data/tel/part-00001-of-00002.jsonl": "old1\n",
       "data/hin/part-00000-of-00001.jsonl": "hin\n", "stats/tel.json": "{old}", "report.md": "old report",
       "plots/funnel_tel.png": "old png", "plots/funnel_spa.png": "spa png"}
NEW = {"data/tel/part-00000-of-00001.jsonl": "new\n", "stats/tel.json": "{new}", "report.md": "new report",
       "plots/funnel_tel.png": "new png", "run.json": "{}"}
# after the swap: every entry the run wrote replaced whole; the others (another language's) kept
SWAPPED = {"data/hin/part-00000-of-00001.jsonl": "hin\n", "plots/funnel_spa.png": "spa png", **NEW}


def contents(out: Path) -> dict[str, str]:
    """Every file under ``out`` but the lock (held while a run owns it)."""
    return {p.relative_to(out).as_posix(): p.read_text() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != outdir.LOCK}


def test_swap_replaces_each_entry_the_run_wrote_and_keeps_the_others(tmp_path):
    out = tmp_path / "out"
    staged(out, OLD)
    staged(out / outdir.STAGING, NEW)
    assert outdir.swap(str(out)) == ["data/tel", "plots/funnel_tel.png", "report.md", "run.json", "stats/tel.json"]
    assert contents(out) == SWAPPED


@pytest.mark.parametrize("moved", [0, 1, 3])
def test_a_swap_cut_short_is_finished_by_the_next_run(tmp_path, moved):
    out = tmp_path / "out"
    staged(out, OLD)
    staging = out / outdir.STAGING
    staged(staging, NEW)
    found = outdir.entries(sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()))
    (staging / outdir.JOURNAL).write_text(json.dumps({"entries": found}))
    order = sorted(found)
    for entry in order[:moved]:  # what the killed run had renamed
        outdir._move_local(str(staging / entry), str(out / entry), str(staging / outdir.OLD / entry))
    if (out / order[moved]).exists():  # and the next entry: killed between its two renames
        (staging / outdir.OLD / order[moved]).parent.mkdir(parents=True, exist_ok=True)
        os.rename(out / order[moved], staging / outdir.OLD / order[moved])
    with outdir.owned(str(out)):
        assert contents(out) == SWAPPED
    assert contents(out) == SWAPPED and not (out / outdir.LOCK).exists()


def test_a_staging_dir_without_a_journal_is_removed_and_the_output_kept(tmp_path):
    out = tmp_path / "out"
    staged(out, OLD)
    staged(out / outdir.STAGING, {"data/tel/.tmp-1.jsonl": "partial"})
    with outdir.owned(str(out)):
        assert contents(out) == OLD
    assert contents(out) == OLD


def test_the_bucket_swap_renames_file_by_file_and_drops_old_files_the_new_entry_lacks(tmp_path):
    # the code path of gs:// outputs, through Beam's filesystems, on local files
    out, staging = tmp_path / "out", tmp_path / "out" / outdir.STAGING
    staged(out, OLD)
    staged(staging, NEW)
    found = outdir.entries(sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()))
    for entry, files in found.items():
        outdir._move_bucket(str(staging / entry), str(out / entry), files)
        outdir._move_bucket(str(staging / entry), str(out / entry), files)  # again, as after a kill: no change
    outdir._remove(str(staging))
    assert contents(out) == SWAPPED


def test_a_run_that_stops_before_any_work_leaves_no_output_directory(tmp_path):
    result = run([sys.executable, "-m", "pipeline.main", "--langs", LANG, "--output", str(tmp_path / "out"),
                  "--until", "translate", "--from-stage", "translate"])
    assert result.returncode == 2 and "stage select has no complete checkpoint" in result.stderr
    assert not (tmp_path / "out").exists()
