"""The unwinder against gdb's ``bt`` on a real stack: the test program runs in qemu-system-arm
(netduinoplus2), gdb-multiarch stops in leaf() twice (a plain call chain, then a chain taken from
PendSV), prints ``bt`` and the registers and dumps the stack; the unwinder walks the same stack offline."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest

from elf_reference import tool
from memhil.engines.process import _die_with_parent as die_with_parent
from memhil.elf import Image, Symbolizer, Unwinder

STACK_END = 0x20020000  # _estack of tests/elf/src/link.ld


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gdb_session(built, tmp_path_factory):
    """Run QEMU + gdb once; return [(bt frames, registers, stack dump path)] for the two stops."""
    out = tmp_path_factory.mktemp("gdb")
    port = _free_port()
    qemu = subprocess.Popen(
        [tool("qemu-system-arm"), "-M", "netduinoplus2", "-display", "none", "-monitor", "none",
         "-serial", "null", "-S", "-gdb", f"tcp:127.0.0.1:{port}", "-kernel", str(built.app)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=die_with_parent,  # no QEMU left behind when the test run itself is killed
    )
    try:
        cmds = ["set pagination off", "set confirm off", "set tcp connect-timeout 20",
                f"target remote 127.0.0.1:{port}", "break leaf"]
        for n in (1, 2):
            cmds += ["continue", f"echo ==STOP{n}==\\n", "bt", "info registers",
                     f"dump binary memory {out}/stack{n}.bin $sp {STACK_END:#x}", f"echo ==END{n}==\\n"]
        argv = [tool("gdb-multiarch"), "-batch", "-nx"]
        for c in cmds:
            argv += ["-ex", c]
        argv.append(str(built.app))
        done = subprocess.run(argv, capture_output=True, text=True, timeout=90)
        text = done.stdout
        assert "==END2==" in text, f"gdb did not reach the second stop:\n{text}\n{done.stderr}"
    finally:
        qemu.terminate()
        try:
            qemu.wait(timeout=5)
        except subprocess.TimeoutExpired:
            qemu.kill()
            qemu.wait()
    stops = []
    for n in (1, 2):
        block = text.split(f"==STOP{n}==")[1].split(f"==END{n}==")[0]
        frames = []
        for line in block.splitlines():
            m = re.match(r"^#(\d+)\s+(?:(0x[0-9a-f]+) in )?(<signal handler called>|\w+)", line)
            if m:
                frames.append((int(m.group(2), 16) if m.group(2) else None, m.group(3)))
        regs = {}
        for line in block.splitlines():
            m = re.match(r"^(\w+)\s+(0x[0-9a-f]+)\s", line)
            if m:
                regs[m.group(1)] = int(m.group(2), 16)
        stops.append((frames, regs, out / f"stack{n}.bin"))
    return stops


def _reader(dump: Path, base: int):
    data = dump.read_bytes()

    def read(addr: int, size: int) -> bytes:
        if not (base <= addr and addr + size <= base + len(data)):
            raise ValueError(f"{addr:#x} outside the dumped stack")
        return data[addr - base : addr - base + size]

    return read


@pytest.mark.parametrize("stop", [0, 1], ids=["call-chain", "from-interrupt"])
def test_unwinder_matches_gdb_backtrace(built, gdb_session, stop):
    frames, regs, dump = gdb_session[stop]
    image = Image.open(built.app)
    bt = Unwinder(image).unwind(regs, _reader(dump, regs["sp"]), stack_range=(0x20000000, STACK_END))
    sym = Symbolizer(image)
    names = [sym.function(pc, is_return_address=bt.is_return_address(i)) for i, pc in enumerate(bt)]
    gdb_names = [name for _pc, name in frames if name != "<signal handler called>"]
    gdb_pcs = [pc for pc, name in frames if name != "<signal handler called>"]
    gdb_pcs[0] = regs["pc"]
    # gdb stops at main (backtrace past-main is off); memhil goes on to the reset handler
    assert gdb_names[-1] == "main"
    assert names[: len(gdb_names)] == gdb_names
    # gdb omits the address of a frame whose pc starts a line (e.g. the pc popped from an exception frame)
    assert [pc for pc, want in zip(bt, gdb_pcs) if want is not None] == [pc for pc in gdb_pcs if pc is not None]
    assert sum(pc is not None for pc in gdb_pcs) >= 3
    assert names[len(gdb_names):] == ["Reset_Handler"] and bt.stop_reason == "reset-handler"
    if stop == 1:
        assert "<signal handler called>" in [n for _pc, n in frames]
        assert names[:3] == ["leaf", "middle", "PendSV_Handler"] and "trigger" in names
        assert bt.exception_frames == [names.index("trigger")]
    else:
        assert names == ["leaf", "middle", "outer", "main", "Reset_Handler"]
