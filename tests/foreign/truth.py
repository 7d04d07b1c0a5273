"""What each foreign scenario leaks, as ``(kind, requested bytes) -> blocks`` (see the comment at the top of
each src/<name>.c)."""

from collections import Counter

from memhil.analysis.reachability import LeakKind

D, I, P, R = LeakKind.DEFINITE, LeakKind.INDIRECT, LeakKind.POSSIBLE, LeakKind.REACHABLE

TRUTH = {
    "heap_list": Counter({(R, 16): 5, (R, 24): 1, (P, 32): 1, (D, 16): 1, (I, 16): 2, (D, 40): 1, (D, 48): 1}),
    "rtos_style": Counter({
        # definitely lost: c_stale, a_stale, d_stale (below saved SPs), lost_msg (dropped)
        (D, 36): 1, (D, 44): 1, (D, 76): 1, (D, 92): 1,
        # still reachable: c_local, reg_only, timer T, a_ctx, q_item, TCBs A/B/C and b_msg, d_ctx, queue Q,
        # t_ctx, stacks A and B, stack C
        (R, 20): 1, (R, 28): 1, (R, 36): 1, (R, 52): 1, (R, 60): 1, (R, 64): 4, (R, 68): 1, (R, 76): 1,
        (R, 84): 1, (R, 512): 2, (R, 1024): 1,
    }),
    "liteos_style": Counter({
        # definitely lost: t0_stale (below the running task's SP), t1_stale (below task 1's saved SP), dropped
        (D, 36): 1, (D, 44): 1, (D, 92): 1,
        # still reachable: t0_local, reg_only, t1_ctx, t3_msg, g_taskCBArray, the stacks of tasks 1, 3 and 0
        (R, 20): 1, (R, 28): 1, (R, 52): 1, (R, 64): 1, (R, 4 * 64): 1, (R, 512): 2, (R, 1024): 1,
    }),
    "liteos_pools": Counter({
        # definitely lost: the net pool's dropped message; indirectly lost: its peer in the system pool; still
        # reachable: g_keep's block (system pool) and the one it holds (net pool)
        (D, 48): 1, (I, 32): 1, (R, 40): 1, (R, 24): 1,
    }),
    "rare_path": Counter({
        # definitely lost: the cache entries cache_refresh drops on 1 request in 50 (requests 49, 99, 149, 199)
        (D, 40): 4,
    }),
}


def observed(report) -> Counter:
    """``(kind, size) -> blocks`` of a LeakReport (leaks and still reachable)."""
    out: Counter = Counter()
    for record in list(report.records) + list(report.reachable):
        for block in record.blocks:
            out[(record.kind, block.size)] += 1
    return out


def classified(reach, ledger) -> Counter:
    """``(kind, requested bytes) -> blocks`` of the ledger's blocks as ``reach`` (a classification of the walked
    blocks: capture=snapshot's view) takes them, the ledger giving each block's requested size."""
    return Counter((reach.kind(ptr), b.size) for ptr, b in ledger.blocks.items())
