"""A console reader that lags behind the run: what the target printed before the virtual timeout still counts.

The engine contract: after a console wait's run ends without a match, ``wait_for_text`` asks the engine to take
in what the target wrote before it halted (``_settle_console``), then searches again. Here the bytes sit in a
stand-in for the socket until the engine settles it, so the test depends on no thread's timing."""

from __future__ import annotations

import pytest

from memhil.engines.base import Engine, EngineState
from memhil.errors import ConsoleTimeout


class LaggingEngine(Engine):
    """Prints ``answer`` during its first run, but its console bytes reach the log only when the engine settles
    its console (as a socket the reader has not emptied yet); virtual time runs out at once, as for an idle
    firmware."""

    name = "lagging"

    def __init__(self, answer: bytes | None) -> None:
        super().__init__()
        self.state = EngineState.RUNNING
        self.answer, self.time_s = answer, 0.0
        self.in_flight = b""
        self.settled = 0

    def run_for(self, seconds: float) -> None:
        if self.answer is not None:
            self.in_flight, self.answer = self.answer, None
        self.time_s += seconds

    def _settle_console(self) -> None:
        self.settled += 1
        self.console.feed(self.in_flight)
        self.in_flight = b""

    def virtual_time(self) -> float:
        return self.time_s

    def start(self, platform, elf, *, accelerate=True, workdir=None) -> None: ...
    def stop(self) -> None: ...
    def reset(self) -> None: ...
    def set_acceleration(self, enabled: bool) -> None: ...
    def read_memory(self, address: int, size: int) -> bytes: return bytes(size)
    def write_memory(self, address: int, data: bytes) -> None: ...
    def read_registers(self) -> dict[str, int]: return {}
    def add_breakpoint(self, address, callback): raise NotImplementedError
    def remove_breakpoint(self, bp) -> None: ...
    def console_write(self, data) -> None: ...


def test_output_the_reader_had_not_taken_in_at_the_timeout_is_found():
    engine = LaggingEngine(b"memused\r\n0x2000af18: 0x08001c78\r\nLiteOS # ")
    match = engine.wait_for_text(r"([\s\S]*?)LiteOS # ", 5.0)
    assert "0x2000af18" in match.group(1)
    assert engine.settled == 1
    assert engine.virtual_time() >= 5.0  # the run had timed out: the answer was found after it, not by it


def test_nothing_printed_still_times_out_with_the_tail():
    engine = LaggingEngine(None)
    engine.console.feed(b"LiteOS # \r\n")
    engine.console.search("LiteOS # ")
    with pytest.raises(ConsoleTimeout, match="no answer within 5 s of virtual time"):
        engine.wait_for_text("never", 5.0, what="answer")
