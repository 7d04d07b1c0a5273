"""A firmware ELF image: symbols, sections, load segments, build identity, and the DWARF behind them.

Implements the parts of the ELF specification (System V ABI, ARM ELF supplement "ELF for the Arm
Architecture") that memhil needs: the symbol table (STT_FUNC / STT_OBJECT, bit 0 of a Thumb function's
value is the Thumb bit; the ``$t``/``$d``/``$a`` mapping symbols, "ELF for the Arm Architecture" 5.5.5, apart in
:meth:`Image.data_ranges`), PT_LOAD program headers, and the GNU
build-id note. DWARF users (:mod:`.lines`, :mod:`.types`) are created lazily, once per image.

The file is read into memory at :meth:`Image.open` so that no file handle stays open and every later
lookup works on validated bytes.
"""

from __future__ import annotations

import bisect
import difflib
import hashlib
import io
import logging
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from elftools.common.exceptions import DWARFError, ELFError, ELFParseError
from elftools.elf.elffile import ELFFile

from ..errors import DebugInfoMissingError, ElfError, SymbolNotFoundError

if TYPE_CHECKING:
    from elftools.dwarf.dwarfinfo import DWARFInfo

    from .lines import LineTable
    from .types import StructLayout, TypeIndex

log = logging.getLogger("memhil.elf")

_ELF_MAGIC = b"\x7fELF"
_PARSE_ERRORS = (ELFError, ELFParseError, DWARFError, struct.error, ValueError, KeyError, IndexError, EOFError)
_STRIPPED_HINT = "build the firmware with -g and use the unstripped ELF (e.g. firmware/build/<board>/debug/<app>.elf)"


@dataclass(frozen=True)
class Symbol:
    """A symbol of the ELF symbol table. ``address`` has the Thumb bit cleared; ``thumb`` keeps it."""

    name: str
    address: int
    size: int
    kind: str  # "func" | "object" | "other"
    thumb: bool = False
    type_name: str | None = None  # DWARF type of a variable, when known (see Image.variable)
    binding: str = "global"  # "global" | "local" | "weak"

    @property
    def end(self) -> int:
        return self.address + self.size

    def contains(self, addr: int) -> bool:
        return self.address <= addr < self.address + self.size


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD program header: run address ``vaddr``, load address ``paddr``."""

    vaddr: int
    paddr: int
    memsz: int
    filesz: int
    flags: int
    offset: int = 0


@dataclass(frozen=True)
class Section:
    name: str
    addr: int
    size: int
    flags: int


class Image:
    """A parsed ARM ELF. Use :meth:`open`; indexes are built once, on first use."""

    def __init__(self, path: Path, data: bytes, elf: ELFFile) -> None:
        self.path = path
        self._data = data
        self._elf = elf
        self.load_segments: list[Segment] = []
        self.sections: list[Section] = []
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD":
                self.load_segments.append(
                    Segment(seg["p_vaddr"], seg["p_paddr"], seg["p_memsz"], seg["p_filesz"], seg["p_flags"], seg["p_offset"])
                )
        for sec in elf.iter_sections():
            if sec.name:
                self.sections.append(Section(sec.name, sec["sh_addr"], sec["sh_size"], sec["sh_flags"]))
        self._section_by_name = {s.name: s for s in self.sections}
        self._build_symbol_index()

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, path: str | Path) -> Image:
        """Open and validate an ARM ELF; raise :class:`ElfError` saying what is wrong and what to do."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ElfError(f"cannot read firmware file: {exc.strerror}", hint="check the path to the firmware ELF", path=str(path)) from exc
        if not data.startswith(_ELF_MAGIC):
            raise ElfError(
                "not an ELF file (no \\x7fELF magic)",
                hint="pass the linked firmware .elf, not a .bin/.hex image or a source file",
                path=str(path),
            )
        try:
            elf = ELFFile(io.BytesIO(data))
            machine = elf["e_machine"]
            _check_bounds(elf, len(data))
        except ElfError as exc:
            raise ElfError(exc.message, hint=exc.hint, path=str(path)) from exc
        except _PARSE_ERRORS as exc:
            raise ElfError(
                f"ELF file is truncated or corrupt ({exc})",
                hint="rebuild the firmware; the file may have been cut short while copying",
                path=str(path),
                size=len(data),
            ) from exc
        if machine != "EM_ARM":
            raise ElfError(
                f"ELF is for {machine}, not ARM (EM_ARM)",
                hint="pass the firmware built with arm-none-eabi-gcc, not a host program",
                path=str(path),
            )
        try:
            return cls(path, data, elf)
        except _PARSE_ERRORS as exc:
            raise ElfError(f"ELF file is corrupt ({exc})", hint="rebuild the firmware", path=str(path)) from exc

    # ------------------------------------------------------------------ identity

    @cached_property
    def build_id(self) -> str:
        """GNU build-id as hex (NT_GNU_BUILD_ID note), else ``sha256:`` + hash of the PT_LOAD bytes."""
        for sec in self._elf.iter_sections():
            if sec["sh_type"] == "SHT_NOTE":
                for note in sec.iter_notes():
                    if note["n_type"] == "NT_GNU_BUILD_ID" and note["n_name"] == "GNU":
                        return str(note["n_desc"])
        digest = hashlib.sha256()
        for seg in self.load_segments:
            digest.update(self._data[seg.offset : seg.offset + seg.filesz])
        return "sha256:" + digest.hexdigest()

    @property
    def entry(self) -> int:
        return int(self._elf["e_entry"]) & ~1

    # ------------------------------------------------------------------ symbols

    def _build_symbol_index(self) -> None:
        syms: list[Symbol] = []
        marks: list[tuple[int, str]] = []  # mapping symbols: (address, "t", "d" or "a")
        symtab = self._elf.get_section_by_name(".symtab")
        if symtab is not None:
            for s in symtab.iter_symbols():
                name = s.name
                stype = s["st_info"]["type"]
                if name[:2] in ("$t", "$d", "$a") and name[2:3] in ("", "."):
                    marks.append((int(s["st_value"]), name[1]))
                    continue
                if not name or stype in ("STT_SECTION", "STT_FILE") or name.startswith("$"):
                    continue
                if s["st_shndx"] == "SHN_UNDEF":
                    continue
                value = int(s["st_value"])
                kind = {"STT_FUNC": "func", "STT_OBJECT": "object"}.get(stype, "other")
                thumb = kind == "func" and bool(value & 1)
                binding = {"STB_LOCAL": "local", "STB_WEAK": "weak"}.get(s["st_info"]["bind"], "global")
                syms.append(Symbol(name, value & ~1 if kind == "func" else value, int(s["st_size"]), kind, thumb, None, binding))
        self._symbols = syms
        self._marks = sorted(set(marks))
        self._by_name: dict[str, Symbol] = {}
        rank = {"global": 0, "weak": 1, "local": 2}
        for sym in syms:
            old = self._by_name.get(sym.name)
            if old is None or rank[sym.binding] < rank[old.binding]:
                self._by_name[sym.name] = sym
        # address index: one symbol per start address (func beats object beats other, sized beats unsized)
        best: dict[int, Symbol] = {}
        for sym in syms:
            if sym.kind == "other":
                continue
            old = best.get(sym.address)
            if old is None or _sym_pref(sym) < _sym_pref(old):
                best[sym.address] = sym
        starts = sorted(best)
        ends: list[int] = []
        for i, start in enumerate(starts):
            sym = best[start]
            end = sym.end
            if sym.size == 0 and sym.kind == "func":  # assembly label without .size: up to the next symbol
                end = starts[i + 1] if i + 1 < len(starts) else self._section_end(start)
            ends.append(end)
        self._addr_starts = starts
        self._addr_ends = ends
        self._addr_syms = [best[s] for s in starts]

    def _section_end(self, addr: int) -> int:
        for sec in self.sections:
            if sec.addr <= addr < sec.addr + sec.size:
                return sec.addr + sec.size
        return addr + 2

    def data_ranges(self, lo: int, hi: int) -> list[tuple[int, int]] | None:
        """The parts of [lo, hi) that its mapping symbols mark as data (``$d``: literal pools, jump tables) up to the
        next ``$t``/``$a``, for a decoder that must not take data for instructions; None when the ELF has no
        mapping symbols (stripped of its local symbols), so nothing there can be told apart."""
        if not self._marks:
            return None
        out: list[tuple[int, int]] = []
        i = bisect.bisect_right(self._marks, (lo, "~")) - 1  # the mark in force at lo
        start = lo if i >= 0 and self._marks[i][1] == "d" else None
        for addr, kind in self._marks[max(i + 1, 0):]:
            if addr >= hi:
                break
            if kind == "d" and start is None:
                start = addr
            elif kind != "d" and start is not None:
                out.append((start, addr))
                start = None
        if start is not None:
            out.append((start, hi))
        return out

    def symbols(self) -> list[Symbol]:
        """Every named function/object/other symbol (mapping symbols, sections and files excluded)."""
        return list(self._symbols)

    def find_symbol(self, name: str) -> Symbol | None:
        return self._by_name.get(name)

    def symbol(self, name: str) -> Symbol:
        """The symbol called ``name``; :class:`SymbolNotFoundError` lists near matches."""
        sym = self._by_name.get(name)
        if sym is None:
            near = difflib.get_close_matches(name, list(self._by_name), n=5, cutoff=0.6)
            raise SymbolNotFoundError(
                f"symbol {name!r} is not in the ELF" + (f"; did you mean {', '.join(near)}?" if near else ""),
                hint="check the spelling, and that the function is not static-inlined away or garbage-collected by the linker",
                path=str(self.path),
                near=near or None,
            )
        return sym

    def symbol_at(self, addr: int) -> Symbol | None:
        """The function or object containing ``addr`` (Thumb bit ignored), or None."""
        i = bisect.bisect_right(self._addr_starts, addr) - 1
        if i >= 0 and addr < self._addr_ends[i]:
            return self._addr_syms[i]
        a = addr & ~1
        if a != addr:
            return self.symbol_at(a)
        return None

    def variable(self, name: str) -> Symbol:
        """A global variable (object symbol), with its DWARF type name when debug info has it."""
        sym = self._by_name.get(name)
        if sym is None or sym.kind != "object":
            objects = [s.name for s in self._symbols if s.kind == "object"]
            near = difflib.get_close_matches(name, objects, n=5, cutoff=0.6)
            what = "is not a variable (object symbol)" if sym is not None else "is not in the ELF"
            raise SymbolNotFoundError(
                f"variable {name!r} {what}" + (f"; did you mean {', '.join(near)}?" if near else ""),
                hint="check the spelling; a static variable optimised away has no symbol",
                path=str(self.path),
            )
        if self.has_dwarf:
            type_name = self.types.variable_type(name)
            if type_name is not None:
                return Symbol(sym.name, sym.address, sym.size, sym.kind, sym.thumb, type_name, sym.binding)
        return sym

    # ------------------------------------------------------------------ bytes

    def read(self, addr: int, size: int) -> bytes:
        """Bytes at a link address, from the file. Run (vaddr) and load (paddr) addresses both work;
        the zero-initialised tail of a segment (.bss) reads as zeros."""
        if size < 0:
            raise ElfError(f"negative read size {size}", hint="pass a byte count >= 0")
        for attr in ("vaddr", "paddr"):
            for seg in self.load_segments:
                base = getattr(seg, attr)
                if base <= addr and addr + size <= base + max(seg.memsz, seg.filesz):
                    rel = addr - base
                    file_part = self._data[seg.offset + rel : seg.offset + min(rel + size, seg.filesz)] if rel < seg.filesz else b""
                    return file_part + bytes(size - len(file_part))
        raise ElfError(
            f"address range {addr:#010x}+{size} is not inside one loadable segment",
            hint="read from flash/initialised RAM addresses of this ELF; other memory only exists in the running target",
            path=str(self.path),
        )

    # ------------------------------------------------------------------ DWARF

    @cached_property
    def has_dwarf(self) -> bool:
        sec = self._section_by_name.get(".debug_info")
        return sec is not None and sec.size > 0

    @cached_property
    def has_cfi(self) -> bool:
        return any(self._section_by_name.get(n) is not None and self._section_by_name[n].size > 0 for n in (".debug_frame", ".eh_frame"))

    def require_dwarf(self, what: str) -> None:
        if not self.has_dwarf:
            raise DebugInfoMissingError(
                f"the ELF has no DWARF debug info, so {what} are not available",
                hint=_STRIPPED_HINT,
                path=str(self.path),
            )

    @cached_property
    def dwarf(self) -> DWARFInfo:
        """The pyelftools DWARFInfo (parsed once). Needs .debug_info or .debug_frame."""
        if not (self.has_dwarf or self.has_cfi):
            self.require_dwarf("DWARF sections")
        try:
            return self._elf.get_dwarf_info(relocate_dwarf_sections=False)
        except _PARSE_ERRORS as exc:
            raise ElfError(f"DWARF debug info is corrupt ({exc})", hint="rebuild the firmware", path=str(self.path)) from exc

    @cached_property
    def types(self) -> TypeIndex:
        from .types import TypeIndex

        self.require_dwarf("struct layouts")
        return TypeIndex(self.dwarf, path=str(self.path))

    @cached_property
    def lines(self) -> LineTable:
        from .lines import LineTable

        self.require_dwarf("file:line information")
        return LineTable(self.dwarf)

    def struct_layout(self, name: str) -> StructLayout:
        """Layout of a struct/union by typedef name or tag (``"LosMemCtlNode"``, ``"struct foo"``)."""
        self.require_dwarf("struct layouts")
        return self.types.struct_layout(name)

    def __repr__(self) -> str:
        return f"Image({str(self.path)!r}, dwarf={self.has_dwarf})"


def _sym_pref(sym: Symbol) -> tuple[int, int, int]:
    return ({"func": 0, "object": 1}.get(sym.kind, 2), 0 if sym.size else 1, {"global": 0, "weak": 1, "local": 2}[sym.binding])


def _check_bounds(elf: ELFFile, size: int) -> None:
    """Reject truncated files up front, so later lookups never hit the end of the data."""
    hdr = elf.header
    if hdr["e_shoff"] and hdr["e_shoff"] + hdr["e_shnum"] * hdr["e_shentsize"] > size:
        raise ElfError(
            f"ELF is truncated: section headers end at {hdr['e_shoff'] + hdr['e_shnum'] * hdr['e_shentsize']} but the file has {size} bytes",
            hint="rebuild the firmware; the file was cut short",
        )
    if hdr["e_phoff"] + hdr["e_phnum"] * hdr["e_phentsize"] > size:
        raise ElfError("ELF is truncated: program headers run past the end of the file", hint="rebuild the firmware")
    for sec in elf.iter_sections():
        if sec["sh_type"] != "SHT_NOBITS" and sec["sh_offset"] + sec["sh_size"] > size:
            raise ElfError(
                f"ELF is truncated: section {sec.name or '?'} runs past the end of the file ({sec['sh_offset'] + sec['sh_size']} > {size} bytes)",
                hint="rebuild the firmware; the file was cut short",
            )
    for seg in elf.iter_segments():
        if seg["p_offset"] + seg["p_filesz"] > size:
            raise ElfError("ELF is truncated: a loadable segment runs past the end of the file", hint="rebuild the firmware")
