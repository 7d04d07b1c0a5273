"""Program counters to ``function (file:line)``, cached per address.

Uses the image's DWARF line table and inlined-subroutine index (:mod:`.lines`) when present and falls
back to the ELF symbol table (``function+offset``) for stripped images, saying once, via logging,
what is lost. Return addresses are looked up at ``pc - 2`` (ARMv7-M Thumb: the return address is the
instruction after a 16- or 32-bit BL/BLX, so ``pc - 2`` always lies inside the call instruction),
matching how ``addr2line``/gdb attribute a call site.
"""

from __future__ import annotations

import collections
import logging
import posixpath
from pathlib import Path

from .image import Image
from .lines import Frame

log = logging.getLogger("memhil.elf")


class Symbolizer:
    """Cached address -> frames for one :class:`Image`."""

    def __init__(self, image: Image, *, source_root: str | Path | None = None) -> None:
        self.image = image
        self._cache: dict[tuple[int, bool], tuple[Frame, ...]] = {}
        self._sites: dict[tuple[int, bool], str] = {}  # finished "file:line" strings, formatted once
        self._relative: dict[tuple[str | None, str], str] = {}  # (source_root, file) -> the file relative to it
        self._warned = False
        self._lines = image.lines if image.has_dwarf else None
        if source_root is not None:
            self.source_root: str | None = posixpath.normpath(str(source_root))
        elif self._lines is not None and self._lines.comp_dirs:
            self.source_root = collections.Counter(self._lines.comp_dirs).most_common(1)[0][0]
        else:
            self.source_root = None

    @property
    def has_lines(self) -> bool:
        return self._lines is not None

    def frames(self, pc: int, *, is_return_address: bool = False) -> list[Frame]:
        """All frames at ``pc``, innermost inlined frame first, the real (non-inlined) function last."""
        return list(self._lookup(pc, is_return_address))

    def frame(self, pc: int, *, is_return_address: bool = False) -> Frame:
        """The innermost frame at ``pc`` (an inlined function when ``pc`` is inside one)."""
        return self._lookup(pc, is_return_address)[0]

    def function(self, pc: int, *, is_return_address: bool = False) -> str | None:
        """Name of the real (non-inlined) function containing ``pc``."""
        return self._lookup(pc, is_return_address)[-1].function

    def site(self, pc: int, *, is_return_address: bool = False) -> str:
        """``file:line`` of ``pc`` with the file relative to the firmware source root when possible;
        ``function+0x..`` or the raw address when there is no line information."""
        key = (pc, is_return_address)
        hit = self._sites.get(key)
        if hit is None:
            fr = self._lookup(pc, is_return_address)[0]
            hit = str(fr) if fr.file is None or fr.line is None else f"{self.relative(fr.file)}:{fr.line}"
            self._sites[key] = hit
        return hit

    def relative(self, file: str) -> str:
        """``file`` relative to the source root when it lies under it (once per file: a few dozen files serve
        every address, and ``relpath`` was most of a cold lookup)."""
        root = self.source_root
        got = self._relative.get((root, file))
        if got is None:
            got = file
            if root and posixpath.isabs(file) and (file == root or file.startswith(root.rstrip("/") + "/")):
                got = posixpath.relpath(file, root)
            self._relative[(root, file)] = got
        return got

    def _lookup(self, pc: int, is_return_address: bool) -> tuple[Frame, ...]:
        key = (pc, is_return_address)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        addr = pc & ~1
        look = addr - 2 if is_return_address and addr >= 2 else addr
        frames: list[Frame] = self._lines.frames(look) if self._lines is not None else []
        if not frames or frames[-1].function is None:
            sym = self.image.symbol_at(look)
            if frames and sym is not None:  # DWARF has the line but not the function
                last = frames[-1]
                frames[-1] = Frame(last.address, sym.name, last.file, last.line, last.inlined, look - sym.address)
            elif sym is not None:
                frames = [Frame(look, sym.name, None, None, offset=look - sym.address)]
            if self._lines is None and not self._warned:
                self._warned = True
                log.warning(
                    "%s has no DWARF debug info: call sites show as function+offset, without file:line "
                    "(build with -g and use the unstripped ELF for file:line)",
                    self.image.path,
                )
        if not frames:
            frames = [Frame(look, None, None, None)]
        if look != addr:
            frames = [Frame(addr, f.function, f.file, f.line, f.inlined, None if f.offset is None else f.offset + 2) for f in frames]
        result = tuple(frames)
        self._cache[key] = result
        return result
