"""Pools made and retired while capture runs: breakpoints on the profile's pool functions (LiteOS ``LOS_MemInit``,
``LOS_MemDeInit``; ``[pools.*]`` in a profile, :mod:`memhil.capture.profiles`).

A pool call is rare (a firmware makes its pools at start-up), so a gdbstub breakpoint is cheap enough in every
capture mode that hooks: at entry the pool's address and size come from the argument registers (AAPCS r0-r3), and a
breakpoint on the return address (kept for the next call from there) sees the status in r0. Only a call that
returns the profile's ``success`` status is reported: ``on_pool(kind, pool, size)`` with kind ``"init"`` or
``"deinit"``. The frame is matched by its stack pointer, which is the same at entry and at the return address.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Iterable

from memhil.capture.base import release_breakpoints
from memhil.capture.profiles import AllocatorProfile, PoolFunctionSpec, load_profile
from memhil.engines.base import Capability

if TYPE_CHECKING:
    from memhil.elf import Image

log = logging.getLogger("memhil.capture")

PoolListener = Callable[[str, int, int], None]


class PoolHooks:
    """Breakpoints on the pool functions of ``profile`` the ELF has; successful calls go to ``on_pool``."""

    def __init__(self, engine, image: Image, profile: str | AllocatorProfile, on_pool: PoolListener, *,
                 only: Iterable[str] | None = None) -> None:
        self.engine = engine
        self.image = image
        self.profile = load_profile(profile)
        self.on_pool = on_pool
        self.functions: list[PoolFunctionSpec] = self.profile.present_pool_functions(image)
        if only is not None:  # the others are seen another way (patched hooks)
            names = set(only)
            self.functions = [f for f in self.functions if f.name in names]
        self._breakpoints: list = []
        self._return_bps: dict[int, object] = {}
        self._frames: dict[int, tuple[PoolFunctionSpec, int, int, int]] = {}  # sp -> (spec, pool, size, return address)
        self.calls = 0
        self.failed = 0
        self.attached = False

    def attach(self) -> None:
        """Install the entry breakpoints; nothing to do when the ELF has none of the profile's pool functions."""
        if self.attached or not self.functions:
            return
        if Capability.BREAKPOINTS not in getattr(self.engine, "capabilities", Capability.BREAKPOINTS):
            log.warning("the %s engine has no breakpoints: pools made by %s are not seen; name them (pools option)",
                        getattr(self.engine, "name", "?"), ", ".join(f.name for f in self.functions))
            return
        try:
            for spec in self.functions:
                address = self.image.symbol(spec.name).address
                self._breakpoints.append(self.engine.add_breakpoint(address, self._entry(spec)))
        except BaseException:
            self.detach()
            raise
        self.attached = True

    def detach(self) -> None:
        bps = self._breakpoints + list(self._return_bps.values())
        self._breakpoints, self._return_bps = [], {}
        self._frames.clear()
        self.attached = False
        release_breakpoints(self.engine, bps, "a pool breakpoint")

    def _entry(self, spec: PoolFunctionSpec) -> Callable:
        return lambda ctx: self._on_entry(spec, ctx)

    def _on_entry(self, spec: PoolFunctionSpec, ctx) -> None:
        regs = ctx.regs
        ret = regs["lr"] & ~1
        pool = regs[f"r{spec.pool}"] & 0xFFFFFFFF
        size = regs[f"r{spec.size}"] & 0xFFFFFFFF if spec.size is not None else 0
        self._frames[regs["sp"]] = (spec, pool, size, ret)
        if ret not in self._return_bps:
            self._return_bps[ret] = self.engine.add_breakpoint(ret, self._on_return)

    def _on_return(self, ctx) -> None:
        frame = self._frames.get(ctx.regs["sp"])
        if frame is None or frame[3] != ctx.pc & ~1:
            return  # the caller's code ran again without a pool call (the breakpoint is kept for the next one)
        del self._frames[ctx.regs["sp"]]
        spec, pool, size, _ = frame
        self.calls += 1
        status = ctx.regs["r0"] & 0xFFFFFFFF
        if status != spec.success:
            self.failed += 1
            log.info("%s(%#x, %d) returned %#x: no pool %s", spec.name, pool, size, status, "made" if spec.kind == "init" else "retired")
            return
        log.debug("%s(%#x, %d): pool %s", spec.name, pool, size, spec.kind)
        self.on_pool(spec.kind, pool, size)
