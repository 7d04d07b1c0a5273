"""A leak two calls deep on a rare path, in a module other than the obvious one (src/rare_net.c, src/rare_cache.c):
the NET request handler, on 1 request in 50, calls the FS cache's refresh, whose entry allocation is lost. Run for
real in QEMU on memhil's LiteOS kernel: the verdict from the hooks and from a heap walk, each asserted exactly; the
same sources on the host under valgrind memcheck give the same categories and byte totals."""

from __future__ import annotations

import re
import subprocess

import pytest

from fwbuild import SRC, build_liteos_app, build_liteos_host
from truth import TRUTH, observed

from memhil.analysis.leaks import find_leaks
from memhil.analysis.reachability import LeakKind
from memhil.session import Session, SessionOptions

FILES = ["rare_net.c", "rare_cache.c", "rare_path.h"]
LEAKS = 4  # requests 49, 99, 149 and 199 of 200
ENTRY = 40  # sizeof(struct cache_entry)
NET, FS = 1, 2


def _line(name: str, text: str) -> int:
    return next(i for i, line in enumerate((SRC / name).read_text().splitlines(), 1) if text in line)


ALLOC_LINE = _line("rare_cache.c", "/* RARE-LEAK */")
REFRESH_CALL = _line("rare_cache.c", "= cache_entry_new(key);")
HANDLER_CALL = _line("rare_net.c", "cache_refresh(request);")


@pytest.fixture(scope="module")
def rare(tmp_path_factory):
    elf = build_liteos_app("rare_path", FILES, tmp_path_factory.mktemp("rare_fw"))
    session = Session(SessionOptions(capture="hooks"), run_dir=tmp_path_factory.mktemp("rare_run"))
    with session:
        session.start(elf)
        session.take_snapshot("start")
        session.wait_for_line(r"RARE DONE refreshed (\d+)", timeout=30)
        out = {"refreshes": session.read_symbol_u32("g_cache_refreshes")}
        session.take_snapshot("end")
        out["hooks"] = session.leaks("start", "end")
        walked = session.take_snapshot("walked", source="walk")
        out["walk"] = find_leaks(None, walked, session.symbolizer, reachability=session._memory["walked"].classify(walked.blocks.values()))
        out["ledger_modules"] = {m: session.module_used(m, source="ledger") for m in (NET, FS)}
        out["walk_modules"] = {m: session.module_used(m, source="walk") for m in (NET, FS)}
        out["firmware_modules"] = {m: session.firmware_module_used(m) for m in (NET, FS)}
        out["node"] = session.walk_heap().used_nodes[0].size
    return out


def test_the_rare_path_ran_on_a_counter(rare):
    assert rare["refreshes"] == LEAKS


@pytest.mark.parametrize("source", ["hooks", "walk"])
def test_one_leak_site_exact(rare, source):
    report = rare[source]
    assert observed(report) == TRUTH["rare_path"]
    assert report.summary() == {"definitely lost": (LEAKS * ENTRY, LEAKS), "indirectly lost": (0, 0), "possibly lost": (0, 0),
                                "still reachable": (0, 0), "not freed": (0, 0), "suppressed": (0, 0)}
    assert len(report.records) == 1 and report.records[0].kind is LeakKind.DEFINITE
    record = report.records[0]
    assert (record.site.file.endswith("rare_cache.c"), record.site.line, record.site.function) == (True, ALLOC_LINE, "cache_entry_new")
    assert report.leak_sites == [record.site.name]
    # B's helper, then A's handler, each at the line of its call
    frames = [(f.function, f.line) for f in record.frames]
    assert frames[:3] == [("cache_entry_new", ALLOC_LINE), ("cache_refresh", REFRESH_CALL), ("net_handle_request", HANDLER_CALL)]


@pytest.mark.parametrize("source", ["hooks", "walk"])
def test_the_leak_is_charged_to_fs_not_net(rare, source):
    assert {b.module for b in rare[source].records[0].blocks} == {FS}


def test_module_figures(rare):
    """FS holds the four lost entries (whole nodes, as the firmware counts), NET holds nothing: from the ledger,
    the walk and the firmware's own statistics alike."""
    assert rare["node"] > ENTRY
    expect = {NET: 0, FS: LEAKS * rare["node"]}
    assert rare["ledger_modules"] == rare["walk_modules"] == rare["firmware_modules"] == expect


def test_matches_valgrind_memcheck(rare, tmp_path):
    """The same two modules on the host with the same allocator (pool annotated for memcheck): memcheck's LEAK
    SUMMARY equals memhil's kind by kind, and its one loss record has the same allocating line and callers."""
    host = build_liteos_host("rare_path", FILES[:2], tmp_path)
    proc = subprocess.run(["valgrind", "--leak-check=no", str(host)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"RARE DONE refreshed {LEAKS}" in proc.stdout
    theirs = {m[0]: (int(m[1].replace(",", "")), int(m[2].replace(",", "")))
              for m in re.findall(r"(definitely lost|indirectly lost|possibly lost|still reachable): ([\d,]+) bytes in ([\d,]+) blocks", proc.stderr)}
    assert set(theirs) == {"definitely lost", "indirectly lost", "possibly lost", "still reachable"}
    for source in ("hooks", "walk"):
        ours = rare[source].summary()
        assert theirs == {k: ours[k] for k in theirs}
    records = re.findall(r"are definitely lost in loss record \d+ of (\d+)\n((?:==\d+==\s+(?:at|by) .*\n)+)", proc.stderr)
    assert len(records) == 1 and records[0][0] == "1"
    stack = re.findall(r"(?:at|by) 0x[0-9A-F]+: (\w+) \((\S+):(\d+)\)", records[0][1])
    ours = [(f, file, int(line)) for f, file, line in stack if file.startswith("rare_")]
    assert ours[:3] == [("cache_entry_new", "rare_cache.c", ALLOC_LINE), ("cache_refresh", "rare_cache.c", REFRESH_CALL),
                        ("net_handle_request", "rare_net.c", HANDLER_CALL)]
