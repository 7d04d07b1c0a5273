"""What every capture mode shares: the sink protocol, event fan-out, and batched target reads."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterable, Protocol, Sequence

from memhil.contract import UPTIME_SYMBOL
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

    def _emit_rows(self, rows: Sequence[Row]) -> bool:
        """Hand rows (``memhil.events.ROW_FIELDS``) to the only sink when it takes them as they are
        (``takes_rows`` true, a ``many_rows`` method: the session's ledger, which then builds no event
        objects). Returns False, having done nothing, when the events must be built instead."""
        sinks = self.sinks
        if len(sinks) != 1 or not getattr(sinks[0], "takes_rows", False) or trace.isEnabledFor(logging.DEBUG):
            return False
        self.events += len(rows)
        sinks[0].many_rows(rows)  # type: ignore[attr-defined]
        return True

    def attach(self) -> None:
        self.attached = True

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
