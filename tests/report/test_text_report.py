"""The text a leak site is printed as: ``memhil report`` and ``memhil soak`` print it the same way."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "gate"))
from gate_rundirs import LEAK_SITE, leaky, write_run  # noqa: E402

from memhil.cli import main  # noqa: E402
from memhil.cli.soak_cmd import _print_leaks  # noqa: E402
from memhil.report.frametext import leak_site_lines  # noqa: E402


def test_leak_site_headline_and_stack():
    lines = leak_site_lines(LEAK_SITE)
    assert lines[0].startswith("  LEAK apps/leak_demo/app.c:42 (leak_tick) module APP: 640 B (node bytes) in 10 blocks, ")
    assert "per virtual hour, first seen at " in lines[0]
    assert lines[1:] == ["      at leak_tick (apps/leak_demo/app.c:42)", "      at app_task (apps/leak_demo/app.c:77)"]


def test_an_unknown_first_seen_is_not_printed_as_zero():
    site = dict(copy.deepcopy(LEAK_SITE), first_seen_s=None)
    assert "first seen" not in leak_site_lines(site)[0]


def test_report_and_soak_print_a_site_alike(tmp_path, capsys):
    run = write_run(tmp_path / "r1", leaky())
    assert main(["report", str(run)]) == 0
    report = capsys.readouterr().out.splitlines()
    _print_leaks({"leak_sites": [LEAK_SITE]})
    soak = capsys.readouterr().out.splitlines()
    assert soak[0] == "1 growing leak site(s):"
    assert soak[1:] == leak_site_lines(LEAK_SITE) and all(line in report for line in soak[1:])
