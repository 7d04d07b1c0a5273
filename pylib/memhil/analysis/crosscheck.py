"""Cross-check the host's per-module figures against the firmware's own ``g_moduleMemUsedSize``.

LiteOS's multi-module statistics count only memory taken through the module API
(``LOS_MemMalloc`` and friends); memory taken with plain ``LOS_MemAlloc`` inside a module is not
counted (LiteOS's multi-module statistics guide: "all memory operations in the module need to call the encapsulation interface,
otherwise the statistics may be inaccurate"). A difference is reported with the blocks that
explain it: untracked blocks (``EventFlag.UNTRACKED``) of that module.

With a heap walk as the source (capture=snapshot) there is no call history: a node taken with plain
``LOS_MemAlloc`` carries module 0 like one taken with ``LOS_MemMalloc(..., 0)``, so module 0's walk bytes may
exceed the firmware's by up to those nodes (``unknown_bytes``); every other module must agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from memhil.contract import MODULE_USED_SYMBOL
from memhil.errors import ConfigError
from memhil.heap.model import LiveBlock

ReadMemory = Callable[[int, int], bytes]


class _ModuleSource(Protocol):
    live: dict[int, LiveBlock]

    def module_used(self, module: int) -> int: ...


@dataclass
class ModuleCheck:
    """One module: host bytes (all blocks), firmware bytes, and the untracked blocks that explain a difference."""

    module: int
    host: int
    firmware: int
    untracked: list[LiveBlock] = field(default_factory=list)
    unknown_bytes: int = 0  # bytes the source cannot tell tracked from untracked (module 0 of a heap walk)

    @property
    def difference(self) -> int:
        return self.host - self.firmware

    @property
    def untracked_bytes(self) -> int:
        return sum(b.bytes for b in self.untracked)

    @property
    def agrees(self) -> bool:
        return self.difference == 0

    @property
    def explained(self) -> bool:
        """The difference is exactly the untracked blocks (memory the module took without the module API), or
        lies within the bytes the source cannot tell apart."""
        rest = self.difference - self.untracked_bytes
        return rest == 0 or 0 <= rest <= self.unknown_bytes

    def describe(self) -> str:
        if self.agrees:
            return f"module {self.module}: host {self.host} == firmware {self.firmware}"
        text = f"module {self.module}: host {self.host} bytes, firmware {MODULE_USED_SYMBOL}[{self.module}] = {self.firmware} (difference {self.difference:+d})"
        if self.untracked:
            ptrs = ", ".join(f"{b.ptr:#010x} ({b.bytes} B)" for b in self.untracked[:8]) + (" ..." if len(self.untracked) > 8 else "")
            text += f"; {len(self.untracked)} block(s), {self.untracked_bytes} bytes taken with LOS_MemAlloc instead of LOS_MemMalloc: {ptrs}"
        if self.unknown_bytes:
            text += f"; a heap walk cannot tell {self.unknown_bytes} bytes of module {self.module} taken with LOS_MemAlloc from LOS_MemMalloc"
        if not self.explained:
            text += f"; {self.difference - self.untracked_bytes:+d} bytes unexplained (events lost, or the firmware's accounting is wrong)"
        return text


@dataclass
class CrossCheck:
    modules: list[ModuleCheck]

    @property
    def ok(self) -> bool:
        return all(m.agrees for m in self.modules)

    @property
    def mismatches(self) -> list[ModuleCheck]:
        return [m for m in self.modules if not m.agrees]

    def text(self) -> str:
        if self.ok:
            return f"module statistics agree for {len(self.modules)} module(s)"
        return "\n".join(m.describe() for m in self.mismatches)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "modules": [
                {"module": m.module, "host": m.host, "firmware": m.firmware, "difference": m.difference,
                 "untracked_bytes": m.untracked_bytes, "explained": m.explained,
                 "untracked": [f"{b.ptr:#010x}" for b in m.untracked]}
                for m in self.modules
            ],
        }


def read_module_table(read_memory: ReadMemory, address: int, count: int) -> list[int]:
    """The firmware's ``UINT32 g_moduleMemUsedSize[count]`` at ``address`` (one bulk read)."""
    if count <= 0:
        raise ConfigError(f"module table length {count} must be positive", hint="pass the array length (MEM_MODULE_MAX + 1)")
    raw = bytes(read_memory(address, 4 * count))
    if len(raw) < 4 * count:
        raise ConfigError(
            f"read {len(raw)} of {4 * count} bytes of {MODULE_USED_SYMBOL} at {address:#010x}",
            hint="check the table address and that the target's memory is readable",
        )
    return [int.from_bytes(raw[4 * i : 4 * i + 4], "little") for i in range(count)]


def crosscheck_modules(source: _ModuleSource, firmware_used: list[int], modules: list[int] | None = None) -> CrossCheck:
    """Compare ``source.module_used(m)`` (a Ledger, or a Snapshot with ``blocks``) with ``firmware_used[m]``."""
    live = getattr(source, "live", None)
    walked = live is None and getattr(source, "source", None) == "walk"
    if live is None:
        live = getattr(source, "blocks", {})
    ids = list(range(len(firmware_used))) if modules is None else list(modules)
    out = []
    for m in ids:
        if not 0 <= m < len(firmware_used):
            raise ConfigError(f"unknown module id {m}", hint=f"module ids go from 0 to {len(firmware_used) - 1} (MEM_MODULE_MAX)")
        untracked = sorted((b for b in live.values() if b.module == m and not b.tracked), key=lambda b: b.ptr)
        unknown = source.module_used(m) if walked and m == 0 else 0
        out.append(ModuleCheck(m, source.module_used(m), firmware_used[m], untracked, unknown))
    return CrossCheck(out)


def crosscheck_from_memory(source: _ModuleSource, read_memory: ReadMemory, table_address: int, count: int = 33, modules: list[int] | None = None) -> CrossCheck:
    """Read ``g_moduleMemUsedSize`` from the target (address from ``image.symbol(...)``) and compare."""
    return crosscheck_modules(source, read_module_table(read_memory, table_address, count), modules)


@dataclass
class WalkCheck:
    """The heap walk against the host's ledger: user pointers only one of them has."""

    only_ledger: list[int]
    only_walk: list[int]

    @property
    def ok(self) -> bool:
        return not self.only_ledger and not self.only_walk

    def as_dict(self) -> dict:
        return {"ok": self.ok, "only_ledger": [f"{p:#010x}" for p in self.only_ledger[:32]],
                "only_walk": [f"{p:#010x}" for p in self.only_walk[:32]],
                "only_ledger_count": len(self.only_ledger), "only_walk_count": len(self.only_walk)}


def crosscheck_walk(walked: dict[int, LiveBlock], ledger: dict[int, LiveBlock]) -> WalkCheck:
    """Compare the live blocks a heap walk found with the ledger's (both keyed by user pointer). A block only the
    ledger has means a free the capture missed or a heap the walk does not cover; one only the walk has, an
    allocation the capture missed (or made before it attached)."""
    return WalkCheck(sorted(set(ledger) - set(walked)), sorted(set(walked) - set(ledger)))
