"""CFI unwinder: stacks hand-built from readelf's CFI and objdump's call sites, Cortex-M exception
frames, clean stops, and a real stack compared with gdb's ``bt`` under QEMU."""

from __future__ import annotations

import pytest

from elf_reference import call_sites, cfi_table
from memhil.elf import Image, Unwinder
from memhil.errors import ElfError

STACK_TOP = 0x20001000


class FakeMemory:
    """Stack words set by the test; reading anything else fails like an engine would."""

    def __init__(self) -> None:
        self.words: dict[int, int] = {}

    def __call__(self, addr: int, size: int) -> bytes:
        out = b""
        for a in range(addr, addr + size, 4):
            if a not in self.words:
                raise ValueError(f"unmapped {a:#x}")
            out += self.words[a].to_bytes(4, "little")
        return out


@pytest.fixture(scope="module")
def image(built):
    return Image.open(built.app)


@pytest.fixture(scope="module")
def unwinder(image):
    return Unwinder(image)


@pytest.fixture(scope="module")
def ref(built):
    fdes = cfi_table(built.app)
    calls = call_sites(built.app)
    return fdes, calls


def _row(fdes, pc):
    fde = next(f for f in fdes if f.lo <= pc < f.hi)
    return fde.row(pc)


def _push_frames(fdes, mem, sp, chain, *, exact_first=True):
    """Lay out the frames of ``chain`` [(pc, exact)] on the stack the way readelf's CFI describes.

    Returns (lr for the innermost frame if it keeps the return address in LR, sp of the outermost caller).
    """
    lr = None
    for i, (pc, exact) in enumerate(chain[:-1]):
        cfa_off, saved = _row(fdes, pc if exact else pc - 2)
        cfa = sp + cfa_off
        for reg, off in saved.items():
            mem.words[cfa + off] = 0xDEAD0000 + i
        ret = chain[i + 1][0] | 1
        if "ra" in saved:
            mem.words[cfa + saved["ra"]] = ret
        else:
            assert i == 0, "only the innermost frame may keep its return address in LR"
            lr = ret
        sp = cfa
    return lr, sp


def test_hand_built_call_chain(image, unwinder, ref):
    fdes, calls = ref
    ra = lambda caller, callee: calls[(caller, callee)][0] + 4  # noqa: E731
    leaf_pc = image.symbol("leaf").address + 4
    chain = [(leaf_pc, True), (ra("middle", "leaf"), False), (ra("outer", "middle"), False),
             (ra("main", "outer"), False), (ra("Reset_Handler", "main"), False)]
    mem = FakeMemory()
    lr, _ = _push_frames(fdes, mem, STACK_TOP, chain)
    regs = {"pc": leaf_pc | 1, "sp": STACK_TOP, "lr": lr if lr is not None else 0, "r0": 1}
    bt = unwinder.unwind(regs, mem)
    assert list(bt) == [pc for pc, _ in chain]
    assert bt.stop_reason == "reset-handler" and bt.complete
    assert bt.exact == {0} and bt.is_return_address(1)
    short = unwinder.unwind(regs, mem, max_depth=2)
    assert list(short) == list(bt)[:2] and short.stop_reason == "max-depth" and not short.complete


@pytest.mark.parametrize(
    "exc_return, padded",
    [(0xFFFFFFF9, False), (0xFFFFFFF9, True), (0xFFFFFFE9, False), (0xFFFFFFE9, True), (0xFFFFFFFD, False)],
    ids=["basic", "basic-aligned", "fp-context", "fp-context-aligned", "psp"],
)
def test_exception_frame_is_popped(image, unwinder, ref, exc_return, padded):
    fdes, calls = ref
    handler_pc = image.symbol("PendSV_Handler").address + 4
    trigger_pc = image.symbol("trigger").address + 6
    ra_main = calls[("main", "trigger")][0] + 4
    ra_reset = calls[("Reset_Handler", "main")][0] + 4
    mem = FakeMemory()
    # the handler's own frame, on MSP
    cfa_off, saved = _row(fdes, handler_pc)
    msp = STACK_TOP - 0x400
    for off in saved.values():
        mem.words[msp + cfa_off + off] = 0xBAD0BAD0
    mem.words[msp + cfa_off + saved["ra"]] = exc_return
    frame_sp = msp + cfa_off if not exc_return & 4 else STACK_TOP - 0x100
    xpsr = 0x01000000 | ((1 << 9) if padded else 0)
    for i, word in enumerate([1, 2, 3, 4, 12, ra_main | 1, trigger_pc, xpsr]):
        mem.words[frame_sp + 4 * i] = word
    size = 32 if exc_return & 0x10 else 104
    for off in range(32, size + 4, 4):
        mem.words[frame_sp + off] = 0xF00DF00D  # FP registers and the alignment pad: never a frame
    caller_sp = frame_sp + size + (4 if padded else 0)
    # trigger() has no frame of its own: its return address is the stacked LR; then main's frame
    _lr, _ = _push_frames(fdes, mem, caller_sp, [(ra_main, False), (ra_reset, False)])
    regs = {"pc": handler_pc, "sp": msp, "lr": 0xFFFFFFF9, "msp": msp}
    if exc_return & 4:
        regs["psp"] = frame_sp
    bt = unwinder.unwind(regs, mem)
    assert list(bt) == [handler_pc, trigger_pc, ra_main, ra_reset]
    assert bt.exception_frames == [1] and bt.exact == {0, 1}
    assert bt.stop_reason == "reset-handler"
    if exc_return & 4:
        del regs["psp"]
        lost = unwinder.unwind(regs, mem)
        assert list(lost) == [handler_pc] and lost.stop_reason == "psp-unknown"


def test_unknown_pc_stops_without_guessing(unwinder):
    bt = unwinder.unwind({"pc": 0x10000000, "sp": STACK_TOP, "lr": 0x08000071}, FakeMemory())
    assert list(bt) == [0x10000000] and bt.stop_reason == "unknown-pc" and not bt.complete


def test_unreadable_stack_stops_cleanly(image, unwinder):
    pc = image.symbol("middle").address + 4  # after the push: the return address is on the stack
    bt = unwinder.unwind({"pc": pc, "sp": STACK_TOP, "lr": 0}, FakeMemory())
    assert list(bt) == [pc] and bt.stop_reason == "memory-unreadable"


def test_stack_range_bounds_the_walk(image, unwinder, ref):
    fdes, calls = ref
    leaf_pc = image.symbol("leaf").address + 4
    ra_mid = calls[("middle", "leaf")][0] + 4
    ra_outer = calls[("outer", "middle")][0] + 4
    mem = FakeMemory()
    lr, _ = _push_frames(fdes, mem, STACK_TOP, [(leaf_pc, True), (ra_mid, False), (ra_outer, False), (0x08000000, False)])
    bt = unwinder.unwind({"pc": leaf_pc, "sp": STACK_TOP, "lr": lr}, mem, stack_range=(STACK_TOP - 0x100, STACK_TOP + 4))
    assert list(bt) == [leaf_pc, ra_mid] and bt.stop_reason == "stack-out-of-range"


def test_elf_without_cfi_stops_after_the_first_pc(built):
    image = Image.open(built.stripped)
    unwinder = Unwinder(image)
    assert not unwinder.has_cfi
    pc = image.symbol("middle").address + 4
    bt = unwinder.unwind({"pc": pc, "sp": STACK_TOP, "lr": 0x08000071}, FakeMemory())
    assert list(bt) == [pc] and bt.stop_reason == "no-cfi"


def test_bad_arguments(unwinder):
    with pytest.raises(ElfError, match="lack sp"):
        unwinder.unwind({"pc": 0x08000070}, FakeMemory())
    with pytest.raises(ElfError, match="max_depth"):
        unwinder.unwind({"pc": 0x08000070, "sp": STACK_TOP}, FakeMemory(), max_depth=0)
