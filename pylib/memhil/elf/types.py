"""Struct and union layouts from DWARF type DIEs.

Implements DWARF 4 section 5.5 (structure, union and class types; DW_TAG_member with
DW_AT_data_member_location, section 5.5.6) including bit fields in both encodings:

- DWARF 2/3 (and DWARF 4 producers that still emit it): DW_AT_byte_size + DW_AT_bit_offset, counted
  from the most significant bit of the storage unit;
- DWARF 4/5: DW_AT_data_bit_offset, counted from the start of the containing struct.

Both are converted to one little-endian convention (ARM is little-endian):
``value = (int.from_bytes(raw[offset:offset+size], "little") >> bit_offset) & ((1 << bit_size) - 1)``.

Members of anonymous unions/structs are flattened into the parent at absolute offsets; members of
named nested structs/unions appear both as ``outer`` and as ``outer.inner``. Arrays carry ``count``
(elements) and ``size`` (total bytes).

The name index is built once from each CU's top-level DIEs; layouts are computed per name on demand
and cached.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ElfError

if TYPE_CHECKING:
    from elftools.dwarf.die import DIE
    from elftools.dwarf.dwarfinfo import DWARFInfo

_AGGREGATES = ("DW_TAG_structure_type", "DW_TAG_union_type", "DW_TAG_class_type")
_QUALIFIERS = ("DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type", "DW_TAG_restrict_type", "DW_TAG_atomic_type")
_DW_OP_plus_uconst = 0x23


@dataclass(frozen=True)
class Member:
    """One member: byte ``offset`` from the start of the struct, ``size`` in bytes (storage unit for bit fields)."""

    name: str
    offset: int
    size: int
    type_name: str
    bit_offset: int | None = None
    bit_size: int | None = None
    count: int | None = None

    def extract(self, raw: bytes) -> int:
        """The member's integer value from the raw bytes of the whole struct (little-endian)."""
        value = int.from_bytes(raw[self.offset : self.offset + self.size], "little")
        if self.bit_size is not None:
            value = (value >> (self.bit_offset or 0)) & ((1 << self.bit_size) - 1)
        return value


@dataclass(frozen=True)
class StructLayout:
    name: str
    size: int
    members: dict[str, Member] = field(default_factory=dict)

    def member(self, name: str) -> Member:
        try:
            return self.members[name]
        except KeyError:
            near = difflib.get_close_matches(name, list(self.members), n=5, cutoff=0.5)
            raise ElfError(
                f"{self.name} has no member {name!r}" + (f"; did you mean {', '.join(near)}?" if near else ""),
                hint=f"members are: {', '.join(self.members)}",
                struct=self.name,
            ) from None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _uleb(data: list[int]) -> int:
    result = shift = 0
    for byte in data:
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return result


#: DW_OP_addr: a location expression that is a fixed address (static storage)
_DW_OP_ADDR = 0x03


def _static_locals(die: DIE):
    """Variables in static storage inside a function (``static`` locals, at a fixed address), its blocks included."""
    for child in die.iter_children():
        if child.tag == "DW_TAG_variable":
            loc = child.attributes.get("DW_AT_location")
            if loc is not None and isinstance(loc.value, list) and loc.value[:1] == [_DW_OP_ADDR]:
                yield child
        elif child.tag == "DW_TAG_lexical_block":
            yield from _static_locals(child)


class TypeIndex:
    """Named types and variables of all CUs, indexed once: globals, and a function's ``static`` locals by their own
    name (the symbol table calls them ``name.N``) where no global has that name."""

    def __init__(self, dwarf: DWARFInfo, *, path: str = "") -> None:
        self._path = path
        self._types: dict[str, DIE] = {}
        self._vars: dict[str, DIE] = {}
        self._cache: dict[str, StructLayout] = {}
        tags: dict[str, DIE] = {}
        local: dict[str, DIE] = {}  # static locals, behind any global of the same name
        for cu in dwarf.iter_CUs():
            for die in cu.get_top_DIE().iter_children():
                attrs = die.attributes
                if die.tag == "DW_TAG_variable":
                    name = _var_name(die)
                    if name and ("DW_AT_type" in attrs or "DW_AT_specification" in attrs):
                        if name not in self._vars or "DW_AT_declaration" in self._vars[name].attributes:
                            self._vars[name] = die
                    continue
                if die.tag == "DW_TAG_subprogram" and die.has_children:
                    for var in _static_locals(die):
                        if "DW_AT_name" in var.attributes and "DW_AT_type" in var.attributes:
                            local.setdefault(_text(var.attributes["DW_AT_name"].value), var)
                    continue
                if "DW_AT_name" not in attrs or "DW_AT_declaration" in attrs:
                    continue
                name = _text(attrs["DW_AT_name"].value)
                if die.tag == "DW_TAG_typedef":
                    self._types.setdefault(name, die)
                elif die.tag in _AGGREGATES:
                    kw = {"DW_TAG_structure_type": "struct", "DW_TAG_union_type": "union", "DW_TAG_class_type": "class"}[die.tag]
                    self._types.setdefault(f"{kw} {name}", die)
                    tags.setdefault(name, die)
        for tag, die in tags.items():  # a bare tag works too, unless a typedef has that name
            self._types.setdefault(tag, die)
        for name, die in local.items():
            self._vars.setdefault(name, die)

    def names(self) -> list[str]:
        return sorted(self._types)

    # ------------------------------------------------------------------ layouts

    def struct_layout(self, name: str) -> StructLayout:
        if name in self._cache:
            return self._cache[name]
        die = self._types.get(name)
        if die is None:
            aggregates = [n for n, d in self._types.items() if _strip(d) is not None and _strip(d).tag in _AGGREGATES]  # type: ignore[union-attr]
            near = difflib.get_close_matches(name, aggregates, n=5, cutoff=0.5)
            raise ElfError(
                f"no struct or union named {name!r} in the DWARF info" + (f"; did you mean {', '.join(near)}?" if near else ""),
                hint="use the typedef name or 'struct <tag>'; the type must be used by the firmware to be emitted",
                path=self._path or None,
            )
        target = _strip(die)
        if target is None or target.tag not in _AGGREGATES:
            raise ElfError(
                f"type {name!r} is a {type_name(die)!r}, not a struct or union",
                hint="ask for the struct's typedef or tag",
                path=self._path or None,
            )
        members: dict[str, Member] = {}
        _add_members(target, 0, "", members)
        layout = StructLayout(name, type_size(target), members)
        self._cache[name] = layout
        return layout

    def variable_type(self, name: str) -> str | None:
        die = self._vars.get(name)
        while die is not None and "DW_AT_type" not in die.attributes and "DW_AT_specification" in die.attributes:
            die = die.get_DIE_from_attribute("DW_AT_specification")
        if die is None or "DW_AT_type" not in die.attributes:
            return None
        return type_name(die.get_DIE_from_attribute("DW_AT_type"))


def _var_name(die: DIE) -> str | None:
    if "DW_AT_name" in die.attributes:
        return _text(die.attributes["DW_AT_name"].value)
    if "DW_AT_specification" in die.attributes:
        return _var_name(die.get_DIE_from_attribute("DW_AT_specification"))
    return None


def _strip(die: DIE | None) -> DIE | None:
    """Follow typedefs and qualifiers to the underlying type (None for void)."""
    for _ in range(32):
        if die is None or die.tag not in _QUALIFIERS:
            return die
        die = die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in die.attributes else None
    return die


def _array_counts(die: DIE) -> list[int]:
    counts = []
    for sub in die.iter_children():
        if sub.tag != "DW_TAG_subrange_type":
            continue
        attrs = sub.attributes
        if "DW_AT_count" in attrs and isinstance(attrs["DW_AT_count"].value, int):
            counts.append(attrs["DW_AT_count"].value)
        elif "DW_AT_upper_bound" in attrs and isinstance(attrs["DW_AT_upper_bound"].value, int):
            lower = attrs["DW_AT_lower_bound"].value if "DW_AT_lower_bound" in attrs else 0
            counts.append(attrs["DW_AT_upper_bound"].value - lower + 1)
        else:
            counts.append(0)  # flexible array member
    return counts or [0]


def type_size(die: DIE | None) -> int:
    """Size in bytes of a type DIE (DW_AT_byte_size, following typedefs; arrays = element * count)."""
    for _ in range(32):
        if die is None:
            return 0
        attrs = die.attributes
        if "DW_AT_byte_size" in attrs and isinstance(attrs["DW_AT_byte_size"].value, int):
            return attrs["DW_AT_byte_size"].value
        if die.tag == "DW_TAG_array_type":
            n = 1
            for c in _array_counts(die):
                n *= c
            return n * type_size(die.get_DIE_from_attribute("DW_AT_type"))
        if die.tag in ("DW_TAG_pointer_type", "DW_TAG_reference_type"):
            return die.cu["address_size"]
        if die.tag not in _QUALIFIERS or "DW_AT_type" not in attrs:
            return 0
        die = die.get_DIE_from_attribute("DW_AT_type")
    return 0


def type_name(die: DIE | None, _depth: int = 0) -> str:
    """A C-like spelling of a type DIE: ``UINT32``, ``struct foo *``, ``char[16]``."""
    if die is None:
        return "void"
    if _depth > 16:
        return "?"
    attrs = die.attributes
    name = _text(attrs["DW_AT_name"].value) if "DW_AT_name" in attrs else None
    inner = die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in attrs else None
    tag = die.tag
    if tag in ("DW_TAG_base_type", "DW_TAG_typedef", "DW_TAG_unspecified_type"):
        return name or "?"
    if tag in _AGGREGATES or tag == "DW_TAG_enumeration_type":
        kw = {"DW_TAG_structure_type": "struct", "DW_TAG_union_type": "union", "DW_TAG_class_type": "class"}.get(tag, "enum")
        return f"{kw} {name or '<anonymous>'}"
    if tag == "DW_TAG_pointer_type":
        return type_name(inner, _depth + 1) + " *"
    if tag == "DW_TAG_const_type":
        return "const " + type_name(inner, _depth + 1)
    if tag == "DW_TAG_volatile_type":
        return "volatile " + type_name(inner, _depth + 1)
    if tag == "DW_TAG_array_type":
        return type_name(inner, _depth + 1) + "".join(f"[{c}]" for c in _array_counts(die))
    if tag == "DW_TAG_subroutine_type":
        return type_name(inner, _depth + 1) + " (*)()"
    return name or tag.replace("DW_TAG_", "")


def _member_offset(die: DIE) -> int:
    attr = die.attributes.get("DW_AT_data_member_location")
    if attr is None:
        return 0  # union members, and DWARF 4 bit fields using DW_AT_data_bit_offset
    value = attr.value
    if isinstance(value, int):
        return value
    if isinstance(value, list) and value and value[0] == _DW_OP_plus_uconst:  # DWARF 2 location expression
        return _uleb(value[1:])
    raise ElfError(f"unsupported member location expression {value!r}", hint="build the firmware with DWARF 4 or 5 (-gdwarf-4)")


def _add_members(agg: DIE, base: int, prefix: str, out: dict[str, Member]) -> None:
    for child in agg.iter_children():
        if child.tag != "DW_TAG_member":
            continue
        attrs = child.attributes
        name = _text(attrs["DW_AT_name"].value) if "DW_AT_name" in attrs else None
        tdie = child.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in attrs else None
        target = _strip(tdie)
        offset = base + _member_offset(child)
        size = type_size(tdie)
        tname = type_name(tdie)
        if "DW_AT_bit_size" in attrs:
            bit_size = attrs["DW_AT_bit_size"].value
            storage = attrs["DW_AT_byte_size"].value if "DW_AT_byte_size" in attrs else size
            storage = storage or 4
            if "DW_AT_data_bit_offset" in attrs:
                total = (offset - base) * 8 + attrs["DW_AT_data_bit_offset"].value
                unit = (total // (storage * 8)) * storage
                bit_off = total - unit * 8
                if bit_off + bit_size > storage * 8:  # straddles its natural unit (packed struct)
                    unit, bit_off = total // 8, total % 8
                    storage = (bit_off + bit_size + 7) // 8
                offset, size = base + unit, storage
            else:
                msb_off = attrs["DW_AT_bit_offset"].value if "DW_AT_bit_offset" in attrs else 0
                bit_off = storage * 8 - msb_off - bit_size  # MSB-based (DWARF 2/3) to LSB-based
                size = storage
            if name is not None:
                out[f"{prefix}{name}"] = Member(f"{prefix}{name}", offset, size, tname, bit_off, bit_size)
            continue
        if name is None:
            if target is not None and target.tag in _AGGREGATES:
                _add_members(target, offset, prefix, out)  # anonymous union/struct: flatten
            continue
        count = None
        if target is not None and target.tag == "DW_TAG_array_type":
            count = 1
            for c in _array_counts(target):
                count *= c
        full = f"{prefix}{name}"
        out[full] = Member(full, offset, size, tname, count=count)
        if target is not None and target.tag in _AGGREGATES:
            _add_members(target, offset, full + ".", out)
