"""memhil soak, timeline and report: a short real soak, then the queries on what it wrote, and bad input."""

import json
import re

import pytest

from memhil.cli import main


@pytest.fixture(scope="module")
def soak_dir(tmp_path_factory, firmware):
    out = tmp_path_factory.mktemp("soak")
    elf = firmware("leak_demo")
    assert main(["soak", str(elf), "--duration", "40s", "--steps", "4", "--outdir", str(out)]) == 0
    return out, elf


@pytest.mark.emulator
def test_soak_reports_the_leak_and_draws_the_timeline(soak_dir, capsys):
    out, _ = soak_dir
    data = json.loads((out / "summary.json").read_text())
    assert [s["function"] for s in data["leak_sites"]] == ["app_build_response"]
    assert data["leak_sites"][0]["site"].endswith("apps/leak_demo/app.c:20")
    assert 39.9 <= data["virtual_s"] <= 40.1
    assert (out / "timeline.png").stat().st_size > 10_000 and (out / "timeline.html").read_text().startswith("<!")
    assert list((out / "timeline").glob("memlog*.bin"))


@pytest.mark.emulator
def test_timeline_report_at_a_time_and_series(soak_dir, capsys, tmp_path):
    out, elf = soak_dir
    assert main(["timeline", str(out / "timeline"), "--elf", str(elf), "--at", "30s"]) == 0
    text = capsys.readouterr().out
    assert "app.c" in text and "line:20" in text and "app_build_response" in text
    assert main(["timeline", str(out / "timeline"), "--module", "APP", "--csv", str(tmp_path / "t.csv")]) == 0
    captured = capsys.readouterr()
    assert "peak" in captured.out and "of virtual time" in captured.out and " ms;" not in captured.out
    # not a terminal: the parse progress is plain lines, the last one at 100 %
    assert "\r" not in captured.err and re.search(r"parsing timeline: (\d+)/\1 \(100%\) files, [\d.]+ MiB\n$", captured.err)
    assert (tmp_path / "t.csv").read_text().count("\n") > 100


@pytest.mark.emulator
def test_report_text_and_json(soak_dir, capsys):
    out, _ = soak_dir
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "LEAK" in text and "app_build_response" in text and "heap: intact" in text and "stack main: high-water" in text
    assert main(["report", str(out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("argv,fragment", [
    (["soak", "x.elf", "--duration", "0s"], "is zero"),
    (["soak", "x.elf", "--duration", "3 fortnights"], "unknown time unit"),
    (["soak", "x.elf", "--steps", "0"], "--steps must be at least 1"),
    (["timeline", "/nonexistent/logs"], "does not exist"),
    (["timeline", "/tmp", "--interval", "10us"], "shorter than 1 ms"),
    (["report", "/nonexistent/run"], "does not exist"),
])
def test_bad_input_exits_2_with_a_reason(argv, fragment, capsys):
    assert main(argv) == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.emulator
def test_fragmentation_is_sampled_and_drawn_under_the_map(soak_dir, capsys, tmp_path):
    out, elf = soak_dir
    frag = json.loads((out / "summary.json").read_text())["fragmentation"]
    assert len(frag) >= 4
    assert all(0 < f["largest_free"] <= f["free"] < 96 * 1024 for f in frag)
    assert [f["t_s"] for f in frag] == sorted(f["t_s"] for f in frag)
    png = tmp_path / "map.png"
    assert main(["map", str(elf), str(out), "--png", str(png)]) == 0
    assert "[heap]" in capsys.readouterr().out and png.stat().st_size > 10_000


@pytest.mark.emulator
def test_firmware_without_debug_info_shows_functions_and_hex_addresses(firmware, tmp_path, capsys):
    import re
    import subprocess

    elf = tmp_path / "leak_demo-nodebug.elf"
    subprocess.run(["arm-none-eabi-strip", "--strip-debug", "-o", str(elf), str(firmware("leak_demo"))], check=True)
    out = tmp_path / "soak"
    assert main(["soak", str(elf), "--duration", "10s", "--steps", "2", "--outdir", str(out)]) == 0
    soak_text = capsys.readouterr().out
    assert main(["report", str(out)]) == 0
    report_text = capsys.readouterr().out
    for text in (soak_text, report_text):
        assert re.search(r"at app_build_response \(0x0800[0-9a-f]{4}\)", text), text
        assert "None" not in text
