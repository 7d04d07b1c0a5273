"""The gate on real runs: firmware in QEMU through a Session (trace capture), then `memhil gate`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from memhil.cli import main
from memhil.session import Session, SessionOptions

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.emulator


def leak_site_line() -> int:
    source = (ROOT / "firmware" / "apps" / "leak_demo" / "app.c").read_text().splitlines()
    return next(i for i, line in enumerate(source, 1) if "/* LEAK-SITE */" in line)


@pytest.fixture
def run_firmware(firmware, tmp_path):
    """``run_firmware(app, seconds, name) -> run dir``: a trace-capture session, results written, stopped in teardown."""
    sessions: list[Session] = []

    def run(app: str, seconds: float, name: str, *, root: Path | None = None) -> Path:
        run_dir = (root or tmp_path / "runs") / name
        session = Session(SessionOptions(capture="trace"), run_dir=run_dir)
        sessions.append(session)
        session.start(firmware(app))
        session.run_for(seconds)
        session.write_summary()
        session.stop()
        return run_dir

    yield run
    for session in sessions:
        session.stop()


def gate(capsys, *args) -> tuple[int, str, str]:
    code = main(["gate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_leak_demo_fails_naming_the_leak_site(run_firmware, tmp_path, capsys):
    run_dir = run_firmware("leak_demo", 10.0, "Leak_Demo")
    data = json.loads((run_dir / "summary.json").read_text())
    assert data["version"] == 2 and data["samples"]["count"] >= 8
    assert data["heap"]["checked"] and data["heap"]["ok"]
    (row,) = data["leak_sites"]
    assert row["lost_blocks"] > 0  # the end-of-run reachability scan ran: the growing site's blocks are lost
    md = tmp_path / "gate.md"
    code, out, _ = gate(capsys, run_dir, "--budgets", ROOT / "ci" / "budgets.toml", "--suppressions", ROOT / "ci" / "leaks.supp",
                        "--markdown", md, "--junit", tmp_path / "gate.xml")
    assert code == 1
    site = f"apps/leak_demo/app.c:{leak_site_line()}"
    assert re.search(rf"FAIL Leak_Demo: leaks: 1 unsuppressed leak site\(s\).*{re.escape(site)} \(app_build_response\)", out)
    assert "in app_parse_request (apps/leak_demo/app.c:" in out  # the call stack, one frame per line
    assert "FAIL Leak_Demo: module APP leak_per_hour" in out
    assert "module NET" not in "".join(l for l in out.splitlines() if l.startswith("FAIL"))
    assert site in md.read_text()


def test_leak_demo_with_the_leak_suppressed_passes(run_firmware, tmp_path, capsys):
    run_dir = run_firmware("leak_demo", 10.0, "Leak_Demo")
    supp = tmp_path / "accept.supp"
    supp.write_text("{\n   planted-leak-accepted-here-only\n   memhil:Leak\n   fun:app_build_response\n   ...\n}\n")
    code, out, _ = gate(capsys, run_dir, "--budgets", ROOT / "ci" / "budgets.toml", "--suppressions", supp)
    assert code == 0, out
    assert "0 failed" in out


def test_module_stats_run_passes(run_firmware, capsys):
    run_dir = run_firmware("module_stats", 2.0, "Module_Stats")
    data = json.loads((run_dir / "summary.json").read_text())
    assert data["modules"]["2"]["current"] > 0  # more_modules() keeps FS blocks live
    code, out, _ = gate(capsys, run_dir, "--budgets", ROOT / "ci" / "budgets.toml", "--suppressions", ROOT / "ci" / "leaks.supp")
    assert code == 0, out


def test_baseline_comparison_on_real_runs(run_firmware, tmp_path, capsys):
    budgets = tmp_path / "budgets.toml"
    budgets.write_text("[leaks]\nfail = false\n[baseline]\ntolerance_pct = 5\n")
    base = run_firmware("leak_demo", 2.0, "Leak_Demo", root=tmp_path / "base")
    same = run_firmware("leak_demo", 2.0, "Leak_Demo", root=tmp_path / "same")
    longer = run_firmware("leak_demo", 10.0, "Leak_Demo", root=tmp_path / "longer")
    code, out, _ = gate(capsys, tmp_path / "same", "--budgets", budgets, "--baseline", tmp_path / "base")
    assert code == 0, out  # the emulator is deterministic: same firmware, same time, same figures
    code, out, _ = gate(capsys, tmp_path / "longer", "--budgets", budgets, "--baseline", tmp_path / "base")
    assert code == 1
    assert re.search(r"FAIL Leak_Demo: baseline module APP current: current \d+ vs baseline \d+: \+\d+ B", out)
    assert same.exists() and longer.exists() and base.exists()
