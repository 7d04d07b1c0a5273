from memhil.events import AllocEvent, EventFlag, EventKind as K
from memhil.heap import Ledger, LiveBlock
from memhil.report.memreport import format_mem_report, site_report


def ev(seq, kind, ptr, size=16, node=32, module=0, task=0, old=0, stack=(), flags=EventFlag.NONE):
    return AllocEvent(seq, seq * 1000, kind, ptr, size, node, module, task, stack, old, (), flags)


def test_module_current_and_peak_count_whole_nodes():
    led = Ledger()
    led.apply(ev(0, K.ALLOC, 0x100, 16, 32, module=0))
    led.apply(ev(1, K.ALLOC, 0x200, 16, 32, module=1))
    led.apply(ev(2, K.FREE, 0x100, module=0))
    assert led.module_used(0) == 0 and led.module_peak(0) == 32
    assert led.module_used(1) == 32
    assert led.total.current == 32 and led.total.peak == 64
    assert led.total.allocs == 2 and led.total.frees == 1


def test_realloc_moves_bytes_between_modules_and_blocks():
    led = Ledger()
    led.apply(ev(0, K.ALLOC, 0x100, 40, 68, module=2))
    led.apply(ev(1, K.REALLOC, 0x300, 200, 228, module=7, old=0x100))
    assert set(led.live) == {0x300}
    assert led.module_used(2) == 0 and led.module_used(7) == 228


def test_anomalies_are_recorded_not_raised():
    led = Ledger()
    led.apply(ev(0, K.ALLOC, 0x100))
    led.apply(ev(3, K.FREE, 0x999))
    led.apply(ev(4, K.ALLOC, 0x100))
    kinds = [a.kind for a in led.anomalies]
    assert kinds == ["seq-gap", "unknown-free", "double-alloc"]
    assert led.total.current == 32  # the double alloc replaced the block, it did not count twice


def test_untracked_blocks_left_out_of_tracked_totals():
    led = Ledger()
    led.apply(ev(0, K.ALLOC, 0x100, module=0))
    led.apply(ev(1, K.ALLOC, 0x200, module=0, flags=EventFlag.UNTRACKED))
    assert led.module_used(0) == 64
    assert led.module_used(0, tracked_only=True) == 32


def test_checkpoint_restore_keeps_state_not_history():
    blocks = [LiveBlock(0x100, 16, 32, module=3), LiveBlock(0x200, 48, 76, module=3)]
    led = Ledger(blocks, t_us=5_000_000)
    assert led.module_used(3) == 108 and led.total.allocs == 0 and led.t_us == 5_000_000


class FakeResolver:
    def frame(self, pc, is_return_address=True):
        class F:
            function = {0x1000: "app_handle_request", 0x2000: "net_rx"}.get(pc)
            file = {0x1000: "apps/leak_demo/app.c", 0x2000: "apps/net.c"}.get(pc)
            line = {0x1000: 42, 0x2000: 7}.get(pc)
        return F()


def test_site_report_groups_by_top_frame_and_sorts_by_size():
    blocks = [
        LiveBlock(1, 64, 92, stack=(0x1000, 0x5)),
        LiveBlock(2, 64, 92, stack=(0x1000, 0x6)),
        LiveBlock(3, 100, 128, lrs=(0x2000,)),
        LiveBlock(4, 8, 36),
        LiveBlock(5, 4, 32, stack=(0x3000,)),
    ]
    rep = site_report(blocks, FakeResolver())
    assert rep.total_size == 240
    assert [(r.site, r.size, r.blocks) for r in rep.rows] == [
        ("apps/leak_demo/app.c:42", 128, 2),
        ("apps/net.c:7", 100, 1),
        ("<unknown>", 8, 1),
        ("0x00003000", 4, 1),
    ]
    text = format_mem_report(rep)
    assert "apps/leak_demo/app.c" in text and "line:42" in text and "size:128" in text
