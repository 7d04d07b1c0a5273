"""The HTML report: one self-contained file, opened in headless Chromium (Debian's ``chromium``, installed by
scripts/setup.sh), screenshotted, and its parts checked in the rendered DOM and in the picture."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "gate"))
sys.path.insert(0, str(HERE.parent / "timeline"))
from gate_rundirs import LEAK_SITE, summary  # noqa: E402
from timeline_synth import BUILD, SITE_LEAK, soak_events  # noqa: E402

from memhil.cli import main  # noqa: E402
from memhil.timeline import TimelineWriter  # noqa: E402

LEAK_RGB = (0xD6, 0x27, 0x28)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three run directories: a clean boot, a leak without a timeline log (drawn from its samples), and a soak
    with a timeline log and a leak site (APP, module 3)."""
    root = tmp_path_factory.mktemp("memhil")
    soak = root / "Soak" / "APP_leak"
    writer = TimelineWriter(soak / "timeline", build_id=BUILD, platform="stm32f4", engine="qemu", run_id="R1")
    writer.write_many(soak_events(hours=8.0))
    writer.close()
    site = dict(LEAK_SITE, site="src/app/cache.c:88", file="src/app/cache.c", line=88, function="cache_add",
                pcs=[f"{SITE_LEAK:#010x}"], first_seen_s=6 * 3600.0 + 600)
    site["stacks"] = [{"bytes": 640, "blocks": 12, "frames": [
        {"pc": f"{SITE_LEAK:#010x}", "function": "cache_add", "file": "src/app/cache.c", "line": 88},
        {"pc": "0x08000500", "function": "app_task", "file": "src/app/main.c", "line": 31}]}]
    data = summary(leak_sites=[site], stacks={"main": {"size": 8192, "used": 300, "painted": True}},
                   virtual_s=28800.0, virtual="8h 0m 0s")
    (soak / "summary.json").write_text(json.dumps(data))
    boot = root / "Boot" / "boots"
    boot.mkdir(parents=True)
    (boot / "summary.json").write_text(json.dumps(summary()))
    leak = root / "Leak" / "short"
    leak.mkdir(parents=True)
    (leak / "summary.json").write_text(json.dumps(summary(leak_sites=[LEAK_SITE])))
    return root


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "report.html"
    budgets = Path(__file__).resolve().parents[2] / "ci" / "budgets.toml"
    assert main(["report", str(runs), "--format", "html", "-o", str(out), "--budgets", str(budgets)]) == 0
    return out


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    assert exe, "Debian's chromium is installed by scripts/setup.sh; run it"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={cwd / 'profile'}",
           "--host-resolver-rules=MAP * ~NOTFOUND", *args]  # any network fetch would fail
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)


def test_page_is_one_file_with_nothing_from_the_network(page):
    text = page.read_text()
    refs = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]*)['"]""", text)
    assert refs and all(r.startswith(("data:image/png;base64,", "#")) for r in refs), refs
    assert not re.search(r"https?://|@import|url\(", text)
    pngs = [base64.b64decode(r.split(",", 1)[1]) for r in refs if r.startswith("data:")]
    # the leak's samples and the soak's timeline; the clean boot has neither log nor leak to draw
    assert len(pngs) == 2 and all(p[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "this run kept no timeline log" in text


def test_chromium_renders_every_part(page, tmp_path):
    result = chromium("--dump-dom", page.as_uri(), cwd=tmp_path)
    dom = result.stdout
    assert result.returncode == 0 and "</html>" in dom, result.stderr[-2000:]
    for part in ("<h3>Modules</h3>", "<h3>Leak sites</h3>", "<h3>Heap integrity</h3>", "<h3>Stacks</h3>", "<h3>Timeline</h3>"):
        assert dom.count(part) == 3, part  # once per run
    assert dom.index("<h2>Boot/boots</h2>") < dom.index("<h2>Leak/short</h2>") < dom.index("<h2>Soak/APP_leak</h2>")
    soak = dom.split("<section id=\"run2\"")[1]
    assert "<details class=\"leak\" open=\"\">" in soak
    assert "cache_add (src/app/cache.c:88)" in soak and "app_task (src/app/main.c:31)" in soak
    assert "first seen at 6h 10m 0s" in soak and "(node bytes)" in soak
    assert re.search(r"<td class=\"l\">APP</td><td>700 B</td>", soak)
    assert "2 KiB / 4 KiB" in soak  # APP's budget from ci/budgets.toml
    assert "intact: 12 nodes walked" in soak and "300 B" in soak and "8,192 B (8 KiB)" in soak


def test_screenshot_shows_the_leak_in_red_and_the_timeline(page, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "report.png"
    result = chromium(f"--screenshot={shot}", "--window-size=1200,3600", page.as_uri(), cwd=tmp_path)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = (imread(shot)[:, :, :3] * 255).round().astype(int)
    red = ((abs(pixels[:, :, 0] - LEAK_RGB[0]) < 8) & (abs(pixels[:, :, 1] - LEAK_RGB[1]) < 8) & (abs(pixels[:, :, 2] - LEAK_RGB[2]) < 8))
    rows_with_red = red.any(axis=1).nonzero()[0]
    assert red.sum() > 2000, "the leak badge, the leak rate and the leak's series are drawn in red"
    # red appears both high on the page (the badge) and far below it (the timeline picture's leak series)
    assert rows_with_red.min() < 600 and rows_with_red.max() > 1400
    inked = (pixels.sum(axis=2) < 600).mean()
    assert inked > 0.05, "the page rendered (tables and the picture), not a blank screenshot"


def test_leak_series_is_named_in_the_legend(runs, tmp_path):
    from memhil.report.html import timeline_png
    from memhil.timeline.export import leak_series
    from memhil.timeline.reader import TimelineReader

    data = json.loads((runs / "Soak" / "APP_leak" / "summary.json").read_text())
    reader = TimelineReader(runs / "Soak" / "APP_leak" / "timeline", progress=False)
    [series] = leak_series(reader, data["leak_sites"])
    assert series.legend == "leak: src/app/cache.c:88 (cache_add)" and series.module == 3
    assert series.points[0][0] >= 6 * 3600_000 and [b for _, b in series.points] == sorted(b for _, b in series.points)
    assert timeline_png(runs / "Soak" / "APP_leak" / "timeline", data["leak_sites"], {3: "APP"})[:4] == b"\x89PNG"


def test_a_damaged_timeline_log_costs_the_picture_not_the_report(tmp_path):
    from memhil.report.html import render_report
    from memhil.results import find_runs

    run = tmp_path / "r"
    (run / "timeline").mkdir(parents=True)
    (run / "timeline" / "memlog_R1-0.bin").write_bytes(b"not a memhil log" * 64)
    (run / "summary.json").write_text(json.dumps(summary(leak_sites=[LEAK_SITE])))
    page = render_report(find_runs(run))
    assert "the timeline log could not be drawn" in page
    assert page.count("data:image/png;base64,") == 1  # the leak site from the run's samples instead
    assert "leak_tick (apps/leak_demo/app.c:42)" in page
