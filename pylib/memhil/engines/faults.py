"""Cortex-M fault exceptions, caught at the handler's entry and explained (ARMv7-M ARM B1.5, B3.2.15-B3.2.18).

The engine breaks on the handlers the vector table names for NMI, HardFault, MemManage, BusFault and
UsageFault (entries 2-6). A stop there with IPSR equal to that exception number is a fault (a handler shared with
ordinary interrupts, such as a weak ``Default_Handler``, is told apart by IPSR). The message carries the
fault kind, the faulting PC and LR from the exception frame, CFSR/HFSR with their bits named, MMFAR/BFAR when
valid, and the call stack unwound from the handler through the exception frame.
"""

from __future__ import annotations

import struct
from typing import Callable

from memhil.errors import TargetFault

VECTOR_NAMES = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault"}
#: the exceptions a core sitting in their handler is taken to have faulted (NMI can be a board's own signal)
FAULT_NUMBERS = (3, 4, 5, 6)
#: CFSR (0xE000ED28), HFSR, DFSR, MMFAR, BFAR: five consecutive words (B3.2.15-B3.2.18, C1.6.1)
FAULT_REGS = 0xE000ED28
CFSR_BITS = {
    0: "IACCVIOL", 1: "DACCVIOL", 3: "MUNSTKERR", 4: "MSTKERR", 5: "MLSPERR", 7: "MMARVALID",
    8: "IBUSERR", 9: "PRECISERR", 10: "IMPRECISERR", 11: "UNSTKERR", 12: "STKERR", 13: "LSPERR", 15: "BFARVALID",
    16: "UNDEFINSTR", 17: "INVSTATE", 18: "INVPC", 19: "NOCP", 24: "UNALIGNED", 25: "DIVBYZERO",
}
HFSR_BITS = {1: "VECTTBL", 30: "FORCED", 31: "DEBUGEVT"}


def bit_names(value: int, names: dict[int, str]) -> str:
    return "|".join(name for bit, name in sorted(names.items()) if value >> bit & 1) or "0"


def fault_handlers(vector_table: bytes) -> dict[int, int]:
    """handler address (Thumb bit cleared) -> exception numbers it serves, for entries 2-6 of ``vector_table``."""
    out: dict[int, list[int]] = {}
    for number in VECTOR_NAMES:
        if len(vector_table) >= 4 * (number + 1):
            address = struct.unpack_from("<I", vector_table, 4 * number)[0]
            if address & 1 and address > 1:
                out.setdefault(address & ~1, []).append(number)
    return {address: tuple(numbers) for address, numbers in out.items()}  # type: ignore[misc]


def explain(regs: dict[str, int], read_memory: Callable[[int, int], bytes], elf_path, *, engine: str) -> TargetFault | None:
    """A :class:`TargetFault` for a core halted in a fault handler (at its entry or anywhere in it) with ``regs``,
    or None when IPSR names no fault."""
    ipsr = regs.get("xpsr", 0) & 0x1FF
    kind = VECTOR_NAMES.get(ipsr)
    if kind is None:
        return None
    cfsr, hfsr, _dfsr, mmfar, bfar = struct.unpack("<5I", read_memory(FAULT_REGS, 20))
    exc_return = regs["lr"]
    frame_sp = regs["sp"]  # the handler's first instruction: the frame is on the stack EXC_RETURN names
    fields: dict[str, object] = {"kind": kind, "cfsr": f"{cfsr:#010x} ({bit_names(cfsr, CFSR_BITS)})",
                                 "hfsr": f"{hfsr:#010x} ({bit_names(hfsr, HFSR_BITS)})"}
    if cfsr & (1 << 7):
        fields["mmfar"] = f"{mmfar:#010x}"
    if cfsr & (1 << 15):
        fields["bfar"] = f"{bfar:#010x}"
    pc = lr = None
    try:
        at_entry = struct.unpack("<I", read_memory(4 * ipsr, 4))[0] & ~1 == regs["pc"]  # VTOR resets to 0
    except Exception:  # noqa: BLE001 - then take the faulting pc from the unwound stack
        at_entry = False
    if at_entry and exc_return >> 28 == 0xF and not exc_return & 4:  # main stack (MSP): the frame is at SP
        r0, r1, r2, r3, r12, lr, pc, xpsr = struct.unpack("<8I", read_memory(frame_sp, 32))
        fields["pc"], fields["lr"] = f"{pc:#010x}", f"{lr:#010x}"
    stack = _stack(regs, read_memory, elf_path)
    if stack:
        fields["stack"] = stack
        if pc is None:  # inside the handler: the first frame popped from an exception frame is the faulting one
            popped = next((line for line in stack if line.endswith("<exception frame>")), None)
            if popped is not None:
                pc = int(popped.split()[0], 16)
                fields["pc"] = f"{pc:#010x}"
    where = f" at {pc:#010x}" if pc is not None else ""
    text = "\n".join(f"  #{i} {frame}" for i, frame in enumerate(stack))
    return TargetFault(
        f"the firmware took a {kind}{where} ({bit_names(cfsr, CFSR_BITS)}; HFSR {bit_names(hfsr, HFSR_BITS)})"
        + (f"\ncall stack at the fault:\n{text}" if text else ""),
        hint="the target is halted in the fault handler; the faulting instruction is the first frame after "
             "the exception frame (see CFSR's bits in the ARMv7-M ARM, B3.2.15)",
        engine=engine, **fields)


def _stack(regs: dict[str, int], read_memory, elf_path) -> list[str]:
    """The call stack from the handler's entry, symbolized; [] when the ELF cannot be unwound."""
    try:
        from memhil.elf import Image, Symbolizer, Unwinder

        image = Image.open(elf_path)
        bt = Unwinder(image).unwind(regs, read_memory, max_depth=16)
        symbolizer = Symbolizer(image)
        frames = []
        for index, pc in enumerate(bt):
            marker = " <exception frame>" if index in bt.exception_frames else ""
            ret = bt.is_return_address(index)
            function = symbolizer.function(pc, is_return_address=ret) or "??"
            frames.append(f"{pc:#010x} {function} ({symbolizer.site(pc, is_return_address=ret)}){marker}")
        return frames
    except Exception:  # noqa: BLE001 - a fault report without a stack beats none at all
        return []
