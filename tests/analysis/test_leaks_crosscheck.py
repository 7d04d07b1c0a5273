import struct

import pytest

from fakesym import FakeSymbolizer, blk, snap
from memhil.analysis.crosscheck import crosscheck_from_memory, crosscheck_modules
from memhil.analysis.leaks import find_leaks
from memhil.analysis.reachability import LeakKind, Region, classify
from memhil.analysis.suppress import Suppressions
from memhil.errors import ConfigError
from memhil.events import AllocEvent, EventFlag, EventKind
from memhil.heap import Ledger

LEAK = (0x08001001, 0x08001101)
SHELL = (0x08002001, 0x08001101)


def test_find_leaks_groups_orders_and_suppresses():
    before = snap("before", 0, [blk(0x100, 8, stack=SHELL)])
    after = snap("after", 10, [blk(0x100, 8, stack=SHELL), blk(0x200, 64, stack=SHELL),
                               blk(0x300, 16, stack=LEAK), blk(0x400, 16, stack=LEAK), blk(0x500, 4, stack=())])
    supp = Suppressions.parse("{\n shell\n fun:shell_history_*\n}\n")
    rep = find_leaks(before, after, FakeSymbolizer(), supp)
    assert [(r.bytes, r.count, r.kind) for r in rep.records] == [(4, 1, LeakKind.UNFREED), (32, 2, LeakKind.UNFREED), (64, 1, LeakKind.UNFREED)]
    assert rep.records[2].suppressed_by == "shell" and rep.records[1].suppressed_by is None
    assert [r.bytes for r in rep.leaks] == [4, 32] and not rep.ok
    s = rep.summary()
    assert s["not freed"] == (36, 3) and s["suppressed"] == (64, 1)
    assert rep.records[1].frames[0].file == "app/leak.c"
    assert rep.as_dict()["records"][1]["pointers"] == ["0x00000300", "0x00000400"]


def test_find_leaks_with_reachability():
    a, b, c = blk(0x20002000, 32, stack=LEAK), blk(0x20002040, 32, stack=LEAK), blk(0x20002080, 32, stack=SHELL)
    heap = bytearray(0xC0)
    struct.pack_into("<I", heap, 0x00, b.ptr)  # a -> b
    data = struct.pack("<I", c.ptr)
    reach = classify([a, b, c], [Region(".bss", 0x20000000, data)], [Region("heap", 0x20002000, bytes(heap))])
    rep = find_leaks(None, snap("end", 1, [a, b, c]), FakeSymbolizer(), None, reach)
    kinds = {r.kind: (r.bytes, r.indirect_bytes) for r in rep.records}
    assert kinds == {LeakKind.DEFINITE: (32, 32), LeakKind.INDIRECT: (32, 0)}
    assert [r.kind for r in rep.reachable] == [LeakKind.REACHABLE]
    assert rep.summary()["still reachable"] == (32, 1) and rep.checked_reachability


def ev(seq, ptr, node, module, flags=EventFlag.NONE):
    return AllocEvent(seq, seq, EventKind.ALLOC, ptr, node - 16, node, module, 0, (), 0, (), flags)


def test_crosscheck_explains_untracked_blocks():
    led = Ledger()
    led.apply(ev(0, 0x100, 32, 1))
    led.apply(ev(1, 0x200, 48, 1, EventFlag.UNTRACKED))  # LOS_MemAlloc inside module 1
    led.apply(ev(2, 0x300, 32, 2))
    table = [0, 32, 32] + [0] * 30
    mem = b"".join(struct.pack("<I", v) for v in table)
    cc = crosscheck_from_memory(led, lambda addr, n: mem[addr - 0x20000100 : addr - 0x20000100 + n], 0x20000100, 33)
    assert not cc.ok and [m.module for m in cc.mismatches] == [1]
    m = cc.mismatches[0]
    assert (m.host, m.firmware, m.difference, m.explained) == (80, 32, 48, True)
    assert "0x00000200" in cc.text() and "LOS_MemAlloc" in cc.text()
    table[2] = 40
    cc = crosscheck_modules(led, table, [2])
    assert not cc.mismatches[0].explained and "unexplained" in cc.text()
    assert crosscheck_modules(led, [0, 80, 32]).ok


def test_crosscheck_bad_input():
    led = Ledger()
    with pytest.raises(ConfigError, match="unknown module id 40"):
        crosscheck_modules(led, [0] * 33, [40])
    with pytest.raises(ConfigError, match="read 8 of 132"):
        crosscheck_from_memory(led, lambda a, n: b"\0" * 8, 0x20000000)
