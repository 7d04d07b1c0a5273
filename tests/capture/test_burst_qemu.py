"""The burst firmware under trace capture: the events match the firmware's own counters and module figures."""

from __future__ import annotations

from collections import Counter

import pytest

from memhil.events import EventKind
from memhil.session import Session, SessionOptions


def _ops(session: Session) -> list[int]:
    return [session.read_symbol_u32("g_burst_ops", i) for i in range(5)]


@pytest.mark.parametrize("live", [True, False], ids=["live", "at-stops"])
@pytest.mark.parametrize("sink", ["rows", "host-only", "may-read-target"])
def test_burst_trace_matches_firmware_counters(firmware, tmp_path, sink, live):
    """Three paths: rows straight into the ledger, decoded while the firmware runs (no extra sink); events
    to a host-only extra sink, still decoded while it runs; events to a sink that might read the target,
    decoded at the drain stops. Each with the ring drained while the firmware runs (a live window on QEMU's
    memory) and without (copied at the doorbell stops)."""
    elf = firmware("burst", "debug")
    options = SessionOptions(capture="trace", engine_options={"live_memory": live})
    with Session(options, run_dir=tmp_path) as session:
        session.start(elf)
        before = _ops(session)
        events0 = session.ledger.events
        kinds: Counter = Counter()
        if sink != "rows":
            def count(ev) -> None:
                kinds.update([ev.kind])

            count.host_only = sink == "host-only"  # type: ignore[attr-defined]
            session.extra_sinks.append(count)
        session.run_for(0.15)
        session.drain()
        after = _ops(session)
        capture = session.capture
        assert capture.drain_at == capture.capacity  # one stop per full ring
        assert capture._watching  # QEMU drains at a watchpoint on the doorbell, not a breakpoint
        assert capture.live == live
        if sink == "may-read-target":  # decoded at the stops, never while the firmware runs
            assert capture.stats["live_copies"] == 0 and capture.deferred_drains == 0 and capture.drains > 2
        elif live:  # copied and decoded while the firmware runs (how often it still finds the ring full is the bench's)
            assert capture.stats["live_copies"] > 0
        else:
            assert capture.stats["live_copies"] == 0 and capture.deferred_drains > 0
        assert capture.gaps == [] and session.ledger.anomalies == []
        delta = {k: after[k] - before[k] for k in (1, 2, 3)}
        assert delta[1] > 0 and delta[2] > 0 and delta[3] > 0
        assert session.ledger.events - events0 == sum(delta.values())
        if sink != "rows":
            assert {EventKind.ALLOC: delta[1], EventKind.FREE: delta[2], EventKind.REALLOC: delta[3]} == dict(kinds)
        assert sum(delta.values()) > 2 * capture.capacity  # several whole-ring drains
        check = session.crosscheck(1, 2, 3, 4)  # the ledger built from the trace against g_moduleMemUsedSize
        assert check.ok and all(m.host == m.firmware > 0 for m in check.modules)
