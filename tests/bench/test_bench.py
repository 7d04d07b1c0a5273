"""memhil bench on tiny sizes: every figure runs and yields its keys with their spread.

Speed is never asserted here (DESIGN.md, Performance): only that the figures exist, are consistent
with each other and with the workloads, and that failures are reported instead of invented."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from memhil.bench import REQUIRED_KEYS, TARGETS, Scale, evaluate, run_bench, write_json
from memhil.bench import offline
from memhil.bench.registry import FIGURES, figure
from memhil.cli import main
from memhil.errors import ConfigError

FW = Path(__file__).resolve().parents[2] / "firmware" / "build" / "stm32f4" / "debug"
#: figures measured more than once: the median and its spread
SPREAD = ("hook_calls_per_s", "breakpoint_calls_per_s", "overhead_hooks_ratio", "trace_events_per_s", "overhead_trace_ratio",
          "soak_wall_s", "acceleration_factor", "run_for_ms_per_call", "run_for_overhead_ratio", "symbolize_addrs_per_s",
          "symbolize_cached_addrs_per_s", "elf_load_s", "elf_lines_s", "host_trace_us_per_event", "host_decode_us_per_event",
          "host_ledger_us_per_event", "host_soak_us_per_event", "parse_mb_per_s_1worker", "parse_mb_per_s_2workers",
          "parse_speedup_2workers", "reader_peak_rss_mb", "burst_parse_mb_per_s_1worker", "burst_parse_mb_per_s_2workers")


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory) -> dict:
    if not (FW / "soak.elf").exists():
        import subprocess

        subprocess.run(["make", "-C", str(FW.parents[3]), "-j2"], check=True)
    return run_bench(Scale.tiny(), firmware_dir=FW, out=None, workdir=tmp_path_factory.mktemp("bench"))


def test_every_key_with_its_spread(tiny_results):
    assert tiny_results["errors"] == {}, tiny_results["errors"]
    for key in REQUIRED_KEYS:
        assert key in tiny_results, key
    scale = Scale.tiny()
    for key in SPREAD:
        value, lo, hi, runs = (tiny_results[k] for k in (key, f"{key}_min", f"{key}_max", f"{key}_runs"))
        assert isinstance(value, float) and math.isfinite(value), (key, value)
        # what a run_for call adds is a difference of two walls (4 calls against 1 of the same virtual time): at the
        # tests' scale it is within the machine's noise of zero, either side; every other figure is a rate or a wall
        assert value > 0 or key == "run_for_ms_per_call", (key, value)
        assert lo <= value <= hi, key
        expected = scale.soak_runs if key in ("soak_wall_s", "acceleration_factor") else scale.runs
        if key.startswith("symbolize"):
            expected = max(scale.runs, math.ceil(scale.symbolize_addrs / tiny_results["symbolize_distinct"]))
        assert runs == expected, key
    versions = tiny_results["versions"]
    assert versions["qemu"].startswith("QEMU emulator version")
    # the engine's own answer (QMP) is the version --version printed
    assert versions["qemu"].split()[3].startswith(versions["qemu_engine"].split()[0])
    assert tiny_results["scale"]["name"] == "tiny"


def test_figures_agree_with_the_workloads(tiny_results):
    r, scale = tiny_results, Scale.tiny()
    assert r["soak_virtual_s"] == pytest.approx(scale.soak_virtual_s, abs=0.002)
    assert r["acceleration_factor_min"] <= scale.soak_virtual_s / r["soak_wall_s_min"] * 1.0001
    # patched hooks and the breakpoint fallback on the same app: the same calls in every run of each
    # burst makes 48,000 calls per virtual second (a window's edge may take one more)
    assert 48_000 * scale.hooks_virtual_s <= r["hook_calls_min"] <= r["hook_calls_max"] <= 48_000 * scale.hooks_virtual_s + 2
    assert r["breakpoint_calls_min"] == r["breakpoint_calls_max"] == 480  # one round of 480 in every 11 ms run
    assert r["hook_calls_per_s"] > 10 * r["breakpoint_calls_per_s"]
    assert r["trace_events_per_virtual_s"] > 10_000  # burst is the dense workload
    assert r["run_for_steps"] == round(scale.run_for_virtual_s / scale.run_for_step_s)
    # the parsed logs are the ones recorded, whole and undamaged
    assert "soak.elf" in r["parse_log_kind"] and "burst.elf" in r["burst_parse_log_kind"]
    assert r["parse_bad_records"] == 0 and r["burst_parse_bad_records"] == 0
    assert 0 < r["parse_events"] <= r["soak_events"] and r["parse_log_bytes"] == r["soak_log_bytes"]
    assert 0 < r["burst_parse_events"] <= r["burst_log_events"] and r["burst_parse_log_bytes"] == r["burst_log_bytes"]
    assert r["parse_log_files"] == r["soak_log_files"] >= 1
    assert r["host_events"] == min(scale.host_events, r["burst_log_events"])


def test_symbolize_spreads_over_text(tiny_results):
    with open(FW / "soak.elf", "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")["sh_size"]
    r = tiny_results
    assert r["symbolize_text_halfwords"] == text // 2
    assert r["symbolize_distinct"] == min(text // 2, Scale.tiny().symbolize_addrs)
    assert r["symbolize_cold_lookups"] >= Scale.tiny().symbolize_addrs


def test_text_addresses_every_halfword_or_evenly_spaced():
    from memhil.elf import Image

    image = Image.open(FW / "soak.elf")
    text = next(s for s in image.sections if s.name == ".text")
    every, halfwords = offline.text_addresses(image, 10**9)
    assert halfwords == text.size // 2 and sorted(every) == [(text.addr + 2 * i) | 1 for i in range(halfwords)]
    some, _ = offline.text_addresses(image, 100)
    assert len(set(some)) == 100 and all(text.addr <= a & ~1 < text.addr + text.size for a in some)
    assert max(some) - min(some) > text.size * 0.9  # spread over all of .text, not its start


def test_targets_cover_every_target(tiny_results):
    targets = tiny_results["targets"]
    assert set(targets) == {t.key for t in TARGETS}
    for key, t in targets.items():
        assert isinstance(t["met"], bool), key
        assert t["actual"] == pytest.approx(float(tiny_results[key]))


def test_no_emulator_left(tiny_results):
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


def test_json_round_trip_and_table(tiny_results, tmp_path):
    path = tmp_path / "out" / "bench.json"
    write_json(tiny_results, path)
    back = json.loads(path.read_text())
    assert back["hook_calls_per_s"] == tiny_results["hook_calls_per_s"]
    assert set(REQUIRED_KEYS) <= set(back)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- bench-table begin -->\nOLD TABLE\n<!-- bench-table end -->\nafter\n")
    assert main(["bench", "--table", str(path), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "OLD TABLE" not in text and text.endswith("<!-- bench-table end -->\nafter\n")
    assert f"{tiny_results['trace_events_per_s']:,.0f}" in text and "bench.json" in text


def test_evaluate_reports_unmeasured_and_misses():
    got = evaluate({"hook_calls_per_s": 1999.0, "overhead_trace_ratio": 1.5, "symbolize_addrs_per_s": None, "run_for_ms_per_call": 0.51})
    assert got["hook_calls_per_s"]["met"] is False
    assert got["overhead_trace_ratio"]["met"] is True  # <= is inclusive
    assert got["run_for_ms_per_call"]["met"] is False
    assert got["symbolize_addrs_per_s"]["met"] is None and got["acceleration_factor"]["actual"] is None


def test_missing_firmware_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="make -C firmware"):
        run_bench(Scale.tiny(), firmware_dir=tmp_path, out=None)
    assert main(["bench", "--quick", "--firmware-dir", str(tmp_path)]) == 2


def test_unknown_figure_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"(?s)unknown bench figure.*no_such.*choose from trace"):
        run_bench(Scale.tiny(), firmware_dir=FW, out=None, only=("no_such",))


def test_failed_figure_is_reported_not_invented(monkeypatch):
    """host_cost without the burst log it measures on fails with a clear error; symbolize still runs."""
    results = run_bench(Scale.tiny(), firmware_dir=FW, out=None, only=("symbolize", "host_cost"))
    assert "burst_log" in results["errors"]["host_cost"]
    assert "host_trace_us_per_event" not in results
    assert results["symbolize_addrs_per_s"] > 0

    def broken(ctx):
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(FIGURES, "elf_load", FIGURES["elf_load"].__class__("elf_load", broken, ()))
    results = run_bench(Scale.tiny(), firmware_dir=FW, out=None, only=("elf_load",))
    assert "No space" in results["errors"]["elf_load"] and "elf_load_s" not in results
    assert main(["bench", "--only", "host_cost", "--firmware-dir", str(FW)]) == 2


def test_a_figure_name_registered_twice_is_an_error():
    with pytest.raises(ConfigError, match="registered twice"):
        @figure("soak")
        def another_soak(ctx):  # pragma: no cover - never runs
            return {}


def test_two_figures_returning_one_key_is_an_error(monkeypatch):
    Fig = FIGURES["elf_load"].__class__
    monkeypatch.setitem(FIGURES, "elf_load_again", Fig("elf_load_again", lambda ctx: {"elf_load_s": 1.0}, ()))
    results = run_bench(Scale.tiny(), firmware_dir=FW, out=None, only=("elf_load", "elf_load_again"))
    assert "elf_load_s (elf_load)" in results["errors"]["elf_load_again"]
    assert results["elf_load_s"] != 1.0  # the first figure's measurement stands


def test_the_live_table_shows_each_figure_as_the_result_table_does():
    import io

    from memhil.bench.report import number

    out = io.StringIO()
    results = run_bench(Scale.tiny(), firmware_dir=FW, out=out, only=("symbolize",))
    row = next(line for line in out.getvalue().splitlines() if line.startswith("symbolize_addrs_per_s "))
    key = "symbolize_addrs_per_s"
    assert f"{number(results[key])} [{number(results[key + '_min'])} .. {number(results[key + '_max'])}, 2 runs]" in row
    assert " addr/s " in row and row.endswith(("target >= 200,000  MET", "target >= 200,000  NOT MET"))
