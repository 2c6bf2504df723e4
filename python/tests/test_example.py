"""The notebook-style example runs from start to end and makes its chart."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_mock1_example_runs_checks_and_plots(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "python" / "examples" / "mock1.py"), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "all checks passed" in done.stdout, done.stdout
    chart = tmp_path / "pnl.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
    assert (tmp_path / "run" / "report.html").exists()
    assert "prediction" not in done.stderr
