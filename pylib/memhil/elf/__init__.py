"""ELF and DWARF: symbols, line table, struct layouts, CFI unwinder, symbolizer (issue 5)."""

from .image import Image, Section, Segment, Symbol
from .lines import Frame, LineTable
from .symbolize import Symbolizer
from .types import Member, StructLayout
from .unwind import Backtrace, Unwinder

__all__ = [
    "Backtrace",
    "Frame",
    "Image",
    "LineTable",
    "Member",
    "Section",
    "Segment",
    "StructLayout",
    "Symbol",
    "Symbolizer",
    "Unwinder",
]
