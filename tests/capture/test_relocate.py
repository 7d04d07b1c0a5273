"""Which prologues the patched hooks move, which they rewrite and which they decline (with the reason); and the
clear errors when flash or RAM has no room."""

from __future__ import annotations

import re
import subprocess

import pytest

from memhil.capture.relocate import Declined, Relocation, relocate_prologue
from memhil.capture.scratch import Area, find_flash, find_ram
from memhil.errors import CaptureError

BASE = 0x08001000


def _as(lines: list[str], tmp_path) -> bytes:
    src = tmp_path / "f.s"
    src.write_text(".syntax unified\n.thumb\n.cpu cortex-m4\nf:\n" + "\n".join(lines) + "\n")
    obj, binary = tmp_path / "f.o", tmp_path / "f.bin"
    subprocess.run(["arm-none-eabi-as", "-o", str(obj), str(src)], check=True)
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".text", str(obj), str(binary)], check=True)
    return binary.read_bytes()


@pytest.mark.parametrize("lines,length", [
    (["push {r4, lr}", "mov r4, r0", "bl f", "pop {r4, pc}"], 4),
    (["stmdb sp!, {r4, r5, r6, r7, r8, lr}", "sub sp, #8", "bx lr"], 4),
    (["cmp.w r2, #0x40000000", "bcs.n 1f", "bx lr", "1: bx lr"], 4),
    (["push {r3, r4, r5, lr}", "mul.w r5, r2, r1", "pop {r3, r4, r5, pc}"], 6),  # a 32-bit instruction across +4
    (["movs r3, #255", "movs r2, #0", "bx lr"], 4),
])
def test_position_independent_prologues_move_as_they_are(lines, length, tmp_path):
    code = _as(lines, tmp_path)
    got = relocate_prologue(code, BASE)
    assert isinstance(got, Relocation) and got.length == length
    assert got.code == got.original == code[:length] and got.rewritten == ()


@pytest.mark.parametrize("lines,reason", [
    (["mrs r0, primask", "bx lr"], "branch or miscellaneous control"),
    (["cmp r0, #1", "it eq", "moveq r0, #2", "bx lr"], "IT block"),
    (["mov r0, pc", "bx lr"], "reads or writes pc"),
    (["bx lr", "nop"], "branch (bx/blx)"),
    (["push {r4, lr}", "ldrb r0, [pc, #4]", "pop {r4, pc}", "nop", ".word 0"], "pc-relative load"),
    (["push {r4, lr}", "svc #1", "pop {r4, pc}"], "branch (b<c>) or svc"),
    (["ldr pc, [sp], #4", "nop"], "load of pc"),
])
def test_prologues_that_cannot_move_are_declined_with_the_reason(lines, reason, tmp_path):
    got = relocate_prologue(_as(lines, tmp_path), BASE)
    assert isinstance(got, Declined) and reason in got.reason, got


@pytest.mark.parametrize("lines,kind,cond", [
    (["cbz r0, 1f", "movs r1, #0", "bx lr", "nop", "1: bx lr"], "cbz", None),
    (["cbnz r3, 1f", "movs r1, #0", "bx lr", "nop", "1: bx lr"], "cbnz", None),
    (["cmp r1, #0", "beq.n 1f", "bx lr", "1: bx lr"], "b", "eq"),
    (["cmp r1, #0", "bhi.w 1f", "bx lr", "1: bx lr"], "b", "hi"),
    (["b.n 1f", "nop", "nop", "1: bx lr"], "b", None),
    (["b.w f + 0x2000", "nop"], "b", None),
    (["bl f + 0x400", "nop"], "bl", None),
])
def test_direct_branches_move_to_the_same_target(lines, kind, cond, tmp_path):
    """A moved branch keeps its absolute target (the one objdump shows at BASE); the stub re-encodes it."""
    from memhil.capture.relocate import Branch

    code = _as(lines, tmp_path)
    got = relocate_prologue(code, BASE)
    assert isinstance(got, Relocation) and got.rewritten
    branch = next(p for p in got.pieces if isinstance(p, Branch))
    assert (branch.kind, branch.cond) == (kind, cond)
    listing = _disasm(code, tmp_path, vma=BASE)
    line = next(line for line in listing.splitlines() if re.search(r"\s(b|bl|cbz|cbnz|beq|bhi)(\.[nw])?\s", line))
    assert branch.target == int(re.search(r"0x([0-9a-f]+)", line.split(":", 1)[1]).group(1), 16)


def test_a_moved_cbz_becomes_cbnz_over_a_b_w(tmp_path):
    from memhil.capture.asm import Assembler

    got = relocate_prologue(_as(["cbz r2, 1f", "push {r3, lr}", "movs r3, #255", "pop {r3, pc}", "1: bx lr"], tmp_path), BASE)
    assert isinstance(got, Relocation) and got.length == 4
    a = Assembler()
    a.cbz(2, "skip", nonzero=True)
    a.b_w(got.pieces[0].target)
    a.label("skip")
    listing = _disasm(a.assemble(0x080FF000), tmp_path, vma=0x080FF000)
    assert "cbnz\tr2, 0x80ff006" in listing and f"b.w\t{got.pieces[0].target:#x}" in listing


def test_a_branch_into_the_patched_bytes_is_declined(tmp_path):
    code = _as(["push {r4, lr}", "1: adds r0, #1", "cmp r0, #9", "bne.n 1b", "pop {r4, pc}"], tmp_path)
    got = relocate_prologue(code, BASE)
    assert isinstance(got, Declined) and "lands inside the first 4 bytes" in got.reason and got.offset == 2


def test_too_short_a_function_is_declined():
    got = relocate_prologue(b"\x70\x47", BASE)
    assert isinstance(got, Declined) and "shorter than" in got.reason


@pytest.mark.parametrize("lines,value,load", [
    (["ldr r3, [pc, #8]", "mov r1, r0", "ldr r0, [r3]", "bx lr", "nop", "nop", ".word 0x12345678"], None, True),
    (["push {r4}", "ldr r4, [pc, #16]", "mov r3, r0", "bx lr"], None, True),
    (["ldr.w r12, [pc, #12]", "bx lr", "nop", "nop", "nop", "nop"], None, True),
    (["adr r2, 1f", "nop", "nop", "bx lr", "1: .word 7"], None, False),
    (["adr.w r5, 1f", "bx lr", "nop", "1: .word 7"], None, False),
])
def test_pc_relative_loads_and_addresses_are_rewritten(lines, value, load, tmp_path):
    """The rewritten code computes the same address the original did at BASE: checked by decoding our movw/movt."""
    code = _as(lines, tmp_path)
    got = relocate_prologue(code, BASE)
    assert isinstance(got, Relocation) and got.rewritten and got.original == code[: got.length]
    objdump = _disasm(got.code, tmp_path)
    assert ("ldr" in objdump) == load
    # the reference: the address GNU's disassembler gives the original PC-relative instruction at BASE
    target = _objdump_target(_disasm(code[: got.length], tmp_path, vma=BASE))
    movw = next(line for line in objdump.splitlines() if "movw" in line)
    movt = next(line for line in objdump.splitlines() if "movt" in line)
    assert int(movt.split("#")[1].split()[0], 0) << 16 | int(movw.split("#")[1].split()[0], 0) == target


def _objdump_target(listing: str) -> int:
    for line in listing.splitlines():
        found = re.search(r"@ \(?0x([0-9a-f]+)", line)
        if found:
            return int(found.group(1), 16)
        pcrel = re.match(r"\s*([0-9a-f]+):.*\b(add|addw|subw)\s+\w+, pc, #(\d+)", line)
        if pcrel:
            base = (int(pcrel.group(1), 16) + 4) & ~3
            return base - int(pcrel.group(3)) if pcrel.group(2) == "subw" else base + int(pcrel.group(3))
    raise AssertionError(f"no pc-relative instruction in {listing}")


def _disasm(code: bytes, tmp_path, vma: int = 0) -> str:
    raw = tmp_path / "c.bin"
    raw.write_bytes(code)
    out = subprocess.run(["arm-none-eabi-objdump", "-D", "-b", "binary", "-m", "arm", "-M", "force-thumb",
                          f"--adjust-vma={vma:#x}", str(raw)], check=True, capture_output=True, text=True).stdout
    return out.split(">:", 1)[1] if ">:" in out else out


class _Seg:
    def __init__(self, vaddr, paddr, memsz, filesz):
        self.vaddr, self.paddr, self.memsz, self.filesz = vaddr, paddr, memsz, filesz


class _Sym:
    def __init__(self, address):
        self.address = address


class _Image:
    def __init__(self, segments, symbols):
        self.load_segments = segments
        self._symbols = symbols

    def find_symbol(self, name):
        return _Sym(self._symbols[name]) if name in self._symbols else None


def test_no_room_in_ram_names_what_is_needed(platform):
    full = _Image([_Seg(0x08000000, 0x08000000, 0x1000, 0x1000), _Seg(0x10000000, 0x10000000, 0x10000, 0)],
                  {"__heap_end": 0x2001DF00, "_sstack": 0x2001E000})
    with pytest.raises(CaptureError) as err:
        find_ram(full, platform, 4096, minimum=2048)
    text = str(err.value)
    assert "at least 2048 bytes needed" in text and "256 bytes" in text and "stack_words" in text


def test_ram_prefers_the_ccm_then_the_gap_below_the_stack(platform):
    image = _Image([_Seg(0x08000000, 0x08000000, 0x1000, 0x1000)], {"__heap_end": 0x20010000, "_sstack": 0x2001E000})
    assert find_ram(image, platform, 0x800).base == 0x10000000
    missing = [r for r in platform.regions if r.name == "ccm"]
    got = find_ram(image, platform, 0x800, missing=missing)
    assert got.base == 0x20010000 and got.size == 0x800


def test_flash_goes_to_the_top_of_the_largest_unused_gap(platform):
    image = _Image([_Seg(0x08000000, 0x08000000, 0x3000, 0x3000), _Seg(0x20000000, 0x08003000, 0x400, 0x400)], {})
    area = find_flash(image, platform, 1000)
    assert isinstance(area, Area) and area.end == 0x08100000 and area.base >= 0x08003400
    tiny = _Image([_Seg(0x08000000, 0x08000000, 0x100000 - 512, 0x100000 - 512)], {})
    with pytest.raises(CaptureError, match="1000 bytes needed, the largest unused gap is 512 bytes"):
        find_flash(tiny, platform, 1000)


def test_flash_with_a_score_takes_the_highest_of_the_lowest_scored_bases(platform):
    image = _Image([_Seg(0x08000000, 0x08000000, 0x3000, 0x3000)], {})
    top = find_flash(image, platform, 2048, align=1024)
    assert top.base == 0x08100000 - 2048
    got = find_flash(image, platform, 2048, align=1024, score=lambda base: 0 if base <= 0x080F0000 else 1)
    assert got.base == 0x080F0000 and got.size == 2048
    assert find_flash(image, platform, 2048, align=1024, score=lambda base: 5).base == top.base  # all equal: the top
    assert find_flash(image, platform, 2048, align=1024, score=lambda base: base).base == 0x08003000  # the gap's start


def test_areas_taken_on_the_target_are_left_out(platform):
    """The tick stop and the patched hooks share the target's scratch memory: neither gets bytes the other holds."""
    image = _Image([_Seg(0x08000000, 0x08000000, 0x1000, 0x1000)], {"__heap_end": 0x20010000, "_sstack": 0x2001E000})
    stub = Area(0x10000000, 96, "tick stop")
    got = find_ram(image, platform, 0x800, taken=[stub])
    assert got.base == 0x10000060 and got.size == 0x800
    # the whole CCM taken: the next candidate, the gap below the stack
    assert find_ram(image, platform, 0x800, taken=[Area(0x10000000, 0x10000, "ring")]).base == 0x20010000
    # a user's area keeps its largest free part
    given = find_ram(image, platform, 0x100, explicit=(0x20010000, 0x1000), minimum=0x100, taken=[Area(0x20010000, 96, "stub")])
    assert (given.base, given.size) == (0x20010060, 0x100)
    with pytest.raises(CaptureError, match=r"\(0 bytes at"):
        find_ram(image, platform, 0x100, explicit=(0x20010000, 0x100), taken=[Area(0x20010000, 0x100, "stub")])
    code = find_flash(image, platform, 1000)
    assert find_flash(image, platform, 1000, taken=[code]).end == code.base
    # RAM handed out (the tick stop's) leaves the flash gaps as they are: the code stays in flash
    assert find_flash(image, platform, 1000, taken=[Area(0x20020000, 96, "tick stop")]) == code


class _Memory:
    """Target memory as an emulator answers: ``mapped`` ranges keep what is written, reads elsewhere give zeros
    (Renode) or fail (``strict``, QEMU's gdbstub)."""

    def __init__(self, mapped, strict):
        self.mapped, self.strict, self.data = mapped, strict, {}

    def _inside(self, address):
        return any(lo <= address < hi for lo, hi in self.mapped)

    def read_memory(self, address, size):
        from memhil.errors import TargetError

        if not self._inside(address):
            if self.strict:
                raise TargetError(f"cannot read {address:#x}")
            return bytes(size)
        return self.data.get(address, bytes(size))

    def write_memory(self, address, data):
        if self._inside(address):
            self.data[address] = bytes(data)


@pytest.mark.parametrize("strict", [True, False])
def test_emulator_ram_past_the_board_is_found_by_writing_it(platform, strict):
    from memhil.capture.scratch import ram_candidates, writable

    image = _Image([_Seg(0x08000000, 0x08000000, 0x1000, 0x1000)], {})
    ccm = [r for r in platform.regions if r.name == "ccm"]
    qemu72 = _Memory([(0x20000000, 0x20030000)], strict)  # 192 KiB of SRAM where the chip has 128
    got = ram_candidates(image, platform, ccm, writable(qemu72))
    assert [(a.base, a.size) for a in got] == [(0x20020000, 0x10000)] and "emulator RAM" in got[0].what
    chip = _Memory([(0x20000000, 0x20020000)], strict)  # exactly the chip: nothing past it
    assert ram_candidates(image, platform, ccm, writable(chip)) == []
