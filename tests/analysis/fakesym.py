"""A symbolizer over a fixed table, with the memhil.elf.Symbolizer call signature."""

from memhil.elf.lines import Frame
from memhil.heap.model import LiveBlock, Snapshot

TABLE = {
    0x08001001: ("leaky_worker", "app/leak.c", 42),
    0x08001101: ("task_main", "app/main.c", 10),
    0x08002001: ("shell_history_add", "shell/history.c", 77),
    0x08003001: ("net_rx", "net/rx.c", 5),
}


class FakeSymbolizer:
    def __init__(self, inlined=None):
        self.calls = 0
        self.inlined = inlined or {}

    def frames(self, pc, *, is_return_address=False):
        self.calls += 1
        extra = [Frame(pc, fn, f, ln, True) for fn, f, ln in self.inlined.get(pc, ())]
        return extra + [self.frame(pc, is_return_address=is_return_address)]

    def frame(self, pc, *, is_return_address=False):
        fn, f, ln = TABLE.get(pc, (None, None, None))
        return Frame(pc, fn, f, ln)


def blk(ptr, size=16, node=None, stack=(0x08001001, 0x08001101), seq=-1, module=0, t_us=0, flags=0):
    from memhil.events import EventFlag

    return LiveBlock(ptr, size, node if node is not None else size + 16, module, 0, seq, t_us, tuple(stack), (), EventFlag(flags))


def snap(name, t_us, blocks):
    return Snapshot(name, t_us, {b.ptr: b for b in blocks})
