"""Where the patched hooks' code and ring go: flash and RAM the firmware does not use.

Flash: the board's flash region minus everything the ELF loads there (each PT_LOAD segment's load address,
``paddr``/``filesz``, and its run address when it runs from flash); the code goes at the top of the largest gap.
RAM, in order of preference:

1. a region the caller names (``ram=(base, size)``: a platform's or a user's scratch area);
2. the board's core-coupled memory (a RAM region named ``ccm``) when the emulator maps it (QEMU 8.0 and later,
   not QEMU 7.2: ``engine.missing_regions``) and no segment of the ELF uses it;
3. RAM the emulator maps right after one of the board's RAM regions, beyond the chip's size (QEMU 7.2 gives the
   netduinoplus2 192 KiB of SRAM where the STM32F405 has 128 KiB): a firmware linked for the board never
   touches it. Found by writing a word there and reading it back (``probe``: an emulator may answer reads of
   unmapped addresses with zeros, as Renode does), never assumed;
4. the SRAM between the end of the allocator's pool (``__heap_end``) and the lowest address of the main stack
   (``_sstack``): the linker script reserves the main stack at the top of SRAM and the pool below it, so the
   gap between them is left alone by the firmware.

Areas already handed out on the same target (``taken``: the engine's ``scratch_taken``, where the patched hooks and
the engine's tick stop record theirs) are left out of every candidate, so two users never share bytes.

No room is a :class:`~memhil.errors.CaptureError` that says how many bytes were needed and what was found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from memhil.errors import CaptureError, MemhilError

if TYPE_CHECKING:
    from memhil.elf import Image

HEAP_END_SYMBOLS = ("__heap_end", "__HeapLimit")
STACK_LIMIT_SYMBOLS = ("_sstack", "__StackLimit")


@dataclass(frozen=True)
class Area:
    """``size`` bytes at ``base``; ``what`` says where they came from (for messages)."""

    base: int
    size: int
    what: str

    @property
    def end(self) -> int:
        return self.base + self.size


def _used_ranges(image: Image, lo: int, hi: int) -> list[tuple[int, int]]:
    out = []
    for seg in image.load_segments:
        for start, size in ((seg.paddr, seg.filesz), (seg.vaddr, seg.memsz)):
            if size and start < hi and lo < start + size:
                out.append((max(start, lo), min(start + size, hi)))
    return sorted(out)


def _gaps(lo: int, hi: int, used: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of [lo, hi) no ``used`` range covers (ranges reaching outside it are cut to it)."""
    gaps, pos = [], lo
    for start, end in sorted(used):
        start, end = max(start, lo), min(end, hi)
        if start >= end:
            continue
        if start > pos:
            gaps.append((pos, start))
        pos = max(pos, end)
    if pos < hi:
        gaps.append((pos, hi))
    return gaps


def _free(area: Area, taken: Iterable[Area]) -> list[Area]:
    """The parts of ``area`` no ``taken`` area overlaps, lowest first."""
    return [Area(start, end - start, area.what) for start, end in _gaps(area.base, area.end, [(t.base, t.end) for t in taken])]


def find_flash(image: Image, platform, size: int, *, align: int = 64, taken: Iterable[Area] = (),
               score: Callable[[int], int] | None = None) -> Area:
    """``size`` bytes of flash no segment uses (nor ``taken``), at the top of the largest free gap; with ``score``,
    at the ``align``ed base in that gap it scores lowest (the highest of those that tie)."""
    flash = [r for r in platform.regions if r.kind == "flash"]
    if not flash:
        raise CaptureError(f"platform {platform.name} names no flash region for the hook code",
                           hint="add a [[memory]] region named flash to its platform.toml, or use capture=breakpoints")
    taken = list(taken)
    best: tuple[int, int] | None = None
    for region in flash:
        used = _used_ranges(image, region.base, region.end) + [(t.base, t.end) for t in taken]
        for start, end in _gaps(region.base, region.end, used):
            if best is None or end - start > best[1] - best[0]:
                best = (start, end)
    need = -(-size // align) * align
    if best is None or best[1] - best[0] < need + align:
        free = 0 if best is None else best[1] - best[0]
        raise CaptureError(f"no room in flash for the hook code: {size} bytes needed, the largest unused gap is {free} bytes",
                           hint="leave some flash unused by the firmware, or use capture=breakpoints")
    base = (best[1] - need) // align * align
    if score is not None:
        base = min(range(base, best[0] - 1, -align), key=score)  # min keeps the first (highest) of equals
    return Area(base, need, f"flash {base:#010x}-{base + need:#010x} (unused by the ELF)")


def _symbol(image: Image, names: tuple[str, ...]) -> int | None:
    for name in names:
        sym = image.find_symbol(name)
        if sym is not None:
            return sym.address
    return None


#: how far past a RAM region's end the emulator's own extra RAM is looked for, and in which steps
EXTRA_PROBE_MAX = 0x10000
EXTRA_PROBE_STEP = 0x1000


def _extra_ram(platform, region, probe: Callable[[int, int], object]) -> int:
    """Bytes the emulator maps right after ``region`` that no platform region claims (0 when none)."""
    size = 0
    while size < EXTRA_PROBE_MAX:
        start = region.end + size
        if platform.region_at(start) is not None:
            break
        try:
            if not probe(start + EXTRA_PROBE_STEP - 4, 4):
                break
        except MemhilError:
            break
        size += EXTRA_PROBE_STEP
    return size


def ram_candidates(image: Image, platform, missing: Iterable = (), probe: Callable[[int, int], object] | None = None) -> list[Area]:
    """Every RAM area the hooks may use, best first (see the module's docstring)."""
    out: list[Area] = []
    missing_names = {getattr(r, "name", r) for r in missing}
    for region in platform.regions:
        if region.name.lower() == "ccm" and region.name not in missing_names and not _used_ranges(image, region.base, region.end):
            out.append(Area(region.base, region.size, f"{region.name} {region.base:#010x}-{region.end:#010x} (unused by the ELF)"))
    if probe is not None:
        for region in platform.ram:
            if region.name in missing_names:
                continue
            extra = _extra_ram(platform, region, probe)
            if extra and not _used_ranges(image, region.end, region.end + extra):
                out.append(Area(region.end, extra, f"emulator RAM {region.end:#010x}-{region.end + extra:#010x} "
                                                   f"(past the board's {region.name}: no firmware for the board uses it)"))
    heap_end, stack_limit = _symbol(image, HEAP_END_SYMBOLS), _symbol(image, STACK_LIMIT_SYMBOLS)
    if heap_end is not None and stack_limit is not None and stack_limit > heap_end:
        base = -(-heap_end // 8) * 8
        if stack_limit > base:
            out.append(Area(base, stack_limit - base, f"SRAM {base:#010x}-{stack_limit:#010x} (between the heap's end and the main stack)"))
    return out


def writable(target) -> Callable[[int, int], bool]:
    """A probe for :func:`ram_candidates`: True when ``target`` keeps a word written at the address (restored after)."""
    def probe(address: int, size: int) -> bool:
        old = target.read_memory(address, 4)
        pattern = bytes(b ^ 0xA5 for b in old)
        target.write_memory(address, pattern)
        try:
            return target.read_memory(address, 4) == pattern
        finally:
            target.write_memory(address, old)

    return probe


def find_ram(image: Image, platform, size: int, *, missing: Iterable = (), explicit: tuple[int, int] | None = None,
             minimum: int | None = None, probe: Callable[[int, int], object] | None = None, taken: Iterable[Area] = ()) -> Area:
    """The first candidate area of at least ``minimum`` bytes (``size`` when None) outside ``taken``, cut to at most
    ``size``."""
    minimum = size if minimum is None else minimum
    taken = list(taken)
    if explicit is not None:
        base, length = explicit
        # the largest part of it not in use on this target already (all of it, as a rule)
        free = max(_free(Area(base, length, ""), taken), key=lambda a: a.size, default=Area(base, 0, ""))
        base, length = free.base, free.size
        if length < minimum:
            raise CaptureError(f"the scratch RAM given ({length} bytes at {base:#010x}) is smaller than the {minimum} bytes the hook ring needs",
                               hint="give a larger area, or fewer stack words per record (stack_words)")
        return Area(base, min(length, size), f"scratch RAM {base:#010x}-{base + length:#010x} (given)")
    candidates = [piece for area in ram_candidates(image, platform, missing, probe) for piece in _free(area, taken)]
    for area in candidates:
        if area.size >= minimum:
            return Area(area.base, min(area.size, size), area.what)
    found = "; ".join(f"{a.what}: {a.size} bytes" for a in candidates) or "none"
    raise CaptureError(
        f"no unused RAM for the hook ring: at least {minimum} bytes needed, found {found}",
        hint="run on an emulator with the board's CCM (MEMHIL_QEMU=QEMU 8.0 or later), leave a gap between the heap "
             "and the main stack, pass a scratch area (ram=(base, size)), use fewer stack_words, or use capture=breakpoints",
    )
