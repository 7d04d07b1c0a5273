"""The same script gives the same virtual times and the same console transcript, byte for byte, whether the host is
idle or every core is busy: console input, console waits and run_for depend on the firmware alone."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from memhil.session import Session, SessionOptions

pytestmark = pytest.mark.emulator


def _burn() -> None:
    while True:
        pass


def _script(firmware, run_dir) -> tuple[list[float], str]:
    times = []
    with Session(SessionOptions(capture="trace"), run_dir=run_dir) as session:
        session.start(firmware("leak_demo", "debug"))  # NET, FS and APP allocate every 50 ms
        session.wait_for_line(r"leak_demo debug stm32f4 ready", 5)
        times.append(session.virtual_time())
        session.run_for(0.321)
        times.append(session.virtual_time())
        session.command("memstat")
        times.append(session.virtual_time())
        session.write_line("memused")
        session.wait_for_line(r"LR\[0\]", 5)
        times.append(session.virtual_time())
        session.command("memcheck")
        session.run_for(1.7)
        times.append(session.virtual_time())
        transcript = session.engine.console.text()
        times.append(session.ledger.total.allocs)
        times.append(session.ledger.total.frees)
    return times, transcript


def test_same_script_same_virtual_times_and_transcript_idle_or_loaded(firmware, tmp_path):
    idle = _script(firmware, tmp_path / "idle")
    hogs = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(os.cpu_count() or 1)]
    for hog in hogs:
        hog.start()
    try:
        loaded = _script(firmware, tmp_path / "loaded")
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.join()
    assert loaded == idle
    times = idle[0]
    assert times[1] - times[0] == pytest.approx(0.321, abs=1e-9)  # exact to the tick
    assert times[3] - times[2] < 0.001  # a command and its answer take the firmware's time, not a wake-up's
    assert "system memcheck over, all passed!" in idle[1]
