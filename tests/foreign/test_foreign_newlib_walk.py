"""newlib's and picolibc's malloc heaps walked from their own state (newlib nano-malloc, newlib's full dlmalloc,
picolibc's nano-malloc), checked block for block against the hooks ledger on the linked-list scenario, and the
scenario's truth from the walk alone."""

from __future__ import annotations

import pytest

from foreign_run import run_to_park
from truth import TRUTH, classified

from memhil.elf import Image
from memhil.heap.select import TargetHeap
from memhil.session import Session, SessionOptions


@pytest.fixture(scope="module", params=["nano", "full", "picolibc"])
def newlib_run(request, foreign_elf, tmp_path_factory):
    elf = foreign_elf("heap_list", libc=request.param)
    session = Session(SessionOptions(capture="hooks", profile="newlib"), run_dir=tmp_path_factory.mktemp(request.param))
    with session:
        run_to_park(session, elf)
        walk = session.walk_heap()
        walked = session.take_snapshot("walked", source="walk")
        scan = session._memory["walked"]
        ledger = session.snapshot("end")
        check = session.check_heap()
    return request.param, elf, walk, walked, scan, ledger, check


def test_the_walker_is_chosen_by_what_the_elf_has(newlib_run):
    kind, elf, *_ = newlib_run
    assert TargetHeap(Image.open(elf)).kind == {"nano": "newlib-nano", "full": "newlib", "picolibc": "newlib-nano"}[kind]


def test_walk_matches_the_hooks_ledger(newlib_run):
    kind, _, walk, walked, _, ledger, check = newlib_run
    assert walk.ok, walk.errors
    assert sorted(walked.blocks) == sorted(ledger.blocks)
    for ptr, b in ledger.blocks.items():
        assert walked.blocks[ptr].size >= b.size
    assert walk.free_nodes  # the freed 32-byte block
    assert check["ok"] and check["ledger"]["ok"], check


def test_truth_from_the_walk_alone(newlib_run):
    _, _, _, walked, scan, ledger, _ = newlib_run
    assert classified(scan.classify(walked.blocks.values()), ledger) == TRUTH["heap_list"]
