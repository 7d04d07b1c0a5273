"""A real run: module_stats in QEMU, its main stack's high-water mark, the measured map, the run
directory the CLI reads, the Robot keyword, the pytest helper, and the emulator's own cost."""

from __future__ import annotations

import json

import pytest
from assertionengine import AssertionOperator

from memhil.cli import main
from memhil.resources import child_usage, engine_usage
from memhil.robot.base import LibraryContext
from memhil.robot.targetmap import TargetMapKeywords
from memhil.session import Session, SessionOptions
from memhil.targetmap import build_map, format_maps, save_run_map, stack_summary, stack_usage

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def session(firmware, tmp_path_factory):
    s = Session(SessionOptions(capture="none"), run_dir=tmp_path_factory.mktemp("run"))
    try:
        s.start(firmware("module_stats"))
        s.run_for(0.5)
        yield s
    finally:
        s.stop()


def test_main_stack_high_water(session):
    (main_stack,) = [s for s in stack_usage(session.image, session.engine.read_memory) if s.name == "main"]
    assert main_stack.painted
    assert 0 < main_stack.used < main_stack.size
    assert main_stack.base < main_stack.high_water_addr < main_stack.end
    # the word just below the high-water mark still holds the paint, the one at it does not
    below = session.engine.read_memory(main_stack.high_water_addr - 4, 8)
    paint = session.image.read(session.image.symbol("g_memhil_stack_paint").address, 4)
    assert below[:4] == paint and below[4:] != paint


def test_measured_map_heap_matches_a_heap_walk(session):
    tmap = build_map(session.image, session.platform, session.engine.read_memory)
    heap = tmap.region("[heap]")
    walk = session.walk_heap()
    assert walk.ok and heap.detail["ok"]
    assert heap.detail["free_bytes"] == walk.fragmentation.free_bytes
    assert heap.used == heap.size - walk.fragmentation.free_bytes and 0 < heap.used < heap.size
    assert "used" in format_maps(tmap)


def test_run_dir_read_back_by_memhil_map(session, capsys):
    stacks = stack_summary(session)
    summary = json.loads(session.write_summary(extra={"stacks": stacks}).read_text())
    assert summary["stacks"]["main"]["used"] == stacks["main"]["used"] > 0
    save_run_map(session)
    assert main(["map", str(session.firmware), str(session.run_dir)]) == 0
    out = capsys.readouterr().out
    stack_line = next(l for l in out.splitlines() if "[stack:main]" in l)
    heap_line = next(l for l in out.splitlines() if "[heap]" in l)
    assert f"used {stacks['main']['used']} " in stack_line
    assert "used -" not in heap_line and "used " in heap_line


def test_robot_keyword_asserts_high_water(session):
    ctx = LibraryContext(session.options, None)
    ctx.session = session
    keywords = TargetMapKeywords(ctx)
    used = keywords.get_stack_high_water("main")
    assert used == keywords.get_stack_high_water("main", AssertionOperator["<"], "8 KiB")
    with pytest.raises(AssertionError, match="Stack main high water"):
        keywords.get_stack_high_water("main", AssertionOperator["<"], str(used))
    with pytest.raises(AssertionError, match="no stack named 'irq'"):
        keywords.get_stack_high_water("irq")
    assert "[stack:main]" in keywords.get_memory_map()


def test_pytest_helper(session, assert_stack_below):
    assert assert_stack_below(session, "main", 8192) > 0
    with pytest.raises(AssertionError, match="limit 4"):
        assert_stack_below(session, "main", 4)


def test_emulator_cost_live(session):
    usage = engine_usage(session.engine)
    assert usage is not None and usage.peak_rss_mb > 0 and usage.minor_faults > 0
    assert usage.rss_mb is not None and 0 < usage.rss_mb <= usage.peak_rss_mb


def test_emulator_cost_after_it_exits(firmware, platform, tmp_path):
    """getrusage(RUSAGE_CHILDREN) counts an emulator once it has been stopped and reaped."""
    from memhil.engines.qemu import QemuEngine

    before = child_usage()
    engine = QemuEngine()
    try:
        engine.start(platform, firmware("module_stats"), workdir=tmp_path)
        live = engine_usage(engine)
    finally:
        engine.stop()
    after = child_usage()
    assert after.peak_rss_mb >= live.peak_rss_mb > 0  # the largest child's peak, at least this one's VmHWM
    assert (after - before).minor_faults >= live.minor_faults > 0
