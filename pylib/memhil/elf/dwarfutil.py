"""Small DWARF helpers shared by the line and type indexes.

- file names of a compilation unit's line-program header (DWARF 4 section 6.2.4: 1-based file and
  directory indexes, directory 0 = the CU's comp_dir; DWARF 5 section 6.2.4.1: 0-based, entry 0 = the
  primary file / comp_dir),
- the address ranges of a DIE (DWARF 4 section 2.17: DW_AT_low_pc with DW_AT_high_pc as address or as
  offset (class constant), or DW_AT_ranges into .debug_ranges / DWARF 5 .debug_rnglists).
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elftools.dwarf.compileunit import CompileUnit
    from elftools.dwarf.die import DIE
    from elftools.dwarf.dwarfinfo import DWARFInfo


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class CuFiles:
    """File-table of one CU's line program, resolved to full paths (as ``addr2line`` prints them)."""

    def __init__(self, dwarf: DWARFInfo, cu: CompileUnit) -> None:
        top = cu.get_top_DIE()
        comp_dir = _text(top.attributes["DW_AT_comp_dir"].value) if "DW_AT_comp_dir" in top.attributes else ""
        self.comp_dir = comp_dir
        self.name = _text(top.attributes["DW_AT_name"].value) if "DW_AT_name" in top.attributes else ""
        self.lineprog = dwarf.line_program_for_CU(cu)
        self.files: list[str] = []
        self.base = 1
        if self.lineprog is None:
            return
        header = self.lineprog.header
        version = header["version"]
        dirs = [_text(d) for d in header["include_directory"]]
        if version >= 5:
            self.base = 0
        else:
            dirs = [comp_dir, *dirs]
        for entry in header["file_entry"]:
            name = _text(entry.name)
            d = dirs[entry.dir_index] if 0 <= entry.dir_index < len(dirs) else ""
            if d and not posixpath.isabs(d) and comp_dir:
                d = posixpath.join(comp_dir, d)
            self.files.append(posixpath.normpath(posixpath.join(d, name)) if d else name)

    def file(self, index: int) -> str | None:
        i = index - self.base
        if 0 <= i < len(self.files):
            return self.files[i]
        return None


def die_ranges(dwarf: DWARFInfo, die: DIE) -> list[tuple[int, int]]:
    """Address ranges ``[lo, hi)`` covered by a DIE (empty when it has none)."""
    attrs = die.attributes
    if "DW_AT_low_pc" in attrs and "DW_AT_high_pc" in attrs:
        lo = attrs["DW_AT_low_pc"].value
        high = attrs["DW_AT_high_pc"]
        hi = high.value if high.form == "DW_FORM_addr" else lo + high.value
        return [(lo, hi)] if hi > lo else []
    if "DW_AT_ranges" not in attrs:
        return []
    rl = dwarf.range_lists()
    if rl is None:
        return []
    cu = die.cu
    attr = attrs["DW_AT_ranges"]
    offset = attr.value
    if attr.form == "DW_FORM_rnglistx":
        top = cu.get_top_DIE()
        base_attr = top.attributes.get("DW_AT_rnglists_base")
        base = base_attr.value if base_attr is not None else 12
        offset_size = 8 if cu.structs.dwarf_format == 64 else 4
        raw = dwarf.debug_rnglists_sec.stream
        raw.seek(base + offset * offset_size)
        rel = int.from_bytes(raw.read(offset_size), "little" if dwarf.config.little_endian else "big")
        offset = base + rel
    top = cu.get_top_DIE()
    base_addr = top.attributes["DW_AT_low_pc"].value if "DW_AT_low_pc" in top.attributes else 0
    out: list[tuple[int, int]] = []
    try:
        entries = rl.get_range_list_at_offset(offset, cu=cu)
    except TypeError:  # DWARF <= 4 RangeLists takes no cu
        entries = rl.get_range_list_at_offset(offset)
    for entry in entries:
        if hasattr(entry, "base_address"):
            base_addr = entry.base_address
            continue
        if getattr(entry, "is_absolute", False):
            lo, hi = entry.begin_offset, entry.end_offset
        else:
            lo, hi = base_addr + entry.begin_offset, base_addr + entry.end_offset
        if hi > lo:
            out.append((lo, hi))
    return out


def die_name(die: DIE, _depth: int = 0) -> str | None:
    """DW_AT_name, following DW_AT_abstract_origin / DW_AT_specification (inlined and out-of-line copies)."""
    attrs = die.attributes
    if "DW_AT_name" in attrs:
        return _text(attrs["DW_AT_name"].value)
    if _depth > 4:
        return None
    for ref in ("DW_AT_abstract_origin", "DW_AT_specification"):
        if ref in attrs:
            return die_name(die.get_DIE_from_attribute(ref), _depth + 1)
    return None
