"""The patched hooks' ring and code on QEMU: a record claimed without masking interrupts, dropped and counted when
the ring is full of records nothing can finish; calls between hooked functions sent to the callee's body; each
wrapper in a page of its own, away from the firmware's slots in QEMU's jump cache; the decoding written for the
plain call against the general one."""

from __future__ import annotations

import random
import struct

import pytest

from memhil.capture.asm import encode_b_w, encode_bl
from memhil.capture.patch import HDR, HDR_SIZE, NO_STACK, PAGE, PatchCapture
from memhil.capture.lazystack import LazyStack
from memhil.events import EventKind
from memhil.session import Session, SessionOptions

pytestmark = pytest.mark.emulator

def _header(engine, lay) -> dict[str, int]:
    raw = engine.read_memory(lay.ring, HDR_SIZE)
    return {name: struct.unpack_from("<I", raw, off)[0] for name, off in HDR.items()}


def _set(engine, lay, **words: int) -> None:
    for name, value in words.items():
        engine.write_memory(lay.ring + HDR[name], struct.pack("<I", value & 0xFFFFFFFF))


def test_a_full_ring_of_unfinished_records_drops_the_call_and_counts_it(firmware, tmp_path):
    """A call that finds the ring full and none of its records complete (as an interrupt handler's allocation does
    when every slot is claimed by calls it interrupted) cannot wait for a drain that cannot come: it returns as
    it would, its record is counted as lost, the host reports the gap, and the ring goes on."""
    with Session(SessionOptions(capture="hooks"), run_dir=tmp_path) as session:
        session.start(firmware("burst", "debug"))
        session.run_for(0.015)
        session.drain()
        eng, cap = session.engine, session.capture
        lay = cap.layout
        before = _header(eng, lay)
        assert before["head"] == before["tail"] == before["claim"] and before["lost"] == 0
        claim = before["claim"]
        _set(eng, lay, claim=claim + lay.capacity)  # every slot claimed, none complete

        given: list[int] = []

        def give_back(ctx) -> None:  # a wrapper's end: once a record is lost, the slots are free again
            raw = ctx.read_memory(lay.ring + HDR["claim"], 8)
            bumped, lost = struct.unpack("<II", raw)
            if lost and not given:
                assert bumped == claim + lay.capacity
                ctx.write_memory(lay.ring + HDR["claim"], struct.pack("<I", claim))
                given.append(lost)

        ends = [eng.add_breakpoint(cap._labels[f"end_{f.fid}"], give_back) for f in cap.patched if f.spec.kind is not None]
        ops = [session.read_symbol_u32("g_burst_ops", i) for i in range(5)]
        events = cap.events
        session.run_for(0.02)
        for bp in ends:
            eng.remove_breakpoint(bp)
        session.run_for(0.02)
        session.drain()
        calls = sum(session.read_symbol_u32("g_burst_ops", i) - ops[i] for i in (1, 2, 3))
        assert len(given) == 1
        lost = _header(eng, lay)["lost"]
        assert lost >= 1 and [g.reason for g in cap.gaps] == ["lost"] * len(cap.gaps)
        assert sum(g.missing for g in cap.gaps) == lost
        assert cap.events - events == calls - lost > 1000  # every other call came, once


def test_calls_between_hooked_functions_go_to_the_callee_body(firmware, tmp_path):
    """burst's LOS_MemMfree calls LOS_MemFree: that bl is sent to LOS_MemFree's body (its wrapper would only find
    the call nested); detaching puts the ELF's bytes back. Literal pools are stepped over by the mapping symbols."""
    with Session(SessionOptions(capture="hooks"), run_dir=tmp_path) as session:
        session.start(firmware("burst", "debug"))
        cap, eng, image = session.capture, session.engine, session.image
        by_name = {f.spec.name: f for f in cap.patched}
        free, mfree = by_name["LOS_MemFree"], by_name["LOS_MemMfree"]
        sites = {addr: (old, new) for addr, old, new in cap.direct_calls}
        into_free = [a for a in sites if mfree.address <= a < mfree.address + mfree.size and sites[a][1] == encode_bl(a, free.body)]
        assert len(into_free) == 2  # its two calls of LOS_MemFree
        for addr, (old, new) in sites.items():
            assert image.read(addr, 4) == old and eng.read_memory(addr, 4) == new
            assert not any(lo <= addr < hi for lo, hi in image.data_ranges(addr - 4, addr + 4))
            assert new in {encode_bl(addr, f.body) for f in cap.patched} | {encode_b_w(addr, f.body) for f in cap.patched}
        session.run_for(0.03)
        session.drain()
        assert session.crosscheck(1, 2, 3, 4).ok and cap.gaps == [] and session.ledger.anomalies == []
        cap.detach()
        for addr, (old, _new) in sites.items():
            assert eng.read_memory(addr, 4) == old


def test_each_wrapper_in_a_page_away_from_the_firmware_jump_cache_slots(firmware, tmp_path):
    """Each wrapper with its body (what every call runs) lies in one 1 KiB page (QEMU chains blocks only within a
    page), and no page of the code shares its slots in QEMU's jump cache with a page of the firmware's code."""
    with Session(SessionOptions(capture="hooks"), run_dir=tmp_path) as session:
        session.start(firmware("burst", "debug"))
        cap = session.capture
        labels = cap._labels
        for f in cap.patched:
            lo, hi = labels[f"wrap_{f.fid}"], labels[f"hot_end_{f.fid}"]
            assert lo // PAGE == (hi - 1) // PAGE and lo < labels[f"body_{f.fid}"] < hi
        code = cap.layout.code
        assert code.base % PAGE == 0
        assert cap._jump_cache_clashes(len(cap.code))(code.base) == 0

        def slot(addr: int) -> int:
            return ((addr >> 10) ^ (addr >> 14)) & 0x3F

        text = session.image.symbol("LOS_MemMalloc").address
        assert slot(text) not in {slot(p) for p in range(code.base, code.base + len(cap.code), PAGE)}


class _Rows:
    host_only = True
    takes_rows = True

    def __init__(self) -> None:
        self.rows: list = []
        self.stacks: list = []
        self.events: list = []

    def many_rows(self, rows, stacks=None) -> None:
        self.rows += [tuple(r) for r in rows]
        self.stacks += [s._key if isinstance(s, LazyStack) else s for s in stacks]

    def __call__(self, event) -> None:
        self.events.append((event.seq, event.kind, event.ptr, event.size, event.module))


def _decode(cap: PatchCapture, how: str, raw: bytes, count: int, seq: int, last: int) -> tuple:
    sink = _Rows()
    cap.sinks = [sink]
    cap.seq, cap.last_seq, cap.gaps = seq, last, []
    cap._calls, failed, records = {}, cap.stats["failed"], cap.stats["records"]
    error = None
    try:
        (cap._rows_each if how == "rows" else cap._process_each)(raw, count)
    except Exception as exc:  # noqa: BLE001 - both ways must fail alike
        error = str(exc)
    return (sink.rows, sink.stacks, sink.events, error, cap.seq, cap.last_seq, [(g.after_seq, g.next_seq, g.missing) for g in cap.gaps],
            dict(cap._calls), cap.stats["failed"] - failed, cap.stats["records"] - records)


def test_the_row_decoding_gives_what_the_general_decoding_gives(firmware, tmp_path):
    """Batches recorded from burst, as they came and with records changed as a firmware or a damaged ring could
    change them (sequence gaps, failed and refused calls, frees of no block, ids never patched, free records
    without stack words): the same rows, stacks, events, counts, gaps and errors from the general decoding and the
    one written for the plain call."""
    with Session(SessionOptions(capture="hooks"), run_dir=tmp_path) as session:
        session.start(firmware("burst", "debug"))
        cap = session.capture
        session.run_for(0.015)  # past the start's pool call: the batches hold allocator calls alone
        got: list[tuple[bytes, int]] = []
        process = cap._process
        cap._process = lambda raw, count: (got.append((bytes(raw), count)), process(raw, count))  # type: ignore[method-assign]
        session.run_for(0.05)
        cap._process = process  # type: ignore[method-assign]
        general = cap._process_each
        handed: list[int] = []
        cap._process_each = lambda raw, count: (handed.append(count), general(raw, count))  # type: ignore[method-assign]
        lay = cap.layout
        rs = lay.rec_size
        raw = b"".join(r for r, _ in got)
        count = sum(c for _, c in got)
        assert count > 1000
        first = struct.unpack_from("<I", raw, 0)[0]
        fids = [struct.unpack_from("<I", raw, i * rs + 4)[0] for i in range(count)]
        assert any(f & NO_STACK for f in fids) and any(not f & NO_STACK for f in fids)
        frees = {f.fid for f in cap.patched if f.spec.kind is EventKind.FREE}
        rng = random.Random(7)
        changes = [
            ("seq", lambda r, i: struct.pack_into("<I", r, i * rs, struct.unpack_from("<I", r, i * rs)[0] + 5)),
            ("result 0", lambda r, i: struct.pack_into("<I", r, i * rs + 24, 0)),
            ("result 1", lambda r, i: struct.pack_into("<I", r, i * rs + 24, 1)),
            ("ptr 0", lambda r, i: struct.pack_into("<I", r, i * rs + 12, 0)),
            ("node unused", lambda r, i: struct.pack_into("<I", r, i * rs + 4 * (11 + cap.nodes.size_off // 4), 0x100)),
            ("fid", lambda r, i: struct.pack_into("<I", r, i * rs + 4, 250)),
            ("no stack", lambda r, i: struct.pack_into("<I", r, i * rs + 4, next(iter(frees)) | NO_STACK)),
        ]
        cases = [("as recorded", raw)]
        for name, change in changes:
            for _ in range(3):
                bad = bytearray(raw)
                for i in rng.sample(range(count), 5):
                    change(bad, i)
                cases.append((name, bytes(bad)))
        for name, data in cases:
            handed.clear()
            each = _decode(cap, "each", data, count, 100, first - 1)
            assert _decode(cap, "rows", data, count, 100, first - 1) == each, name
            if name == "as recorded":
                assert each[3] is None and len(each[0]) > 1000 and each[6] == []
                assert handed == [count]  # the general decoding's own call: the row decoding needed none
