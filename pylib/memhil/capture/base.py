"""What every capture mode shares: the sink protocol, event fan-out, and batched target reads."""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Iterable, Protocol, Sequence

from memhil.contract import UPTIME_SYMBOL
from memhil.engines.base import Capability
from memhil.errors import CaptureError, MemhilError
from memhil.events import AllocEvent, Row

if TYPE_CHECKING:
    from memhil.elf import Image

trace = logging.getLogger("memhil.trace.alloc")


class EventSink(Protocol):
    """Anything that takes events one at a time: ``Ledger.apply``, a timeline writer, ``list.append``."""

    def __call__(self, event: AllocEvent, /) -> None: ...


class Capture:
    """Base of the capture modes: holds the sinks and hands each event to all of them."""

    mode = "none"

    def __init__(self, engine, image: Image | None, *, sinks: Iterable[EventSink] = ()) -> None:
        self.engine = engine
        self.image = image
        self.sinks: list[EventSink] = list(sinks)
        self.events = 0
        self.attached = False

    def add_sink(self, sink: EventSink) -> None:
        self.sinks.append(sink)

    def _sinks_host_only(self) -> bool:
        """True when every sink says (``host_only = True``) that it touches nothing of the target, so its
        events may be handed over while the target runs (see ``Engine.add_background``)."""
        return all(getattr(sink, "host_only", False) for sink in self.sinks)

    def _emit(self, event: AllocEvent) -> None:
        self.events += 1
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug("%s %s", self.mode, event)
        for sink in self.sinks:
            sink(event)

    def _emit_many(self, events: Sequence[AllocEvent]) -> None:
        """Hand ``events`` to the sinks in order, as :meth:`_emit` one by one would (each event to every
        sink before the next event), with the per-event checks done once per batch."""
        self.events += len(events)
        if trace.isEnabledFor(logging.DEBUG):
            for event in events:
                trace.debug("%s %s", self.mode, event)
        sinks = self.sinks
        if len(sinks) == 1:
            sink = sinks[0]
            many = getattr(sink, "many", None)  # a sink that takes a batch at once
            if many is not None:
                many(events)
                return
            for event in events:
                sink(event)
        elif sinks:
            for event in events:
                for sink in sinks:
                    sink(event)

    def _takes_rows(self) -> bool:
        """True when the only sink takes rows as they are (``takes_rows`` true, a ``many_rows`` method: the
        session's ledger, which then builds no event objects)."""
        sinks = self.sinks
        return len(sinks) == 1 and getattr(sinks[0], "takes_rows", False) and not trace.isEnabledFor(logging.DEBUG)

    def _emit_rows(self, rows: Sequence[Row], stacks: Sequence[tuple] | None = None) -> bool:
        """Hand rows (``memhil.events.ROW_FIELDS``), with each one's stack when given, to the only sink when it
        takes them (:meth:`_takes_rows`). Returns False, having done nothing, when the events must be built instead."""
        if not self._takes_rows():
            return False
        self.events += len(rows)
        self.sinks[0].many_rows(rows, stacks)  # type: ignore[attr-defined]
        return True

    def attach(self) -> None:
        self.attached = True

    def before_run(self) -> None:
        """Called by the session with the target halted, before it lets the target run: a capture may adjust
        what it records to what its sinks take now."""

    def detach(self) -> None:
        self.attached = False

    def drain(self) -> int:
        """Collect whatever the target holds (trace mode); returns the number of events. Others: 0."""
        return 0

    def __enter__(self):
        self.attach()
        return self

    def __exit__(self, *exc) -> None:
        self.detach()


class RingCapture(Capture):
    """Base of the captures that drain a RAM ring in target memory (trace, patched hooks).

    At a drain stop, where the engine runs host work while the target runs (``Capability.BACKGROUND``) and every
    sink is ``host_only``, the records are only copied and their slots freed (:meth:`_copy_ring`); decoding and
    the sinks (:meth:`_process`) run after the resume, as the engine's background work, while the firmware
    refills the ring. Otherwise they are decoded at the stop. A subclass's ``drain`` starts with
    :meth:`_finish_pending`, so what was copied earlier reaches the sinks first, in order.

    Where the engine also reads and writes target RAM while the target runs (``Capability.LIVE_MEMORY``: a
    :meth:`~memhil.engines.base.Engine.live_window` on the ring), that background work is polled while a run waits
    for its stop: it copies what the ring holds through the window, frees the slots and decodes, so the firmware
    seldom fills the ring and stops on its doorbell (:meth:`_background_work`); a doorbell stop that still comes
    copies through the window too.

    Where the engine cannot stop the target on the ring's doorbell but runs work at the ends of its run slices
    (``Capability.SLICE_END`` without ``WATCHPOINTS``: Renode), :meth:`_start_slice_end` makes :meth:`drain` that
    work instead, and the subclass sets no doorbell stop. Each slice-end drain tells the engine how full the ring
    was (it sizes the slices from that) and counts in ``stats``: ``slice_drains``, and ``found_full``, the
    drains that found the ring full (the firmware had waited on it until the slice ended).
    """

    def __init__(self, engine, image: Image | None, *, sinks: Iterable[EventSink] = ()) -> None:
        super().__init__(engine, image, sinks=sinks)
        #: records copied at a stop and not yet decoded: (raw bytes, count), oldest first
        self._pending: deque[tuple[bytes, int]] = deque()
        self._pending_error: CaptureError | None = None
        self._overlap = False  # decoding runs as the engine's background work
        self._window = None  # the engine's live window on the ring, when it has one
        self._pending_records = 0  # the records in _pending (kept by _queue and _decode_pending)
        #: records copied and not yet decoded beyond which a drain stop decodes them all before the firmware
        #: goes on (and a live copy waits): the host's buffer, bounded
        self.max_pending = 65536
        #: records the background work decodes before it looks at the ring (and the engine at its stop) again
        self.chunk = 64
        self.deferred_drains = 0
        self._slice_end = False  # drain() is the engine's slice-end work
        self._decoding_while_running = False  # _decode is called from the engine's background work
        #: also ``copy_s``, wall seconds the target stood halted while drain stops copied the ring, and
        #: ``decode_s``, wall seconds spent decoding records and feeding the sinks (at stops or in the background),
        #: ``decode_running_s`` the part of it spent in the engine's background work, while the target ran;
        #: ``live_copies``, copies made through the live window while the target ran, and ``live_s``, their wall seconds
        self.stats: dict[str, float] = {"slice_drains": 0, "found_full": 0, "copy_s": 0.0, "decode_s": 0.0, "decode_running_s": 0.0,
                                        "live_copies": 0, "live_s": 0.0, "caught_up": 0}

    def _ring_capacity(self) -> int:
        """Records the ring holds (0 before attach)."""
        raise NotImplementedError

    def _ring_area(self) -> tuple[int, int]:
        """(address, bytes) of the ring in target memory, header and slots (after attach)."""
        raise NotImplementedError

    def _record_size(self) -> int:
        """Bytes of one record of the ring (after attach)."""
        raise NotImplementedError

    def _copy_live(self, window) -> tuple[bytes, int] | None:
        """While the target runs: copy what the ring holds through ``window`` and free the slots, as
        :meth:`_copy_ring` at a stop does: (raw, count), None when empty."""
        raise NotImplementedError

    def _start_slice_end(self) -> bool:
        """Drain at the engine's slice ends where it has them and no watchpoints (at attach); True when so: the
        subclass then sets no doorbell stop."""
        caps = getattr(self.engine, "capabilities", Capability.NONE)
        if Capability.SLICE_END in caps and Capability.WATCHPOINTS not in caps:
            self.engine.add_slice_end(self._drain_at_slice_end)
            self._slice_end = True
        return self._slice_end

    def _stop_slice_end(self) -> None:
        if self._slice_end:
            self.engine.remove_slice_end(self._drain_at_slice_end)
            self._slice_end = False

    def _drain_at_slice_end(self) -> float:
        """The engine's slice-end work (target paused): drain, count, and return how full the ring was."""
        held = self.drain()
        capacity = self._ring_capacity()
        self.stats["slice_drains"] += 1
        if capacity and held >= capacity:
            self.stats["found_full"] += 1
        return held / capacity if capacity else 0.0

    def _copy_ring(self, target) -> tuple[bytes, int] | None:
        """At a drain stop: copy the records the ring holds and give their slots back: (raw, count), None when empty."""
        raise NotImplementedError

    def _process(self, raw: bytes, count: int) -> None:
        """Decode ``count`` records of ``raw`` and hand them to the sinks."""
        raise NotImplementedError

    def _decode(self, raw: bytes, count: int) -> None:
        """:meth:`_process`, its wall time counted in ``stats["decode_s"]`` (and in ``decode_running_s`` when it is
        the engine's background work, while the target runs)."""
        started = time.perf_counter()
        try:
            self._process(raw, count)
        finally:
            took = time.perf_counter() - started
            self.stats["decode_s"] += took
            if self._decoding_while_running:
                self.stats["decode_running_s"] += took

    def _at_drain_stop(self, ctx) -> None:
        """The firmware's drain stop: copy the records and free their slots (one request when the ring is full),
        then decode them after the resume where that may be, else now (after any copied earlier)."""
        started = time.perf_counter()
        got = self._copy_ring(self._window or ctx)
        self.stats["copy_s"] += time.perf_counter() - started
        if got is not None:
            self._queue(got)
        if not (self._overlap and self._sinks_host_only()):
            self._finish_pending()
        elif got is not None:
            self.deferred_drains += 1
            if self._pending_records > self.max_pending:  # the host is behind: the firmware waits while it catches up
                self.stats["caught_up"] += 1
                self._finish_pending()

    def _start_overlap(self) -> None:
        """Decode copied records as the engine's background work, where the engine has it; where it also has a
        live window on the ring, drain the ring in that work while the target runs, polled (at attach)."""
        caps = getattr(self.engine, "capabilities", Capability.NONE)
        if Capability.BACKGROUND in caps:
            if Capability.LIVE_MEMORY in caps:
                self._window = self.engine.live_window(*self._ring_area())
            self.engine.add_background(self._background_work, poll=self._window is not None)
            self._overlap = True

    def _stop_overlap(self) -> None:
        if self._overlap:
            self.engine.remove_background(self._background_work)
            self._overlap = False
        if self._window is not None:
            self._window.close()
            self._window = None

    @property
    def live(self) -> bool:
        """True when the ring is drained while the target runs, through the engine's live window."""
        return self._window is not None

    def _background_work(self) -> int | None:
        """The engine's background work. Without a live window: decode what drain stops copied. With one (and
        sinks that may be fed while the target runs): copy what the ring holds now (while the host's buffer has
        room), then decode at most ``chunk`` records, so the next look at the ring comes soon and the firmware
        seldom finds it full. Returns the records copied or decoded (nonzero: there is more to do); None when a sink
        might read the target, so nothing may be taken in while it runs (the wait then stops polling)."""
        if self._window is None:
            return self._decode_while_running(None)
        if not self._sinks_host_only():
            return None
        found = 0
        if self._pending_records < self.max_pending:
            started = time.perf_counter()
            got = self._copy_live(self._window)
            self.stats["live_s"] += time.perf_counter() - started
            if got is not None:
                self.stats["live_copies"] += 1
                self._queue(got)
                found += got[1]
        return found + self._decode_while_running(self.chunk)

    def _decode_while_running(self, limit: int | None) -> int:
        """:meth:`_decode_pending` in the engine's background work, while the target runs: the decoding's wall time is
        also counted in ``stats["decode_running_s"]`` (the rest of ``decode_s`` was spent with the target halted)."""
        self._decoding_while_running = True
        try:
            return self._decode_pending(limit)
        finally:
            self._decoding_while_running = False

    def _queue(self, got: tuple[bytes, int]) -> None:
        """Keep copied records (raw, count) for decoding, after those copied earlier."""
        self._pending.append(got)
        self._pending_records += got[1]

    def _decode_pending(self, limit: int | None = None) -> int:
        """Decode the copied records (at most ``limit``, the rest kept) and hand them to the sinks, oldest first (the
        engine's background work, and the start of every drain). A bad record ends its batch: the records before it
        are emitted, the error is kept for the next drain to raise, and the records after it show as a sequence gap."""
        n = 0
        pending = self._pending
        while pending and (limit is None or n < limit):
            raw, count = pending.popleft()
            if limit is not None and count > limit - n:  # decode the head of the batch, keep its tail first in line
                take = limit - n
                cut = take * self._record_size()
                pending.appendleft((raw[cut:], count - take))
                raw, count = raw[:cut], take
            elif pending and (limit is None or n + count + pending[0][1] <= limit):
                # copies that follow it, decoded with it: one decoding (and one hand-over to the sinks) for them all
                parts = [raw]
                while pending and (limit is None or n + count + pending[0][1] <= limit):
                    more, k = pending.popleft()
                    parts.append(more)
                    count += k
                raw = b"".join(parts)
            self._pending_records -= count
            try:
                self._decode(raw, count)
            except CaptureError as exc:
                if self._pending_error is None:
                    self._pending_error = exc
            n += count
        return n

    def _finish_pending(self) -> int:
        """:meth:`_decode_pending`, then raise the error a copied batch met, if any; returns the records decoded."""
        done = self._decode_pending()
        if self._pending_error is not None:
            err, self._pending_error = self._pending_error, None
            raise err
        return done


def release_breakpoints(engine, breakpoints: Iterable, what: str) -> None:
    """Remove each breakpoint; one the engine no longer has (it may be gone already) is only logged: there is
    nothing else to release."""
    for bp in breakpoints:
        try:
            engine.remove_breakpoint(bp)
        except MemhilError as exc:
            logging.getLogger("memhil.capture").debug("removing %s: %s", what, exc)


def read_many(target, requests: Sequence[tuple[int, int]]) -> list[bytes]:
    """Read several ranges in one pipelined request when ``target`` offers ``read_memory_many``;
    otherwise one ``read_memory`` per range."""
    many = getattr(target, "read_memory_many", None)
    if many is not None:
        return list(many(list(requests)))
    return [target.read_memory(a, n) for a, n in requests]


def uptime_var(image: Image | None) -> tuple[int, int] | None:
    """(address, size) of the firmware's millisecond uptime counter, when the ELF has one."""
    if image is None:
        return None
    sym = image.find_symbol(UPTIME_SYMBOL)
    if sym is None:
        return None
    return sym.address, 8 if sym.size == 8 else 4
