"""Patched hooks drained while the firmware runs (a live window on QEMU's memory): the same ledger as at doorbell
stops, as rows or as events; a host that falls behind makes the firmware wait, and loses nothing; the doorbell sits
on a page of its own. Also the bounded decoding of copied records (RingCapture._decode_pending)."""

from __future__ import annotations

import pytest

import struct

from memhil.capture.base import RingCapture
from memhil.capture.patch import BELL_PAGE, HDR, HDR_SIZE, NO_STACK
from memhil.events import EventKind
from memhil.errors import CaptureError
from memhil.session import Session, SessionOptions

SECONDS = 0.105  # ten bursts of 480 calls, the run ending between two


def _ledger_run(elf, tmp_path, name: str, *, live: bool, events: bool, setup=None):
    """burst under patched hooks: the ledger's live blocks (all but the time), its module figures, the capture's
    counters and how the ledger was fed."""
    fed = {"rows": 0, "events": 0}
    seen: list = []
    with Session(SessionOptions(capture="hooks", engine_options={"live_memory": live}), run_dir=tmp_path / name) as session:
        session.start(elf)
        ledger = session.ledger
        apply_rows, apply_many = ledger.apply_rows, ledger.apply_many

        def rows(batch, stacks=None):
            fed["rows"] += 1
            apply_rows(batch, stacks)

        def many(batch):
            fed["events"] += 1
            apply_many(batch)

        ledger.apply_rows, ledger.apply_many = rows, many  # type: ignore[method-assign]
        if events:
            def keep(event) -> None:
                seen.append(event)

            keep.host_only = True  # type: ignore[attr-defined]
            session.extra_sinks.append(keep)
        if setup is not None:
            setup(session.capture)
        before = [session.read_symbol_u32("g_burst_ops", i) for i in range(5)]
        session.run_for(SECONDS)
        session.drain()
        after = [session.read_symbol_u32("g_burst_ops", i) for i in range(5)]
        cap = session.capture
        blocks = {p: (b.size, b.node_size, b.module, b.task, b.seq, b.lrs, tuple(b.stack)) for p, b in ledger.live.items()}
        return {"blocks": blocks, "modules": {m: s.current for m, s in ledger.modules.items()}, "stats": dict(cap.stats),
                "live": cap.live, "gaps": list(cap.gaps), "anomalies": list(ledger.anomalies), "fed": fed,
                "calls": sum(after[k] - before[k] for k in (1, 2, 3)), "events": cap.events, "check": session.crosscheck(1, 2, 3, 4).ok,
                "seen": len(seen)}


@pytest.mark.emulator
def test_live_drains_give_the_ledger_the_doorbell_stops_give(firmware, tmp_path):
    elf = firmware("burst", "debug")
    rows = _ledger_run(elf, tmp_path, "live-rows", live=True, events=False)
    events = _ledger_run(elf, tmp_path, "live-events", live=True, events=True)
    stops = _ledger_run(elf, tmp_path, "at-stops", live=False, events=True)
    for got in (rows, events, stops):
        assert got["gaps"] == [] and got["anomalies"] == [] and got["check"]
        assert got["events"] == got["calls"] > 4000  # every call the firmware counted, once
    assert rows["live"] and events["live"] and not stops["live"]
    # the session's ledger alone takes rows (no event objects); with another sink it takes events
    assert rows["fed"]["rows"] > 0 and rows["fed"]["events"] == 0
    assert events["fed"]["rows"] == 0 and events["seen"] == events["events"]
    # drained while the firmware ran (how often it still found the ring full is the bench's figure, not a test's);
    # at stops only: a stop per ring's worth
    assert rows["stats"]["live_copies"] > 0 and events["stats"]["live_copies"] > 0
    assert stops["stats"]["live_copies"] == 0 and stops["stats"]["stops"] >= stops["calls"] // 4096
    # the same live blocks, stacks included, and the same module figures, whichever way the records came
    assert rows["blocks"] == events["blocks"] == stops["blocks"] and len(rows["blocks"]) > 0
    assert rows["modules"] == events["modules"] == stops["modules"]
    assert all(len(stack) > 2 for *_, stack in rows["blocks"].values())


@pytest.mark.emulator
def test_a_host_that_falls_behind_makes_the_firmware_wait_and_loses_nothing(firmware, tmp_path):
    def slow(cap) -> None:
        cap.max_pending = 8  # a tiny host buffer: live copies stop and drain stops decode everything first
        cap.chunk = 4

    got = _ledger_run(firmware("burst", "debug"), tmp_path, "behind", live=True, events=False, setup=slow)
    assert got["stats"]["caught_up"] > 0 and got["stats"]["stops"] > 0
    assert got["gaps"] == [] and got["anomalies"] == [] and got["check"] and got["events"] == got["calls"] > 4000


@pytest.mark.emulator
def test_the_doorbell_has_a_page_of_its_own(firmware, tmp_path):
    with Session(SessionOptions(capture="hooks"), run_dir=tmp_path) as session:
        session.start(firmware("burst", "debug"))
        lay = session.capture.layout
        slots_end = lay.ring + HDR_SIZE + lay.capacity * lay.rec_size
        assert lay.bell == lay.doorbell and lay.bell % BELL_PAGE == 0
        assert slots_end <= lay.bell and lay.bell + 4 <= lay.ram.end  # nothing of the ring shares its page
        assert (2, lay.bell, 4) in session.engine._watched()
        session.run_for(0.02)
        assert session.capture.gaps == []


@pytest.mark.emulator
@pytest.mark.parametrize("as_rows", [True, False])
def test_a_record_naming_no_patched_function_ends_its_batch_after_the_ones_before(firmware, tmp_path, as_rows):
    """Records copied from burst's ring, the fourth made to name a function id that was never patched (the ring
    overwritten): the three before it reach the ledger (as rows, or as events with another sink), are counted, and
    the error says which record; the records after it are not taken."""
    with Session(SessionOptions(capture="hooks"), run_dir=tmp_path) as session:
        session.start(firmware("burst", "debug"))
        cap = session.capture
        got: list[tuple[bytes, int]] = []
        process = cap._process
        cap._process = lambda raw, count: (got.append((bytes(raw), count)), process(raw, count))  # type: ignore[method-assign]
        session.run_for(0.02)
        cap._process = process  # type: ignore[method-assign]
        if not as_rows:
            seen: list = []
            keep = seen.append
            session.extra_sinks.append(keep)
        raw, count = next((r, c) for r, c in got if c >= 8)
        rs = cap.layout.rec_size
        seqs = [struct.unpack_from("<I", raw, i * rs)[0] for i in range(count)]
        bad = bytearray(raw)
        struct.pack_into("<I", bad, 3 * rs + 4, 999)
        ledger, records, calls = session.ledger, cap.stats["records"], sum(cap.calls_by_function.values())
        events_before, seq_before = ledger.events, cap.seq
        cap.last_seq = seqs[0] - 1  # as if the records came again, in order
        ledger.last_seq = seq_before - 1
        with pytest.raises(CaptureError, match=f"seq {seqs[3]} names function 999"):
            cap._process(bytes(bad), count)
        assert cap.last_seq == seqs[3] and cap.seq == seq_before + 3
        assert sum(cap.calls_by_function.values()) == calls + 3 and cap.stats["records"] == records
        if as_rows:
            assert ledger.events == events_before + 3
        else:
            assert [e.seq for e in seen] == [seq_before, seq_before + 1, seq_before + 2]


@pytest.mark.emulator
def test_a_free_takes_its_stack_words_only_for_a_sink_that_keeps_them(firmware, tmp_path):
    """The session's ledger alone keeps no stack of a free: before each run the ring's header says so, and a free's
    wrapper leaves its stack words out (its record marked). With another sink the frees' stacks are whole again,
    and a marked record decoded as an event has the first frame, its caller."""
    with Session(SessionOptions(capture="hooks"), run_dir=tmp_path) as session:
        session.start(firmware("burst", "debug"))
        cap = session.capture
        lay = cap.layout
        frees = {f.fid for f in cap.patched if f.spec.kind is EventKind.FREE}
        got: list[tuple[bytes, int]] = []
        process = cap._process
        cap._process = lambda raw, count: (got.append((bytes(raw), count)), process(raw, count))  # type: ignore[method-assign]

        def run() -> tuple[int, list[tuple[int, bytes]]]:
            got.clear()
            session.run_for(0.02)
            flag = struct.unpack("<I", session.engine.read_memory(lay.ring + HDR["free_stacks"], 4))[0]
            records = [raw[i * lay.rec_size:(i + 1) * lay.rec_size] for raw, count in got for i in range(count)]
            return flag, [(struct.unpack_from("<I", r, 4)[0], r) for r in records]

        flag, records = run()
        words = [fid for fid, _ in records]
        assert flag == 0 and not cap.free_stacks
        assert all(bool(w & NO_STACK) == (w & ~NO_STACK in frees) for w in words)  # a free's record marked, no other
        assert any(w & NO_STACK for w in words) and any(not w & NO_STACK for w in words)
        ledger_only = got[:]

        seen: list = []

        def keep(event) -> None:
            seen.append(event)

        keep.host_only = True  # type: ignore[attr-defined]
        session.extra_sinks.append(keep)
        flag, records = run()
        assert flag == 1 and cap.free_stacks and not any(w & NO_STACK for w, _ in records)
        freed = [e for e in seen if e.kind is EventKind.FREE]
        assert freed and all(len(e.stack) > 2 for e in freed)

        # the marked records of the first run, decoded again as events: a free's stack is its caller alone
        seen.clear()
        raw, count = next((r, c) for r, c in ledger_only if c >= 8)
        cap.last_seq = struct.unpack_from("<I", raw, 0)[0] - 1
        session.ledger.last_seq = cap.seq - 1
        process(raw, count)
        lrs = {struct.unpack_from("<I", raw, i * lay.rec_size)[0]: struct.unpack_from("<I", raw, i * lay.rec_size + 28)[0]
               for i in range(count)}
        freed = [e for e in seen if e.kind is EventKind.FREE]
        assert freed and all(tuple(e.stack) == (e.stack[0],) for e in freed)
        assert {e.stack[0] for e in freed} <= {lr & ~1 for lr in lrs.values()}

        session.extra_sinks.remove(keep)
        flag, records = run()
        assert flag == 0 and any(w & NO_STACK for w, _ in records)


class _Batches(RingCapture):
    """A ring of 4-byte records whose decoding only notes what it was handed."""

    def __init__(self) -> None:
        super().__init__(None, None)
        self.decoded: list[tuple[bytes, int]] = []

    def _record_size(self) -> int:
        return 4

    def _process(self, raw: bytes, count: int) -> None:
        assert len(raw) == 4 * count
        self.decoded.append((raw, count))


def test_bounded_decoding_splits_and_joins_batches_in_order():
    cap = _Batches()
    batches = [(bytes(range(4 * i, 4 * i + 4 * n)), n) for i, n in ((0, 5), (5, 2), (7, 6))]
    for batch in batches:
        cap._queue(batch)
    assert cap._pending_records == 13
    assert cap._decode_pending(4) == 4
    assert cap.decoded == [(batches[0][0][:16], 4)] and cap._pending_records == 9
    assert cap._decode_pending(4) == 4  # the first batch's last record with the second batch (one decoding), the third's first
    assert cap._decode_pending() == 5 and not cap._pending and cap._pending_records == 0
    assert b"".join(raw for raw, _ in cap.decoded) == b"".join(raw for raw, _ in batches)
    assert [n for _, n in cap.decoded] == [4, 3, 1, 5]
