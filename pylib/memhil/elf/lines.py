"""Address to function, file and line, with inlined frames: one index per image.

Implements lookups over the DWARF line-number program (DWARF 4 section 6.2, DWARF 5 section 6.2) and
the subprogram / inlined-subroutine tree (DWARF 4 section 3.3 and 3.3.8.2: DW_TAG_inlined_subroutine
with DW_AT_call_file / DW_AT_call_line). Everything is read once into sorted arrays and searched with
bisect; no DIE is rescanned per lookup.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .dwarfutil import CuFiles, die_name, die_ranges

if TYPE_CHECKING:
    from elftools.dwarf.die import DIE
    from elftools.dwarf.dwarfinfo import DWARFInfo

log = logging.getLogger("memhil.trace.elf")


@dataclass(frozen=True)
class Frame:
    """One (possibly inlined) frame of a symbolized address."""

    address: int
    function: str | None
    file: str | None
    line: int | None
    inlined: bool = False
    offset: int | None = None  # address - function start, when only the symbol table is known

    def __str__(self) -> str:
        if self.function is None:
            return f"{self.address:#010x}"
        if self.file is not None and self.line is not None:
            return f"{self.function} ({self.file}:{self.line})"
        if self.offset:
            return f"{self.function}+{self.offset:#x}"
        return self.function


@dataclass(frozen=True)
class _Inline:
    lo: int
    hi: int
    depth: int
    name: str | None
    call_file: str | None
    call_line: int | None


@dataclass
class _Function:
    lo: int
    hi: int
    name: str | None
    inlines: list[_Inline]


class LineTable:
    """address -> (file, line) and address -> function/inlined frames, built once from DWARF."""

    def __init__(self, dwarf: DWARFInfo) -> None:
        self._files: list[str] = []
        file_ids: dict[str, int] = {}
        rows: list[tuple[int, int, int, int]] = []  # (address, order, file id or -1 for end, line)
        funcs: list[_Function] = []
        self.comp_dirs: list[str] = []
        order = 0
        for cu in dwarf.iter_CUs():
            files = CuFiles(dwarf, cu)
            if files.comp_dir:
                self.comp_dirs.append(files.comp_dir)
            if files.lineprog is not None:
                for entry in files.lineprog.get_entries():
                    state = entry.state
                    if state is None:
                        continue
                    order += 1
                    if state.end_sequence:
                        rows.append((state.address, order, -1, 0))
                        continue
                    name = files.file(state.file) or "??"
                    fid = file_ids.get(name)
                    if fid is None:
                        fid = file_ids[name] = len(self._files)
                        self._files.append(name)
                    rows.append((state.address, order, fid, state.line))
            self._collect_functions(dwarf, cu.get_top_DIE(), files, funcs)
        # at one address an end-of-sequence marker sorts before rows that start a new sequence;
        # among real rows at one address the last one emitted wins (as addr2line does)
        rows.sort(key=lambda r: (r[0], 0 if r[2] < 0 else 1, r[1]))
        self._addrs = [r[0] for r in rows]
        self._fids = [r[2] for r in rows]
        self._line_nos = [r[3] for r in rows]
        funcs.sort(key=lambda f: (f.lo, -f.hi))
        self._funcs = funcs
        self._func_starts = [f.lo for f in funcs]
        log.debug("line table: %d rows, %d functions, %d files", len(rows), len(funcs), len(self._files))

    # ------------------------------------------------------------------ building

    def _collect_functions(self, dwarf: DWARFInfo, top: DIE, files: CuFiles, out: list[_Function]) -> None:
        stack = list(top.iter_children())
        while stack:
            die = stack.pop()
            if die.tag == "DW_TAG_subprogram":
                ranges = die_ranges(dwarf, die)
                if not ranges:
                    continue
                inlines: list[_Inline] = []
                self._collect_inlines(dwarf, die, files, 0, inlines)
                name = die_name(die)
                for lo, hi in ranges:
                    out.append(_Function(lo, hi, name, [i for i in inlines if i.lo < hi and i.hi > lo]))
            elif die.tag in ("DW_TAG_namespace", "DW_TAG_lexical_block"):
                stack.extend(die.iter_children())

    def _collect_inlines(self, dwarf: DWARFInfo, parent: DIE, files: CuFiles, depth: int, out: list[_Inline]) -> None:
        for child in parent.iter_children():
            if child.tag == "DW_TAG_inlined_subroutine":
                attrs = child.attributes
                call_file = files.file(attrs["DW_AT_call_file"].value) if "DW_AT_call_file" in attrs else None
                call_line = attrs["DW_AT_call_line"].value if "DW_AT_call_line" in attrs else None
                name = die_name(child)
                for lo, hi in die_ranges(dwarf, child):
                    out.append(_Inline(lo, hi, depth + 1, name, call_file, call_line))
                self._collect_inlines(dwarf, child, files, depth + 1, out)
            elif child.tag == "DW_TAG_lexical_block":
                self._collect_inlines(dwarf, child, files, depth, out)

    # ------------------------------------------------------------------ lookups

    @property
    def files(self) -> list[str]:
        return list(self._files)

    def __len__(self) -> int:
        return len(self._addrs)

    def line_at(self, addr: int) -> tuple[str, int] | None:
        """(file, line) of the row covering ``addr``, or None outside every sequence."""
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0 or self._fids[i] < 0:
            return None
        return self._files[self._fids[i]], self._line_nos[i]

    def function_at(self, addr: int) -> _Function | None:
        i = bisect.bisect_right(self._func_starts, addr) - 1
        # C functions do not overlap; a few ranges may share a start (cold parts, aliases): look back a little
        for j in range(i, max(i - 8, -1), -1):
            if self._funcs[j].lo <= addr < self._funcs[j].hi:
                return self._funcs[j]
        return None

    def frames(self, addr: int) -> list[Frame]:
        """Frames at ``addr``, innermost (possibly inlined) first, the containing function last.

        The innermost frame's file:line come from the line table; each outer frame's come from the
        call site (DW_AT_call_file/line) of the inlined subroutine just inside it. Empty when DWARF
        knows no function at ``addr`` (the caller may fall back to the symbol table).
        """
        loc = self.line_at(addr)
        func = self.function_at(addr)
        if func is None:
            if loc is None:
                return []
            return [Frame(addr, None, loc[0], loc[1])]
        chain = sorted((i for i in func.inlines if i.lo <= addr < i.hi), key=lambda i: -i.depth)
        out: list[Frame] = []
        file, line = (loc if loc is not None else (None, None))
        for inl in chain:
            out.append(Frame(addr, inl.name, file, line, inlined=True))
            file, line = inl.call_file, inl.call_line
        out.append(Frame(addr, func.name, file, line, inlined=False, offset=addr - func.lo))
        return out
