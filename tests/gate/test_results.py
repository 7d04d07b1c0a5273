"""End-of-run results: chunking run_for, growth series, the site sampler, leak sites, load_run/find_runs."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from memhil.elf.lines import Frame
from memhil.errors import ConfigError
from memhil.events import AllocEvent, EventKind
from memhil.heap import Ledger
from memhil.heap.model import LiveBlock
from memhil.analysis.reachability import LeakKind, Reachability
from memhil.results import SiteSampler, build_summary, find_runs, growth_rows, leak_sites, load_run, module_growth, split_duration
from memhil.session import SessionOptions


@pytest.mark.parametrize("seconds", [10.0, 1.0, 0.8, 0.25, 0.05, 3600.0, 7.0 / 3.0])
def test_split_duration_sums_exactly_on_millisecond_bounds(seconds):
    parts = split_duration(seconds)
    assert sum(parts) == pytest.approx(seconds, abs=1e-9)
    assert 1 <= len(parts) <= 8
    acc = 0.0
    for part in parts[:-1]:
        acc += part
        assert abs(acc * 1000 - round(acc * 1000)) < 1e-6
    assert all(p > 0 for p in parts)


def test_split_duration_long_runs_give_eight_samples_short_ones_fewer():
    assert len(split_duration(10.0)) == 8
    assert len(split_duration(0.3)) == 3
    assert split_duration(0.02) == [0.02]
    assert split_duration(0.0) == [0.0]


def block(ptr, pc, module=3, nbytes=76, seq=1, t_us=0):
    return LiveBlock(ptr, nbytes - 12, nbytes, module, 0, seq, t_us, (pc, 0x0800_2001))


def test_sampler_keys_by_module_and_pc_and_decimates():
    sampler = SiteSampler(max_samples=8)
    for i in range(20):
        sampler.take(i * 1000, [block(0x2000_0000 + 0x100 * k, 0x0800_1001) for k in range(i)])
    assert len(sampler.samples) <= 8
    assert sampler.samples[0].t_us == 0 and sampler.samples[-1].t_us == 19_000
    last = sampler.samples[-1]
    assert last.sites[(3, 0x0800_1001)] == (19 * 64, 19)  # requested bytes per site
    assert last.modules == {3: 19 * 76}  # whole nodes per module, as LiteOS counts them
    sampler.take(19_000, [])  # same instant: replaced, not appended
    assert sampler.samples[-1].sites == {}


class FakeSymbolizer:
    def frame(self, pc, *, is_return_address=False):
        if pc == 0x0800_1001:
            return Frame(pc, "leak_here", "apps/x/app.c", 20)
        return Frame(pc, "caller", "apps/x/main.c", 7)

    def frames(self, pc, *, is_return_address=False):
        return [self.frame(pc)]

    def relative(self, file):
        return file


def test_leak_sites_only_growing_sites_with_rate_and_stacks():
    sampler = SiteSampler()
    live = []
    steady = block(0x2000_8000, 0x0800_3001, module=1)
    for i in range(8):
        live.append(block(0x2000_0000 + 0x100 * i, 0x0800_1001, seq=i, t_us=i * 1_000_000))
        sampler.take(i * 1_000_000, live + [steady])
    rows = leak_sites(sampler.samples, live + [steady], FakeSymbolizer(), lambda m: {1: "NET", 3: "APP"}[m])
    assert [r["site"] for r in rows] == ["apps/x/app.c:20"]
    row = rows[0]
    assert row["function"] == "leak_here" and row["module_name"] == "APP"
    assert row["rises"] == 5 and row["blocks"] == 8 and row["bytes"] == 8 * 64  # 2 of 8 samples are warm-up
    assert row["bytes_per_hour"] == pytest.approx(64 * 3600) and row["blocks_per_hour"] == pytest.approx(3600)
    assert row["trend"]["blocks"]["growing"] and row["trend"]["blocks"]["p"] < 0.01
    assert row["lost_blocks"] is None  # no reachability given
    assert row["first_seen_s"] == 0.0
    assert [f["function"] for f in row["stacks"][0]["frames"]] == ["leak_here", "caller"]
    assert module_growth(sampler.samples)[1] == 0.0


class OneLineSymbolizer(FakeSymbolizer):
    """Both return addresses 0x08001001 and 0x08001005 are app.c line 20 (two calls on one line)."""

    def frame(self, pc, *, is_return_address=False):
        return super().frame(0x0800_1001 if pc in (0x0800_1001, 0x0800_1005) else pc)


def test_pcs_of_one_line_make_one_site_per_module():
    sampler = SiteSampler()
    live = []
    for i in range(8):
        live.append(block(0x2000_0000 + 0x100 * i, 0x0800_1001, seq=i))
        live.append(block(0x2000_4000 + 0x100 * i, 0x0800_1005, seq=i))
        live.append(block(0x2000_8000 + 0x100 * i, 0x0800_1005, module=1, seq=i))
        sampler.take(i * 1_000_000, list(live))
    rows = leak_sites(sampler.samples, live, OneLineSymbolizer(), lambda m: {1: "NET", 3: "APP"}[m])
    assert [(r["site"], r["module_name"]) for r in rows] == [("apps/x/app.c:20", "APP"), ("apps/x/app.c:20", "NET")]
    app, net = rows
    assert app["pcs"] == ["0x08001001", "0x08001005"] and net["pcs"] == ["0x08001005"]
    assert app["blocks_series"] == [2 * (i + 1) for i in range(8)] and net["blocks_series"] == list(range(1, 9))
    assert app["blocks"] == 16 and app["bytes"] == 16 * 64 and app["grown_bytes"] == 2 * 64 * 5  # since the warm-up (2 of 8 samples)
    assert app["bytes_per_hour"] == pytest.approx(2 * 64 * 3600)


def test_leak_sites_need_enough_samples():
    sampler = SiteSampler()
    live = []
    for i in range(7):  # 7 samples: 2 warm-up, 5 left, below the 6 the trend test needs
        live.append(block(0x2000_0000 + 0x100 * i, 0x0800_1001, seq=i))
        sampler.take(i * 1_000_000, list(live))
    assert leak_sites(sampler.samples, live, None, str) == []
    live.append(block(0x2000_1000, 0x0800_1001, seq=8))
    sampler.take(8_000_000, list(live))
    assert len(leak_sites(sampler.samples, live, None, str)) == 1


def test_a_growing_site_whose_blocks_are_all_reachable_is_not_a_leak():
    sampler = SiteSampler()
    live = []
    for i in range(10):
        live.append(block(0x2000_0000 + 0x100 * i, 0x0800_1001, seq=i, t_us=i * 1_000_000))
        sampler.take(i * 1_000_000, list(live))
    reachable = Reachability({b.ptr: LeakKind.REACHABLE for b in live})
    leaks, kept = growth_rows(sampler.samples, live, FakeSymbolizer(), str, reachability=reachable)
    assert leaks == [] and [r["site"] for r in kept] == ["apps/x/app.c:20"]
    assert kept[0]["reachable_blocks"] == 10 and kept[0]["lost_blocks"] == 0
    one_lost = Reachability({**reachable.kinds, live[3].ptr: LeakKind.DEFINITE})
    leaks, kept = growth_rows(sampler.samples, live, FakeSymbolizer(), str, reachability=one_lost)
    assert [r["lost_blocks"] for r in leaks] == [1] and kept == []


def test_node_bytes_creeping_is_not_a_leak_site():
    """Steady requested bytes in ever larger nodes (the bestfit leftovers a site is handed): no leak site."""
    sampler = SiteSampler()
    for i in range(12):
        live = [LiveBlock(0x2000_0000 + 0x100 * k, 64, 76 + 8 * i, 3, 0, k, 0, (0x0800_1001,)) for k in range(3)]
        sampler.take(i * 1_000_000, live)
    assert leak_sites(sampler.samples, live, FakeSymbolizer(), str) == []


def test_load_run_and_find_runs(tmp_path):
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "a" / "x" / "summary.json").write_text(json.dumps({"version": 2, "modules": {"1": {"name": "NET", "current": 5}}}))
    (tmp_path / "a" / "y").mkdir()
    (tmp_path / "a" / "y" / "summary.json").write_text(json.dumps({"version": 2, "modules": {}}))
    runs = find_runs(tmp_path / "a")
    assert [r.name for r in runs] == ["x", "y"]
    assert runs[0].module("net")["current"] == 5 and runs[0].module("1")["current"] == 5
    assert find_runs(tmp_path / "a" / "x")[0].name == "x"
    with pytest.raises(ConfigError, match="no summary.json in"):
        load_run(tmp_path / "a")
    (tmp_path / "a" / "y" / "summary.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        find_runs(tmp_path / "a")


def test_a_walk_without_module_ids_records_no_module_figures():
    sampler = SiteSampler()
    sample = sampler.take(0, [block(0x2000_0000, 0x0800_1001, module=0)], modules_known=False)
    assert sample.modules == {} and not sample.modules_known
    assert sample.sites[(0, 0x0800_1001)] == (64, 1)  # sites are still sampled


@pytest.mark.parametrize("capture, peak", [("hooks", 96), ("breakpoints", 96), ("trace", 96), ("snapshot", None)])
def test_every_capture_that_sees_every_call_has_peaks_in_the_summary(capture, peak):
    ledger = Ledger()
    ledger.apply(AllocEvent(0, 0, EventKind.ALLOC, 0x2000_0100, 40, 64, 1))
    ledger.apply(AllocEvent(1, 1000, EventKind.ALLOC, 0x2000_0200, 20, 32, 1))
    ledger.apply(AllocEvent(2, 2000, EventKind.FREE, 0x2000_0100, 0, 0, 1))
    session = SimpleNamespace(
        options=SessionOptions(capture=capture), ledger=ledger, sampler=SiteSampler(), engine=None, image=None,
        firmware=None, ended_virtual_s=1.0, ended_wall=None, _started_wall=time.monotonic(), snapshots={},
        heap_check=None, fragmentation=[],
    )
    module = build_summary(session)["modules"]["1"]
    assert module["peak"] == peak
    assert module["current"] == (32 if peak else None)  # snapshot: from a heap sample, and none was taken
