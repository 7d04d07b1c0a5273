import pytest

from fakesym import FakeSymbolizer, blk, snap
from memhil.analysis.diff import diff_snapshots, new_blocks
import math

from memhil.analysis.growth import find_growth, mann_kendall, series_trend
from memhil.errors import ConfigError

LEAK = (0x08001001, 0x08001101)
SHELL = (0x08002001, 0x08001101)
NET = (0x08003001,)


def test_diff_groups_new_blocks_by_site_and_stack():
    before = snap("before", 0, [blk(0x100, 16, stack=SHELL), blk(0x200, 8, stack=NET)])
    after = snap("after", 1000, [
        blk(0x100, 16, stack=SHELL),
        blk(0x300, 100, stack=LEAK),
        blk(0x400, 100, stack=LEAK),
        blk(0x500, 40, stack=(0x08001001, 0x08009999)),  # same site, other stack
        blk(0x600, 300, stack=NET),
    ])
    d = diff_snapshots(before, after, FakeSymbolizer())
    assert [b.ptr for b in d.new] == [0x300, 0x400, 0x500, 0x600]
    assert [b.ptr for b in d.freed] == [0x200]
    assert [(r.site, r.size, r.blocks) for r in d.by_site.rows] == [("net/rx.c:5", 300, 1), ("app/leak.c:42", 240, 3)]
    assert [(g.stack, g.count, g.size) for g in d.by_stack] == [(NET, 1, 300), (LEAK, 2, 200), ((0x08001001, 0x08009999), 1, 40)]
    assert d.by_stack[1].frames[0].function == "leaky_worker"
    assert d.new_bytes == 116 + 116 + 56 + 316 and d.net_bytes == d.new_bytes - 24 and d.dt_us == 1000


def test_reused_address_is_a_new_block():
    a = blk(0x100, 16, seq=3)
    b = blk(0x100, 16, seq=9)
    assert new_blocks(snap("x", 0, [a]), snap("y", 1, [b])) == [b]
    walk_a, walk_b = blk(0x100, 16), blk(0x100, 32)  # heap walks: no seq, compare node size
    assert new_blocks(snap("x", 0, [walk_a]), snap("y", 1, [walk_a])) == []
    assert new_blocks(snap("x", 0, [walk_a]), snap("y", 1, [walk_b])) == [walk_b]


def series(hours, leak_counts, shell_counts):
    snaps = []
    for i, (h, nl, ns) in enumerate(zip(hours, leak_counts, shell_counts)):
        blocks = [blk(0x1000 + 0x100 * k, 100, stack=LEAK) for k in range(nl)]
        blocks += [blk(0x8000 + 0x100 * k, 50, stack=SHELL) for k in range(ns)]
        snaps.append(snap(f"s{i}", int(h * 3_600_000_000), blocks))
    return snaps


def test_growth_finds_sites_that_keep_growing_with_rate_and_start():
    hours = list(range(8))
    snaps = series(hours, [2, 2, 3, 4, 5, 6, 7, 8], [3, 5, 2, 6, 3, 5, 2, 4])
    rows = find_growth(list(reversed(snaps)), FakeSymbolizer())
    assert [r.site for r in rows] == ["app/leak.c:42"]  # the shell history fluctuates: no trend
    r = rows[0]
    assert r.growing == "bytes+blocks" and r.blocks == [2, 2, 3, 4, 5, 6, 7, 8]
    assert r.bytes == [100 * n for n in r.blocks]  # requested bytes, not node bytes
    assert r.since_us == 2 * 3_600_000_000  # 20 % of 8 snapshots, rounded up, are warm-up
    assert r.blocks_per_hour == pytest.approx(1.0) and r.bytes_per_hour == pytest.approx(100.0)


def test_growth_needs_enough_snapshots_after_the_warm_up():
    with pytest.raises(ConfigError, match="at least 6 snapshots after the warm-up"):
        find_growth(series(range(5), [1, 2, 3, 4, 5], [0] * 5))
    same_time = [snap(str(i), 5, []) for i in range(8)]
    with pytest.raises(ConfigError, match="same virtual time"):
        find_growth(same_time)


def test_mann_kendall_against_hand_computed_values():
    s, z, p = mann_kendall([1, 2, 3, 4, 5, 6])
    assert s == 15 and z == pytest.approx(14 / math.sqrt(6 * 5 * 17 / 18)) and p == pytest.approx(0.00427, abs=5e-5)
    s, z, p = mann_kendall([3, 3, 3, 3])  # all tied: no variance, no trend
    assert (s, z, p) == (0, 0.0, 0.5)
    s, _, p = mann_kendall([5, 4, 3, 2, 1, 0])
    assert s == -15 and p > 0.99
    # ties shrink the variance: 1,1,2,2,3,3 -> S = 12, Var = (6*5*17 - 3*(2*1*9)) / 18 = 25.33
    s, z, _ = mann_kendall([1, 1, 2, 2, 3, 3])
    assert s == 12 and z == pytest.approx(11 / math.sqrt(25.333333))


@pytest.mark.parametrize(
    ("values", "growing"),
    [
        ([0, 0, 1, 2, 3, 4, 5, 6], True),  # a steady leak
        ([4, 6, 5, 6, 4, 5, 6, 5], False),  # bounded: never above the warm-up's highest
        ([0, 9, 2, 3, 4, 5, 6, 7], False),  # rising, but still below the warm-up's peak: bounded so far
        ([0, 1, 2, 3, 4], False),  # too few samples for a verdict
        ([1, 1, 1, 1, 1, 1, 1, 2], False),  # one step at the end is no trend
    ],
)
def test_series_trend(values, growing):
    times = [i * 1_000_000 for i in range(len(values))]
    assert series_trend(times, values).growing is growing


def test_node_bytes_creeping_with_requested_bytes_steady_is_not_growth():
    """The allocator hands a site larger leftover nodes over time: node bytes creep, nothing leaks."""
    snaps = []
    for i in range(10):
        blocks = [blk(0x1000 + 0x100 * k, 64, node=80 + 8 * i, stack=LEAK) for k in range(4)]
        snaps.append(snap(f"s{i}", i * 1_000_000, blocks))
    assert find_growth(snaps, FakeSymbolizer()) == []
