"""Running a foreign-style firmware to its parking point in a memhil session."""

from __future__ import annotations

from pathlib import Path


def run_to_park(session, elf: Path) -> None:
    """Start ``elf``, take snapshot "start" before it runs, run it until it parks (``g_parked``), take "end"."""
    session.start(elf)
    session.take_snapshot("start")
    session.wait_for_line(r"READY", timeout=30)
    for _ in range(200):
        if session.read_symbol_u32("g_parked"):
            break
        session.engine.run_for(0.005)
    assert session.read_symbol_u32("g_parked") == 1, "the firmware did not park (see its console log)"
    session.take_snapshot("end")
