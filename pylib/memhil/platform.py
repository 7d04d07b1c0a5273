"""Boards: ``platforms/<board>/platform.toml`` plus the Renode ``.repl`` beside it.

``platform.toml`` holds the engine-neutral facts (QEMU machine, console and trace
UARTs, SysTick clock); the memory map is read from the ``.repl`` so that both
engines see one description, and is cross-checked against the map the TOML states.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

from memhil.errors import PlatformError

#: Where the boards that ship with memhil live (the repository's ``platforms/``).
PLATFORMS_DIR = Path(os.environ.get("MEMHIL_PLATFORMS", Path(__file__).resolve().parents[2] / "platforms"))


@dataclass(frozen=True)
class Region:
    name: str
    base: int
    size: int
    kind: str = "ram"  # "ram" or "flash"

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, start: int, size: int) -> bool:
        return self.base <= start and start + size <= self.end


@dataclass(frozen=True)
class Uart:
    name: str
    base: int
    qemu_serial: int  # index of QEMU's -serial option this UART is wired to
    type: str = ""  # the .repl's peripheral type, e.g. UART.STM32_UART


@dataclass(frozen=True)
class ReplEntry:
    name: str
    type: str
    address: int | None
    size: int | None
    props: dict[str, str] = field(default_factory=dict)
    line: int = 0


class _Segment(Protocol):
    vaddr: int
    paddr: int
    memsz: int
    filesz: int


@dataclass(frozen=True)
class Platform:
    name: str
    directory: Path
    description: str
    qemu_machine: str
    cpu: str
    systick_hz: int
    regions: tuple[Region, ...]
    console: Uart
    trace_uart: Uart | None
    repl: Path
    resc: Path | None
    #: SysTick's reference clock (CLKSOURCE=0 input, ARM ARMv7-M B3.3.3); 0 when the engines provide none
    systick_ref_hz: int = 0

    @classmethod
    def load(cls, name_or_dir: str | os.PathLike[str]) -> "Platform":
        """Load a board by name (``stm32f4``) or by directory."""
        directory = Path(name_or_dir)
        if not (directory / "platform.toml").is_file():
            directory = PLATFORMS_DIR / str(name_or_dir)
        toml_path = directory / "platform.toml"
        if not toml_path.is_file():
            known = sorted(p.name for p in PLATFORMS_DIR.iterdir() if (p / "platform.toml").is_file()) if PLATFORMS_DIR.is_dir() else []
            raise PlatformError(
                f"unknown platform {str(name_or_dir)!r}",
                hint=f"use one of {', '.join(known) or '(none found)'} or a directory holding platform.toml",
                searched=str(PLATFORMS_DIR),
            )
        try:
            data = tomllib.loads(toml_path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PlatformError(f"cannot parse {toml_path}: {exc}", hint="fix the TOML syntax", path=str(toml_path)) from exc
        try:
            repl = directory / data["repl"]
            entries = parse_repl(repl)
            regions = tuple(_regions_from_repl(entries, repl))
            _cross_check(regions, data.get("memory", []), toml_path)
            uarts = {e.name: e for e in entries if e.type.split(".")[-1].endswith("UART")}
            console = _uart(data["console"], uarts, toml_path)
            trace = _uart(data["trace_uart"], uarts, toml_path) if "trace_uart" in data else None
            systick_hz, systick_ref_hz = _systick(data, entries, toml_path)
            return cls(
                name=data.get("name", directory.name),
                directory=directory,
                description=data.get("description", ""),
                qemu_machine=data["qemu"]["machine"],
                cpu=data["qemu"].get("cpu", "cortex-m4"),
                systick_hz=systick_hz,
                regions=regions,
                console=console,
                trace_uart=trace,
                repl=repl,
                resc=(directory / data["resc"]) if "resc" in data else None,
                systick_ref_hz=systick_ref_hz,
            )
        except KeyError as exc:
            raise PlatformError(f"{toml_path} lacks the key {exc}", hint="see platforms/stm32f4/platform.toml for the keys a board needs", path=str(toml_path)) from exc

    def region_at(self, address: int) -> Region | None:
        return next((r for r in self.regions if r.base <= address < r.end), None)

    @property
    def ram(self) -> tuple[Region, ...]:
        return tuple(r for r in self.regions if r.kind == "ram")

    def check_segments(self, segments: Iterable[_Segment], *, elf: str = "") -> None:
        """Raise :class:`PlatformError` if a loadable segment falls outside the memory map.

        The run address (``vaddr``, ``memsz`` bytes) and the load address (``paddr``,
        ``filesz`` bytes) must each lie inside one region.
        """
        for seg in segments:
            for what, start, size in (("runs at", seg.vaddr, seg.memsz), ("loads at", seg.paddr, seg.filesz)):
                if size and not any(r.contains(start, size) for r in self.regions):
                    regions = ", ".join(f"{r.name} {r.base:#010x}-{r.end:#010x}" for r in self.regions)
                    raise PlatformError(
                        f"firmware segment {what} {start:#010x}-{start + size:#010x} ({size} bytes), outside the memory of platform {self.name}",
                        hint=f"link the firmware for this board's memory ({regions}) or choose another platform",
                        elf=elf or None,
                    )


_ENTRY = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*:\s*(?P<type>[\w.]+)?\s*(?:@\s*(?P<bus>\w+)(?:\s+(?P<addr>.+))?)?\s*$")
_PROP = re.compile(r"^\s+(?P<key>[A-Za-z_]\w*)\s*:\s*(?P<value>.+?)\s*$")
_INT = r"(?:0x[0-9a-fA-F_]+|\d[\d_]*)"


def parse_repl(path: Path) -> list[ReplEntry]:
    """Read the peripherals of a Renode platform description (the subset boards use).

    Supports ``name: Type @ bus <addr>`` and ``<addr, +size>`` registrations,
    indented ``key: value`` properties, ``->`` IRQ lines and ``//`` comments.
    ``using`` imports are refused (a shared board must be self-contained).
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise PlatformError(f"cannot read platform description {path}: {exc.strerror}", hint="check the platform directory", path=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise PlatformError(f"platform description {path} is not text", hint="point repl= at a Renode .repl file", path=str(path)) from exc
    entries: list[ReplEntry] = []
    current: dict | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("//", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line[0].isspace():
            if line.startswith("using "):
                raise PlatformError(f"{path}:{lineno}: 'using' imports are not supported", hint="inline the peripherals so both engines read one file", path=str(path))
            match = _ENTRY.match(line)
            if not match:
                raise PlatformError(f"{path}:{lineno}: cannot read {raw.strip()!r}", hint="expected 'name: Type @ sysbus <address>'", path=str(path))
            address, size = _parse_addr(match["addr"], path, lineno)
            current = {"name": match["name"], "type": match["type"] or "", "address": address, "size": size, "props": {}, "line": lineno}
            entries.append(current)  # type: ignore[arg-type]
            continue
        if current is None:
            raise PlatformError(f"{path}:{lineno}: property before any peripheral", hint="indent properties under their peripheral", path=str(path))
        if "->" in line:  # IRQ wiring: engines take it from the board itself
            continue
        prop = _PROP.match(line)
        if not prop:
            raise PlatformError(f"{path}:{lineno}: cannot read property {raw.strip()!r}", hint="expected 'key: value'", path=str(path))
        current["props"][prop["key"]] = prop["value"].strip('"')
    result = []
    for e in entries:
        e = dict(e)  # type: ignore[call-overload]
        if e["size"] is None and "size" in e["props"]:
            e["size"] = _int(e["props"]["size"], path, e["line"])
        result.append(ReplEntry(**e))
    return result


def _parse_addr(text: str | None, path: Path, lineno: int) -> tuple[int | None, int | None]:
    if not text:
        return None, None
    text = text.strip()
    match = re.fullmatch(rf"<\s*({_INT})\s*,\s*\+\s*({_INT})\s*>", text)
    if match:
        return _int(match[1], path, lineno), _int(match[2], path, lineno)
    match = re.fullmatch(rf"<?\s*({_INT})\s*>?", text)
    if match:
        return _int(match[1], path, lineno), None
    # e.g. "@ nvic 37" style registrations on other buses: keep without address
    if re.fullmatch(r"\d+", text) or "{" in text:
        return None, None
    raise PlatformError(f"{path}:{lineno}: cannot read address {text!r}", hint="use 0x... or <0x..., +0x...>", path=str(path))


def _int(text: str, path: Path, lineno: int) -> int:
    try:
        return int(text.replace("_", ""), 0)
    except ValueError as exc:
        raise PlatformError(f"{path}:{lineno}: {text!r} is not a number", hint="use decimal or 0x hex", path=str(path)) from exc


def _regions_from_repl(entries: list[ReplEntry], repl: Path) -> Iterable[Region]:
    for e in entries:
        if e.type.endswith("MappedMemory"):
            if e.address is None or not e.size:
                raise PlatformError(f"{repl}:{e.line}: memory {e.name} lacks an address or size", hint="give '@ sysbus 0x...' and 'size: 0x...'", path=str(repl))
            yield Region(e.name, e.address, e.size, "flash" if "flash" in e.name.lower() else "ram")


def _cross_check(regions: tuple[Region, ...], stated: list[dict], toml_path: Path) -> None:
    by_name = {r.name: r for r in regions}
    for item in stated:
        region = by_name.get(item.get("name"))
        if region is None or region.base != int(item["base"]) or region.size != int(item["size"]):
            raise PlatformError(
                f"{toml_path}: memory {item.get('name')!r} disagrees with the .repl",
                hint="keep platform.toml's [[memory]] equal to the .repl's MappedMemory entries",
                stated=item,
                repl=by_name.get(item.get("name")),
            )


def _uart(spec: dict, uarts: dict[str, ReplEntry], toml_path: Path) -> Uart:
    entry = uarts.get(spec["name"])
    if entry is None or entry.address is None:
        raise PlatformError(f"{toml_path}: UART {spec['name']!r} is not in the .repl", hint=f"use one of {', '.join(uarts) or '(none)'}", path=str(toml_path))
    return Uart(spec["name"], entry.address, int(spec.get("qemu_serial", 0)), entry.type)


def _systick(data: dict, entries: list[ReplEntry], toml_path: Path) -> tuple[int, int]:
    """``(systick_hz, systick_ref_hz)``: the processor clock SysTick counts with CLKSOURCE=1 (the .repl's
    ``systickFrequency``, which platform.toml may repeat but not contradict) and the reference clock on
    CLKSOURCE=0 (ARM ARMv7-M B3.3.3), 0 when there is none. Both must be whole counts per millisecond:
    the firmware's tickless timer keeps uptime in whole milliseconds from them."""
    repl_hz = _systick_from_repl(entries)
    stated = data.get("systick_hz")
    ref = data.get("systick_ref_hz", 0)
    for key, value in (("systick_hz", stated), ("systick_ref_hz", ref)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0 or value % 1000):
            raise PlatformError(f"{toml_path}: {key} = {value!r} is not a whole number of kHz",
                                hint="give the clock in Hz as an integer multiple of 1000, e.g. 168000000", path=str(toml_path))
    if stated and repl_hz and stated != repl_hz:
        raise PlatformError(f"{toml_path}: systick_hz = {stated} disagrees with the .repl's systickFrequency {repl_hz}",
                            hint="keep platform.toml's systick_hz equal to the nvic's systickFrequency in the .repl",
                            path=str(toml_path), stated=stated, repl=repl_hz)
    hz = stated or repl_hz
    if ref and hz and ref > hz:
        raise PlatformError(f"{toml_path}: systick_ref_hz = {ref} is faster than the processor clock {hz}",
                            hint="the reference clock is a divided clock (HCLK/8 on the STM32F4); check the value", path=str(toml_path))
    return hz, ref


def _systick_from_repl(entries: list[ReplEntry]) -> int:
    for e in entries:
        if "systickFrequency" in e.props:
            return int(e.props["systickFrequency"].replace("_", ""), 0)
    return 0
