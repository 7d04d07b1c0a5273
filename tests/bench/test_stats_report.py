"""Medians and spreads, the trace-record encoding, and the side-by-side and README table outputs."""

from __future__ import annotations

import json

import pytest

from memhil.bench import report
from memhil.bench.offline import encode_record
from memhil.bench.stats import interleave, is_spread_key, spread, spreads
from memhil.capture.trace import decode_record, decode_records
from memhil.cli import main
from memhil.errors import ConfigError
from memhil.events import AllocEvent, EventFlag, EventKind


def test_spread_is_median_min_max_runs():
    assert spread("x", [3.0, 1.0, 2.0, 10.0]) == {"x": 2.5, "x_min": 1.0, "x_max": 10.0, "x_runs": 4}
    assert spread("x", [5, None, 1, 3]) == {"x": 3.0, "x_min": 1.0, "x_max": 5.0, "x_runs": 3}
    assert spread("x", [None]) == {"x": None, "x_min": None, "x_max": None, "x_runs": 0}
    assert spreads([{"a": 1, "b": 4}, {"a": 3, "b": None}], ("a", "b")) == {
        "a": 2.0, "a_min": 1.0, "a_max": 3.0, "a_runs": 2, "b": 4.0, "b_min": 4.0, "b_max": 4.0, "b_runs": 1}
    assert is_spread_key("x_runs") and not is_spread_key("parse_mb_per_s_1worker")


def test_interleave_alternates():
    order: list[str] = []
    pairs = interleave(3, lambda i: order.append(f"free{i}") or i, lambda i: order.append(f"cap{i}") or -i)
    assert order == ["free0", "cap0", "free1", "cap1", "free2", "cap2"]
    assert pairs == [(0, 0), (1, -1), (2, -2)]


@pytest.mark.parametrize("event", [
    AllocEvent(7, 12_000, EventKind.ALLOC, 0x20001000, 48, 64, 2, 1, (), 0, (0x08001001, 0x08002003, 0x08003005)),
    AllocEvent(8, 13_000, EventKind.FREE, 0x20001000, 48, 64, 2, 1, (), 0, (0x08001001,)),
    AllocEvent(9, 14_000, EventKind.REALLOC, 0x20002000, 96, 112, 3, 2, (), 0x20001000, (0x08001001, 0x08002003)),
    AllocEvent(10, 15_000, EventKind.ALLOC, 0x20003000, 16, 32, 0, 1, (), 0, (), EventFlag.UNTRACKED),
])
def test_encode_record_is_the_inverse_of_decode(event):
    assert decode_record(encode_record(event)) == event


def test_encoded_records_decode_in_bulk():
    events = [AllocEvent(i, i * 1000, EventKind.ALLOC, 0x20000000 + 32 * i, 16, 32, 1, 1, (), 0, (0x08000101,)) for i in range(50)]
    assert decode_records(b"".join(encode_record(e) for e in events)) == events


def _result(qemu: str, engine: str, **figures) -> dict:
    base = {"machine": {"cpu_model": "Test CPU", "cores": 2, "memory_mb": 8192, "kernel": "6.1"},
            "versions": {"qemu": f"QEMU emulator version {qemu}", "qemu_engine": engine, "python": "3.11.7",
                         "qemu_binary": "/usr/bin/qemu-system-arm"},
            "scale": {"name": "full", "runs": 5}, "date": "2026-12-01T12:00:00+00:00", "errors": {},
            "parse_log_kind": "soak.elf, 24h virtual"}
    for key, (median, lo, hi) in figures.items():
        base.update({key: median, f"{key}_min": lo, f"{key}_max": hi, f"{key}_runs": 5})
    return base


def test_table_names_each_qemu_and_marks_targets(tmp_path):
    a = _result("7.2.22 (Debian)", "7.2.22 (Debian 1:7.2)", trace_events_per_s=(223_256.0, 210_000.0, 230_000.0),
                overhead_trace_ratio=(1.47, 1.42, 1.55))
    b = _result("10.0.2", "10.0.2", trace_events_per_s=(150_000.0, 140_000.0, 160_000.0), overhead_trace_ratio=(1.2, 1.1, 1.3))
    b["errors"] = {"hooks": "EngineError: boom"}
    text = report.table([a, b])
    assert "| figure | target | QEMU 7.2.22 (1) | QEMU 10.0.2 (2) |" in text
    assert "| 223,256 [210,000–230,000] (met) | 150,000 [140,000–160,000] (not met) |" in text
    assert "| <= 1.5 | 1.47x [1.42–1.55] (met) | 1.2x [1.1–1.3] (met) |" in text
    assert "hooked allocator" not in text  # measured by neither: no row
    assert text.count("Test CPU, 2 cores, 8 GiB, Linux 6.1") == 2 and "hooks (QEMU 10.0.2 (2))" in text
    with pytest.raises(ConfigError, match="no bench results"):
        report.table([])


def test_table_shows_not_measured_when_one_run_lacks_a_figure():
    a = _result("7.2.22", "7.2.22", run_for_ms_per_call=(0.6, 0.55, 0.7))
    b = _result("10.0.2", "10.0.2")
    assert "| what one run_for call adds | <= 0.5 | 0.6 ms [0.55–0.7] (not met) | not measured |" in report.table([a, b])


def test_compare_side_by_side(tmp_path, capsys):
    a = _result("7.2.22", "7.2.22", acceleration_factor=(1000.0, 950.0, 1050.0), parse_mb_per_s_1worker=(200.0, 190.0, 210.0))
    b = _result("7.2.22", "7.2.22", acceleration_factor=(1500.0, 1400.0, 1600.0), parse_mb_per_s_1worker=(205.0, 195.0, 215.0))
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    assert main(["bench", "--compare", str(pa), str(pb)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("acceleration_factor"))
    assert "1,000 [950–1,050]" in line and "1,500 [1,400–1,600]" in line and "+50.0%" in line and "~" not in line
    assert "met -> met" in line
    parse = next(ln for ln in out.splitlines() if ln.startswith("parse_mb_per_s_1worker"))
    assert "+2.5% ~" in parse  # within the runs' spread
    assert str(pa) in out and str(pb) in out


def test_bad_result_files_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ConfigError, match="does not exist"):
        report.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not readable JSON"):
        report.load(bad)
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}')
    with pytest.raises(ConfigError, match="not a memhil bench result"):
        report.load(other)
    assert main(["bench", "--table", str(other)]) == 2
    assert "not a memhil bench result" in capsys.readouterr().err
    assert main(["bench", "--readme", "README.md"]) == 2
    assert "--readme needs --table" in capsys.readouterr().err


def test_readme_markers_must_be_there(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(ConfigError, match="bench-table begin"):
        report.replace_in(readme, "table\n")
    assert readme.read_text() == "no markers here\n"  # nothing lost
    readme.write_text(f"a\n{report.BEGIN}\nx\n{report.END}\nb\n")
    report.replace_in(readme, "| t |\n")
    assert readme.read_text() == f"a\n{report.BEGIN}\n| t |\n{report.END}\nb\n"


def test_scripts_bench_table(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = tmp_path / "qemu-7.2.json"
    result.write_text(json.dumps(_result("7.2.22", "7.2.22", acceleration_factor=(1200.0, 1100.0, 1300.0))))
    proc = subprocess.run([str(root / "scripts" / "bench-table"), str(result)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": sys.executable}, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "| figure | target | QEMU 7.2.22 |" in proc.stdout and "1,200x [1,100–1,300] (met)" in proc.stdout
    assert "qemu-7.2.json" in proc.stdout
