"""The target memory map: regions with address range, permissions, size and bytes used."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

#: what a region holds; ``free`` is memory of the platform no section, pool or stack occupies
KINDS = ("vectors", "text", "rodata", "load", "data", "bss", "heap", "stack", "section", "free")


@dataclass
class MapRegion:
    """One line of the map. ``used`` is None when it is not known (no run, or not measurable)."""

    name: str
    start: int
    size: int
    perms: str  # "r-x" | "r--" | "rw-"
    kind: str
    memory: str  # the platform region it lies in ("flash", "sram"), "?" when outside every one
    used: int | None = None
    note: str = ""
    detail: dict = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.start + self.size

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TargetMap:
    """Every region of one firmware on one platform, sorted by address, plus what could not be found."""

    elf: str
    platform: str
    regions: list[MapRegion]
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measured: bool = False
    memories: list[tuple[str, int, int, str]] = field(default_factory=list)  # (name, base, size, kind)

    def region(self, name: str) -> MapRegion:
        for r in self.regions:
            if r.name == name:
                return r
        from memhil.errors import ConfigError

        raise ConfigError(f"the map has no region {name!r}", hint=f"known: {', '.join(r.name for r in self.regions)}")

    def by_kind(self, kind: str) -> list[MapRegion]:
        return [r for r in self.regions if r.kind == kind]

    def as_dict(self) -> dict:
        return {
            "elf": self.elf, "platform": self.platform, "measured": self.measured,
            "missing": list(self.missing), "notes": list(self.notes),
            "memories": [list(m) for m in self.memories],
            "regions": [r.as_dict() for r in self.regions],
        }
