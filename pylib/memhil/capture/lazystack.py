"""Call stacks unwound on the host only when someone looks at them, and cached.

A patched hook records the stack words above the allocator's entry SP; most allocations are freed again and
nobody ever asks for their stack, so unwinding every call would spend the host's time on answers thrown away.
A :class:`LazyStack` holds the raw words and unwinds (DWARF CFI, :class:`memhil.elf.Unwinder`) on first use;
:class:`StackResolver` caches results by (function, return address, stack words), so a call site seen again
costs one dictionary lookup. A LazyStack compares, hashes, sorts and iterates as the tuple it stands for.

Its first frame needs no unwinding: at the allocator's entry the return address is in LR (every CFI program
starts there, and a stack that cannot be unwound is ``(lr,)``), so ``stack[0]`` and ``bool(stack)``, all that
the samples of live bytes per allocation site ask of each live block, are answered from the record alone. An LR
holding an exception return value (an interrupt handler that tail-calls the allocator) is unwound: the frame
then comes from the exception frame on the stack.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

from memhil.errors import MemhilError

log = logging.getLogger("memhil.capture")

#: results kept before the cache starts over
CACHE_LIMIT = 1 << 16
#: an LR at or above this is an exception return value (EXC_RETURN), not a code address
EXC_RETURN_BASE = 0xF0000000


class StackResolver:
    """Unwinds from (function entry pc, caller lr, entry sp, stack words at sp) as the breakpoint hooks do."""

    def __init__(self, unwinder, depth: int) -> None:
        self.unwinder = unwinder
        self.depth = depth
        self._cache: dict[tuple[int, int, int, bytes], tuple[int, ...]] = {}
        self.unwound = 0
        self.hits = 0

    def resolve(self, key: tuple[int, int, int, bytes]) -> tuple[int, ...]:
        got = self._cache.get(key)
        if got is not None:
            self.hits += 1
            return got
        self.unwound += 1
        got = self._unwind(*key)
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = got
        return got

    def _unwind(self, pc: int, lr: int, sp: int, buf: bytes) -> tuple[int, ...]:
        lr &= ~1
        if self.unwinder is None or self.depth <= 1:
            return (lr,)

        def read(addr: int, size: int) -> bytes:
            off = addr - sp
            if 0 <= off and off + size <= len(buf):
                return buf[off : off + size]
            raise MemhilError(f"stack word at {addr:#x} was not recorded", hint="raise stack_words")

        try:
            pcs = list(self.unwinder.unwind({"sp": sp, "lr": lr | 1, "pc": pc | 1}, read, max_depth=self.depth + 1))
        except MemhilError as exc:
            log.debug("unwinding from %#x failed: %s", pc, exc)
            return (lr,)
        return tuple(pcs[1:]) if len(pcs) > 1 else (lr,)


@functools.total_ordering
class LazyStack(Sequence):
    """The program counters of one call stack, innermost first, unwound when first read."""

    __slots__ = ("_resolver", "_key", "_value")

    def __init__(self, resolver: StackResolver, key: tuple[int, int, int, bytes]) -> None:
        self._resolver: StackResolver | None = resolver
        self._key: tuple | None = key
        self._value: tuple[int, ...] | None = None

    @property
    def value(self) -> tuple[int, ...]:
        if self._value is None:
            self._value = self._resolver.resolve(self._key)  # type: ignore[union-attr,arg-type]
            self._resolver = self._key = None
        return self._value

    def __len__(self) -> int:
        return len(self.value)

    def __getitem__(self, index):
        if index == 0 and self._value is None:
            lr = self._key[1]  # type: ignore[index]
            if lr < EXC_RETURN_BASE:
                return lr & ~1  # the caller, as the unwinder's first step finds it (see the module's docstring)
        return self.value[index]

    def __iter__(self):
        return iter(self.value)

    def __bool__(self) -> bool:
        return True  # never empty: a stack that cannot be unwound is (lr,)

    def __eq__(self, other) -> bool:
        if isinstance(other, LazyStack):
            other = other.value
        return self.value == other if isinstance(other, tuple) else NotImplemented

    def __lt__(self, other) -> bool:
        if isinstance(other, LazyStack):
            other = other.value
        return self.value < other if isinstance(other, tuple) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.value)

    def __add__(self, other):
        return self.value + tuple(other)

    def __radd__(self, other):
        return tuple(other) + self.value

    def __repr__(self) -> str:
        return repr(self.value)

    def __reduce__(self):
        return (tuple, (self.value,))
