import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_select_benchmark_runs_and_both_paths_agree(tmp_path):
    """The benchmark on small corpora (low and heavy duplication): it exits non-zero if the
    pipeline and the plain loop write different records, stats or reports."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "select_bench.py"), "--docs", "400", "--rounds", "1",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pipeline / plain loop throughput" in result.stdout
    assert "heavy / low duplication time" in result.stdout
    assert "naive datasketch loop" in result.stdout
    assert "start-up (a 400-document run): pipeline" in result.stdout
    assert "datasketch MinHash.update per shingle" in result.stdout
