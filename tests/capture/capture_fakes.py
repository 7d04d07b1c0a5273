"""An in-memory Engine and ELF image for capture unit tests: memory is a dict of pages, breakpoint
stops are scripted by the test (``engine.hit(pc, sp=..., lr=..., r0=...)``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from memhil.elf import Symbol
from memhil.engines.base import Breakpoint, Engine, EngineState
from memhil.errors import ElfError, EngineError, SymbolNotFoundError


class FakeStop:
    """StopContext with a pipelined read, counting requests (one call to read_memory_many = one round trip)."""

    def __init__(self, engine: "FakeEngine", regs: dict[str, int]) -> None:
        self.engine = engine
        self.regs = regs
        self.pc = regs["pc"]

    def read_memory(self, address: int, size: int) -> bytes:
        self.engine.round_trips += 1
        return self.engine._read(address, size)

    def read_memory_many(self, requests):
        self.engine.round_trips += 1
        return [self.engine._read(a, n) for a, n in requests]

    def write_memory(self, address: int, data: bytes) -> None:
        self.engine.round_trips += 1
        self.engine._write(address, data)

    def read_registers(self) -> dict[str, int]:
        return dict(self.regs)


class FakeEngine(Engine):
    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.state = EngineState.RUNNING
        self.mem: dict[int, int] = {}
        self.bps: dict[int, list[Breakpoint]] = {}
        self._next = 1
        self.round_trips = 0
        self.time_s = 0.0
        self.added: list[int] = []

    # memory -------------------------------------------------------------------------
    def _read(self, address: int, size: int) -> bytes:
        return bytes(self.mem.get(address + i, 0) for i in range(size))

    def _write(self, address: int, data: bytes) -> None:
        for i, b in enumerate(data):
            self.mem[address + i] = b

    def put32(self, address: int, *values: int) -> None:
        for i, v in enumerate(values):
            self._write(address + 4 * i, (v & 0xFFFFFFFF).to_bytes(4, "little"))

    def get32(self, address: int) -> int:
        return int.from_bytes(self._read(address, 4), "little")

    def read_memory(self, address: int, size: int) -> bytes:
        self.round_trips += 1
        return self._read(address, size)

    def write_memory(self, address: int, data: bytes) -> None:
        self.round_trips += 1
        self._write(address, data)

    def read_registers(self) -> dict[str, int]:
        return {}

    # breakpoints --------------------------------------------------------------------
    def add_breakpoint(self, address: int, callback) -> Breakpoint:
        address &= ~1
        bp = Breakpoint(address, callback, self._next)
        self._next += 1
        self.bps.setdefault(address, []).append(bp)
        self.added.append(address)
        return bp

    def remove_breakpoint(self, bp: Breakpoint) -> None:
        bps = self.bps.get(bp.address, [])
        if bp not in bps:
            raise EngineError(f"breakpoint {bp.id} is not set", hint="remove each once")
        bps.remove(bp)
        if not bps:
            del self.bps[bp.address]

    def hit(self, pc: int, **regs: int) -> bool:
        """The target stops at ``pc`` with ``regs``; returns whether a breakpoint was there."""
        full = {f"r{i}": 0 for i in range(13)} | {"sp": 0x20001000, "lr": 0, "pc": pc}
        full.update(regs)
        bps = list(self.bps.get(pc & ~1, ()))
        for bp in bps:
            bp.callback(FakeStop(self, full))
        return bool(bps)

    # unused primitives ---------------------------------------------------------------
    def start(self, platform, elf: Path, *, accelerate: bool = True, workdir: Path | None = None) -> None:
        self.state = EngineState.RUNNING

    def stop(self) -> None:
        self.state = EngineState.STOPPED

    def reset(self) -> None:
        pass

    def run_for(self, seconds: float) -> None:
        self.time_s += seconds

    def virtual_time(self) -> float:
        return self.time_s

    def set_acceleration(self, enabled: bool) -> None:
        pass

    def console_write(self, data: bytes | str) -> None:
        pass


@dataclass
class FakeImage:
    """Symbols and code bytes; no DWARF (struct layouts raise ElfError, as for a stripped ELF)."""

    path: Path = Path("fake.elf")
    has_dwarf = False
    syms: dict[str, Symbol] = field(default_factory=dict)
    code: dict[int, bytes] = field(default_factory=dict)

    def add_func(self, name: str, address: int, code: bytes) -> Symbol:
        sym = Symbol(name, address, len(code), "func", True)
        self.syms[name] = sym
        self.code[address] = code
        return sym

    def add_object(self, name: str, address: int, size: int) -> Symbol:
        sym = Symbol(name, address, size, "object")
        self.syms[name] = sym
        return sym

    def find_symbol(self, name: str) -> Symbol | None:
        return self.syms.get(name)

    def symbol(self, name: str) -> Symbol:
        if name not in self.syms:
            raise SymbolNotFoundError(f"symbol {name!r} is not in the ELF", hint="check")
        return self.syms[name]

    def read(self, addr: int, size: int) -> bytes:
        for base, data in self.code.items():
            if base <= addr and addr + size <= base + len(data):
                return data[addr - base : addr - base + size]
        raise ElfError(f"{addr:#x} not in the fake image", hint="add it")

    def struct_layout(self, name: str):
        raise ElfError(f"no DWARF for {name}", hint="fake image")


def thumb(*halfwords: int) -> bytes:
    return b"".join(h.to_bytes(2, "little") for h in halfwords)


def bw(frm: int, to: int) -> tuple[int, int]:
    """Encode ``b.w to`` at ``frm`` (B T4, ARM ARMv7-M A7.7.12)."""
    off = to - (frm + 4)
    imm = off & 0x1FFFFFF
    s = (imm >> 24) & 1
    i1 = (imm >> 23) & 1
    i2 = (imm >> 22) & 1
    j1 = 1 - (i1 ^ s)
    j2 = 1 - (i2 ^ s)
    hw1 = 0xF000 | (s << 10) | ((imm >> 12) & 0x3FF)
    hw2 = 0x9000 | (j1 << 13) | (j2 << 11) | ((imm >> 1) & 0x7FF)
    return hw1, hw2


class FakeUnwinder:
    """Returns [pc, lr, the word at sp] so tests see where the stack starts and that the bulk read is used."""

    def __init__(self) -> None:
        self.calls = 0

    def unwind(self, regs, read_memory, max_depth: int = 32):
        self.calls += 1
        word = int.from_bytes(read_memory(regs["sp"], 4), "little")
        return [regs["pc"] & ~1, regs["lr"] & ~1, word & ~1][:max_depth]
