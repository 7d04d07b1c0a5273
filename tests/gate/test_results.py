"""End-of-run results: chunking run_for, growth series, the site sampler, leak sites, load_run/find_runs."""

from __future__ import annotations

import json

import pytest

from memhil.elf.lines import Frame
from memhil.errors import ConfigError
from memhil.heap.model import LiveBlock
from memhil.results import SiteSampler, find_runs, growth, leak_sites, load_run, module_growth, split_duration


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


@pytest.mark.parametrize(
    ("series", "expected"),
    [([0, 0, 64, 64, 128], (2, 1)), ([10, 10, 10], (0, 0)), ([0, 64, 32, 96], (-1, 0)), ([5, 6, 7, 8], (3, 0))],
)
def test_growth(series, expected):
    assert growth(series) == expected


def block(ptr, pc, module=3, nbytes=76, seq=1, t_us=0):
    return LiveBlock(ptr, nbytes - 12, nbytes, module, 0, seq, t_us, (pc, 0x0800_2001))


def test_sampler_keys_by_module_and_pc_and_decimates():
    sampler = SiteSampler(max_samples=8)
    for i in range(20):
        sampler.take(i * 1000, [block(0x2000_0000 + 0x100 * k, 0x0800_1001) for k in range(i)])
    assert len(sampler.samples) <= 8
    assert sampler.samples[0].t_us == 0 and sampler.samples[-1].t_us == 19_000
    last = sampler.samples[-1]
    assert last.sites[(3, 0x0800_1001)] == (19 * 76, 19)
    assert last.modules == {3: 19 * 76}
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
    assert row["rises"] == 7 and row["blocks"] == 8 and row["bytes"] == 8 * 76
    assert row["bytes_per_hour"] == pytest.approx(76 * 3600)
    assert row["first_seen_s"] == 0.0
    assert [f["function"] for f in row["stacks"][0]["frames"]] == ["leak_here", "caller"]
    assert module_growth(sampler.samples)[1] == 0.0


def test_leak_sites_need_two_samples():
    sampler = SiteSampler()
    sampler.take(0, [block(0x2000_0000, 0x0800_1001)])
    assert leak_sites(sampler.samples, [], None, str) == []


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
