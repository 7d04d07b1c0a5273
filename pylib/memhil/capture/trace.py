"""Trace capture: drain the firmware's RAM ring of allocator events (``LOSCFG_MEM_TRACE``).

The firmware's debug build writes one ``struct memhil_trace_rec`` per allocator event into
``g_memhil_trace`` (``struct memhil_trace_ring``): ``head`` and ``tail`` are free-running record
counters (slot = counter % capacity); the firmware advances ``head``, the host advances ``tail``.
When ``head - tail >= capacity / 2`` the firmware calls ``memhil_trace_half_full()`` (and keeps
calling it while the ring is full, so nothing is overwritten): the host stops there, reads
[tail, head) in at most two bulk reads (wrap-around), and writes ``tail``. The stop is a write
watchpoint on the doorbell that function writes, where the engine has them (QEMU 7.2 flushes its
translation cache on every breakpoint stop, not on watchpoint stops), else a breakpoint on it; on an engine
that cannot stop the firmware but works at the ends of its run slices (Renode), the ring is drained at every
slice end instead (:meth:`RingCapture._start_slice_end`).

Where the engine runs host work while the target runs (``Capability.BACKGROUND``) and every sink is
``host_only``, a drain stop only copies the records and frees their slots; decoding and the sinks run
after the resume, on the host's other core, while the firmware refills the ring. :meth:`TraceCapture.drain`
(what a session calls before it reads the ledger) first finishes that pending work, in order.

Offsets come from DWARF (DWARF 4 section 5.5, ``struct_layout("memhil_trace_ring")``) and are
checked against the fixed layout below, which is also the fallback without debug info.
A gap in sequence numbers or a nonzero ``lost`` counter is recorded in :attr:`TraceCapture.gaps`
and logged as a warning: never silent.
"""

from __future__ import annotations

import logging
import struct
import types
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Iterable

from memhil.capture.base import EventSink, RingCapture, read_many
from memhil.contract import BARRIER_STRUCT, DOORBELL_MEMBER, DOORBELL_SYMBOL, DRAIN_AT_SYMBOL, HALF_FULL_FUNCTION, RING_STRUCT, RING_SYMBOL
from memhil.engines.base import Capability
from memhil.errors import CaptureError, MemhilError
from memhil.events import UNTRACKED_MODULE, AllocEvent, EventFlag, EventKind, Row, event_from_row

if TYPE_CHECKING:
    from memhil.elf import Image

log = logging.getLogger("memhil.capture")

MAGIC = 0x4D485452  # "MHTR"
VERSION = 1
REC_SIZE = 40
#: fixed layout of struct memhil_trace_ring (byte offsets), checked against DWARF
RING_OFFSETS = {"magic": 0, "version": 4, "rec_size": 6, "capacity": 8, "enabled": 12, "head": 16, "tail": 20, "lost": 24, "recs": 28}
_HEADER = struct.Struct("<IHHIIIII")  # magic, version, rec_size, capacity, enabled, head, tail, lost
_REC = struct.Struct("<IIBBHIIII3I")  # seq, t_ms, kind, module, task, ptr, old_ptr, size, node_size, lr[3]


@dataclass(frozen=True)
class TraceGap:
    """Events the host did not receive: ``missing`` records between ``after_seq`` and ``next_seq``
    (a sequence gap), or ``lost`` records the firmware counted as dropped."""

    after_seq: int
    next_seq: int
    missing: int
    reason: str  # "seq-gap" | "lost"


def decode_record(raw: bytes, offset: int = 0) -> AllocEvent:
    """One ``struct memhil_trace_rec`` as an :class:`AllocEvent` (t_us = t_ms * 1000)."""
    row = _REC.unpack_from(raw, offset)
    try:
        return event_from_row(row)
    except ValueError:
        raise CaptureError(f"trace record seq {row[0]} has unknown event kind {row[2]}", hint="the firmware and memhil disagree on the trace format; rebuild both from one tree", seq=row[0]) from None


_KINDS: tuple[EventKind | None, ...] = (None, EventKind.ALLOC, EventKind.FREE, EventKind.REALLOC, EventKind.ALIGNED_ALLOC)
_NO_FLAGS, _UNTRACKED = EventFlag.NONE, EventFlag.UNTRACKED


#: AllocEvent's fields in the order decode_records fills them
_FIELDS = ("seq", "t_us", "kind", "ptr", "size", "node_size", "module", "task", "stack", "old_ptr", "lrs", "flags")


def _slot_setters() -> tuple:
    """The slot descriptors' setters of AllocEvent in field order. Filling slots directly skips the frozen
    dataclass's ``object.__setattr__`` per field: the same object, a third of the cost. An AllocEvent that
    stops being a plain slotted dataclass with these fields fails here, at import, not in a drain."""
    descs = [AllocEvent.__dict__.get(n) for n in _FIELDS]
    if tuple(f.name for f in fields(AllocEvent)) != _FIELDS or hasattr(AllocEvent, "__post_init__") or not all(
            isinstance(d, types.MemberDescriptorType) for d in descs):
        raise ImportError("memhil.capture.trace: AllocEvent is no longer a slotted dataclass of the fields decode_records fills")
    return tuple(d.__set__ for d in descs)  # type: ignore[union-attr]


_SETTERS = _slot_setters()


def unpack_rows(raw: bytes | bytearray | memoryview, count: int | None = None) -> list[Row]:
    """``count`` consecutive records (all of ``raw`` when None) as rows of ``memhil.events.ROW_FIELDS``
    (the record's own field order), kinds unchecked."""
    view = memoryview(raw)
    if count is not None:
        view = view[: count * REC_SIZE]
    if len(view) % REC_SIZE:
        raise CaptureError(f"trace records: {len(view)} bytes is not a whole number of {REC_SIZE}-byte records",
                           hint="read the ring in whole records (rec_size from the ring header)")
    return list(_REC.iter_unpack(view))


def _kinds_ok(rows: list[Row]) -> bool:
    return {row[2] for row in rows} <= _VALID_KINDS


_VALID_KINDS = frozenset(int(k) for k in EventKind)


def events_from_rows(rows: Iterable[Row]) -> list[AllocEvent]:
    """The rows as events, equal to :func:`decode_record` on each record. Raises :class:`CaptureError` on a
    row with an unknown kind (nothing decoded is returned then; the drain falls back to one record at a
    time to keep the records before it)."""
    kinds, untracked_module, no_flags, untracked = _KINDS, UNTRACKED_MODULE, _NO_FLAGS, _UNTRACKED
    out: list[AllocEvent] = []
    append = out.append
    s_seq, s_t, s_kind, s_ptr, s_size, s_node, s_mod, s_task, s_stack, s_old, s_lrs, s_flags = _SETTERS
    new, cls, empty = object.__new__, AllocEvent, ()
    for row in rows:
        seq, t_ms, kind, module, task, ptr, old_ptr, size, node_size, lr0, lr1, lr2 = row
        ekind = kinds[kind] if kind < 5 else None
        if ekind is None:
            decode_record(_REC.pack(*row))  # raises the usual error
        ev = new(cls)
        s_seq(ev, seq)
        s_t(ev, t_ms * 1000)
        s_kind(ev, ekind)
        s_ptr(ev, ptr)
        s_size(ev, size)
        s_node(ev, node_size)
        if module == untracked_module:
            s_mod(ev, 0)
            s_flags(ev, untracked)
        else:
            s_mod(ev, module)
            s_flags(ev, no_flags)
        s_task(ev, task)
        s_stack(ev, empty)
        s_old(ev, old_ptr)
        s_lrs(ev, (lr0, lr1, lr2) if lr0 and lr1 and lr2 else tuple(v for v in (lr0, lr1, lr2) if v))
        append(ev)
    return out


def decode_records(raw: bytes | bytearray | memoryview, count: int | None = None) -> list[AllocEvent]:
    """``count`` consecutive records (all of ``raw`` when None) as events: :func:`events_from_rows` of
    :func:`unpack_rows`."""
    return events_from_rows(unpack_rows(raw, count))


class TraceCapture(RingCapture):
    mode = "trace"

    def __init__(self, engine, image: Image, *, sinks: Iterable[EventSink] = ()) -> None:
        super().__init__(engine, image, sinks=sinks)
        sym = image.find_symbol(RING_SYMBOL)
        if sym is None:
            raise CaptureError(
                f"the firmware has no trace ring ({RING_SYMBOL})",
                hint="build the firmware with LOSCFG_MEM_TRACE (the debug config, firmware/build/<board>/debug/), or use hooks capture",
                elf=str(getattr(image, "path", "")) or None,
            )
        self.ring = sym.address
        self.offsets = _ring_offsets(image)
        half = image.find_symbol(HALF_FULL_FUNCTION)
        self.half_full_addr = half.address if half is not None else None
        drain_at = image.find_symbol(DRAIN_AT_SYMBOL)
        self.drain_at_addr = drain_at.address if drain_at is not None else None
        self.doorbell_addr = _doorbell(image)
        #: records per drain stop the host asks for: the whole ring (the firmware halts at the breakpoint,
        #: so nothing is overwritten); None keeps the firmware's default (half the ring)
        self.drain_at: int | None = None
        self.capacity = 0
        self.gaps: list[TraceGap] = []
        self.last_seq: int | None = None
        self.lost_seen = 0
        self.drains = 0
        self._bp = None
        self._watching = False

    # -- set-up ---------------------------------------------------------------------------
    def attach(self) -> None:
        if self.attached:
            return
        header = self._read_header(self.engine)
        self.capacity = header["capacity"]
        self.lost_seen = header["lost"]
        if self._start_slice_end():
            pass  # drained at the engine's slice ends (Renode): no doorbell stop, the firmware's default drain_at
        elif self.half_full_addr is not None:
            # a write watchpoint on the doorbell costs QEMU no translation-cache flush, a breakpoint does
            if self.doorbell_addr is not None and Capability.WATCHPOINTS in getattr(self.engine, "capabilities", Capability.NONE):
                self._bp = self.engine.add_watchpoint(self.doorbell_addr, 4, self._on_half_full)
                self._watching = True
            else:
                self._bp = self.engine.add_breakpoint(self.half_full_addr, self._on_half_full)
            if self.drain_at_addr is not None:
                self.drain_at = self.capacity
                self.engine.write_memory(self.drain_at_addr, self.capacity.to_bytes(4, "little"))
        else:
            log.warning("%s not in the ELF: the ring is drained only at stops; the firmware may wait on a full ring", HALF_FULL_FUNCTION)
        self._start_overlap()
        self._write_u32(self.engine, "enabled", 1)
        self.attached = True

    def detach(self) -> None:
        if not self.attached:
            return
        try:
            self.drain()
            self._write_u32(self.engine, "enabled", 0)
        finally:
            self._stop_overlap()
            self._stop_slice_end()
            if self._bp is not None:
                try:
                    if self._watching:
                        self.engine.remove_watchpoint(self._bp)
                    else:
                        self.engine.remove_breakpoint(self._bp)
                except MemhilError as exc:
                    log.debug("removing the half-full breakpoint: %s", exc)
                self._bp = None
            self.attached = False

    # -- draining ---------------------------------------------------------------------------
    def _ring_capacity(self) -> int:
        return self.capacity

    def _record_size(self) -> int:
        return REC_SIZE

    def _ring_area(self) -> tuple[int, int]:
        return self.ring, self.offsets["recs"] + self.capacity * REC_SIZE

    def _copy_live(self, window) -> tuple[bytes, int] | None:
        """While the firmware runs: the header, then only the records there are (two small reads, not the ring)."""
        got = self._read_ring(window)
        return None if got is None else (got[0], got[1])

    def _on_half_full(self, ctx) -> None:
        self._at_drain_stop(ctx)

    def _copy_ring(self, target) -> tuple[bytes, int] | None:
        """At a drain stop: copy [tail, head) and free the slots, leaving the decoding for later. The
        firmware rings when the ring is full (``drain_at`` = capacity), so the header and every slot are read
        in one request."""
        got = self._read_ring(target, whole=self.drain_at == self.capacity)
        return None if got is None else (got[0], got[1])

    def drain(self, target=None) -> int:
        """Read every record in [tail, head), hand the events to the sinks, advance ``tail``; records
        copied at earlier stops and not yet decoded go first.

        ``target`` is a breakpoint's stop context, or None for the engine (after a run).
        Returns the number of events read.
        """
        done = self._finish_pending()
        got = self._read_ring(target or self.engine, advance=False)
        if got is None:
            return done
        raw, count, tail = got
        self._decode(raw, count)
        self._write_u32(target or self.engine, "tail", (tail + count) & 0xFFFFFFFF)
        return done + count

    def _read_ring(self, target, *, advance: bool = True, whole: bool = False) -> tuple[bytes, int, int] | None:
        """The records in [tail, head) as (raw, count, tail), None when the ring is empty; a change of the
        firmware's ``lost`` counter is recorded as a gap. ``advance`` writes ``tail`` at once (the
        records are the host's now); else the caller writes it once they are decoded.
        ``whole`` reads the header and all slots at once (one round trip less when the ring is full)."""
        ring = None
        if whole and self.capacity:
            ring = target.read_memory(self.ring, self.offsets["recs"] + self.capacity * REC_SIZE)
        header = self._read_header(target, ring)
        head, tail, cap = header["head"], header["tail"], header["capacity"]
        if header["lost"] != self.lost_seen:
            lost = (header["lost"] - self.lost_seen) & 0xFFFFFFFF
            self._gap(TraceGap(self.last_seq if self.last_seq is not None else -1, -1, lost, "lost"))
            self.lost_seen = header["lost"]
        count = (head - tail) & 0xFFFFFFFF
        if count == 0:
            return None
        if count > cap:
            raise CaptureError(
                f"trace ring holds {count} records but has room for {cap} (head={head}, tail={tail})",
                hint=f"the ring header in target memory is corrupt; check the firmware for a memory overwrite near {RING_SYMBOL}",
            )
        if ring is not None and cap == self.capacity:
            first = self.offsets["recs"] + (tail % cap) * REC_SIZE
            raw = ring[first : first + count * REC_SIZE]
            if len(raw) < count * REC_SIZE:  # wrapped
                raw += ring[self.offsets["recs"] : self.offsets["recs"] + count * REC_SIZE - len(raw)]
        else:
            raw = self._read_records(target, tail % cap, count, cap)
        self.drains += 1
        if advance:
            self._write_u32(target, "tail", (tail + count) & 0xFFFFFFFF)
        return raw, count, tail

    def _process(self, raw: bytes, count: int) -> None:
        """Hand ``count`` records to the sinks: as rows to a sink that takes them (the session's ledger
        alone), else as events."""
        rows = unpack_rows(raw, count)
        if not _kinds_ok(rows):
            self._drain_one_by_one(raw, count)  # emits the records before the bad one, then raises
        self._check_seqs([row[0] for row in rows])
        if not self._emit_rows(rows):
            self._emit_many(events_from_rows(rows))

    def _drain_one_by_one(self, raw: bytes, count: int) -> None:
        for i in range(count):
            ev = decode_record(raw, i * REC_SIZE)
            self._check_seq(ev.seq)
            self._emit(ev)

    def _check_seqs(self, seqs: list[int]) -> None:
        """:meth:`_check_seq` on each sequence number, cheaply when the batch is consecutive (the usual case)."""
        if not seqs:
            return
        first, last = seqs[0], seqs[-1]
        expected = (self.last_seq + 1) & 0xFFFFFFFF if self.last_seq is not None else first
        if first == expected and last - first == len(seqs) - 1 and seqs == list(range(first, last + 1)):
            self.last_seq = last
            return
        for seq in seqs:
            self._check_seq(seq)

    def _read_records(self, target, first: int, count: int, cap: int) -> bytes:
        base = self.ring + self.offsets["recs"]
        upto = min(count, cap - first)
        requests = [(base + first * REC_SIZE, upto * REC_SIZE)]
        if count > upto:
            requests.append((base, (count - upto) * REC_SIZE))
        return b"".join(read_many(target, requests))

    def _check_seq(self, seq: int) -> None:
        last = self.last_seq
        if last is not None and seq != (last + 1) & 0xFFFFFFFF:
            missing = (seq - last - 1) & 0xFFFFFFFF
            self._gap(TraceGap(last, seq, missing, "seq-gap"))
        self.last_seq = seq

    def _gap(self, gap: TraceGap) -> None:
        self.gaps.append(gap)
        if gap.reason == "lost":
            log.warning("trace ring: the firmware dropped %d event(s) after seq %d", gap.missing, gap.after_seq)
        else:
            log.warning("trace ring: %d event(s) missing between seq %d and %d", gap.missing, gap.after_seq, gap.next_seq)

    # -- ring header ---------------------------------------------------------------------------
    def _read_header(self, target, ring: bytes | None = None) -> dict[str, int]:
        """The ring header, from ``ring`` (the ring's bytes, header first) when given, else read."""
        raw = ring[: _HEADER.size] if ring is not None else target.read_memory(self.ring, _HEADER.size)
        magic, version, rec_size, capacity, enabled, head, tail, lost = _HEADER.unpack(raw)
        if magic != MAGIC:
            raise CaptureError(
                f"trace ring at {self.ring:#x} has magic {magic:#010x}, expected {MAGIC:#010x}",
                hint="the firmware has not initialised the ring yet (run it past boot), or the ELF does not match the running firmware",
            )
        if version != VERSION or rec_size != REC_SIZE or capacity == 0:
            raise CaptureError(
                f"trace ring format version {version}, record size {rec_size}, capacity {capacity} is not supported (version {VERSION}, {REC_SIZE}-byte records)",
                hint="update memhil and the firmware together",
            )
        return {"magic": magic, "version": version, "rec_size": rec_size, "capacity": capacity, "enabled": enabled, "head": head, "tail": tail, "lost": lost}

    def _write_u32(self, target, field: str, value: int) -> None:
        target.write_memory(self.ring + self.offsets[field], value.to_bytes(4, "little"))


def _doorbell(image: Image) -> int | None:
    """Address of the word ``memhil_trace_half_full()`` writes before the host drains
    (``g_memhil_barrier_ms.trace_doorbell``, firmware/kernel/include/memhil_timer.h), when the ELF has it."""
    sym = image.find_symbol(DOORBELL_SYMBOL)
    if sym is None:
        return None
    try:
        member = image.struct_layout(BARRIER_STRUCT).members.get(DOORBELL_MEMBER)
    except MemhilError:
        return None
    return None if member is None else sym.address + member.offset


def _ring_offsets(image: Image) -> dict[str, int]:
    """Member offsets of memhil_trace_ring from DWARF, checked against the fixed layout."""
    try:
        layout = image.struct_layout(RING_STRUCT)
    except (MemhilError, AttributeError) as exc:
        log.info("%s not in DWARF (%s); using the fixed layout", RING_STRUCT, exc)
        return dict(RING_OFFSETS)
    found = {name: m.offset for name, m in layout.members.items() if name in RING_OFFSETS}
    wrong = {name: off for name, off in found.items() if off != RING_OFFSETS[name]}
    if wrong:
        raise CaptureError(
            "the firmware's struct memhil_trace_ring does not have the layout memhil reads: "
            + ", ".join(f"{n} at {o} (expected {RING_OFFSETS[n]})" for n, o in wrong.items()),
            hint="update memhil and the firmware together",
        )
    return {**RING_OFFSETS, **found}
