"""While a shell line is being typed the idle loop sleeps at most 1 ms (shell.h, shell_typing): under QEMU's
-icount sleep=off each console byte reaches the UART only after the core read the previous one, so a long
sleep per byte made a command take seconds of virtual time, and `Execute Shell Command` time out now and then."""

from __future__ import annotations

import pytest

from memhil.session import Session, SessionOptions

pytestmark = pytest.mark.emulator


def wakeups_during(session: Session, seconds: float) -> int:
    before = session.read_symbol_u32("g_memhil_wakeups")
    session.run_for(seconds)
    return session.read_symbol_u32("g_memhil_wakeups") - before


def test_partial_line_keeps_the_core_waking_each_ms_until_it_ends_or_goes_quiet(firmware, tmp_path):
    with Session(SessionOptions(capture="none"), run_dir=tmp_path) as session:
        session.start(firmware("module_stats", "debug"))
        session.wait_for_line(r"module 0 mem used size 0", 10)
        session.run_for(0.05)
        idle = wakeups_during(session, 2.0)
        assert idle <= 4  # nothing to do: sleeps of up to 798 ms
        session.engine.console_write("memu")  # a line begun, not ended
        typing = wakeups_during(session, 0.05)
        assert typing >= 40  # 1 ms sleeps while the bytes come in
        session.run_for(0.06)
        assert wakeups_during(session, 2.0) <= 4  # 100 ms after the last byte the long sleeps come back
        answer = session.command("sed")  # the line ends: "memused" runs
        assert "LR[0]" in answer
        session.run_for(2.0)  # idle again: the core sleeps up to 798 ms at a time
        before = session.virtual_time()
        assert "LR[0]" in session.command("memused")
        # the engine hands the UART each byte when the firmware read the previous one, so the whole command, its
        # answer and the prompt take the firmware's own time: under a millisecond, on any host, however loaded
        # (when the bytes reached QEMU by wall clock, the first could wait a whole idle sleep of up to 798 ms)
        assert session.virtual_time() - before < 0.001
