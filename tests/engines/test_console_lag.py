"""A console reader that lags behind the run: what the target printed before the virtual timeout still counts."""

from __future__ import annotations

import threading

import pytest

from memhil.engines.base import Engine, EngineState
from memhil.errors import ConsoleTimeout


class LaggingEngine(Engine):
    """Prints ``answer`` during its first run, but its console bytes reach the log ``lag_s`` later (a reader
    thread that has not been scheduled yet); virtual time runs out at once, as for an idle firmware."""

    name = "lagging"

    def __init__(self, answer: bytes | None, lag_s: float) -> None:
        super().__init__()
        self.state = EngineState.RUNNING
        self.answer, self.lag_s, self.time_s = answer, lag_s, 0.0
        self.timers: list[threading.Timer] = []

    def run_for(self, seconds: float) -> None:
        if self.answer is not None:
            timer = threading.Timer(self.lag_s, self.console.feed, (self.answer,))
            self.timers.append(timer)
            timer.start()
            self.answer = None
        self.time_s += seconds

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
    engine = LaggingEngine(b"memused\r\n0x2000af18: 0x08001c78\r\nLiteOS # ", lag_s=0.02)
    match = engine.wait_for_text(r"([\s\S]*?)LiteOS # ", 5.0)
    assert "0x2000af18" in match.group(1)
    assert engine.virtual_time() >= 5.0  # the run had timed out: the answer was found after it, not by it


def test_nothing_printed_still_times_out_with_the_tail():
    engine = LaggingEngine(None, lag_s=0.0)
    engine.console.feed(b"LiteOS # \r\n")
    engine.console.search("LiteOS # ")
    with pytest.raises(ConsoleTimeout, match="no answer within 5 s of virtual time"):
        engine.wait_for_text("never", 5.0, what="answer")
