"""The Renode engine against the fake Renode (tests/engines/fake_renode.py), which models Renode 1.15.3 and 1.16.1
as read in their source (../shared/reference/renode-source.md): every engine test runs on both releases."""

from __future__ import annotations

import importlib.machinery
import json
import logging
import os
import stat
import sys
import types
from pathlib import Path

import pytest

from memhil.engines.base import EngineState
from memhil.engines.firmware import FirmwareInfo
from memhil.engines.renode import RenodeEngine, renode_config
from memhil.engines.renode_hooks import HookRecord, RecordReader, Window, hook_body
from memhil.engines.renode_monitor import (
    ERROR_COLOUR, ERROR_TEXTS, RenodeCommandError, check_version, is_error, parse_bytes, parse_int, parse_time, parse_version,
    path_arg, split_log, strip_telnet, time_arg,
)
from memhil.engines.renode_shell import TELNET_REPLY, TelnetShell, prompt_at_end
from memhil.errors import ConsoleTimeout, EngineError, PlatformError, ProtocolError, TargetFault, ToolMissingError

from .fake_renode import DARK_RED, FakeRenode, TelnetServer

HERE = Path(__file__).resolve().parent
VERSIONS = ["1.15.3", "1.16.1"]


def fake_program(directory: Path) -> Path:
    """A ``renode`` program that is the fake (pipes or telnet, as its arguments say)."""
    program = directory / "renode"
    program.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(HERE)!r})\nimport fake_renode\nsys.exit(fake_renode.main(sys.argv[1:]))\n")
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    return program


@pytest.fixture(params=VERSIONS)
def version(request, monkeypatch):
    monkeypatch.setenv("FAKE_RENODE_VERSION", request.param)
    return request.param


@pytest.fixture
def program(tmp_path_factory):
    return fake_program(tmp_path_factory.mktemp("bin"))


@pytest.fixture
def scenario(tmp_path, monkeypatch):
    """Write firmware events for the fake to play (see FakeRenode.load_scenario)."""
    path = tmp_path / "scenario.json"
    monkeypatch.setenv("FAKE_RENODE_SCENARIO", str(path))

    def write(events: list[dict]) -> None:
        path.write_text(json.dumps({"events": events}))

    write([])
    return write


@pytest.fixture
def make_engine(program, minifw, platform, tmp_path, version, scenario):
    engines = []

    def make(**options) -> RenodeEngine:
        eng = RenodeEngine(renode_binary=str(program), backend="binary", timeout=10, **options)
        engines.append(eng)
        eng.start(platform, minifw, workdir=tmp_path / "run")
        return eng

    yield make
    for eng in engines:
        eng.stop()


@pytest.fixture
def engine(make_engine):
    return make_engine()


def symbol(minifw, name: str) -> int:
    return FirmwareInfo.load(minifw).symbols[name]


# -- control without a listener ------------------------------------------------------------------------------
def test_starts_renode_on_pipes_with_its_own_config(program, minifw, platform, tmp_path, monkeypatch, version, scenario):
    monkeypatch.setenv("FAKE_RENODE_ARGV", str(tmp_path / "argv"))
    eng = RenodeEngine(renode_binary=str(program), backend="binary", timeout=10)
    try:
        eng.start(platform, minifw, workdir=tmp_path / "run")
        assert eng.version == version and eng.monitor.name == "console pipe"
        assert eng.monitor.commands[:8] == [
            "numbersMode Hexadecimal",
            'mach create "memhil"',
            f"machine LoadPlatformDescription @{platform.repl.resolve()}",
            f"sysbus LoadELF @{minifw.resolve()}",
            "machine SetAdvanceImmediately true",
            f'emulation CreateUartPtyTerminal "memhil_console" "{(tmp_path / "run").resolve() / "console.pty"}" true',
            "connector Connect sysbus.usart1 memhil_console",
            "sysbus ReadBytes 0x8000000 28",  # the vector table, for the fault hooks
        ]
        pid = eng.process.pid
    finally:
        eng.stop()
    argv = (tmp_path / "argv").read_text().split()
    assert argv == ["--disable-gui", "--console", "--plain", "--config", str(tmp_path / "run" / "renode.config")]
    assert "--port" not in argv and "-P" not in argv  # no telnet server: nothing listens on the network
    assert (tmp_path / "run" / "renode.config").read_text() == f"[general]\nhistory-path={tmp_path / 'run' / 'renode.history'}\n"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "Loaded monitor commands" in (tmp_path / "run" / "renode.log").read_text()  # log lines kept apart


def test_unsupported_version_is_refused(program, minifw, platform, tmp_path, monkeypatch, scenario):
    monkeypatch.setenv("FAKE_RENODE_VERSION", "1.14.0")
    eng = RenodeEngine(renode_binary=str(program), backend="binary", timeout=10)
    with pytest.raises(EngineError, match=r"Renode 1\.14\.0 is not supported") as err:
        eng.start(platform, minifw, workdir=tmp_path / "run")
    assert "1.15.x and 1.16.x" in str(err.value) and eng.state is EngineState.FAILED
    assert eng.monitor is None


def test_a_program_that_is_not_renode_is_stopped_and_reaped(minifw, platform, tmp_path):
    """It exits without a banner: the start fails, and the process is reaped then, not when the error (whose
    traceback holds the shell) is collected: a zombie would still answer kill(pid, 0)."""
    program = tmp_path / "renode"
    program.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'pid'}\necho 'not renode'\n")
    program.chmod(0o755)
    eng = RenodeEngine(renode_binary=str(program), backend="binary", timeout=10)
    with pytest.raises(ProtocolError, match="closed its console") as err:
        eng.start(platform, minifw, workdir=tmp_path / "run")
    assert eng.state is EngineState.FAILED and err.value.__traceback__ is not None
    with pytest.raises(ProcessLookupError):
        os.kill(int((tmp_path / "pid").read_text()), 0)


def test_version_texts():
    assert parse_version("Renode, version 1.16.1.28000 (abc)") == (1, 16, 1)
    assert check_version((1, 15, 3), "") == (1, 15, 3)
    with pytest.raises(EngineError, match="cannot tell"):
        check_version(parse_version("hello"), "hello")
    with pytest.raises(EngineError, match="1.17.0 is not supported"):
        check_version((1, 17, 0), "")


@pytest.mark.parametrize("plain", [True, False], ids=["plain", "colour"])
@pytest.mark.parametrize("release", VERSIONS)
def test_telnet_attach_answers_the_negotiation_and_resyncs(release, plain, minifw, platform, tmp_path, scenario):
    """1.15.3 reads 9 bytes before it writes anything (row 3); the banner is never re-sent (row 4); a Renode the
    user started without --plain colours its prompt DarkRed, which is not an error (row 7)."""
    fake = FakeRenode(version=release, plain=plain)
    server = TelnetServer(fake)
    try:
        first = TelnetShell.attach("127.0.0.1", server.port, timeout=5)
        assert "Renode, version" in first.banner
        first.close()
        again = TelnetShell.attach("127.0.0.1", server.port, timeout=5)  # a second user: no banner, no prompt until Enter
        assert again.execute("machine GetTimeSourceInfo").startswith("Interval")
        again.close()
        if release.startswith("1.15"):
            assert server.handshake_read == [TELNET_REPLY, TELNET_REPLY]
        eng = RenodeEngine(monitor_port=server.port, timeout=5)
        eng.start(platform, minifw, workdir=tmp_path / "attach")
        assert eng.version == release and eng.monitor.name == "telnet (attached)"
        eng.run_for(0.5)
        assert eng.virtual_time() == 0.5
        with pytest.raises(RenodeCommandError, match="No such command or device"):
            eng.execute("bogus")
        eng.stop()
    finally:
        server.close()


def test_no_renode_module_opens_a_listening_socket():
    """Only the attach path opens a socket, and only as a client of a loopback address."""
    import memhil.engines.renode as engine_module
    import memhil.engines.renode_shell as shell_module

    for module in (engine_module, shell_module):
        text = Path(module.__file__).read_text()
        for call in (".bind(", ".listen(", "create_server(", '"--port"', "StartGdbServer "):
            assert call not in text, (module.__name__, call)


def test_attach_is_loopback_only():
    with pytest.raises(EngineError, match="loopback"):
        TelnetShell.attach("10.0.0.1", 1234)


@pytest.mark.parametrize("release", VERSIONS)
def test_fake_15_deadlocks_a_client_that_sends_nothing(release):
    """What the handshake reply fixes: without it 1.15.3 sends nothing at all, while 1.16.1 sends its banner
    (row 3). The client sends nothing and half-closes its side; the server ends the session at that end of stream,
    so everything it sent is read up to its close, with no wait on the wall clock."""
    import socket

    server = TelnetServer(FakeRenode(version=release))
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := sock.recv(4096):
                got += chunk
        if release == "1.15.3":
            assert got.startswith(b"\xff") and strip_telnet(got) == b""  # only the negotiation, no banner
        else:
            assert strip_telnet(got).startswith(b"Renode, version 1.16.1")
    finally:
        server.close()


# -- time ----------------------------------------------------------------------------------------------------
def test_run_for_is_exact_and_cut_in_slices(make_engine):
    engine = make_engine(max_slice=0.25)
    engine.run_for(1.0)
    runs = [c for c in engine.monitor.commands if c.startswith("emulation RunFor")]
    assert runs == ['emulation RunFor "00:00:00.250000"'] * 4
    assert engine._machine_time() == 1.0 and engine.virtual_time() == 1.0
    engine.run_for(0.000001)
    assert engine._machine_time() == 1.000001
    before = len(engine.monitor.commands)
    engine.run_for(1e-9)  # below RunFor's microsecond: nothing sent
    assert not any(c.startswith("emulation RunFor") for c in engine.monitor.commands[before:])


def test_slice_end_work_runs_halted_at_every_slice(make_engine):
    engine = make_engine(max_slice=0.1)
    seen = []

    def work():
        seen.append(engine._machine_time())

    engine.add_slice_end(work)
    engine.run_for(0.3)
    assert seen == [0.0, 0.1, 0.2, 0.3]  # at the start and after each slice, with the emulation paused
    engine.remove_slice_end(work)
    with pytest.raises(EngineError, match="not added"):
        engine.remove_slice_end(work)


# -- hooks ---------------------------------------------------------------------------------------------------
def test_hooks_cannot_pause_runfor_and_callbacks_see_the_hit(program, minifw, platform, tmp_path, scenario, version):
    """RunFor runs its whole period (row 15-16); each callback sees registers and memory as its hook read them."""
    malloc = symbol(minifw, "LOS_MemMalloc")
    scenario([
        {"t_us": 300_000, "hit": malloc, "regs": {"0": 0x20000100, "1": 24, "13": 0x20001000, "14": 0x08000101},
         "write": 0x20000100, "hex": "aabbccdd"},
        {"t_us": 400_000, "write": 0x20000100, "hex": "00000000"},  # the firmware changes it after the hit
        {"t_us": 600_000, "hit": malloc, "regs": {"0": 0x20000100, "1": 32}, "write": 0x20001000, "hex": "11223344"},
    ])
    eng = RenodeEngine(renode_binary=str(program), backend="binary", timeout=10)
    eng.start(platform, minifw, workdir=tmp_path / "run")
    try:
        seen = []
        bp = eng.add_breakpoint(malloc | 1, lambda ctx: seen.append(
            (ctx.pc, ctx.regs["r1"], ctx.read_memory(ctx.regs["r0"], 4), ctx.read_memory(ctx.regs["sp"], 4), eng.virtual_time())))
        eng.run_for(1.0)
        assert [c for c in eng.monitor.commands if c.startswith("emulation RunFor")] == ['emulation RunFor "00:00:00.100000"'] * 10
        assert seen == [(malloc, 24, b"\xaa\xbb\xcc\xdd", b"\0\0\0\0", 0.3), (malloc, 32, b"\0\0\0\0", b"\x11\x22\x33\x44", 0.6)]
        assert eng.read_memory(0x20000100, 4) == b"\0\0\0\0"  # what a late read would have seen
        body = eng.monitor.commands[-12]
        assert "self.GetRegister(i).RawValue" in body and "GetRegisterUlong" not in body
        with pytest.raises(EngineError, match="not captured"):
            HookRecord(1, malloc, {}, [(0x20000000, b"1234")]).read(0x30000000, 4)
        eng.remove_breakpoint(bp)
        assert eng.monitor.commands[-1] == f"cpu RemoveHooksAt {malloc:#x}"
        with pytest.raises(EngineError, match="not set"):
            eng.remove_breakpoint(bp)
    finally:
        eng.stop()


def test_get_register_ulong_is_missing_on_115(make_engine, minifw, version, scenario):
    """A hook written with GetRegisterUlong records nothing on 1.15.x, only an error in the log (row 18); the
    engine reports it instead of going on silently."""
    malloc = symbol(minifw, "LOS_MemMalloc")
    scenario([{"t_us": 1000, "hit": malloc, "regs": {"0": 7}}])
    engine = make_engine()
    target = engine.workdir / "ulong.txt"
    engine.execute(f"cpu AddHook {malloc:#x} \"f=open('{target}','a');f.write('%d' % self.GetRegisterUlong(0));f.close()\"")
    if version == "1.15.3":
        with pytest.raises(EngineError, match="a Renode hook failed: .*Python runtime error"):
            engine.run_for(0.01)
        assert target.read_text() == ""  # opened, never written
    else:
        engine.run_for(0.01)
        assert target.read_text() == "7"


def test_fault_hook_raises_target_fault(program, minifw, platform, tmp_path, scenario, version):
    handler = FirmwareInfo.load(minifw).symbols["Default_Handler"]
    scenario([{"t_us": 5000, "write": 0xE000ED04, "hex": "03000000"},  # ICSR.VECTACTIVE = HardFault
              {"t_us": 5000, "write": 0xE000ED28, "hex": "00040000"},  # CFSR: IMPRECISERR
              {"t_us": 5000, "hit": handler, "regs": {"13": 0x20001000, "14": 0xFFFFFFF9}}])
    eng = RenodeEngine(renode_binary=str(program), backend="binary", timeout=10)
    eng.start(platform, minifw, workdir=tmp_path / "run")
    try:
        with pytest.raises(TargetFault, match="HardFault") as err:
            eng.run_for(0.1)
        assert err.value.kind == "HardFault" and eng.fault is err.value
        with pytest.raises(TargetFault):
            eng.run_for(0.1)  # halted in the handler until reset
        eng.reset()
        eng.run_for(0.01)
    finally:
        eng.stop()


def test_fake_runfor_runs_its_whole_period_whatever_a_hook_asks():
    """PauseAndRequestEmulationPause returns at once under RunFor (Machine.cs:1119-1127; row 16)."""
    fake = FakeRenode()
    fake.handle("cpu AddHook 0x8000100 \"machine.PauseAndRequestEmulationPause()\"")
    fake.load_scenario([{"t_us": 100_000, "hit": 0x8000100}, {"t_us": 200_000, "hit": 0x8000100}])
    assert fake.handle('emulation RunFor "00:00:01.000000"') == ""
    assert fake.time_us == 1_000_000 and fake.machine_obj.pause_requests == 2


def test_hook_body_runs_in_python(tmp_path):
    windows = (Window("sp", 0, 8), Window(None, 0x20000010, 4))
    body = hook_body(5, tmp_path / "h.rec", windows)
    assert '"' not in body and "\n" not in body and "GetRegisterUlong" not in body
    fake = FakeRenode()
    fake.regs[13] = 0x20000000
    fake.write(0x20000000, b"\x01\x02\x03\x04\x05\x06\x07\x08")
    fake.write(0x20000010, b"\xaa\xbb\xcc\xdd")
    fake._run_hook(body, 0x08000100)
    fake._run_hook(body, 0x08000100)
    reader = RecordReader(tmp_path / "h.rec")
    records = reader.read({5: windows}.get)
    assert len(records) == 2 and records[0].pc == 0x08000100 and records[0].regs["sp"] == 0x20000000
    assert records[0].read(0x20000004, 4) == b"\x05\x06\x07\x08" and records[0].read(0x20000010, 4) == b"\xaa\xbb\xcc\xdd"
    assert reader.read({5: windows}.get) == []
    (tmp_path / "h.rec").write_text("zzzzzzzz" + "0" * 200 + "\n")
    with pytest.raises(ProtocolError, match="malformed"):
        RecordReader(tmp_path / "h.rec").read({5: windows}.get)
    (tmp_path / "h.rec").write_text("00000005" + "0" * 8 * 19 + "zz" + "0" * 6 + "\n")  # a bad word in a window
    with pytest.raises(ProtocolError, match="malformed"):
        RecordReader(tmp_path / "h.rec").read({5: windows}.get)


# -- memory, registers ------------------------------------------------------------------------------------------
def test_memory_read_write_and_unmapped_reads_zero(engine):
    engine.write_memory(0x20000101, b"\x01\x02\x03\x04\x05\x06\x07")
    assert engine.read_memory(0x20000101, 7) == b"\x01\x02\x03\x04\x05\x06\x07"
    assert "sysbus WriteByte 0x20000101 0x1" in engine.monitor.commands
    assert "sysbus WriteDoubleWord 0x20000104 0x7060504" in engine.monitor.commands
    assert len(engine.read_memory(0x20000000, 5000)) == 5000  # split in 4096-byte reads of 10 bytes a line
    assert engine.read_memory(0x60000000, 4) == b"\0\0\0\0"  # unmapped: zeros and a warning (row 21)
    engine.run_for(0.001)
    assert "non existing peripheral at 0x60000000" in (engine.workdir / "renode.log").read_text()


def test_registers_with_get_register(engine):
    regs = engine.read_registers()
    assert regs["r0"] == 0x100 and regs["sp"] == 0x10D and regs["pc"] == 0x10F
    assert not any("GetRegisterUnsafe" in c for c in engine.monitor.commands)
    assert "obsolete" not in (engine.workdir / "renode.log").read_text()


def test_read_bytes_prints_ten_a_line():
    fake = FakeRenode()
    reply = fake.handle("sysbus ReadBytes 0x20000000 25")
    lines = reply.split("\n")
    assert lines[0] == "[" and lines[-1] == "]" and [line.count("0x") for line in lines[1:-1]] == [10, 10, 5]
    assert parse_bytes(reply, 25) == bytes(25)
    fake.handle("numbersMode Decimal")
    with pytest.raises(ProtocolError, match="numbersMode"):
        parse_bytes(fake.handle("sysbus ReadBytes 0x20000000 3"), 3)


# -- errors and colour ----------------------------------------------------------------------------------------------
def test_error_texts_renode_prints(engine):
    for cmd, text in [("bogus thing", "No such command or device"), ('mach set "other"', "Machine other not found."),
                      ("numbersMode Octal", "Bad parameters for command"), ("$nothing", "No such variable"),
                      ('mach create "again"', "There was an error executing command")]:
        with pytest.raises(RenodeCommandError, match=text):
            engine.execute(cmd)
    for text in ERROR_TEXTS:
        assert is_error(f"x\n{text} y\n")
    assert not is_error("0x10") and not is_error("Machine memhil is here")


def test_plain_has_no_colour_and_colour_mode_marks_errors_red():
    plain, colour = FakeRenode(plain=True), FakeRenode(plain=False)
    assert "\x1b" not in plain.handle("bogus") + plain.prompt
    error = colour.handle("bogus")
    assert error.startswith(ERROR_COLOUR) and is_error(error)
    assert colour.prompt.startswith(DARK_RED) and not is_error(colour.prompt)  # the prompt's colour is not an error


def test_gdb_server_is_never_started(engine):
    with pytest.raises(EngineError, match="GDB server"):
        engine.execute("machine StartGdbServer 3333")
    assert not any("StartGdbServer" in c for c in engine.monitor.commands)


def test_missing_repl_error_surfaces(program, minifw, platform, tmp_path, scenario, version):
    import dataclasses

    gone = tmp_path / "gone.repl"
    gone.write_text("")
    broken = dataclasses.replace(platform, repl=gone)
    eng = RenodeEngine(renode_binary=str(program), backend="binary", timeout=10)
    original = RenodeEngine._setup_machine

    def setup(self):
        gone.unlink()
        return original(self)

    RenodeEngine._setup_machine = setup  # type: ignore[method-assign]
    try:
        with pytest.raises((RenodeCommandError, EngineError), match="does not exist|Could not find file"):
            eng.start(broken, minifw, workdir=tmp_path / "run")
    finally:
        RenodeEngine._setup_machine = original  # type: ignore[method-assign]
    assert eng.state is EngineState.FAILED


def test_renode_that_exits_is_an_engine_error(engine):
    engine.monitor.proc.kill()
    with pytest.raises(EngineError, match="stopped answering"):
        engine.run_for(0.1)
    assert engine.state is EngineState.FAILED


def test_missing_binary(minifw, platform, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError) as err:
        RenodeEngine(backend="binary").start(platform, minifw)
    assert err.value.program == "renode" and "renode.io" in err.value.package


def test_elf_outside_map_refused_before_starting(minifw_outside_map, platform):
    with pytest.raises(PlatformError):
        RenodeEngine(monitor_port=1).start(platform, minifw_outside_map)


# -- console --------------------------------------------------------------------------------------------------
def test_console_banner_input_and_timeout(engine):
    assert engine.wait_for_line("memhil fake debug stm32f4 ready", timeout=0.01)
    engine.console_write("ab\r")
    assert engine.monitor.commands[-3:] == ["sysbus.usart1 WriteChar 0x61", "sysbus.usart1 WriteChar 0x62", "sysbus.usart1 WriteChar 0xd"]
    assert engine.wait_for_line("echo: ab", timeout=0.01)
    before = engine._machine_time()
    with pytest.raises(ConsoleTimeout):
        engine.wait_for_line("never", timeout=0.05)
    assert round(engine._machine_time() - before, 6) == 0.05


def test_console_wait_ends_at_a_fixed_virtual_time(program, minifw, platform, tmp_path, scenario, version):
    scenario([{"t_us": 37_500, "uart": "late line\r\n"}])
    ends = []
    for run in range(2):
        eng = RenodeEngine(renode_binary=str(program), backend="binary", timeout=10)
        eng.start(platform, minifw, workdir=tmp_path / f"run{run}")
        try:
            eng.wait_for_line("late line", timeout=1)
            ends.append(eng._machine_time())
        finally:
            eng.stop()
    assert ends[0] == ends[1] and 0.0375 <= ends[0] <= 0.064  # slices 1+2+4+8+16+32 ms: ends at 63 ms


# -- backends --------------------------------------------------------------------------------------------------
def _pyrenode3_module(monkeypatch, monitor_class):
    package = types.ModuleType("pyrenode3")
    wrappers = types.ModuleType("pyrenode3.wrappers")
    wrappers.Monitor = monitor_class  # type: ignore[attr-defined]
    package.wrappers = wrappers  # type: ignore[attr-defined]
    package.__spec__ = importlib.machinery.ModuleSpec("pyrenode3", None)
    monkeypatch.setitem(sys.modules, "pyrenode3", package)
    monkeypatch.setitem(sys.modules, "pyrenode3.wrappers", wrappers)


def test_pyrenode3_in_process(minifw, platform, tmp_path, monkeypatch):
    fake = FakeRenode()

    class Monitor:  # pyrenode3 wrappers/monitor.py:52-69: (output, error)
        def execute(self, cmd):
            out = fake.handle(cmd)
            return ("", out) if is_error(out) else (out, "")

    _pyrenode3_module(monkeypatch, Monitor)
    monkeypatch.setenv("PATH", str(tmp_path))  # no renode program needed
    eng = RenodeEngine(timeout=5)
    try:
        eng.start(platform, minifw, workdir=tmp_path / "run")
        assert eng.monitor.name == "pyrenode3" and eng.process is None and eng.version == "1.16.1"
        eng.run_for(0.25)
        assert eng.virtual_time() == 0.25
        with pytest.raises(RenodeCommandError, match="No such command"):
            eng.execute("bogus")
        shell = eng.monitor
        eng.stop()
        assert fake.commands[-1] == "emulation Clear"  # what closing the in-process monitor leaves behind
        with pytest.raises(ProtocolError, match=r"monitor \(pyrenode3\) is closed"):
            shell.execute("version")
    finally:
        eng.stop()
        if fake.pty_master is not None:
            os.close(fake.pty_master)


def test_auto_falls_back_to_the_program_when_pyrenode3_cannot_load(program, minifw, platform, tmp_path, monkeypatch, caplog, scenario):
    class Monitor:
        def __init__(self):
            raise ImportError("Renode not found (set PYRENODE_PKG)")

    _pyrenode3_module(monkeypatch, Monitor)
    eng = RenodeEngine(renode_binary=str(program), timeout=10)
    with caplog.at_level(logging.WARNING, logger="memhil.engines.renode"):
        try:
            eng.start(platform, minifw, workdir=tmp_path / "run")
            assert eng.monitor.name == "console pipe"
        finally:
            eng.stop()
    assert "could not load Renode" in caplog.text and "Renode not found" in caplog.text
    with pytest.raises(EngineError, match="pyrenode3 could not load Renode"):
        RenodeEngine(backend="pyrenode3").start(platform, minifw, workdir=tmp_path / "run2")


def test_unknown_backend():
    with pytest.raises(EngineError, match="unknown Renode backend"):
        RenodeEngine(backend="gdb")


# -- pure helpers ------------------------------------------------------------------------------------------------
def test_time_strings():
    assert time_arg(2.5) == '"00:00:02.500000"'
    assert time_arg(6 * 3600 + 0.000001) == '"06:00:00.000001"'
    assert parse_time("Elapsed Virtual Time: 01:02:03.250000000\nElapsed Host Time: 0") == pytest.approx(3723.25)
    with pytest.raises(EngineError):
        time_arg(-1)
    with pytest.raises(ProtocolError):
        parse_time("nothing here")


def test_reply_parsers():
    assert parse_int("0x20000014") == 0x20000014
    with pytest.raises(ProtocolError):
        parse_int("(machine-0)")
    assert strip_telnet(b"\xff\xfb\x01ab\xff\xfa\x18\x01\xff\xf0c\xff\xffd") == b"abc\xffd"
    reply, log = split_log("x\n12:00:01.0001 [WARNING] sysbus: y\nz")
    assert reply == "x\nz" and log == ["12:00:01.0001 [WARNING] sysbus: y"]
    assert prompt_at_end("x\n(memhil) ") == "(memhil)"
    assert prompt_at_end("x\n(memhil) 12:00:01.0001 [INFO] a: b\n") == "(memhil)"
    assert prompt_at_end("x\n(memhil) 12:00:01.0001 [INFO] a") is None and prompt_at_end("(memhil) \n") is None


@pytest.mark.parametrize("bad", ['/tmp/a"b', "/tmp/a b", "/tmp/a;b", "/tmp/a\nb"])
def test_paths_with_unsafe_characters_refused(bad):
    with pytest.raises(EngineError):
        path_arg(bad, must_exist=False)


def test_config_file(tmp_path):
    assert "history-path=" in renode_config(tmp_path).read_text()


def test_resc_finds_its_files_from_anywhere():
    resc = (HERE.parents[1] / "platforms" / "stm32f4" / "stm32f4.resc").read_text()
    assert "LoadPlatformDescription $ORIGIN/stm32f4.repl" in resc and "@platforms/" not in resc and "@firmware/" not in resc


def test_entry_point():
    from memhil.engines import get_engine_class

    assert get_engine_class("renode") is RenodeEngine


# -- memhil doctor ---------------------------------------------------------------------------------------------
def test_doctor_without_renode_says_so(tmp_path, monkeypatch, capsys):
    from memhil.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["doctor", "--engine", "renode", "--backend", "binary"]) == 2
    out = capsys.readouterr().out
    assert "Renode is not installed" in out and "memhil supports 1.15.x and 1.16.x" in out


def test_doctor_checks_a_renode(program, minifw, tmp_path, scenario, version, capsys):
    from memhil.cli import main

    tick = symbol(minifw, "SysTick_Handler")
    scenario([{"t_us": 500, "every_us": 1000, "hit": tick}])
    status = main(["doctor", "--engine", "renode", "--renode", str(program), "--backend", "binary", "--firmware", str(minifw),
                   "--workdir", str(tmp_path / "doctor")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"ok    start and load: Renode {version} over console pipe" in out
    assert "ok    RunFor exact in virtual time" in out and "ok    hook round trip at SysTick_Handler: 50 hit(s)" in out
    assert "ok    console line" in out and "ok    read memory" in out and "ok    write memory while paused" in out


def test_doctor_reports_what_fails(program, minifw, tmp_path, scenario, capsys):
    from memhil.cli import main

    scenario([])  # the firmware never reaches the hooked function
    status = main(["doctor", "--renode", str(program), "--backend", "binary", "--firmware", str(minifw),
                   "--console-line", "never printed", "--workdir", str(tmp_path / "doctor")])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL  hook round trip at SysTick_Handler: 0 hit(s)" in out and "FAIL  console line" in out
    assert "ok    RunFor exact" in out and "2 check(s) failed" in out
