"""The burst firmware under trace capture: the events match the firmware's own counters and module figures."""

from __future__ import annotations

from collections import Counter

from memhil.events import EventKind
from memhil.session import Session, SessionOptions


def _ops(session: Session) -> list[int]:
    return [session.read_symbol_u32("g_burst_ops", i) for i in range(5)]


def test_burst_trace_matches_firmware_counters(firmware, tmp_path):
    elf = firmware("burst", "debug")
    with Session(SessionOptions(capture="trace"), run_dir=tmp_path) as session:
        session.start(elf)
        before = _ops(session)
        kinds: Counter = Counter()
        session.extra_sinks.append(lambda ev: kinds.update([ev.kind]))
        session.run_for(0.15)
        session.drain()
        after = _ops(session)
        capture = session.capture
        assert capture.drain_at == capture.capacity  # one stop per full ring
        assert capture._watching  # QEMU drains at a watchpoint on the doorbell, not a breakpoint
        assert capture.gaps == [] and session.ledger.anomalies == []
        delta = {k: after[k] - before[k] for k in (1, 2, 3)}
        assert delta[1] > 0 and delta[2] > 0 and delta[3] > 0
        assert {EventKind.ALLOC: delta[1], EventKind.FREE: delta[2], EventKind.REALLOC: delta[3]} == dict(kinds)
        assert sum(delta.values()) > 2 * capture.capacity  # several whole-ring drains
        check = session.crosscheck(1, 2, 3, 4)  # the ledger built from the trace against g_moduleMemUsedSize
        assert check.ok and all(m.host == m.firmware > 0 for m in check.modules)
