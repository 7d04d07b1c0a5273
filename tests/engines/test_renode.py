"""The Renode engine against a fake monitor that replies as Renode documents (no real Renode
can be installed here): command strings, reply parsing, error surfacing, hooks, console."""

from __future__ import annotations

import importlib.machinery
import os
import stat
import sys
from pathlib import Path

import pytest

from memhil.engines.base import EngineState
from memhil.engines.firmware import FirmwareInfo
from memhil.engines.renode import RenodeEngine, hook_script
from memhil.engines.renode_monitor import (
    MonitorClient, RenodeCommandError, is_error, parse_bytes, parse_int, parse_time, path_arg, strip_telnet, time_arg,
)
from memhil.errors import ConsoleTimeout, EngineError, PlatformError, ProtocolError, ToolMissingError

from .fake_renode import FakeRenode

HERE = Path(__file__).resolve().parent


@pytest.fixture
def fake(minifw):
    info = FirmwareInfo.load(minifw)
    server = FakeRenode(uptime_address=info.symbols["g_memhil_uptime_ms"])
    yield server
    server.close()


@pytest.fixture
def engine(fake, minifw, platform, tmp_path):
    eng = RenodeEngine(monitor_port=fake.port, timeout=5)
    eng.start(platform, minifw, workdir=tmp_path)
    yield eng
    eng.stop()


def test_start_sends_documented_commands(engine, fake, minifw, platform, tmp_path):
    assert fake.commands[:6] == [
        'mach create "memhil"',
        f"machine LoadPlatformDescription @{platform.repl.resolve()}",
        f"sysbus LoadELF @{minifw.resolve()}",
        "machine SetAdvanceImmediately true",
        f'emulation CreateUartPtyTerminal "memhil_console" "{tmp_path / "console.pty"}" true',
        "connector Connect sysbus.usart1 memhil_console",
    ]
    assert engine.monitor.prompt == "(memhil)"
    assert not any("StartGdbServer" in c for c in fake.commands)


def test_console_banner_write_and_wait(engine):
    assert "ready" in engine.wait_for_line("memhil fake debug stm32f4 ready", timeout=1).group(0)
    engine.console_write("memstat\r")
    assert engine.wait_for_line("echo: memstat", timeout=1)
    with pytest.raises(ConsoleTimeout):
        engine.wait_for_line("never", timeout=0.05)


def test_run_for_and_virtual_time(engine, fake):
    engine.run_for(2.5)
    assert 'emulation RunFor "00:00:02.500000"' in fake.commands
    assert engine.virtual_time() == 2.5
    engine.run_for(3723.000001)
    assert fake.commands[-2:][0].startswith('emulation RunFor "01:02:03.000001"') or 'emulation RunFor "01:02:03.000001"' in fake.commands


def test_memory_read_write(engine, fake):
    engine.write_memory(0x20000101, b"\x01\x02\x03\x04\x05\x06\x07")
    assert engine.read_memory(0x20000101, 7) == b"\x01\x02\x03\x04\x05\x06\x07"
    assert "sysbus WriteByte 0x20000101 0x1" in fake.commands
    assert "sysbus WriteDoubleWord 0x20000104 0x7060504" in fake.commands
    assert engine.read_memory(0x20000000, 5000) == bytes(fake.sram[:5000])  # split in 4096-byte reads
    with pytest.raises(RenodeCommandError, match="unmapped"):
        engine.read_memory(0x10000000, 4)


def test_registers(engine, fake):
    regs = engine.read_registers()
    assert regs["r0"] == 0x100 and regs["sp"] == 0x10D and regs["pc"] == 0x08000094


def test_hooks_report_and_callbacks_see_registers_and_memory(engine, fake, minifw):
    info = FirmwareInfo.load(minifw)
    addr = info.symbols["LOS_MemMalloc"]
    seen = []
    bp = engine.add_breakpoint(addr | 1, lambda ctx: seen.append((ctx.pc, ctx.regs["r0"], ctx.regs["r1"], ctx.regs["r2"], ctx.read_memory(ctx.regs["r0"], 4))))
    assert fake.commands[-1].startswith(f'cpu AddHook {addr:#x} "')
    fake.sram[0x14:0x18] = b"\xaa\xbb\xcc\xdd"
    fake.scheduled = [(300_000, addr, [0x20000014, 24, 7, 0, 0x2002FF00, 0x08000101]), (600_000, addr, [0x20000014, 32, 9, 0, 0x2002FF00, 0x08000101])]
    engine.run_for(1.0)
    assert seen == [(addr, 0x20000014, 24, 7, b"\xaa\xbb\xcc\xdd"), (addr, 0x20000014, 32, 9, b"\xaa\xbb\xcc\xdd")]
    assert engine.virtual_time() == 1.0  # the remaining time was run after each pause
    assert [c for c in fake.commands if c.startswith("emulation RunFor")] == [
        'emulation RunFor "00:00:01.000000"', 'emulation RunFor "00:00:00.700000"', 'emulation RunFor "00:00:00.400000"']
    engine.remove_breakpoint(bp)
    assert fake.commands[-1] == f"cpu RemoveHooksAt {addr:#x}" and addr not in fake.hooks
    with pytest.raises(EngineError, match="not set"):
        engine.remove_breakpoint(bp)


def test_hook_script_is_safe_ironpython():
    body = hook_script(3, Path("/tmp/x/hooks.log"))
    assert '"' not in body and "\n" not in body
    assert body.startswith("f=open('/tmp/x/hooks.log','a')") and "machine.PauseAndRequestEmulationPause()" in body
    assert "self.GetRegisterUlong(13)" in body


def test_malformed_hook_record_raises(engine, tmp_path):
    (tmp_path / "hooks.log").write_text("memhil-hook garbage\n")
    with pytest.raises(ProtocolError, match="malformed hook record"):
        engine.run_for(0.1)


def test_unknown_command_error_surfaces(engine):
    with pytest.raises(RenodeCommandError, match="No such command or device"):
        engine.execute("bogus thing")


def test_gdb_server_is_never_started(engine, fake):
    with pytest.raises(EngineError, match="GDB server"):
        engine.execute("machine StartGdbServer 3333")
    assert not any("StartGdbServer" in c for c in fake.commands)


def test_missing_repl_error_surfaces(fake, minifw, platform, tmp_path, monkeypatch):
    import dataclasses

    broken = dataclasses.replace(platform, repl=tmp_path / "gone.repl")
    (tmp_path / "gone.repl").write_text("")
    eng = RenodeEngine(monitor_port=fake.port, timeout=5)
    original = fake.handle
    fake.handle = lambda cmd: original(cmd.replace(str((tmp_path / "gone.repl").resolve()), "/nonexistent/x.repl"))  # type: ignore[method-assign]
    with pytest.raises(RenodeCommandError, match="Could not find file"):
        eng.start(broken, minifw, workdir=tmp_path)
    assert eng.state is EngineState.FAILED


def test_reset_reloads_and_rebases_time(engine, fake, minifw):
    engine.run_for(1)
    engine.reset()
    assert fake.commands[-3:-1] == ["machine Reset", f"sysbus LoadELF @{minifw.resolve()}"]


def test_dropped_monitor_is_engine_error(engine, fake):
    fake.drop = True
    with pytest.raises(EngineError, match="stopped answering"):
        engine.run_for(1)
    assert engine.state is EngineState.FAILED


def test_missing_binary(minifw, platform, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError) as err:
        RenodeEngine().start(platform, minifw)
    assert err.value.program == "renode" and "renode.io" in err.value.package


def test_elf_outside_map_refused_before_connecting(minifw_outside_map, platform):
    eng = RenodeEngine(monitor_port=1)  # nothing listens on port 1: must not get that far
    with pytest.raises(PlatformError):
        eng.start(platform, minifw_outside_map)


def test_starts_renode_program_on_loopback_port(minifw, platform, tmp_path, monkeypatch):
    program = tmp_path / "renode"
    program.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(HERE)!r})\nimport fake_renode\nsys.exit(fake_renode.main(sys.argv[1:]))\n")
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("FAKE_RENODE_ARGV", str(tmp_path / "argv"))
    eng = RenodeEngine(renode_binary=str(program), timeout=10)
    try:
        eng.start(platform, minifw, workdir=tmp_path / "run")
        eng.run_for(0.5)
        assert eng._machine_time() == 0.5
        pid = eng.process.pid
    finally:
        eng.stop()
    argv = (tmp_path / "argv").read_text().split()
    assert argv[:3] == ["--disable-gui", "--plain", "--port"] and 1024 <= int(argv[3]) < 65536
    assert eng.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# -- pure helpers -------------------------------------------------------------------------------
def test_time_strings():
    assert time_arg(2.5) == '"00:00:02.500000"'
    assert time_arg(6 * 3600 + 0.000001) == '"06:00:00.000001"'
    assert parse_time("Elapsed Virtual Time: 01:02:03.250000000\nElapsed Host Time: 0") == pytest.approx(3723.25)
    with pytest.raises(EngineError):
        time_arg(-1)
    with pytest.raises(ProtocolError):
        parse_time("nothing here")


def test_reply_parsers():
    assert parse_int("\x1b[32m0x20000014\x1b[0m") == 0x20000014
    assert parse_bytes("[\r\n0x01, 0x02,\r\n0xFF\r\n]", 3) == b"\x01\x02\xff"
    with pytest.raises(ProtocolError):
        parse_bytes("[0x01]", 2)
    with pytest.raises(ProtocolError):
        parse_int("(machine-0)")
    assert strip_telnet(b"\xff\xfb\x01ab\xff\xfa\x18\x01\xff\xf0c\xff\xffd") == b"abc\xffd"
    assert is_error("\x1b[31;1mboom\x1b[0m") and is_error("No such command or device: x") and not is_error("0x10")


@pytest.mark.parametrize("bad", ['/tmp/a"b', "/tmp/a b", "/tmp/a;b", "/tmp/a\nb"])
def test_paths_with_unsafe_characters_refused(bad):
    with pytest.raises(EngineError):
        path_arg(bad, must_exist=False)


def test_monitor_refuses_non_loopback_and_multiline(fake):
    with pytest.raises(EngineError, match="loopback"):
        MonitorClient.connect("0.0.0.0", fake.port)
    client = MonitorClient.connect("127.0.0.1", fake.port, timeout=2)
    try:
        assert client.prompt == "(monitor)"
        with pytest.raises(EngineError, match="one line"):
            client.execute("mach create\nquit")
    finally:
        client.close()


def test_entry_point():
    from memhil.engines import get_engine_class

    assert get_engine_class("renode") is RenodeEngine


def test_sub_microsecond_run_is_a_no_op(engine, fake):
    before = len(fake.commands)
    engine.run_for(1e-9)
    assert not any(c.startswith("emulation RunFor") for c in fake.commands[before:])


def test_pyrenode3_backend_when_importable(minifw, platform, tmp_path, monkeypatch):
    """pyrenode3 is git-only and needs Renode: a stand-in module answers like FakeRenode."""
    import types

    fake = FakeRenode(uptime_address=FirmwareInfo.load(minifw).symbols["g_memhil_uptime_ms"])

    class Monitor:
        def execute(self, cmd):
            out = fake.handle(cmd)
            return ("", out) if "\x1b[31" in out else (out, "")

    package = types.ModuleType("pyrenode3")
    wrappers = types.ModuleType("pyrenode3.wrappers")
    wrappers.Monitor = Monitor  # type: ignore[attr-defined]
    package.wrappers = wrappers  # type: ignore[attr-defined]
    package.__spec__ = importlib.machinery.ModuleSpec("pyrenode3", None)
    monkeypatch.setitem(sys.modules, "pyrenode3", package)
    monkeypatch.setitem(sys.modules, "pyrenode3.wrappers", wrappers)
    monkeypatch.setenv("PATH", str(tmp_path))  # no renode binary needed
    eng = RenodeEngine(timeout=5)
    try:
        eng.start(platform, minifw, workdir=tmp_path)
        eng.run_for(0.25)
        assert eng.virtual_time() == 0.25 and eng.process is None
        assert 'emulation RunFor "00:00:00.250000"' in eng.monitor.commands
        with pytest.raises(RenodeCommandError, match="No such command"):
            eng.execute("bogus")
    finally:
        eng.stop()
        fake.close()
