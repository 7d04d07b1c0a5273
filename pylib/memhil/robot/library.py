"""The memhil Robot Framework library, assembled from keyword components (robotlibcore's DynamicCore)."""

from __future__ import annotations

import html
import os
from pathlib import Path

from robotlibcore import DynamicCore

from memhil import __version__
from memhil.modules import ModuleMap
from memhil.robot.base import LibraryContext
from memhil.robot.emulator import EmulatorKeywords
from memhil.robot.heap import HeapKeywords
from memhil.robot.leaks import LeakKeywords
from memhil.robot.targetmap import TargetMapKeywords
from memhil.robot.timeline import TimelineKeywords
from memhil.session import SessionOptions, parse_pools


class MemhilLibrary(DynamicCore):
    """Memory testing of firmware running in an emulator.

    memhil starts a firmware ELF in QEMU (default) or Renode, hooks its allocator
    (LiteOS bestfit, newlib, FreeRTOS profiles), and asserts per-module memory,
    leaks by call stack, heap integrity and the memory timeline. Durations carry
    units (``100ms``, ``6h``), byte counts may (``4 KiB``); getters assert with
    an operator (``Get Module Used    NET    <=    4096``). Every keyword behaves
    the same on either engine.

    = Importing =
    | Library    memhil.robot    engine=qemu    capture=hooks    modules=SYS=0,NET=1,FS=2,APP=3

    ``tick_symbol`` and ``tick_hz`` name the firmware's tick counter and its rate for firmware without
    memhil's time barrier (LiteOS ``g_ullTickCount`` and FreeRTOS ``xTickCount`` are found by name; the rate
    defaults to 1000 Hz): ``Run For`` then stops on that counter, exact to one tick, by a SysTick stop memhil
    patches in emulator memory; ``tick_stop=False`` turns that off (for a firmware that checks its own flash or
    vector table) and polls the counter instead.

    LiteOS heaps are walked pool by pool from their headers: the system pool, the pools chained to it, and every
    pool a successful ``LOS_MemInit`` makes while hooks run. ``pools`` names more (the buffers given to
    ``LOS_MemInit``, by symbol or address, separated by commas: ``pools=g_netPool,0x2000a000``), for pools made
    before capture began or with ``capture=snapshot``; ``memhil run --pool`` sets it for every suite.
    """

    ROBOT_LIBRARY_SCOPE = "SUITE"
    ROBOT_LIBRARY_VERSION = __version__
    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, engine: str = "qemu", platform: str = "stm32f4", capture: str = "hooks",
                 profile: str | None = None, modules: str | None = None, outdir: str | None = None,
                 tick_symbol: str | None = None, tick_hz: int | None = None, pools: str | None = None, tick_stop: bool = True) -> None:
        # ``memhil run --profile`` and ``--pool`` pass their choice to every suite process in MEMHIL_PROFILE, MEMHIL_POOLS
        profile = profile or os.environ.get("MEMHIL_PROFILE") or "liteos"
        pools = pools or os.environ.get("MEMHIL_POOLS") or ""
        engine_options: dict = {}
        if tick_symbol:
            engine_options["tick_symbol"] = tick_symbol
        if tick_hz:
            engine_options["tick_hz"] = int(tick_hz)
        if str(tick_stop).lower() in ("false", "0", "no", "off"):
            engine_options["tick_stop"] = False
        options = SessionOptions(engine=engine, platform=platform, capture=capture, profile=profile, modules=ModuleMap.parse(modules),
                                 engine_options=engine_options, pools=parse_pools(pools))
        self.ctx = LibraryContext(options, Path(outdir) if outdir else None)
        self._run_dirs: list[Path] = []  # this suite's run directories, for its report.html pages
        self._at_test_start: tuple[object, bool] = (None, False)  # (session, running) when the current test began
        self.ROBOT_LIBRARY_LISTENER = self
        super().__init__([EmulatorKeywords(self.ctx), HeapKeywords(self.ctx), LeakKeywords(self.ctx), TimelineKeywords(self.ctx), TargetMapKeywords(self.ctx)])

    # -- listener: attach what a person needs to see to each test in log.html ---------------------
    # Everything is embedded in the log itself (tables, pictures as data: URIs): under pabot each
    # suite runs with its own output directory and log.html is merged elsewhere, so a link to a file
    # beside the log would point nowhere.
    def _start_suite(self, data, result) -> None:
        self._run_dirs = []

    def _start_test(self, data, result) -> None:
        session = self.ctx.session
        self._at_test_start = (session, session is not None and session.running)

    def _end_test(self, data, result) -> None:
        session = self.ctx.session
        if session is None or session.firmware is None:
            return
        before, was_running = self._at_test_start
        if not session.running and before is session and not was_running:
            return  # stopped before this test began: its figures belong to an earlier test
        from robot.api import logger

        self._remember(session.run_dir)
        try:
            logger.info(_test_report_html(session), html=True)
        except Exception as exc:  # never turn a report problem into a test failure
            logger.warn(f"memhil could not attach the memory report: {exc}")

    def _end_suite(self, data, result) -> None:
        session = self.ctx.session
        if session is not None and session.firmware is not None:
            self._remember(session.run_dir)
        try:
            self._write_suite_reports(data.name)
        except Exception as exc:  # noqa: BLE001 - the suite's results stand without the page
            from robot.api import logger

            logger.warn(f"memhil could not write the suite's HTML report: {exc}")

    def _remember(self, run_dir: Path) -> None:
        if run_dir not in self._run_dirs:
            self._run_dirs.append(run_dir)

    def _write_suite_reports(self, suite_name: str) -> None:
        """``report.html`` in each run directory of this suite, and one for the whole suite in their common parent."""
        from memhil.report.html import write_report
        from memhil.results import load_run

        dirs = [d for d in self._run_dirs if (d / "summary.json").is_file()]
        if not dirs:
            return
        runs = []
        for d in dirs:
            run = load_run(d)
            runs.append(run)
            write_report(d / "report.html", [run], title=f"memhil: {suite_name} / {run.name}")
        if len(dirs) > 1:
            root = Path(os.path.commonpath([str(d) for d in dirs]))
            for run in runs:
                run.name = run.path.parent.relative_to(root).as_posix() or run.name
            write_report(root / "report.html", runs, title=f"memhil: suite {suite_name}", subtitle=f"{len(runs)} runs")

    def _close(self) -> None:
        session = self.ctx.session
        if session is not None:
            session.stop()


def _test_report_html(session) -> str:
    """The test's memory table: from the live session while it runs, else from the summary.json that
    Stop Emulator wrote (so tests whose teardown stops the emulator have one too)."""
    from memhil.report.html import render_fragment
    from memhil.results import load_run

    summary = session.run_dir / "summary.json"
    if not session.running:
        if summary.is_file():
            return "<b>memhil: memory at Stop Emulator</b>" + render_fragment(load_run(session.run_dir), pictures=True)
        return "<b>memhil</b>: the emulator stopped without writing summary.json (Stop Emulator    write_summary=False)"
    tail = html.escape(session.engine.console.tail(15))
    return (_heap_report_html(session)
            + f"<details><summary>console (last lines)</summary><pre>{tail}</pre></details>")


def _heap_report_html(session) -> str:
    from memhil.report.memreport import site_report
    from memhil.units import format_bytes

    session.drain()
    if session.options.capture in ("none", "snapshot"):
        return (f"<b>memhil: module usage</b>: capture {html.escape(session.options.capture)} keeps no ledger of live blocks; "
                "the figures are in the run's summary.json at Stop Emulator")
    rows = []
    for mid, stat in sorted(session.ledger.modules.items()):
        rows.append(f"<tr><td>{html.escape(session.options.modules.name(mid))}</td><td>{format_bytes(stat.current)}</td>"
                    f"<td>{format_bytes(stat.peak)}</td><td>{stat.blocks}</td></tr>")
    report = site_report(session.ledger.live.values(), session.symbolizer)
    sites = "".join(f"<tr><td>{html.escape(r.site)}</td><td>{html.escape(r.function or '')}</td><td>{format_bytes(r.size)}</td>"
                    f"<td>{format_bytes(r.node_bytes)}</td><td>{r.blocks}</td></tr>" for r in report.rows[:15])
    return (
        "<b>memhil: module usage (node bytes, as the firmware counts them)</b><table border=1><tr><th>module</th><th>current</th>"
        "<th>peak</th><th>blocks</th></tr>" + "".join(rows) + "</table><b>live memory by site</b><table border=1><tr><th>site</th>"
        "<th>function</th><th>requested bytes</th><th>node bytes</th><th>blocks</th></tr>" + sites + "</table>"
    )
