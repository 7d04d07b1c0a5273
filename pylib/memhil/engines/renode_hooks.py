"""Breakpoint hooks on Renode that do their work inside the hook.

Under ``emulation RunFor`` a hook cannot stop the firmware: ``machine.PauseAndRequestEmulationPause()`` returns at
once unless the emulation was started with ``start`` (``Machine.cs``:1119-1127, ``Emulation.cs``:124-133;
renode-source.md row 16), so RunFor always runs its whole period. So the hook's IronPython body captures, at the
hit, everything a callback will look at, and appends one fixed-size record to a file; the engine hands the
records to the callbacks when the RunFor slice ends, each with the state *of its hit*:

- all 16 core registers with ``self.GetRegister(n).RawValue`` (``GetRegister(int)`` exists in 1.15.3 and 1.16.x;
  ``GetRegisterUlong`` only from 1.16.0, row 18);
- memory windows read through the bus with ``machine.SystemBus.ReadDoubleWord`` (renode.md "In hooks"): the
  stack at SP, the words around R0 (an allocator's node header), absolute words such as the firmware's uptime.

A callback that reads memory outside the captured windows gets a clear error: Renode's memory at the slice end
is not the memory of the hit.

A record is one line of lowercase hex: breakpoint id, pc, r0-r15, then the windows' words, each 8 digits.
The body is Python 2 and 3 at once (IronPython 2.7 runs it in Renode, row 17; the fake runs it in CPython), with
single quotes only (it sits in a double-quoted monitor argument; ``\\n`` reaches Python unchanged, row 19).
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass
from pathlib import Path

from memhil.engines.base import CORE_REGS
from memhil.errors import EngineError, ProtocolError

_REG_INDEX = {name: n for n, name in enumerate(CORE_REGS[:16])}
WORD = 8  # hex digits per field
_HEAD = struct.Struct(">17I")  # a record's pc and r0-r15 (after its breakpoint id), as big-endian words


@dataclass(frozen=True)
class Window:
    """``size`` bytes at ``register + offset`` (``register`` None: at the absolute address ``offset``)."""

    register: str | None
    offset: int
    size: int

    def __post_init__(self) -> None:
        if self.register is not None and self.register not in _REG_INDEX:
            raise EngineError(f"no core register {self.register!r} to capture memory at", hint=f"use one of {', '.join(_REG_INDEX)}")
        if self.size <= 0 or self.size % 4 or self.offset % 4:
            raise EngineError(f"a hook captures whole words: {self.size} bytes at offset {self.offset} is not", hint="use multiples of 4")

    @property
    def words(self) -> int:
        return self.size // 4

    def address(self, regs: dict[str, int]) -> int:
        base = regs[self.register] if self.register is not None else 0
        return (base + self.offset) & 0xFFFFFFFF


def hook_body(bp_id: int, records: Path, windows: tuple[Window, ...]) -> str:
    """The IronPython body of a hook that appends one record to ``records``."""
    target = str(records)
    if "'" in target or "\\" in target or '"' in target:
        raise EngineError(f"cannot name {target} inside a hook", hint="use a run directory without quotes or backslashes")
    reads = []
    for w in windows:
        if w.register is None:
            reads.append(f"[b.ReadDoubleWord(a) for a in range({w.offset:#x},{w.offset + w.size:#x},4)]")
        else:
            reads.append(f"[b.ReadDoubleWord((r[{_REG_INDEX[w.register]}]+o)&0xffffffff) for o in range({w.offset},{w.offset + w.size},4)]")
    words = "+".join(reads) if reads else "[]"
    return (
        "r=[self.GetRegister(i).RawValue for i in range(16)];b=machine.SystemBus;"
        f"w={words};"
        f"f=open('{target}','a');"
        f"f.write(('%08x%08x' % ({int(bp_id)},pc&0xffffffff))+''.join(['%08x' % (int(v)&0xffffffff) for v in r+w])+'\\n');"
        "f.close()"
    )


def record_size(windows: tuple[Window, ...]) -> int:
    return WORD * (2 + 16 + sum(w.words for w in windows)) + 1


@dataclass
class HookRecord:
    bp_id: int
    pc: int
    regs: dict[str, int]
    memory: list[tuple[int, bytes]]  # (address, bytes) per window, as read at the hit

    def read(self, address: int, size: int) -> bytes:
        for start, data in self.memory:
            off = address - start
            if 0 <= off and off + size <= len(data):
                return data[off : off + size]
        captured = ", ".join(f"{a:#010x}+{len(d)}" for a, d in self.memory) or "none"
        raise EngineError(f"memory at {address:#010x}+{size} was not captured when the Renode hook at {self.pc:#010x} ran",
                          hint="Renode cannot pause RunFor, so a callback sees only what its hook read at the hit: "
                               f"pass capture= windows to add_breakpoint that cover it (captured: {captured})")


class RecordReader:
    """Reads the records the hooks appended to one file since the last call (complete records only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self, windows_of) -> list[HookRecord]:
        """``windows_of(bp_id)``: the windows of a breakpoint id (None: unknown id)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        out = []
        pos = 0
        while pos + WORD <= len(data):
            head = data[pos : pos + WORD]
            try:
                bp_id = int(head, 16)
            except ValueError:
                raise ProtocolError(f"malformed hook record {data[pos:pos + 80]!r} in {self.path}", hint="a hook body failed in Renode; see renode.log") from None
            windows = windows_of(bp_id)
            if windows is None:
                raise ProtocolError(f"hook record for unknown breakpoint {bp_id} in {self.path}", hint="the hooks file was written by something else")
            size = record_size(windows)
            if pos + size > len(data):
                break  # not complete yet
            line = data[pos : pos + size]
            if line[-1:] != b"\n":
                raise ProtocolError(f"malformed hook record {line[:80]!r} in {self.path}", hint="a hook body failed in Renode; see renode.log")
            try:  # pc, r0-r15, the windows' words: big-endian hex words, converted in one pass
                raw = bytes.fromhex(line[WORD:-1].decode("ascii"))
            except ValueError:
                raise ProtocolError(f"malformed hook record {line[:80]!r} in {self.path}", hint="a hook body failed in Renode; see renode.log") from None
            fields = _HEAD.unpack_from(raw)
            pc = fields[0]
            regs = dict(zip(CORE_REGS[:16], fields[1:]))
            regs["pc"] = pc
            words = array("I", raw[_HEAD.size :])
            words.byteswap()  # big-endian words to the windows' bytes, as in (little-endian) memory
            words = words.tobytes()
            memory = []
            at = 0
            for w in windows:
                memory.append((w.address(regs), words[at : at + w.size]))
                at += w.size
            out.append(HookRecord(bp_id, pc, regs, memory))
            pos += size
        self.offset += pos
        return out
