"""Check that an engine works on this machine, step by step, and print what works and what does not (a report a
user can paste into a bug). With --engine renode: start Renode (its version, over which transport), load the
firmware, read memory back against the ELF, a hook round trip, RunFor's exactness in virtual time, a console
line, and a memory write while paused. Exit status: 0 all passed, 1 a check failed, 2 the engine is not installed.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

from memhil import contract

NAME = "doctor"
HELP = "check an engine on this machine (start, load, hooks, memory, RunFor, console) and report"

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_FIRMWARE = ROOT / "firmware" / "build" / "stm32f4" / "debug" / "module_stats.elf"


def add_arguments(p) -> None:
    p.add_argument("--engine", default="renode", choices=("renode",), help="the engine to check (renode)")
    p.add_argument("--renode", default="renode", metavar="PROGRAM", help="the renode program (default: renode on PATH)")
    p.add_argument("--backend", default="auto", choices=("auto", "binary", "pyrenode3"), help="how to drive Renode (default auto)")
    p.add_argument("--firmware", default=str(DEFAULT_FIRMWARE), help=f"firmware ELF to load (default {DEFAULT_FIRMWARE.relative_to(ROOT)})")
    p.add_argument("--platform", default="stm32f4", help="board under platforms/ (default stm32f4)")
    p.add_argument("--hook-symbol", default="SysTick_Handler", help="a function the firmware runs often, for the hook round trip")
    p.add_argument("--console-line", default=r"ready|LiteOS|memhil", help="a regex the firmware prints on its console after reset")
    p.add_argument("--workdir", help="keep Renode's files here (default: a temporary directory)")


def renode_installed(program: str, backend: str) -> str | None:
    """How Renode can be reached here, or None."""
    from memhil.engines.process import find_program
    from memhil.errors import ToolMissingError

    try:
        found = find_program(program, "renode")  # what the engine will start
    except ToolMissingError:
        found = None
    if backend in ("auto", "binary") and found:
        return f"program {found}"
    if backend in ("auto", "pyrenode3") and importlib.util.find_spec("pyrenode3") is not None:
        return "pyrenode3 (in-process)"
    return None


class Report:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, what: str, fn) -> object:
        try:
            detail = fn()
        except Exception as exc:  # noqa: BLE001 - every failure is reported, then the next check runs
            self.failed += 1
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"FAIL  {what}: {first}", flush=True)
            return None
        print(f"ok    {what}{': ' + str(detail) if detail not in (None, '') else ''}", flush=True)
        return detail if detail is not None else True


def run(args) -> int:
    how = renode_installed(args.renode, args.backend)
    if how is None:
        from memhil.engines.renode_monitor import SUPPORTED_TEXT

        print(f"memhil doctor: Renode is not installed on this machine (no {args.renode!r} on PATH"
              f"{', and pyrenode3 is not importable' if args.backend != 'binary' else ''}).\n"
              f"Install Renode (memhil supports {SUPPORTED_TEXT}: https://builds.renode.io, or a release from github.com/renode/renode), "
              "then run `memhil doctor --engine renode` again.")
        return 2
    from memhil.elf import Image
    from memhil.engines.renode import RenodeEngine
    from memhil.platform import Platform

    firmware = Path(args.firmware)
    if not firmware.is_file():
        print(f"memhil doctor: no firmware at {firmware}: build it with `make -C firmware`, or pass --firmware ELF")
        return 2
    print(f"memhil doctor: Renode engine, {how}, firmware {firmware}")
    report = Report()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="memhil-doctor-"))
    engine = RenodeEngine(renode_binary=args.renode, backend=args.backend, timeout=30)
    image = Image.open(firmware)
    platform = Platform.load(args.platform)

    def start():
        engine.start(platform, firmware, workdir=workdir)
        return f"Renode {engine.version} over {engine.monitor.name}, firmware loaded (run files in {workdir})"

    if report.check("start and load", start) is None:
        print(f"\n1 check failed; Renode's log: {workdir / 'renode.log'}")
        return 1
    try:
        report.check("read memory (the ELF's first load segment)", lambda: _read_back(engine, image))
        report.check("RunFor exact in virtual time", lambda: _run_for_exact(engine))
        report.check(f"console line /{args.console_line}/", lambda: engine.wait_for_line(args.console_line, timeout=2.0).group(0).strip())
        report.check(f"hook round trip at {args.hook_symbol}", lambda: _hook_round_trip(engine, image, args.hook_symbol))
        report.check("write memory while paused", lambda: _write_back(engine, image))
    finally:
        engine.stop()
    print(f"\n{'all checks passed' if not report.failed else f'{report.failed} check(s) failed'}; Renode's log: {workdir / 'renode.log'}")
    return 1 if report.failed else 0


def _read_back(engine, image) -> str:
    segment = min((s for s in image.load_segments if s.filesz), key=lambda s: s.paddr)
    size = min(64, segment.filesz)
    want = image.read(segment.paddr, size)
    got = engine.read_memory(segment.paddr, size)
    if got != want:
        raise AssertionError(f"{segment.paddr:#x}: Renode has {got[:16].hex()}, the ELF {want[:16].hex()}")
    return f"{size} bytes at {segment.paddr:#010x} match the ELF"


def _run_for_exact(engine) -> str:
    before = engine._machine_time()
    engine.run_for(0.123457)
    after = engine._machine_time()
    if round((after - before) * 1_000_000) != 123457:
        raise AssertionError(f"ran {after - before:.9f} s for 0.123457 s")
    return f"{before:.6f} s -> {after:.6f} s"


def _hook_round_trip(engine, image, name: str) -> str:
    symbol = image.find_symbol(name)
    if symbol is None:
        raise AssertionError(f"the firmware has no symbol {name} (pass --hook-symbol)")
    hits = []
    address = symbol.address
    bp = engine.add_breakpoint(address, lambda ctx: hits.append(ctx.pc))
    try:
        engine.run_for(0.05)
    finally:
        engine.remove_breakpoint(bp)
    if not hits or any(pc != address for pc in hits):
        raise AssertionError(f"{len(hits)} hit(s) in 50 ms, at {[hex(p) for p in hits[:3]]}")
    return f"{len(hits)} hit(s) in 50 ms of virtual time, registers and stack captured in the hook"


def _write_back(engine, image) -> str:
    address = engine.firmware.address(contract.UPTIME_SYMBOL) or min(s.vaddr for s in engine.firmware.segments if s.vaddr >= 0x20000000)
    old = engine.read_memory(address + 4, 4)
    engine.write_memory(address + 4, b"\x5a\xa5\x5a\xa5")
    got = engine.read_memory(address + 4, 4)
    engine.write_memory(address + 4, old)
    if got != b"\x5a\xa5\x5a\xa5":
        raise AssertionError(f"wrote 5aa55aa5 at {address + 4:#x}, read back {got.hex()}")
    return f"4 bytes at {address + 4:#010x} written and read back"
