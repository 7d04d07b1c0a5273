"""Progress of long work: a live bar on a terminal, one plain line per step in a CI log."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from memhil.progress import StepProgress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_stream_gets_one_line_per_step_and_no_carriage_return():
    out = io.StringIO()
    p = StepProgress(4, "soak 1h", stream=out)
    for i in range(1, 5):
        p.step(i, f"{i * 15}m 0s virtual")
    p.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines == ["soak 1h: 1/4 (25%) 15m 0s virtual", "soak 1h: 2/4 (50%) 30m 0s virtual",
                     "soak 1h: 3/4 (75%) 45m 0s virtual", "soak 1h: 4/4 (100%) 60m 0s virtual"]


def test_many_steps_stay_a_short_log_and_always_show_the_end():
    out = io.StringIO()
    p = StepProgress(10_000, "parse", stream=out, max_lines=50)
    for i in range(1, 10_001):
        p.step(i)
    lines = out.getvalue().splitlines()
    assert len(lines) == 50 and lines[-1] == "parse: 10000/10000 (100%)"


def test_terminal_gets_a_bar_redrawn_in_place():
    out = Tty()
    p = StepProgress(3, "soak", stream=out)
    for i in range(1, 4):
        p.step(i, "x")
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert "[##########....................]  33% x" in text and "[##############################] 100% x" in text


@pytest.mark.emulator
def test_soak_in_a_ci_log_prints_plain_lines(firmware, tmp_path):
    result = subprocess.run([sys.executable, "-m", "memhil.cli", "soak", str(firmware("leak_demo")), "--duration", "4s",
                             "--steps", "4", "--outdir", str(tmp_path / "soak")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr + result.stdout
    steps = [line for line in result.stderr.splitlines() if line.startswith("soak 4.000 s: ")]
    assert [s.split(" (")[0] for s in steps] == [f"soak 4.000 s: {i}/4" for i in range(1, 5)]
    assert "virtual" in steps[-1] and "live" in steps[-1]
    assert (tmp_path / "soak" / "report.html").read_text().startswith("<!DOCTYPE html>")
