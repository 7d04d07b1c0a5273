"""Value types shared by the ledger, the heap walker, leak analysis, timeline and reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from memhil.events import AllocEvent, EventFlag


@dataclass(slots=True)
class LiveBlock:
    """A block allocated and not yet freed.

    ``seq`` and ``t_us`` are those of the event that allocated it (-1 and 0 when the block
    comes from a heap walk, which has no history). ``stack`` is the host-side call stack,
    ``lrs`` the link registers the firmware recorded in the node header.
    """

    ptr: int
    size: int
    node_size: int
    module: int = 0
    task: int = 0
    seq: int = -1
    t_us: int = 0
    stack: tuple[int, ...] = ()
    lrs: tuple[int, ...] = ()
    flags: EventFlag = EventFlag.NONE

    @property
    def bytes(self) -> int:
        """Bytes this block costs the pool (its node size, or the requested size without nodes)."""
        return self.node_size or self.size

    @property
    def tracked(self) -> bool:
        return not self.flags & EventFlag.UNTRACKED

    @property
    def callers(self) -> tuple[int, ...]:
        """The best call stack known: the host-unwound one, else the firmware-recorded LRs."""
        return self.stack or self.lrs

    @classmethod
    def from_event(cls, ev: AllocEvent) -> "LiveBlock":
        return cls(ev.ptr, ev.size, ev.node_size, ev.module, ev.task, ev.seq, ev.t_us, ev.stack, ev.lrs, ev.flags)


@dataclass(slots=True)
class UsageStat:
    """Current and peak bytes, live blocks, and counts of allocations and frees."""

    current: int = 0
    peak: int = 0
    blocks: int = 0
    allocs: int = 0
    frees: int = 0

    def add(self, nbytes: int) -> None:
        self.current += nbytes
        self.blocks += 1
        self.allocs += 1
        if self.current > self.peak:
            self.peak = self.current

    def sub(self, nbytes: int) -> None:
        self.current -= nbytes
        self.blocks -= 1
        self.frees += 1

    def copy(self) -> "UsageStat":
        return UsageStat(self.current, self.peak, self.blocks, self.allocs, self.frees)


@dataclass
class Snapshot:
    """The live blocks at one instant, from the ledger or from a heap walk.

    ``source`` says which ("ledger", "walk"); ``modules`` maps module id to current bytes, and is None when
    the source has no module ids (a heap walk of a build without LOSCFG_MEM_MUL_MODULE).
    """

    name: str
    t_us: int
    blocks: dict[int, LiveBlock]
    source: str = "ledger"
    modules: dict[int, int] | None = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(b.bytes for b in self.blocks.values())

    def module_used(self, module: int) -> int:
        if self.modules is None:
            from memhil.errors import ConfigError

            raise ConfigError(
                f"snapshot {self.name!r} has no module ids (its heap nodes carry none: built without LOSCFG_MEM_MUL_MODULE)",
                hint="build with LOSCFG_MEM_MUL_MODULE, or use capture=hooks with the module API (the host then knows each call's module)",
            )
        if self.modules:
            return self.modules.get(module, 0)
        return sum(b.bytes for b in self.blocks.values() if b.module == module)
