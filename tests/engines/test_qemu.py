"""The QEMU engine against real qemu-system-arm: the project firmware and the tests' minifw."""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import threading

import pytest

from memhil.engines.base import Capability, EngineState
from memhil.engines.firmware import FirmwareInfo
from memhil.engines.gdb_rsp import TargetError
from memhil.engines.qemu import QemuEngine
from memhil.errors import ConfigError, ConsoleTimeout, ElfError, EngineError, EngineTimeout, PlatformError, ToolMissingError

pytestmark = pytest.mark.emulator


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0): check its state
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] == "Z"


def test_boots_project_firmware_and_runs_exactly(qemu_engine, firmware, platform, tmp_path):
    elf = firmware("module_stats")
    engine = qemu_engine()
    engine.start(platform, elf, workdir=tmp_path)
    assert Capability.EXACT_RUN_FOR in engine.capabilities
    match = engine.wait_for_line(r"memhil module_stats debug stm32f4 ready", timeout=2)
    assert match.group(0).startswith("memhil module_stats")
    before = engine.virtual_time()
    engine.run_for(2.5)
    assert round((engine.virtual_time() - before) * 1000) == 2500
    engine.stop()
    assert "memhil module_stats debug stm32f4 ready" in (tmp_path / "console.log").read_text()
    assert (tmp_path / "qemu.stderr").exists()


def test_run_for_is_exact_repeatedly(qemu_engine, minifw, platform):
    engine = qemu_engine()
    engine.start(platform, minifw)
    start = engine.virtual_time()
    for step_ms in (1, 7, 250, 1000):
        engine.run_for(step_ms / 1000)
    assert round((engine.virtual_time() - start) * 1000) == 1258


@pytest.mark.parametrize("emulate_entry", [True, False], ids=["entry-emulated", "single-step"])
def test_breakpoint_sees_arguments_and_target_stays_stopped(qemu_engine, minifw, platform, emulate_entry):
    info = FirmwareInfo.load(minifw)
    engine = qemu_engine(emulate_entry=emulate_entry)
    engine.start(platform, minifw)
    seen = []

    def on_alloc(ctx):
        uptime = struct.unpack("<Q", ctx.read_memory(info.symbols["g_memhil_uptime_ms"], 8))[0]
        seen.append((ctx.pc, ctx.regs["r0"], ctx.regs["r1"], ctx.regs["r2"], uptime, len(ctx.read_memory(ctx.regs["sp"], 64))))

    bp = engine.add_breakpoint(info.symbols["LOS_MemMalloc"] | 1, on_alloc)  # Thumb bit ignored
    engine.run_for(1.0)
    # one call every 10 ms; the one at 1000 ms comes after the barrier stops the tick at 1000
    assert [s[4] for s in seen] == list(range(10, 1000, 10))
    assert all(s[:4] == (info.symbols["LOS_MemMalloc"], info.symbols["g_pool"], 24, 7) for s in seen)
    assert all(s[5] == 64 for s in seen)
    engine.remove_breakpoint(bp)
    engine.run_for(0.5)
    assert len(seen) == 99
    with pytest.raises(EngineError, match="not set"):
        engine.remove_breakpoint(bp)


def test_memory_and_registers(qemu_engine, minifw, platform):
    info = FirmwareInfo.load(minifw)
    engine = qemu_engine()
    engine.start(platform, minifw)
    pool = info.symbols["g_pool"]
    engine.write_memory(pool, bytes(range(200)))
    assert engine.read_memory(pool, 200) == bytes(range(200))
    assert engine.read_memory(0x08000000, 8)[:4] == struct.pack("<I", 0x20020000)  # initial SP: top of 128 KiB
    regs = engine.read_registers()
    assert regs["pc"] == info.symbols["main"] and 0x20000000 <= regs["sp"] <= 0x20020000
    with pytest.raises(TargetError):
        engine.read_memory(0x20030000, 4)  # past the SRAM of every QEMU (192 KiB on 7.2, 128 KiB from 8.0)


def test_console_write_and_wait_with_virtual_timeout(qemu_engine, minifw, platform):
    engine = qemu_engine()
    engine.start(platform, minifw)
    engine.wait_for_line("ready", timeout=1)
    engine.console_write("hello memhil\r")
    assert engine.wait_for_line("echo: (\\w+ memhil)", timeout=1).group(1) == "hello memhil"
    before = engine.virtual_time()
    with pytest.raises(ConsoleTimeout, match="never printed") as info:
        engine.wait_for_line("never printed", timeout=0.75)
    assert round((engine.virtual_time() - before) * 1000) == 750
    assert "echo: hello memhil" in info.value.console_tail


def _u32(engine, symbol: str, firmware) -> int:
    return struct.unpack("<I", engine.read_memory(FirmwareInfo.load(firmware).symbols[symbol], 4))[0]


def test_without_barrier_run_for_counts_the_firmware_tick(qemu_engine, minifw_no_barrier, platform, caplog):
    engine = qemu_engine()
    engine.start(platform, minifw_no_barrier)
    assert Capability.EXACT_RUN_FOR in engine.capabilities and "g_memhil_uptime_ms" in engine.time_source
    before = _u32(engine, "g_memhil_uptime_ms", minifw_no_barrier)
    calls = _u32(engine, "g_alloc_calls", minifw_no_barrier)
    engine.run_for(0.02)  # the first run checks that the counter moves inside SysTick's handler
    assert "runs end at the deadline's tick on a SysTick stop" in engine.time_source
    assert _u32(engine, "g_memhil_uptime_ms", minifw_no_barrier) - before == 20
    before = _u32(engine, "g_memhil_uptime_ms", minifw_no_barrier)
    engine.run_for(10)
    ran = _u32(engine, "g_memhil_uptime_ms", minifw_no_barrier) - before  # the firmware's own uptime
    assert ran == 10_000  # the patched SysTick stop ends it at that tick, however late the host is
    # its thread code ran all along (it allocates every 10 ms after waking): a debug stop at every tick would have
    # cost it every tick (QEMU warps its clock to the next tick at a debug stop, see engines/clock.py)
    assert ran // 10 - 5 <= _u32(engine, "g_alloc_calls", minifw_no_barrier) - calls <= ran // 10 + 1
    now = _u32(engine, "g_memhil_uptime_ms", minifw_no_barrier)
    engine.run_for(0.0004)  # less than half a tick: nothing to run
    assert _u32(engine, "g_memhil_uptime_ms", minifw_no_barrier) == now
    # a short run (and a console wait's timeout) ends exactly: its last ticks are stopped at one by one
    with pytest.raises(ConsoleTimeout):
        engine.wait_for_line("never printed", timeout=0.025)
    assert _u32(engine, "g_memhil_uptime_ms", minifw_no_barrier) - now == 25


def test_freertos_tick_counter_and_its_rate(qemu_engine, minifw_freertos_tick, platform):
    engine = qemu_engine()
    engine.start(platform, minifw_freertos_tick)
    assert "xTickCount at 1000 Hz" in engine.time_source
    before = _u32(engine, "xTickCount", minifw_freertos_tick)
    engine.run_for(0.03)  # short runs end exactly (see the test above for long ones)
    assert _u32(engine, "xTickCount", minifw_freertos_tick) - before == 30
    assert engine.virtual_time() == _u32(engine, "xTickCount", minifw_freertos_tick) / 1000
    # the rate is a build option the ELF does not hold: the user names it (here wrongly, 100 Hz: 10x shorter runs)
    slow = qemu_engine(tick_hz=100)
    slow.start(platform, minifw_freertos_tick)
    before = _u32(slow, "xTickCount", minifw_freertos_tick)
    slow.run_for(0.25)
    assert _u32(slow, "xTickCount", minifw_freertos_tick) - before == 25


def test_tick_stop_wraps_a_32_bit_counter_and_outlives_a_reset(qemu_engine, minifw_freertos_tick, platform):
    engine = qemu_engine()
    engine.start(platform, minifw_freertos_tick)
    engine.run_for(0.005)
    address = FirmwareInfo.load(minifw_freertos_tick).symbols["xTickCount"]
    for run in (0.03, 2.0):  # the deadline is past 2**32: the stub compares modulo the counter's width
        engine.write_memory(address, struct.pack("<I", 0xFFFF_FFF0))
        engine.run_for(run)
        assert _u32(engine, "xTickCount", minifw_freertos_tick) == (0xFFFF_FFF0 + round(run * 1000)) & 0xFFFF_FFFF
    assert "runs end at the deadline's tick" in engine.time_source
    taken = list(engine.scratch_taken)
    assert len(taken) == 1 and taken[0].size == 96  # the stub's RAM, kept from other users of scratch memory
    engine.reset()  # QEMU keeps the patched vector; the engine checks it (and the stub) at every run
    before = _u32(engine, "xTickCount", minifw_freertos_tick)
    engine.run_for(1.5)
    assert _u32(engine, "xTickCount", minifw_freertos_tick) - before == 1500
    assert engine.scratch_taken == taken


def test_tick_stop_can_be_turned_off(qemu_engine, minifw_freertos_tick, platform):
    """For a firmware that checks its own vector table: no patch, the polled run ends the runs."""
    engine = qemu_engine(tick_stop=False)
    engine.start(platform, minifw_freertos_tick)
    vectors = engine.read_memory(0, 64)
    before = _u32(engine, "xTickCount", minifw_freertos_tick)
    engine.run_for(0.02)
    assert _u32(engine, "xTickCount", minifw_freertos_tick) - before == 20
    assert engine.read_memory(0, 64) == vectors and engine.scratch_taken == []
    assert "polled from the host" in engine.time_source and "tick_stop=False" in engine.time_source


def test_a_counter_moved_outside_systick_is_polled_instead(qemu_engine, minifw_thread_tick, platform):
    """The counter is advanced by thread code: the stub would stop late or never, so the first run's check gives it
    up and the polled run (its last ticks stopped at one by one) ends the runs."""
    engine = qemu_engine()
    engine.start(platform, minifw_thread_tick)
    before = _u32(engine, "xTickCount", minifw_thread_tick)
    engine.run_for(0.02)
    assert _u32(engine, "xTickCount", minifw_thread_tick) - before == 20
    assert "polled from the host" in engine.time_source and "written outside the SysTick handler" in engine.time_source
    before = _u32(engine, "xTickCount", minifw_thread_tick)
    engine.run_for(0.025)
    assert _u32(engine, "xTickCount", minifw_thread_tick) - before == 25


def test_a_tick_counter_named_by_the_user(qemu_engine, minifw_unknown_tick, platform, caplog):
    engine = qemu_engine(tick_symbol="s_board_ticks")
    engine.start(platform, minifw_unknown_tick)
    before = _u32(engine, "s_board_ticks", minifw_unknown_tick)
    engine.run_for(0.015)
    assert _u32(engine, "s_board_ticks", minifw_unknown_tick) - before == 15
    with pytest.raises(ConfigError, match="no symbol 'xTicks'"):
        qemu_engine(tick_symbol="xTicks").start(platform, minifw_unknown_tick)


def test_no_tick_counter_counts_wall_time_and_says_so(qemu_engine, minifw_unknown_tick, platform, caplog):
    engine = qemu_engine()
    with caplog.at_level("WARNING", logger="memhil.engines.clock"):
        engine.start(platform, minifw_unknown_tick)
    assert "wall-clock" in engine.time_source and "run_for counts wall-clock seconds" in caplog.text
    assert Capability.EXACT_RUN_FOR not in engine.capabilities
    engine.run_for(0.2)
    assert engine.virtual_time() >= 0.2


def test_without_acceleration_no_icount(qemu_engine, minifw, platform):
    engine = qemu_engine()
    engine.start(platform, minifw, accelerate=False)
    assert "-icount" not in engine.process.argv
    assert Capability.ACCELERATION not in engine.capabilities
    engine.run_for(0.1)
    assert round(engine.virtual_time() * 1000) == 100
    with pytest.raises(EngineError, match="fixes acceleration"):
        engine.set_acceleration(True)


def test_reset_restarts_time(qemu_engine, minifw, platform):
    engine = qemu_engine()
    engine.start(platform, minifw)
    engine.run_for(0.3)
    engine.reset()
    assert engine.virtual_time() == 0.0
    engine.wait_for_line("ready", timeout=1)


def test_killed_emulator_gives_diagnosed_error_and_no_process(qemu_engine, minifw, platform):
    info = FirmwareInfo.load(minifw)
    engine = qemu_engine()
    engine.start(platform, minifw)
    engine.wait_for_line("ready", timeout=1)
    pid = engine.process.pid
    engine.add_breakpoint(info.symbols["LOS_MemMalloc"], lambda ctx: os.kill(pid, signal.SIGKILL))
    with pytest.raises(EngineError) as err:
        engine.run_for(1.0)
    assert err.value.exit_status == -signal.SIGKILL
    assert "ready" in err.value.console_tail
    assert hasattr(err.value, "tail")
    assert engine.state is EngineState.FAILED
    assert _gone(pid)
    engine.stop()  # idempotent after a failure


def test_killed_while_running_freely(qemu_engine, minifw, platform):
    engine = qemu_engine()
    engine.start(platform, minifw)
    pid = engine.process.pid
    timer = threading.Timer(0.3, os.kill, (pid, signal.SIGKILL))
    timer.start()
    try:
        with pytest.raises(EngineError, match="exited unexpectedly|exited") as err:
            engine.run_for(1e6)  # ~hours of wall time: only the kill ends it
    finally:
        timer.cancel()
    assert err.value.exit_status == -signal.SIGKILL
    assert _gone(pid)


def test_hung_emulator_times_out_and_is_stopped(qemu_engine, minifw, platform):
    engine = qemu_engine()  # starting QEMU on a loaded host may take seconds: only the hang is timed short
    engine.start(platform, minifw)
    engine.timeout = engine.run_timeout = engine.client.timeout = 1.0
    pid = engine.process.pid
    os.kill(pid, signal.SIGSTOP)
    with pytest.raises(EngineTimeout) as err:
        engine.run_for(10)
    assert "console_tail" in err.value.fields
    assert engine.state is EngineState.FAILED
    assert _gone(pid)


def test_missing_binary(qemu_engine, minifw, platform, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MEMHIL_QEMU", raising=False)
    with pytest.raises(ToolMissingError) as err:
        qemu_engine().start(platform, minifw)
    assert err.value.program == "qemu-system-arm" and err.value.package == "qemu-system-arm"


def test_not_an_elf(qemu_engine, platform, tmp_path):
    path = tmp_path / "fw.bin"
    path.write_bytes(b"\x00\x00\x03\x20" * 64)
    engine = qemu_engine()
    with pytest.raises(ElfError, match="not an ELF"):
        engine.start(platform, path)
    assert engine.process is None


def test_host_elf_refused(qemu_engine, platform, tmp_path):
    (tmp_path / "x.c").write_text("int main(void){return 0;}\n")
    subprocess.run(["gcc", "-o", str(tmp_path / "x"), str(tmp_path / "x.c")], check=True)
    engine = qemu_engine()
    with pytest.raises(ElfError, match="not (32-bit )?ARM"):
        engine.start(platform, tmp_path / "x")
    assert engine.process is None


def test_elf_outside_memory_map(qemu_engine, minifw_outside_map, platform):
    engine = qemu_engine()
    with pytest.raises(PlatformError, match="outside the memory"):
        engine.start(platform, minifw_outside_map)
    assert engine.process is None


def _qemu_major() -> int:
    out = subprocess.run([os.environ.get("MEMHIL_QEMU") or "qemu-system-arm", "--version"], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"version (\d+)\.", out).group(1))


def test_version_is_read_from_the_running_qemu(qemu_engine, minifw, platform):
    engine = qemu_engine()
    assert engine.version is None
    engine.start(platform, minifw)
    assert re.match(r"\d+\.\d+\.\d+", engine.version) and int(engine.version.split(".")[0]) == _qemu_major()


def test_firmware_in_ccm_runs_where_the_emulator_has_ccm(qemu_engine, minifw_ccm, platform):
    """The board's map has the CCM; whether this QEMU has it is probed at start, not assumed from a version:
    7.2 maps no CCM and refuses the ELF before it runs, 8.0 and later boot it."""
    engine = qemu_engine()
    try:
        engine.start(platform, minifw_ccm)
    except PlatformError as err:
        assert "lies in ccm (0x10000000-0x10010000), which this qemu does not map" in str(err)
        assert [r.name for r in engine.missing_regions] == ["ccm"] and engine.process is not None and not engine.process.alive()
        assert _qemu_major() < 8
    else:
        assert engine.missing_regions == () and _qemu_major() >= 8
        engine.wait_for_line("ready", timeout=1)
        assert 0x10000000 <= engine.read_registers()["sp"] <= 0x10010000


def test_missing_elf(qemu_engine, platform, tmp_path):
    with pytest.raises(ElfError, match="does not exist"):
        qemu_engine().start(platform, tmp_path / "none.elf")


def test_four_engines_at_once(qemu_engine, minifw, platform):
    engines = [qemu_engine() for _ in range(4)]
    for engine in engines:
        engine.start(platform, minifw)
    for n, engine in enumerate(engines):
        engine.run_for(0.1 * (n + 1))
    assert [round(e.virtual_time() * 1000) for e in engines] == [100, 200, 300, 400]
    for engine in engines:
        engine.wait_for_line("ready", timeout=0.1)
    pids = [e.process.pid for e in engines]
    assert len(set(pids)) == 4
    for engine in engines:
        engine.stop()
    assert all(_gone(pid) for pid in pids)


def test_engine_from_entry_point():
    from memhil.engines import get_engine_class

    assert get_engine_class("qemu") is QemuEngine


def test_calls_before_start_refused(platform):
    engine = QemuEngine()
    with pytest.raises(EngineError, match="not running"):
        engine.run_for(1)
    engine.stop()  # stopping a never-started engine is fine


def test_early_line_never_costs_the_whole_timeout(qemu_engine, firmware, platform):
    """A line already printed (or printed while the target is halted) ends the wait at once, in virtual time:
    the wait must not run on to its timeout barrier because the reader's interrupt found the target halted."""
    elf = firmware("module_stats", "release")
    seen = set()
    for _ in range(6):
        engine = qemu_engine()
        engine.start(platform, elf)
        engine.wait_for_line("memhil module_stats release stm32f4 ready", timeout=30)
        engine.wait_for_line("module 7 mem used size", timeout=30)
        seen.add((engine.virtual_time(), engine.read_registers()["pc"]))
        engine.stop()
    # every wait ends at the store of the line's last byte: the same instant, the same instruction, every time
    (t, pc), = seen
    assert t < 1.0


def test_firmware_without_barrier_reset_keeps_the_breakpoint(qemu_engine, minifw, platform):
    """minifw calls memhil_time_barrier without resetting g_memhil_barrier_ms: the first run sees the
    breakpoint, not the watchpoint, and the engine keeps the breakpoint, exact either way."""
    engine = qemu_engine()
    engine.start(platform, minifw)
    start = engine.virtual_time()
    engine.run_for(0.01)
    assert engine._watch_ok is False
    engine.run_for(0.02)
    assert round((engine.virtual_time() - start) * 1000) == 30


def test_fault_probe_looks_without_interrupting(qemu_engine, minifw, platform):
    """The fault probe reads IPSR over QMP while the core runs: a gdbstub interrupt that overtakes a watchpoint hit
    (the barrier's, here) makes QEMU lose the hit and abort at the next access to the watched page."""
    engine = qemu_engine(fault_probe_s=0.02)
    engine.start(platform, minifw)
    interrupts, looks = [], []
    interrupt, qmp_cmd = engine.client.interrupt, engine.launch.qmp_cmd
    engine.client.interrupt = lambda: (interrupts.append(1), interrupt())[1]
    engine.launch.qmp_cmd = lambda command, **args: (looks.append(command), qmp_cmd(command, **args))[1]
    before = _u32(engine, "g_memhil_uptime_ms", minifw)
    engine.run_for(60)
    assert _u32(engine, "g_memhil_uptime_ms", minifw) - before == 60_000
    assert "human-monitor-command" in looks and interrupts == []


def test_a_console_wait_ends_a_tick_stop_run_and_the_next_run_is_exact(qemu_engine, minifw_no_barrier, platform):
    """A run the console ends leaves the stub armed for its old deadline; the next run arms it afresh."""
    engine = qemu_engine()
    engine.start(platform, minifw_no_barrier)
    engine.run_for(0.01)
    assert "runs end at the deadline's tick" in engine.time_source
    engine.wait_for_line("tick", timeout=5)  # printed every 1000 ms: ends the run well before its deadline
    before = _u32(engine, "g_memhil_uptime_ms", minifw_no_barrier)
    engine.run_for(6)  # past the old deadline too
    assert _u32(engine, "g_memhil_uptime_ms", minifw_no_barrier) - before == 6000
