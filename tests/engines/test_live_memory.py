"""Live windows on target RAM (memhil.engines.live_memory): the refusals and their reasons, reads and writes through
/proc/PID/mem (this process's own memory standing in for QEMU's), and the QEMU engine's windows on the firmware's RAM
while it runs."""

from __future__ import annotations

import ctypes
import os
import struct

import pytest

from memhil.engines.base import Capability
from memhil.engines.live_memory import LiveMemoryUnavailable, open_window, parse_gpa2hva
from memhil.errors import EngineError

BASE = 0x20020000


def _answer(region: str, host: int, address: int = BASE) -> str:
    return f"Host virtual address for {address:#x} ({region}) is {host:#x}\r\n"


@pytest.fixture
def buffer():
    """4 KiB of this process's memory, standing for a RAM region of QEMU's; gpa2hva maps BASE onto it."""
    buf = ctypes.create_string_buffer(bytes(range(256)) * 16, 4096)
    host = ctypes.addressof(buf)
    return buf, host, lambda address: _answer("STM32F405.sram", host + address - BASE, address)


def test_gpa2hva_answers_are_parsed_and_anything_else_refused():
    assert parse_gpa2hva(_answer("STM32F405.sram", 0x7F0012340000)) == ("STM32F405.sram", 0x7F0012340000)
    with pytest.raises(LiveMemoryUnavailable, match="No memory is mapped"):
        parse_gpa2hva("No memory is mapped at address 0x10000000\r\n")
    with pytest.raises(LiveMemoryUnavailable, match="answered ''"):
        parse_gpa2hva("")


def test_a_window_reads_and_writes_the_process_memory_and_nothing_outside(buffer):
    buf, host, gpa2hva = buffer
    window = open_window(os.getpid(), gpa2hva, BASE, 4096, machine="x86_64", check=lambda a, n: buf.raw[a - BASE : a - BASE + n])
    assert window.read_memory(BASE + 0x10, 4) == bytes([0x10, 0x11, 0x12, 0x13])
    window.write_memory(BASE + 0x100, struct.pack("<I", 0xDEADBEEF))
    assert buf.raw[0x100:0x104] == struct.pack("<I", 0xDEADBEEF)
    assert window.read_memory_many([(BASE, 2), (BASE + 4094, 2)]) == [b"\x00\x01", b"\xfe\xff"]
    with pytest.raises(EngineError, match="outside the live window"):
        window.read_memory(BASE + 4094, 4)
    with pytest.raises(EngineError, match="outside the live window"):
        window.write_memory(BASE - 4, b"\0\0\0\0")
    assert buf.raw[:4] == bytes([0, 1, 2, 3])  # nothing written for a refused write
    window.close()
    assert window.closed
    with pytest.raises(EngineError, match="closed"):
        window.read_memory(BASE, 4)


def test_windows_are_refused_with_the_reason(buffer):
    buf, host, gpa2hva = buffer
    with pytest.raises(LiveMemoryUnavailable, match="aarch64.*reorder"):
        open_window(os.getpid(), gpa2hva, BASE, 4096, machine="aarch64")
    # the last byte in another region, or not where the first byte's offset says: not one contiguous block
    with pytest.raises(LiveMemoryUnavailable, match="not one RAM region contiguous"):
        open_window(os.getpid(), lambda a: _answer("STM32F405.sram" if a == BASE else "other", host + a - BASE, a),
                    BASE, 4096, machine="x86_64")
    with pytest.raises(LiveMemoryUnavailable, match="not one RAM region contiguous"):
        open_window(os.getpid(), lambda a: _answer("STM32F405.sram", host + (a - BASE) * 2, a), BASE, 4096, machine="x86_64")
    with pytest.raises(LiveMemoryUnavailable, match="No memory is mapped"):
        open_window(os.getpid(), lambda a: "No memory is mapped at address 0x10000000", BASE, 64, machine="x86_64")
    with pytest.raises(LiveMemoryUnavailable, match="cannot open /proc/"):
        open_window(2**22 + 7, gpa2hva, BASE, 64, machine="x86_64")  # above the kernel's highest pid
    # the gdbstub reads other bytes than the window: refused, not trusted
    with pytest.raises(LiveMemoryUnavailable, match="does not hold what the gdbstub reads"):
        open_window(os.getpid(), gpa2hva, BASE, 4096, machine="x86_64", check=lambda a, n: b"\xff" * n)



@pytest.mark.emulator
def test_qemu_window_on_the_firmware_ram_reads_while_it_runs(started_engine):
    engine, info = started_engine("leak_demo")
    assert Capability.LIVE_MEMORY in engine.capabilities
    uptime = info.symbols["g_memhil_uptime_ms"]
    window = engine.live_window(uptime & ~0xFFF, 0x1000)
    assert window is not None
    assert window.read_memory(uptime, 8) == engine.client.read_memory(uptime, 8)  # halted: the same bytes as the gdbstub's
    seen: list[int] = []

    def work() -> int:
        seen.append(struct.unpack("<I", window.read_memory(uptime, 4))[0])
        return 0

    engine.add_background(work, poll=True)
    engine.run_for(0.5)
    engine.remove_background(work)
    # polled while the run waited: the firmware's clock seen moving, never backwards, up to the run's end
    assert len(seen) > 5 and seen == sorted(seen) and len(set(seen)) > 3
    assert seen[-1] <= struct.unpack("<I", engine.read_memory(uptime, 4))[0]
    # a write through the window is what the firmware (and the gdbstub) reads next
    spare = (uptime & ~0xFFF) + 0xFFC
    old = engine.read_memory(spare, 4)
    window.write_memory(spare, b"\x5a\xa5\x5a\xa5")
    assert engine.read_memory(spare, 4) == b"\x5a\xa5\x5a\xa5"
    window.write_memory(spare, old)
    assert engine.live_window(info.symbols["main"] & ~0xFF, 0x100) is None  # flash holds code: no window
    engine.stop()
    assert window.closed  # the engine closes its windows with QEMU


@pytest.mark.emulator
@pytest.mark.parametrize("live", [True, False])
def test_halted_reads_of_ram_go_through_qemus_memory_and_read_what_the_gdbstub_reads(started_engine, platform, live):
    """At a stop, a read inside one RAM region of the platform is a pread of QEMU's memory, not a gdbstub round
    trip (with live memory); the bytes are the gdbstub's, RAM regions whole; flash and a read straddling two
    regions still go through the gdbstub, and so does everything without live memory."""
    engine, info = started_engine("leak_demo", live_memory=live)
    engine.run_for(0.2)  # the heap has blocks, the stacks words
    rams = [r for r in platform.regions if r.kind == "ram" and r not in engine.missing_regions]  # QEMU 7.2: no CCM
    assert rams
    for region in rams:
        engine.read_memory(region.base, 4)  # the first read opens the region's window (its check asks the gdbstub)
    windows = [engine._ram_windows.get(region.name) for region in rams]
    assert all(w is not None for w in windows) if live else not any(windows)

    def window_reads() -> int:
        return sum(w.reads for w in windows if w is not None)

    for region in rams:
        before = window_reads()
        whole = engine.read_memory(region.base, region.size)
        parts = engine.read_memory_many([(region.base + 8, 24), (region.end - 64, 64)])
        assert window_reads() == before + (3 if live else 0)
        assert whole == engine.client.read_memory(region.base, region.size)
        assert any(whole) or not region.base <= info.symbols["g_memhil_uptime_ms"] < region.end  # the firmware's RAM holds data
        assert parts == [engine.client.read_memory(a, n) for a, n in ((region.base + 8, 24), (region.end - 64, 64))]
    code = info.symbols["main"] & ~3
    before = window_reads()
    assert engine.read_memory(code, 16) == engine.client.read_memory(code, 16)
    mixed = engine.read_memory_many([(rams[0].end - 4, 4), (code, 4)])  # one range not in RAM: all through the gdbstub
    assert mixed == [engine.client.read_memory(rams[0].end - 4, 4), engine.client.read_memory(code, 4)]
    assert window_reads() == before
    engine.stop()


@pytest.mark.emulator
def test_qemu_without_live_memory_gives_no_window(qemu_engine, firmware, platform):
    engine = qemu_engine(live_memory=False)
    engine.start(platform, firmware("leak_demo"))
    assert Capability.LIVE_MEMORY not in engine.capabilities
    assert engine.live_window(0x20000000, 0x100) is None
