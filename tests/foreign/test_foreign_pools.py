"""LiteOS pools that LOS_MemInit makes on the firmware's own buffers (no LOSCFG_MEM_MUL_POOL chain): hooks see the
call and the pool is walked with the system pool; a pool made before capture is named by the user. Run for real in
QEMU on tests/foreign/src/liteos_pools.c built against memhil's LiteOS-bestfit kernel (its truth is at the top of that
file, and in truth.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fwbuild import SRC as SOURCES, build_liteos_app
from truth import TRUTH, observed

from memhil.analysis.leaks import find_leaks
from memhil.analysis.reachability import LeakKind
from memhil.errors import ConfigError
from memhil.session import Session, SessionOptions, parse_pools

SRC = SOURCES / "liteos_pools.c"
D, I, R = LeakKind.DEFINITE, LeakKind.INDIRECT, LeakKind.REACHABLE


@pytest.fixture(scope="module")
def pools_elf(tmp_path_factory) -> Path:
    """liteos_pools.c as an app of memhil's firmware tree (its Makefile, kernel and start-up), debug config."""
    return build_liteos_app("liteos_pools", [SRC.name], tmp_path_factory.mktemp("pools_fw"))


def _line(tag: str) -> int:
    return next(i for i, text in enumerate(SRC.read_text().splitlines(), 1) if f"/* {tag} */" in text)


def _run_to_done(session: Session, elf: Path) -> None:
    session.start(elf)
    session.take_snapshot("start")
    session.wait_for_line(r"POOLS DONE", timeout=30)
    assert session.read_symbol_u32("g_pools_done") == 1


@pytest.fixture(scope="module")
def hooked(pools_elf, tmp_path_factory):
    """Hooks see LOS_MemInit: what the ledger, the walk and the scan say once the app is done."""
    session = Session(SessionOptions(capture="hooks"), run_dir=tmp_path_factory.mktemp("pools_hooks"))
    with session:
        _run_to_done(session, pools_elf)
        session.take_snapshot("end")
        out = {
            "pools": dict(session.pools),
            "pool_calls": session.pool_calls,
            "unpatched": session.capture.unpatched_pool_functions,
            "pool_breakpoints": len(session._pool_hooks.functions),
            "scratch_pool": session.image.symbol("g_scratchPool").address,
            "ledger_report": session.leaks("start", "end"),
            "walks": session.walk_pools(),
            "walk": session.walk_heap(),
            "check": session.check_heap(),
            "walk_snap": session.take_snapshot("walked", source="walk"),
            "ledger_snap": session.snapshot("end"),
            "extents": session._pool_extents(),
            "net_pool": session.image.symbol("g_netPool").address,
            "sys_pool": session.read_symbol_u32("m_aucSysMem0"),
            "used": {m: session.module_used(m, source="walk") for m in (1, 2, 3)},
            "firmware": {m: session.firmware_module_used(m) for m in (1, 2, 3)},
        }
        scan = session._memory["walked"]
        out["walk_report"] = find_leaks(None, out["walk_snap"], session.symbolizer, reachability=scan.classify(out["walk_snap"].blocks.values()))
        out["symbolizer"] = session.symbolizer
    return out


def test_los_meminit_seen_by_hooks_only_when_it_succeeds(hooked):
    # the system pool's own LOS_MemInit at boot and the app's; the LOS_MemInit(NULL, ...) that failed made no pool
    assert hooked["pools"] == {hooked["sys_pool"]: 64 * 1024, hooked["net_pool"]: 2048}


def test_patched_hooks_patch_the_pool_functions_too(hooked):
    """No breakpoint: QEMU would run the whole page of allocator code around LOS_MemInit one instruction a block."""
    assert hooked["unpatched"] == [] and hooked["pool_breakpoints"] == 0


def test_los_memdeinit_retires_the_pool(hooked):
    # LOS_MemInit: system, net, NULL (fails), scratch; LOS_MemDeInit: scratch, then again (fails)
    assert hooked["pool_calls"] == (6, 2)
    assert hooked["scratch_pool"] not in hooked["pools"]
    assert hooked["scratch_pool"] not in [w.pool for w in hooked["walks"]]


def test_every_pool_walked_once(hooked):
    walks = hooked["walks"]
    assert [w.pool for w in walks] == [hooked["sys_pool"], hooked["net_pool"]]
    assert all(w.ok for w in walks)
    assert hooked["walk"].pools == ((hooked["sys_pool"], 64 * 1024), (hooked["net_pool"], 2048))
    net = {n.ptr for n in walks[1].used_nodes}
    snap = hooked["walk_snap"]
    assert sorted(b.size for b in snap.blocks.values() if b.ptr in net) == [24, 48]
    assert sorted(b.size for b in snap.blocks.values() if b.ptr not in net) == [32, 40]
    assert hooked["extents"] == [(p, p + size) for p, size in hooked["walk"].pools]


def test_hooks_ledger_and_walk_agree(hooked):
    check = hooked["check"]
    assert check["ok"] and check["pools"] == [f"{hooked['sys_pool']:#010x}", f"{hooked['net_pool']:#010x}"]
    assert check["ledger"]["ok"] and check["ledger"]["only_ledger_count"] == 0 and check["ledger"]["only_walk_count"] == 0
    ledger, walked = hooked["ledger_snap"].blocks, hooked["walk_snap"].blocks
    assert set(ledger) == set(walked)
    assert {p: (b.size, b.module) for p, b in ledger.items()} == {p: (b.size, b.module) for p, b in walked.items()}


def test_module_figures_from_every_pool(hooked):
    # NET: the 24- and 48-byte blocks of the net pool; FS: the 32-byte peer; APP: the 40-byte holder (whole nodes)
    used, firmware = hooked["used"], hooked["firmware"]
    assert used == firmware
    assert used[1] > 24 + 48 and used[2] > 32 and used[3] > 40


@pytest.mark.parametrize("source", ["ledger_report", "walk_report"])
def test_verdicts_across_pools(hooked, source):
    """The leak in the net pool is definitely lost; the system-pool block only it points to is indirectly lost."""
    report = hooked[source]
    assert observed(report) == TRUTH["liteos_pools"]
    assert report.summary()["definitely lost"] == (48, 1)
    assert report.summary()["indirectly lost"] == (32, 1)
    assert report.summary()["still reachable"] == (64, 2)


def test_leak_stacks(hooked):
    src = SRC.name
    ledger = {r.kind: r for r in hooked["ledger_report"].records}
    assert (ledger[D].site.file.endswith(src), ledger[D].site.line) == (True, _line("LEAK-NET"))
    assert (ledger[I].site.file.endswith(src), ledger[I].site.line) == (True, _line("LEAK-SYS"))
    functions = [f.function for f in ledger[I].frames]
    assert functions[:3] == ["sys_peer_alloc", "net_drop_message", "main"]
    assert [f.function for f in ledger[D].frames][:2] == ["net_drop_message", "main"]
    assert hooked["ledger_report"].leak_sites == [f"{ledger[D].site.name}"]
    # the walk's stacks are the link registers the debug build records in each node
    walk = {r.kind: r for r in hooked["walk_report"].records}
    assert walk[D].site == ledger[D].site and walk[I].site == ledger[I].site


def test_unnamed_pool_made_before_capture_is_missed_then_named(pools_elf, tmp_path):
    """capture=snapshot sees no LOS_MemInit: without naming the pool its blocks are not in the walk (and the net
    pool's buffer is scanned as a root, so the lost block's peer looks reachable); named, the walk is whole."""
    for pools, expect in (((), Counter({(R, 32): 1, (R, 40): 1})), (("g_netPool",), TRUTH["liteos_pools"])):
        session = Session(SessionOptions(capture="snapshot", pools=pools), run_dir=tmp_path / str(len(pools)))
        with session:
            session.start(pools_elf)
            session.wait_for_line(r"POOLS DONE", timeout=30)
            assert session.pools == {}
            snap = session.take_snapshot("end")
            reach = session._memory["end"].classify(snap.blocks.values())
            assert observed(find_leaks(None, snap, session.symbolizer, reachability=reach)) == expect
            assert len(session.walk_pools()) == 1 + len(pools)


def test_named_pool_by_address(pools_elf, tmp_path):
    from memhil.elf import Image

    address = Image.open(pools_elf).symbol("g_netPool").address
    session = Session(SessionOptions(capture="snapshot", pools=(f"{address:#x}",)), run_dir=tmp_path)
    with session:
        session.start(pools_elf)
        session.wait_for_line(r"POOLS DONE", timeout=30)
        assert [w.pool for w in session.walk_pools()][1:] == [address]


def test_named_pool_that_is_not_a_pool_header_is_a_clear_error(pools_elf, tmp_path):
    session = Session(SessionOptions(capture="snapshot", pools=("g_keep",)), run_dir=tmp_path)
    with session:
        session.start(pools_elf)
        session.wait_for_line(r"POOLS DONE", timeout=30)
        with pytest.raises(ConfigError) as err:
            session.walk_heap()
        assert "g_keep" in str(err.value) and "is not a LiteOS memory pool" in str(err.value)
        assert "LOS_MemInit" in err.value.hint
        # sampling in a run does not stop on it: the bad pool is a walk error there, reported by check_heap
        session.run_for(0.01)
        assert not session.check_heap()["checked"]


def test_named_pool_that_is_no_symbol(pools_elf, tmp_path):
    session = Session(SessionOptions(capture="snapshot", pools=("g_noSuchPool",)), run_dir=tmp_path)
    with pytest.raises(ConfigError) as err:
        session.start(pools_elf)
    assert "g_noSuchPool" in str(err.value)
    assert not session.running


def test_parse_pools():
    assert parse_pools("g_a, 0x2000a000 4096") == ["g_a", 0x2000A000, 4096]
    assert parse_pools(["g_a", 0x10]) == ["g_a", 0x10]
    assert parse_pools("0123,0X1f") == [123, 0x1F]
    with pytest.raises(ConfigError):
        parse_pools("g_a;rm")


POOLS_SUITE = """\
*** Settings ***
Library           memhil.robot    capture=snapshot    outdir=${OUTPUT DIR}/memhil
Library           String
Test Teardown     Stop Emulator

*** Test Cases ***
Named Pool Is Walked
    Start Emulator    ${ELF}
    Wait For Line    POOLS DONE    timeout=10s
    Heap Should Be Intact
    ${listing}=    Get Memused Listing
    ${rows}=    Get Line Count    ${listing}
    Should Be Equal As Integers    ${rows}    5

Keyword Argument Names Another Pool
    Start Emulator    ${ELF}    pools=g_keep
    Wait For Line    POOLS DONE    timeout=10s
    Run Keyword And Expect Error    *g_keep*is not a LiteOS memory pool*    Heap Should Be Intact
"""


def test_memhil_run_pool_reaches_the_suites(pools_elf, tmp_path, capfd):
    """``memhil run --pool`` names the pool for the library of every suite; ``pools=`` on Start Emulator overrides it.
    The listing has the header and the four used nodes of both pools (two without the pool)."""
    from memhil.cli import main

    suite = tmp_path / "pools.robot"
    suite.write_text(POOLS_SUITE)
    out = tmp_path / "out"
    assert main(["run", str(suite), "--pool", "g_netPool", "--variable", f"ELF:{pools_elf}", "--outdir", str(out)]) == 0
    # without --pool the same suite sees only the system pool's two used nodes
    capfd.readouterr()
    assert main(["run", str(suite), "--test", "Named Pool Is Walked", "--variable", f"ELF:{pools_elf}", "--outdir", str(tmp_path / "out2")]) == 1
    assert "3 != 5" in capfd.readouterr().out


def test_memhil_run_refuses_a_malformed_pool(tmp_path, capsys):
    from memhil.cli import main

    suite = tmp_path / "s.robot"
    suite.write_text("*** Test Cases ***\nT\n    No Operation\n")
    assert main(["run", str(suite), "--pool", "g_a;b", "--outdir", str(tmp_path)]) == 2
    assert "pool 'g_a;b' is neither an address nor a symbol name" in capsys.readouterr().err


def test_memhil_soak_refuses_a_malformed_pool_before_anything_starts(tmp_path, capsys):
    from memhil.cli import build_parser, main

    assert build_parser().parse_args(["soak", "fw.elf", "--pool", "g_a", "--pool", "0x20001000"]).pool == ["g_a", "0x20001000"]
    out = tmp_path / "soak"
    assert main(["soak", str(tmp_path / "fw.elf"), "--pool", "0x2000zz", "--outdir", str(out)]) == 2
    assert "pool '0x2000zz' is neither an address nor a symbol name" in capsys.readouterr().err
    assert not out.exists()


def test_library_import_and_environment(monkeypatch):
    from memhil.robot.library import MemhilLibrary

    assert MemhilLibrary(pools="g_netPool, 0x2000a000").ctx.options.pools == ("g_netPool", 0x2000A000)
    monkeypatch.setenv("MEMHIL_POOLS", "g_netPool")
    assert MemhilLibrary().ctx.options.pools == ("g_netPool",)


def test_breakpoint_capture_sees_the_pools_too(pools_elf, tmp_path):
    session = Session(SessionOptions(capture="breakpoints"), run_dir=tmp_path)
    with session:
        _run_to_done(session, pools_elf)
        net = session.image.symbol("g_netPool").address
        assert session.pools == {session.read_symbol_u32("m_aucSysMem0"): 64 * 1024, net: 2048}
        check = session.check_heap()
        assert check["ok"] and check["ledger"]["ok"] and len(check["pools"]) == 2
        assert sorted(b.size for b in session.take_snapshot("end").blocks.values()) == [24, 32, 40, 48]


def test_profile_pool_functions():
    from memhil.capture.profiles import load_profile, parse_profile

    liteos = load_profile("liteos")
    assert {n: (f.kind, f.pool, f.size, f.success) for n, f in liteos.pools.items()} == {
        "LOS_MemInit": ("init", 0, 1, 0), "LOS_MemDeInit": ("deinit", 0, None, 0)}
    base = {"name": "p", "functions": {"a": {"kind": "alloc", "size": "r0"}, "f": {"kind": "free", "ptr": "r0"}}}
    # a negative status is kept as r0 holds it, so patched hooks and breakpoints compare it alike
    assert parse_profile({**base, "pools": {"I": {"kind": "deinit", "pool": "r1", "success": -1}}}).pools["I"].success == 0xFFFFFFFF
    for pools, message in (
        ({"I": {"kind": "make", "pool": "r0"}}, "pools.I.kind must be one of init, deinit"),
        ({"I": {"kind": "init", "pool": "r0"}}, "pools.I.size: None is not an argument register"),
        ({"I": {"kind": "deinit", "pool": "r5"}}, "pools.I.pool: 'r5' is not an argument register"),
        ({"I": {"kind": "deinit", "pool": "r0", "extra": 1}}, "pools.I: unknown key(s) extra"),
        ({"a": {"kind": "deinit", "pool": "r0"}}, "pools.a is also an allocator function"),
    ):
        with pytest.raises(ConfigError) as err:
            parse_profile({**base, "pools": pools})
        assert message in str(err.value)
