"""The growth keywords read snapshots through the library context and apply the one growth test."""

from __future__ import annotations

import pytest

from fakesym import FakeSymbolizer, blk, snap

from memhil.errors import AssertionFailure
from memhil.robot.leaks import LeakKeywords

LEAK = (0x08001001, 0x08001101)
SHELL = (0x08002001,)


class FakeSession:
    running = True

    def __init__(self, snaps):
        self.snaps = {s.name: s for s in snaps}
        self.symbolizer = FakeSymbolizer()

    def snapshot(self, name):
        return self.snaps[name]


class Ctx:
    def __init__(self, session):
        self.session = session

    def current(self):
        return self.session


def _snaps(leak_counts):
    return [snap(f"h{i}", i * 3_600_000_000, [blk(0x1000 + 0x100 * k, 40, stack=LEAK) for k in range(n)]
                 + [blk(0x9000, 8, stack=SHELL)]) for i, n in enumerate(leak_counts)]


def test_growing_sites_and_should_not_grow():
    growing = _snaps([0, 1, 1, 2, 3, 4, 5, 6, 7, 8])
    kw = LeakKeywords(Ctx(FakeSession(growing)))
    names = [s.name for s in growing]
    rows = kw.get_growing_sites(*names)
    assert [(r["site"], r["growing"]) for r in rows] == [("app/leak.c:42", "bytes+blocks")]
    assert rows[0]["blocks"] == [0, 1, 1, 2, 3, 4, 5, 6, 7, 8] and rows[0]["blocks_per_hour"] == pytest.approx(1.0)
    with pytest.raises(AssertionFailure, match=r"1 growing site\(s\) across 10 snapshots: app/leak.c:42 \(leaky_worker\)"):
        kw.should_not_grow(*names)
    steady = _snaps([3, 4, 3, 4, 3, 4, 3, 4, 3, 4])
    LeakKeywords(Ctx(FakeSession(steady))).should_not_grow(*[s.name for s in steady])


def test_snapshot_diff_keyword():
    snaps = _snaps([1, 3])
    d = LeakKeywords(Ctx(FakeSession(snaps))).get_snapshot_diff("h0", "h1")
    assert (d["new_blocks"], d["freed_blocks"]) == (2, 0)
    assert d["sites"] == [{"site": "app/leak.c:42", "function": "leaky_worker", "size": 80, "blocks": 2}]
    assert d["net_bytes"] == d["new_bytes"] == 2 * (40 + 16)
