"""memhil bench on tiny sizes: every code path runs and yields every key with the right type.

Speed is never asserted here (DESIGN.md, Performance): only that the figures exist, are consistent
with each other, and that failures are reported instead of invented."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from memhil.bench import REQUIRED_KEYS, TARGETS, Scale, evaluate, run_bench, write_json
from memhil.bench import offline
from memhil.cli import main
from memhil.errors import ConfigError


RATES = ("hook_calls_per_s", "trace_events_per_s", "overhead_hooks_ratio", "overhead_trace_ratio", "soak_virtual_s", "soak_wall_s",
         "acceleration_factor", "run_for_overhead_ratio", "symbolize_addrs_per_s", "elf_load_s", "parse_mb_per_s_1worker",
         "parse_mb_per_s_2workers", "reader_peak_rss_mb")


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory) -> dict:
    fw = Path(__file__).resolve().parents[2] / "firmware" / "build" / "stm32f4" / "debug"
    if not (fw / "soak.elf").exists():
        import subprocess

        subprocess.run(["make", "-C", str(fw.parents[3]), "-j2"], check=True)
    results = run_bench(Scale.tiny(), firmware_dir=fw, out=None, workdir=tmp_path_factory.mktemp("bench"))
    return results


def test_every_key_with_its_type(tiny_results):
    assert tiny_results["errors"] == {}, tiny_results["errors"]
    for key in REQUIRED_KEYS:
        assert key in tiny_results, key
    for key in RATES:
        value = tiny_results[key]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (key, value)
    machine, versions = tiny_results["machine"], tiny_results["versions"]
    assert isinstance(machine["cores"], int) and machine["cores"] >= 1
    assert isinstance(machine["cpu_model"], str) and machine["cpu_model"]
    assert versions["qemu"].startswith("QEMU emulator version")
    assert "arm-none-eabi-gcc" in versions["arm_none_eabi_gcc"]
    assert tiny_results["scale"]["name"] == "tiny"


def test_figures_agree_with_each_other(tiny_results):
    r = tiny_results
    assert r["acceleration_factor"] == pytest.approx(r["soak_virtual_s"] / r["soak_wall_s"])
    assert r["soak_virtual_s"] == pytest.approx(Scale.tiny().soak_virtual_s, abs=0.002)
    runs = r["capture_runs"]
    dense = r["trace_runs"]  # the trace figures come from the burst workload
    assert r["overhead_trace_ratio"] == pytest.approx(dense["trace"]["wall_s"] / dense["none"]["wall_s"])
    assert r["trace_events_per_s"] == pytest.approx(dense["trace"]["events"] / dense["trace"]["wall_s"])
    assert r["leak_demo_overhead_trace_ratio"] == pytest.approx(runs["trace"]["wall_s"] / runs["none"]["wall_s"])
    assert dense["trace"]["events"] > runs["trace"]["events"] and dense["none"]["events"] == 0
    # the same firmware for the same virtual time: hooks and trace see the same allocator calls
    assert runs["hooks"]["events"] == runs["trace"]["events"] > 0
    assert runs["none"]["events"] == 0
    assert r["parse_events"] == r["log_events"] and r["parse_bad_records"] == 0
    assert r["symbolize_addrs"] == Scale.tiny().symbolize_addrs and r["symbolize_distinct"] >= 1


def test_targets_cover_every_target(tiny_results):
    targets = tiny_results["targets"]
    assert set(targets) == {t.key for t in TARGETS}
    for key, t in targets.items():
        assert isinstance(t["met"], bool), key
        assert t["actual"] == pytest.approx(float(tiny_results[key]))


def test_no_emulator_left(tiny_results):
    import os

    kids = []
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
            kids += f.read().split()
    names = []
    for pid in kids:
        try:
            with open(f"/proc/{pid}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass
    assert not [n for n in names if n.startswith("qemu-system")]


def test_json_round_trip(tiny_results, tmp_path):
    path = tmp_path / "out" / "bench.json"
    write_json(tiny_results, path)
    back = json.loads(path.read_text())
    assert back["hook_calls_per_s"] == tiny_results["hook_calls_per_s"]
    assert set(REQUIRED_KEYS) <= set(back)


def test_evaluate_reports_unmeasured_and_misses():
    got = evaluate({"hook_calls_per_s": 1999.0, "overhead_trace_ratio": 1.5, "symbolize_1m_s": None})
    assert got["hook_calls_per_s"]["met"] is False
    assert got["overhead_trace_ratio"]["met"] is True  # <= is inclusive
    assert got["symbolize_1m_s"]["met"] is None and got["acceleration_factor"]["actual"] is None


def test_missing_firmware_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="make -C firmware"):
        run_bench(Scale.tiny(), firmware_dir=tmp_path, out=None)
    assert main(["bench", "--quick", "--firmware-dir", str(tmp_path)]) == 2


def test_failed_step_is_reported_not_invented(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(offline, "write_log", broken)
    fw = Path(__file__).resolve().parents[2] / "firmware" / "build" / "stm32f4" / "debug"
    monkeypatch.setattr("memhil.bench.engine_bench.capture_overhead", lambda *a, **k: {})
    monkeypatch.setattr("memhil.bench.engine_bench.soak", lambda *a, **k: {"_addresses": [0x08000101]})
    monkeypatch.setattr("memhil.bench.engine_bench.run_for_overhead", lambda *a, **k: {})
    results = run_bench(Scale.tiny(), firmware_dir=fw, out=None)
    assert "timeline" in results["errors"] and "No space" in results["errors"]["timeline"]
    assert "parse_mb_per_s_1worker" not in results
    assert results["targets"]["parse_mb_per_s_1worker"]["met"] is None
    assert results["symbolize_addrs_per_s"] > 0


def test_synthetic_events_are_consistent():
    from itertools import islice

    live: dict[int, int] = {}
    last_seq, last_t = -1, -1
    for ev in islice(offline.synthetic_events(), 20_000):
        assert ev.seq == last_seq + 1 and ev.t_us >= last_t
        last_seq, last_t = ev.seq, ev.t_us
        if ev.is_alloc:
            assert ev.ptr not in live
            live[ev.ptr] = ev.size
        else:
            assert live.pop(ev.ptr) == ev.size
