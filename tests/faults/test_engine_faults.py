"""Firmware and emulator faults seen through a Session: the documented error, nothing captured is
lost, no process left (the autouse fixture checks /proc for QEMU children after every test).

Covered elsewhere, not repeated here: killing QEMU at a breakpoint or while free-running, a stopped
(SIGSTOP) QEMU, four engines at once -- tests/engines/test_qemu.py; RSP framing fuzz --
tests/engines/test_rsp_packet.py; truncated / bit-flipped logs and the writer on a full disk --
tests/timeline/test_faults.py; log reader fuzz -- tests/timeline/test_fuzz.py."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import time
from pathlib import Path

import pytest

from memhil.engines.base import EngineState
from memhil.errors import EngineError, EngineTimeout, TargetFault
from memhil.session import Session, SessionOptions
from .procs import is_zombie_or_gone, qemu_children


FAULTFW_SOURCE = Path(__file__).resolve().parent / "fw" / "faultfw.c"


def _session(tmp_path, capture: str = "trace", **engine_options) -> Session:
    return Session(SessionOptions(capture=capture, engine_options=engine_options), run_dir=tmp_path / "run")


def test_killed_mid_run_keeps_captured_events(firmware, tmp_path):
    elf = firmware("leak_demo")
    session = _session(tmp_path)
    try:
        session.start(elf)
        session.run_for(2.0)
        captured = session.capture.events
        live_before = dict(session.ledger.live)
        assert captured > 0 and live_before
        pid = session.engine.process.pid
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(EngineError) as err:
            session.run_for(2.0)
        exc = err.value
        assert exc.exit_status == -signal.SIGKILL
        assert "memhil" in exc.console_tail.lower() or "leak_demo" in exc.console_tail
        assert "tail" in exc.fields
        assert session.engine.state is EngineState.FAILED
        # nothing captured before the kill is lost: every event is in the ledger
        assert session.ledger.events == session.capture.events >= captured
    finally:
        session.stop()  # a dead engine must not make stop raise
    assert is_zombie_or_gone(pid)
    # QEMU was dead before the second run: the ledger is exactly what was captured before the kill
    assert session.ledger.events == captured
    assert dict(session.ledger.live) == live_before


def test_hung_firmware_times_out_with_where_it_is_stuck(hang_elf, tmp_path):
    session = _session(tmp_path, capture="none")
    try:
        session.start(hang_elf)  # starting may take seconds on a loaded host: only the run is timed short
        engine = session.engine
        engine.run_timeout = 1.5
        pid = engine.process.pid
        with pytest.raises(EngineTimeout) as err:
            session.run_for(1.0)
        exc = err.value
        spin = next(n for n, text in enumerate(FAULTFW_SOURCE.read_text().splitlines(), 1) if "FAULT_HANG" in text and "#if" in text) + 2
        assert "stuck in main (tests/faults/fw/faultfw.c:" in str(exc)
        assert f"faultfw.c:{spin})" in str(exc) or f"faultfw.c:{spin + 1})" in str(exc)  # the empty loop's lines
        assert "faultfw ready" in exc.console_tail
        assert "tail" in exc.fields and "exit_status" in exc.fields
        assert engine.state is EngineState.FAILED
    finally:
        session.stop()
    assert is_zombie_or_gone(pid)


def test_hardfault_is_reported_at_once_with_the_faulting_code(fault_elf, tmp_path):
    """A store to unmapped memory: a precise BusFault escalated to HardFault (the handler is not enabled).
    The run's fault probe (every 0.5 s of wall time) finds the core in the handler, long before the 1.5 s wall
    timeout, and explains the fault."""
    session = _session(tmp_path, capture="none")
    try:
        session.start(fault_elf)
        session.engine.run_timeout = 1.5
        pid = session.engine.process.pid
        started = time.monotonic()
        with pytest.raises(TargetFault) as err:
            session.run_for(10.0)
        assert time.monotonic() - started < 1.4
        fault = err.value
        assert fault.kind == "HardFault" and "PRECISERR|BFARVALID" in fault.cfsr and "FORCED" in fault.hfsr
        assert fault.bfar == "0x30000000"  # the address the firmware stored to
        store_line = next(n for n, text in enumerate(FAULTFW_SOURCE.read_text().splitlines(), 1) if "FAULT_ADDRESS = " in text)
        # innermost: the handler (where its loop was); then the faulting store in main, popped from the exception frame
        assert fault.stack[0].split()[1] == "HardFault_Handler"
        assert fault.stack[1].split()[1] == "main" and f"faultfw.c:{store_line})" in fault.stack[1] and "exception frame" in fault.stack[1]
        assert int(fault.pc, 16) == int(fault.stack[1].split()[0], 16)
        assert "HardFault" in str(fault) and "main" in str(fault)
        # the target stays halted in the handler: every later run fails the same way, and it is still readable
        with pytest.raises(TargetFault):
            session.run_for(0.1)
        assert "store did not fault" not in session.engine.console.text()
        assert session.engine.state is EngineState.RUNNING
        summary = json.loads(session.write_summary().read_text())
        assert summary["fault"]["kind"] == "HardFault" and summary["fault"]["bfar"] == "0x30000000"
    finally:
        session.stop()
    assert is_zombie_or_gone(pid)


def test_corrupted_node_header_is_found_and_the_rest_still_read(firmware, tmp_path):
    session = _session(tmp_path, capture="trace")
    try:
        session.start(firmware("module_stats"))
        session.run_for(0.5)
        good = session.walk_heap()
        assert good.ok, good.errors
        used = [n for n in good.nodes if n.used]
        victim = used[len(used) // 2]
        index = good.nodes.index(victim)
        session.engine.write_memory(victim.address, b"\xa5" * 8)  # garbage over the node's first header word(s)
        broken = session.walk_heap()
        assert not broken.ok
        first = broken.errors[0]
        assert f"{victim.address:#x}" in str(first).lower() or getattr(first, "address", None) == victim.address
        # the nodes before the broken one are still read, with the same contents
        assert [n.address for n in broken.nodes[:index]] == [n.address for n in good.nodes[:index]]
        # analysis goes on: the ledger from the trace is untouched by the target's damage
        assert session.module_used("NET", source="ledger") >= 0
        check = session.check_heap()
        assert check["checked"] and check["ok"] is False and check["errors"]
    finally:
        session.stop()


def test_log_disk_full_stops_logging_and_emulation_goes_on(firmware, tmp_path, monkeypatch):
    from memhil.timeline import writer as writer_mod

    class FullDisk(io.RawIOBase):
        """A log file on a disk that fills up after ``room`` bytes (errno ENOSPC, as write(2) reports)."""

        def __init__(self, path, room: int = 4096) -> None:
            self._f = open(path, "xb", buffering=0)
            self.room = room

        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            if len(data) > self.room:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.room -= len(data)
            return self._f.write(data)

        def close(self) -> None:
            self._f.close()
            super().close()

    monkeypatch.setattr(writer_mod.TimelineWriter, "_open", lambda self, path: FullDisk(path))
    session = _session(tmp_path)
    try:
        session.start(firmware("leak_demo"))
        session.start_timeline(tmp_path / "log")
        writer = session.timeline
        session.run_for(30.0)
        writer.flush()
        assert writer.error is not None and "disk is full" in str(writer.error)
        assert writer.dropped > 0
        t = session.virtual_time()
        assert t >= 3.0
        # every event still reached the ledger
        # logging stopped, capture did not: every event still reached the ledger
        assert session.ledger.events == session.capture.events >= writer.events + writer.dropped
        session.run_for(1.0)
        assert session.virtual_time() >= t + 1.0
    finally:
        session.stop()


def test_each_engine_has_its_own_unix_sockets_and_no_tcp(minifw_like, tmp_path):
    """QEMU's gdbstub, QMP and console are unix sockets in a private directory per engine: no port
    can be busy, and an existing socket file elsewhere never collides."""
    from memhil.engines.qemu import QemuEngine

    engines = [QemuEngine(), QemuEngine()]
    try:
        for e in engines:
            e.start("stm32f4", minifw_like)
        dirs = [e._sockdir for e in engines]
        assert dirs[0] != dirs[1]
        for e in engines:
            argv = " ".join(e.process.argv)
            assert "tcp:" not in argv and "gdb.sock" in argv
            assert oct(os.stat(e._sockdir).st_mode & 0o777) == "0o700"
            assert e.virtual_time() >= 0
            e.run_for(0.1)
        # no listening TCP socket belongs to the QEMU processes
        inodes = set()
        for e in engines:
            for fd in os.listdir(f"/proc/{e.process.pid}/fd"):
                target = os.readlink(f"/proc/{e.process.pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        tcp = open("/proc/net/tcp").read() + open("/proc/net/tcp6").read()
        listening = {line.split()[9] for line in tcp.splitlines()[1:] if line.split()[3] == "0A"}
        assert not (inodes & listening)
    finally:
        for e in engines:
            e.stop()
    assert qemu_children() == []


@pytest.fixture(scope="module")
def minifw_like(tmp_path_factory):
    from .conftest import build_faultfw

    return build_faultfw(tmp_path_factory.mktemp("plain") / "plain.elf")
