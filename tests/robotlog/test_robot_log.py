"""What the Robot log shows: every test that ran firmware has its memory table, pictures are embedded in
the log itself (so they survive pabot merging the logs elsewhere), and each suite and run directory gets
a self-contained report.html."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from memhil.cli import main

SUITE_STOPS_IN_TEARDOWN = """\
*** Settings ***
Library           memhil.robot    outdir=${MEMHIL_OUT}
Test Teardown     Stop Emulator

*** Variables ***
${MEMHIL_OUT}     ${OUTPUT DIR}/memhil

*** Test Cases ***
Leak Demo With Trace
    Start Emulator    ${FIRMWARE_DIR}/debug/leak_demo.elf    capture=trace
    Wait For Line    ready    timeout=5s
    Run For    3s

Boot Without Capture
    Start Emulator    ${FIRMWARE_DIR}/release/module_stats.elf    capture=none
    Wait For Line    ready    timeout=5s

No Firmware At All
    No Operation
"""

SUITE_WITH_TIMELINE = """\
*** Settings ***
Library           memhil.robot    outdir=${MEMHIL_OUT}
Suite Setup       Start Emulator    ${FIRMWARE_DIR}/debug/leak_demo.elf    capture=trace
Suite Teardown    Stop Emulator

*** Variables ***
${MEMHIL_OUT}     ${OUTPUT DIR}/memhil

*** Test Cases ***
Timeline Picture Is In The Log
    Start Timeline Log
    Take Heap Snapshot    before
    Run For    20s
    Take Heap Snapshot    after
    ${sites} =    Get Leak Sites    before    after
    Save Timeline Plot    ${OUTPUT DIR}/plot.png    ${sites}
"""


@pytest.fixture(scope="module")
def robot_out(tmp_path_factory, firmware):
    firmware("leak_demo")  # built once
    src = tmp_path_factory.mktemp("suites")
    (src / "stops_in_teardown.robot").write_text(SUITE_STOPS_IN_TEARDOWN)
    (src / "with_timeline.robot").write_text(SUITE_WITH_TIMELINE)
    out = tmp_path_factory.mktemp("out")
    # two processes: pabot, each suite with its own output directory, logs merged afterwards
    status = main(["run", str(src), "--processes", "2", "--outdir", str(out)])
    assert status == 0, (out / "output.xml").read_text()[-3000:] if (out / "output.xml").exists() else "no output.xml"
    return out


def _test_messages(out: Path) -> dict[str, list[str]]:
    root = ET.parse(out / "output.xml").getroot()
    return {t.get("name"): [m.text or "" for m in t.iter("msg") if m.get("html") == "true"] for t in root.iter("test")}


@pytest.mark.emulator
def test_every_test_that_ran_firmware_has_its_memory_table(robot_out):
    messages = _test_messages(robot_out)
    trace = "".join(messages["Leak Demo With Trace"])
    assert "memhil: memory at Stop Emulator" in trace and "<h3>Modules</h3>" in trace and "(node bytes)" in trace
    assert "<td class='l'>APP</td>" in trace
    none = "".join(messages["Boot Without Capture"])  # capture none: still the firmware's own module figures
    assert "<h3>Modules</h3>" in none and "leaks not recorded" in none
    assert not any("memhil" in m for m in messages["No Firmware At All"])  # no stale table from the test before
    live = "".join(messages["Timeline Picture Is In The Log"])
    assert "module usage (node bytes" in live and "requested bytes" in live


@pytest.mark.emulator
def test_timeline_picture_is_embedded_not_linked(robot_out):
    [msg] = [m for m in _test_messages(robot_out)["Timeline Picture Is In The Log"] if "<img" in m]
    assert "file:" not in msg
    png = base64.b64decode(msg.split("data:image/png;base64,")[1].split('"')[0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


@pytest.mark.emulator
def test_suite_and_run_reports_are_written(robot_out):
    memhil = robot_out / "memhil"
    suite = next(p for p in memhil.iterdir() if p.name.endswith("Stops_In_Teardown"))
    page = (suite / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Leak_Demo_With_Trace" in page and "Boot_Without_Capture" in page
    assert (suite / "Leak_Demo_With_Trace" / "report.html").is_file()
    timeline_suite = next(p for p in memhil.iterdir() if p.name.endswith("With_Timeline"))
    page = (timeline_suite / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1  # the run kept a timeline log: it is drawn
