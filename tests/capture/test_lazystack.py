"""LazyStack answers its first frame and its truth from the record (no unwinding), the same as unwinding would."""

from __future__ import annotations

import pytest

from memhil.capture.lazystack import LazyStack, StackResolver
from memhil.errors import MemhilError

ENTRY, LR, SP = 0x08001000, 0x08002345, 0x20001F00


class Unwinder:
    """Unwinds as the real one does from an allocator's entry: the entry pc, then LR's return address, then
    ``more``; or fails."""

    def __init__(self, more=(0x08003000,), fail: bool = False) -> None:
        self.more, self.fail, self.calls = more, fail, 0

    def unwind(self, regs, read, max_depth=32):
        self.calls += 1
        if self.fail:
            raise MemhilError("no CFI here")
        lr = regs["lr"] & ~1
        if lr >= 0xFFFFFF00:  # an exception return: the frame comes from the exception frame
            return [regs["pc"] & ~1, 0x08009990]
        return [regs["pc"] & ~1, lr, *self.more][:max_depth]


@pytest.mark.parametrize("unwinder,depth", [(Unwinder(), 16), (Unwinder(more=()), 16), (Unwinder(fail=True), 16),
                                            (None, 16), (Unwinder(), 1)])
@pytest.mark.parametrize("lr", [LR, LR & ~1, 0])
def test_the_first_frame_and_truth_need_no_unwinding_and_match_it(unwinder, depth, lr):
    resolver = StackResolver(unwinder, depth)
    lazy = LazyStack(resolver, (ENTRY, lr, SP, b"\0" * 16))
    first, truth = lazy[0], bool(lazy)
    assert resolver.unwound == 0
    resolved = LazyStack(resolver, (ENTRY, lr, SP, b"\0" * 16)).value
    assert resolver.unwound == 1
    assert (first, truth) == (resolved[0], bool(resolved))
    assert lazy == resolved and lazy[0] == first  # resolving later changes nothing


def test_an_exception_return_lr_is_unwound():
    unwinder = Unwinder()
    resolver = StackResolver(unwinder, 16)
    lazy = LazyStack(resolver, (ENTRY, 0xFFFFFFF9, SP, b"\0" * 32))
    assert lazy[0] == 0x08009990
    assert resolver.unwound == 1 and unwinder.calls == 1
