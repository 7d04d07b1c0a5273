"""Leak verdicts on foreign-style firmware, run for real in QEMU with hooks on its own allocator entry points:
each scenario's truth (truth.py) asserted exactly, and on the host build valgrind memcheck is the referee."""

from __future__ import annotations

import re
import subprocess

import pytest

from foreign_run import run_to_park
from truth import TRUTH, observed

from memhil.analysis.leaks import find_leaks
from memhil.analysis.reachability import LeakKind, classify
from memhil.analysis.roots import initial_sp, writable_sections
from memhil.session import Session, SessionOptions


def _run(elf, profile: str, run_dir):
    session = Session(SessionOptions(capture="hooks", profile=profile), run_dir=run_dir)
    with session:
        run_to_park(session, elf)
        report = session.leaks("start", "end")
        scan = session._memory["end"]
        end = session.snapshot("end")
        symbolizer = session.symbolizer
    return report, scan, end, symbolizer


@pytest.fixture(scope="module")
def heap_list(foreign_elf, tmp_path_factory):
    return _run(foreign_elf("heap_list"), "newlib", tmp_path_factory.mktemp("heap_list"))


@pytest.fixture(scope="module")
def rtos_style(foreign_elf, tmp_path_factory):
    return _run(foreign_elf("rtos_style"), "freertos", tmp_path_factory.mktemp("rtos_style"))


def test_newlib_linked_list_truth(heap_list):
    report, scan, _, _ = heap_list
    assert observed(report) == TRUTH["heap_list"]
    # roots by section flags, whatever the names; the heap arena (an array in .bss) is not a root
    names = {r.name for r in scan.roots}
    assert {".data", ".app_state", ".bss", "registers", "main stack"} <= names
    assert [s.name for s in scan.stacks] == ["main"]


def test_newlib_linked_list_matches_valgrind_memcheck(heap_list, foreign_host):
    """The same scenario built for the host: memcheck's LEAK SUMMARY equals memhil's, kind by kind."""
    proc = subprocess.run(["valgrind", "--leak-check=no", str(foreign_host("heap_list"))], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    theirs = {m[0]: (int(m[1].replace(",", "")), int(m[2].replace(",", "")))
              for m in re.findall(r"(definitely lost|indirectly lost|possibly lost|still reachable): ([\d,]+) bytes in ([\d,]+) blocks", proc.stderr)}
    ours = heap_list[0].summary()
    assert theirs == {k: ours[k] for k in theirs}
    assert set(theirs) == {"definitely lost", "indirectly lost", "possibly lost", "still reachable"}


def test_main_stack_is_sp_to_the_vector_tables_initial_sp(heap_list, foreign_elf):
    from memhil.elf import Image

    image = Image.open(foreign_elf("heap_list"))
    stack = image.symbol("g_main_stack")
    assert initial_sp(image) == stack.end
    _, scan, _, _ = heap_list
    main = scan.stacks[0]
    assert main.base == stack.address and main.top == stack.end and stack.address < main.sp < stack.end
    # the dead part below SP, where dead_frame left its pointer, is not a root
    assert not any(r.start < main.sp and r.end > stack.address for r in scan.roots if r.start)


def test_rtos_tasks_queues_and_timers_truth(rtos_style):
    report, scan, _, _ = rtos_style
    assert observed(report) == TRUTH["rtos_style"]
    assert "privileged_data" not in {r.name for r in scan.roots}  # the name carries no meaning
    assert ".privileged_data" in {r.name for r in scan.roots}


def test_rtos_task_stacks_from_the_task_records(rtos_style, foreign_elf):
    from memhil.elf import Image

    report, scan, end, _ = rtos_style
    tasks = {t.name: t for t in scan.tasks}
    assert set(tasks) == {"A", "B", "C", "D"}
    assert [t.name for t in scan.tasks if t.running] == ["C"]
    image = Image.open(foreign_elf("rtos_style"))
    d_stack = image.symbol("d_stack")
    assert (tasks["D"].base, tasks["D"].top) == (d_stack.address, d_stack.end)  # a static stack: its object
    for name in "AB":  # heap stacks: the block that holds them
        block = end.blocks[tasks[name].base]
        assert tasks[name].top == block.ptr + block.size
        assert tasks[name].saved_sp == tasks[name].top - 16 * 4  # the saved context
    live = {s.name: s for s in scan.stacks}
    assert live["task C"].sp == scan.registers["sp"]  # the running task: from the core's SP (PSP), not pxTopOfStack
    assert tasks["C"].base < live["task C"].sp < tasks["C"].top
    assert "main" not in live  # the core runs a task: the main stack is not scanned


def test_pointer_held_only_in_a_register(rtos_style):
    report, scan, end, symbolizer = rtos_style
    without = [r for r in scan.roots if r.name != "registers"]
    reach = classify(end.blocks.values(), without, scan.heap, views=scan.views, heuristic=scan.heuristic)
    lost = find_leaks(None, end, symbolizer, reachability=reach)
    assert observed(lost)[(LeakKind.DEFINITE, 28)] == 1  # reg_only: held in r8 (and r4) only
    assert observed(report)[(LeakKind.REACHABLE, 28)] == 1


def test_kernel_list_links_are_the_rtos_list_heuristic(rtos_style):
    """Without the heuristic, objects linked only by kernel lists are memcheck's 'possibly lost'."""
    report, scan, end, symbolizer = rtos_style
    reach = classify(end.blocks.values(), scan.roots, scan.heap, views=scan.views)
    plain = observed(find_leaks(None, end, symbolizer, reachability=reach))
    assert plain[(LeakKind.POSSIBLE, 64)] == 3  # TCBs A and B, reached only through list items, and b_msg in B's stack
    assert plain[(LeakKind.POSSIBLE, 76)] == 1  # the queue, only through B's event item
    with_h = scan.classify(end.blocks.values())
    assert set(with_h.heuristic.values()) == {"rtos-list"}
    # TCB A, TCB B, the queue, the timer; not TCB C, which pxCurrentTCB points at
    assert sorted(end.blocks[ptr].size for ptr in with_h.heuristic) == [36, 64, 64, 76]


def test_dead_stack_below_a_saved_sp_is_not_a_root(rtos_style):
    report, scan, end, _ = rtos_style
    tasks = {t.name: t for t in scan.tasks}
    for name in "AB":
        view = scan.views[tasks[name].base]
        assert view.start == tasks[name].saved_sp and view.end == tasks[name].top


def test_sections_by_flags(foreign_elf):
    from memhil.elf import Image

    image = Image.open(foreign_elf("rtos_style"))
    names = [s.name for s in writable_sections(image)]
    assert names == [".data", ".privileged_data", ".bss", ".main_stack"]


@pytest.fixture(scope="module")
def liteos_style(foreign_elf, tmp_path_factory):
    return _run(foreign_elf("liteos_style"), "newlib", tmp_path_factory.mktemp("liteos_style"))


def test_liteos_task_records_truth(liteos_style):
    report, scan, end, _ = liteos_style
    assert observed(report) == TRUTH["liteos_style"]
    tasks = {t.name: t for t in scan.tasks}
    assert set(tasks) == {"main", "net", "fs"}  # the unused entry has no stack
    assert [t.name for t in scan.tasks if t.running] == ["main"]
    for name in ("net", "fs"):
        t = tasks[name]
        assert t.top - t.base == 512 and t.saved_sp == t.top - 16 * 4
        view = scan.views[t.base]  # a heap stack: only its live part is scanned
        assert (view.start, view.end) == (t.saved_sp, t.top)
    live = {s.name: s for s in scan.stacks}
    assert live["task main"].sp == scan.registers["sp"]


def test_twenty_runs_give_the_same_sites(foreign_elf, tmp_path):
    """The verdict does not depend on the run: twenty runs of one scenario, the same leak sites and summary."""
    elf = foreign_elf("heap_list")
    seen = set()
    for i in range(20):
        session = Session(SessionOptions(capture="hooks", profile="newlib"), run_dir=tmp_path / str(i))
        with session:
            run_to_park(session, elf)
            report = session.leaks("start", "end")
        seen.add((tuple(report.leak_sites), tuple(sorted(report.summary().items()))))
    assert len(seen) == 1
    sites, summary = seen.pop()
    assert len(sites) == 4 and dict(summary)["definitely lost"] == (104, 3)
