import pytest

from fakesym import FakeSymbolizer, blk, snap
from memhil.analysis.diff import diff_snapshots, new_blocks
from memhil.analysis.growth import find_growth
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
    snaps = series([0, 1, 2, 3, 4], [2, 2, 4, 6, 8], [3, 5, 2, 6, 3])
    rows = find_growth(list(reversed(snaps)), FakeSymbolizer())
    assert [r.site for r in rows] == ["app/leak.c:42"]
    r = rows[0]
    assert r.growing == "bytes+blocks" and r.blocks == [2, 2, 4, 6, 8]
    assert r.since_us == 1 * 3_600_000_000
    assert r.blocks_per_hour == pytest.approx(2.0) and r.bytes_per_hour == pytest.approx(2 * 116)


def test_growth_needs_rises_and_snapshots():
    flat_then_one = series([0, 1, 2, 3], [1, 1, 1, 2], [1, 1, 1, 1])
    assert find_growth(flat_then_one, min_rises=2) == []
    assert [r.site for r in find_growth(flat_then_one, min_rises=1)] == ["0x08001001"]
    assert find_growth(flat_then_one[2:], min_rises=5)[0].blocks == [1, 2]  # capped at the intervals there are
    with pytest.raises(ConfigError, match="at least 2 snapshots"):
        find_growth(flat_then_one, warmup=3)
    same_time = [snap("a", 5, []), snap("b", 5, [])]
    with pytest.raises(ConfigError, match="same virtual time"):
        find_growth(same_time)
