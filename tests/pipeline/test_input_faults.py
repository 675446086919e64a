"""Broken and hostile input through the command line (issue 12, items 1, 2 and 5): a real
subprocess per run, real files, the select stage's outputs and stats checked."""

import json
import lzma
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "pipeline" / "sample" / "spa.txt.xz"


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "pipeline.main", *args], capture_output=True, text=True, timeout=300
    )


def read_jsonl(directory: Path) -> list[dict]:
    return [json.loads(x) for f in sorted(directory.glob("part-*")) for x in f.read_text().splitlines()]


def check_accounting(stats: dict) -> None:
    para = stats["paragraphs"]
    assert para["read"] == para["kept"] + sum(para["rejected"].values())


@pytest.mark.slow
def test_a_cut_archive_is_counted_reported_and_fatal_when_strict(tmp_path):
    text = lzma.decompress(SAMPLE.read_bytes())  # holds an invalid byte: bytes, not str
    dirty = (
        "Todos los seres humanos nacen libres e iguales en dignidad y derechos.<|eot_id|>\n"
        "Toda persona tiene todos los derechos y libertades proclamados en esta Declaración.\x00\n\n"
    ).encode()
    data = lzma.compress("\ufeff".encode() + text.replace(b"\n\n", b"\n\n" + dirty, 1))
    (tmp_path / "spa.txt.xz").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    args = ["--langs", "spa", "--input", str(tmp_path / "{lang}.txt.xz"), "--until", "select"]
    result = cli(*args, "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "input_truncated: " in result.stderr and "spa.txt.xz" in result.stderr
    stats = json.loads((out / "stats" / "spa.json").read_text())
    check_accounting(stats)
    rejected = stats["paragraphs"]["rejected"]
    assert rejected["input_truncated"] == 1
    assert rejected["special_tokens"] == 1 and rejected["control_chars"] == 1
    assert stats["paragraphs"]["read"] < text.count(b"\n") - text.count(b"\n\n")
    (cut,) = [r for r in read_jsonl(out / "rejects" / "spa") if r["reason"] == "input_truncated"]
    assert cut["detail"]["byte_offset"] > 0 and cut["detail"]["error"]
    records = read_jsonl(out / "data" / "spa")
    assert records and all(cut["text"] not in r["response"] for r in records if cut["text"])
    assert all("\ufeff" not in r["response"] for r in records)
    assert any(r["response"].startswith("Toda persona tiene derecho a la educación") for r in records)

    result = cli(*args, "--output", str(tmp_path / "strict"), "--strict-input")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the run failed:") and "spa.txt.xz is truncated or corrupt" in last

    config = tmp_path / "strict.yaml"
    config.write_text("select: {read: {strict_input: true}}\n")
    result = cli(*args, "--output", str(tmp_path / "strict2"), "--config", str(config))
    assert result.returncode == 1 and "spa.txt.xz is truncated or corrupt" in result.stderr


MB50 = 50 * 1024 * 1024


def measured_run(args: list[str]) -> tuple[int, float, int]:
    """(exit status, wall seconds, peak RSS in KiB) of ``python -m pipeline.main ARGS``, run as
    the only child of a fresh process so that the peak is that run's alone."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter();"
        "rc = subprocess.call([sys.executable, '-m', 'pipeline.main', *sys.argv[1:]],"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
        "print(rc, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                         timeout=600, check=True).stdout.split()
    return int(out[0]), float(out[1]), int(out[2])


@pytest.mark.slow
def test_50_mb_lines_are_rejected_in_seconds_in_bounded_memory(tmp_path):
    normal = lzma.decompress(SAMPLE.read_bytes())
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "spa.txt").write_bytes(normal)
    with open(tmp_path / "spa.txt", "wb") as f:
        f.write(normal + b"\n")
        f.write(b"abcdefghij" * (MB50 // 10) + b"\n\n")  # no spaces: the URL check's worst case
        f.write(b"palabra " * (MB50 // 8) + b"\n\n")  # spaces: MinHash's worst case
        f.write(normal)
    runs = {}
    for name, directory in (("baseline", tmp_path / "base"), ("long", tmp_path)):
        out = tmp_path / f"out-{name}"
        runs[name] = measured_run(["--langs", "spa", "--input", str(directory / "{lang}.txt"),
                                   "--output", str(out), "--until", "select"])
        assert runs[name][0] == 0
    stats = json.loads((tmp_path / "out-long" / "stats" / "spa.json").read_text())
    check_accounting(stats)
    assert stats["paragraphs"]["rejected"]["line_too_long"] == 2
    base = json.loads((tmp_path / "out-baseline" / "stats" / "spa.json").read_text())
    assert stats["paragraphs"]["kept"] == base["paragraphs"]["kept"]  # the copy: duplicates
    long_rejects = [r for r in read_jsonl(tmp_path / "out-long" / "rejects" / "spa")
                    if r["reason"] == "line_too_long"]
    assert [r["detail"]["bytes"] for r in long_rejects] == [MB50, MB50]
    extra_s = runs["long"][1] - runs["baseline"][1]
    extra_kib = runs["long"][2] - runs["baseline"][2]
    print(f"50 MB lines: +{extra_s:.1f} s, +{extra_kib / 1024:.0f} MiB peak RSS "
          f"(baseline {runs['baseline'][1]:.1f} s, {runs['baseline'][2] / 1024:.0f} MiB)")
    assert extra_s < 30  # measured a few seconds: reading 100 MB; quadratic never finished
    assert extra_kib < 1024 * 1024  # under 1 GiB above the baseline run
