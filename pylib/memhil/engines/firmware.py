"""What an engine needs from the firmware ELF before it starts it: is it an ARM ELF,
do its ``PT_LOAD`` segments fit the platform, and where are a few symbols.

Deliberately minimal (ELF spec, "Program Header" and "Symbol Table"); uses
``memhil.elf.Image`` when that package provides it, pyelftools directly otherwise.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from memhil.errors import ElfError

EM_ARM = 40


@dataclasses.dataclass(frozen=True)
class Segment:
    vaddr: int
    paddr: int
    memsz: int
    filesz: int


@dataclasses.dataclass(frozen=True)
class FirmwareInfo:
    path: Path
    segments: tuple[Segment, ...]
    symbols: dict[str, int]  # name -> address (Thumb bit cleared for functions)
    sizes: dict[str, int]

    def address(self, name: str) -> int | None:
        return self.symbols.get(name)

    @classmethod
    def load(cls, path: Path | str) -> "FirmwareInfo":
        path = Path(path)
        if not path.is_file():
            raise ElfError(f"firmware {path} does not exist", hint="build it (make -C firmware) or fix the path", path=str(path))
        try:
            from memhil.elf.image import Image
        except ImportError:
            return cls._load_pyelftools(path)
        image = Image.open(path)
        segments = tuple(Segment(s.vaddr, s.paddr, s.memsz, s.filesz) for s in image.load_segments if s.memsz)
        if not segments:
            raise ElfError(f"{path} has no loadable segment", hint="pass a linked executable, not an object file", path=str(path))
        symbols: dict[str, int] = {}
        sizes: dict[str, int] = {}
        for sym in image.symbols():
            if sym.kind in ("func", "object"):
                best = image.find_symbol(sym.name) or sym  # globals win over same-named locals
                symbols[sym.name] = best.address
                sizes[sym.name] = best.size
        return cls(path, segments, symbols, sizes)

    @classmethod
    def _load_pyelftools(cls, path: Path) -> "FirmwareInfo":
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        try:
            with open(path, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    raise ElfError(f"{path} is not an ELF file", hint="pass the linked firmware .elf, not a .bin/.hex", path=str(path))
                f.seek(0)
                elf = ELFFile(f)
                if elf["e_machine"] != "EM_ARM" or elf.elfclass != 32:
                    raise ElfError(f"{path} is an ELF for {elf['e_machine']}, not 32-bit ARM", hint="build the firmware with arm-none-eabi-gcc", path=str(path))
                segments = tuple(
                    Segment(s["p_vaddr"], s["p_paddr"], s["p_memsz"], s["p_filesz"])
                    for s in elf.iter_segments()
                    if s["p_type"] == "PT_LOAD" and s["p_memsz"]
                )
                if not segments:
                    raise ElfError(f"{path} has no loadable segment", hint="pass a linked executable, not an object file", path=str(path))
                symbols: dict[str, int] = {}
                sizes: dict[str, int] = {}
                symtab = elf.get_section_by_name(".symtab")
                if symtab is not None:
                    for sym in symtab.iter_symbols():
                        kind = sym["st_info"]["type"]
                        if sym.name and kind in ("STT_FUNC", "STT_OBJECT") and sym["st_shndx"] != "SHN_UNDEF":
                            value = sym["st_value"] & ~1 if kind == "STT_FUNC" else sym["st_value"]
                            symbols.setdefault(sym.name, value)
                            sizes.setdefault(sym.name, sym["st_size"])
        except ELFError as exc:
            raise ElfError(f"{path} is a damaged ELF: {exc}", hint="rebuild the firmware", path=str(path)) from exc
        except OSError as exc:
            raise ElfError(f"cannot read {path}: {exc.strerror}", hint="check the file's permissions", path=str(path)) from exc
        return cls(path, segments, symbols, sizes)
