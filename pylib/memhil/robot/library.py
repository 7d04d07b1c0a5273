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
from memhil.session import SessionOptions


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
    defaults to 1000 Hz): ``Run For`` then stops on that counter, exact to one tick.
    """

    ROBOT_LIBRARY_SCOPE = "SUITE"
    ROBOT_LIBRARY_VERSION = __version__
    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, engine: str = "qemu", platform: str = "stm32f4", capture: str = "hooks",
                 profile: str | None = None, modules: str | None = None, outdir: str | None = None,
                 tick_symbol: str | None = None, tick_hz: int | None = None) -> None:
        # ``memhil run --profile`` passes its choice to every suite process in MEMHIL_PROFILE
        profile = profile or os.environ.get("MEMHIL_PROFILE") or "liteos"
        engine_options: dict = {}
        if tick_symbol:
            engine_options["tick_symbol"] = tick_symbol
        if tick_hz:
            engine_options["tick_hz"] = int(tick_hz)
        options = SessionOptions(engine=engine, platform=platform, capture=capture, profile=profile, modules=ModuleMap.parse(modules),
                                 engine_options=engine_options)
        self.ctx = LibraryContext(options, Path(outdir) if outdir else None)
        self.ROBOT_LIBRARY_LISTENER = self
        super().__init__([EmulatorKeywords(self.ctx), HeapKeywords(self.ctx), LeakKeywords(self.ctx), TimelineKeywords(self.ctx), TargetMapKeywords(self.ctx)])

    # -- listener: attach what a person needs to see to each test in log.html ---------------------
    def _end_test(self, data, result) -> None:
        session = self.ctx.session
        if session is None or not session.running:
            return
        from robot.api import logger

        try:
            report = _heap_report_html(session)
            tail = html.escape(session.engine.console.tail(15))
            logger.info(f"{report}<details><summary>console (last lines)</summary><pre>{tail}</pre></details>", html=True)
        except Exception as exc:  # never turn a report problem into a test failure
            logger.warn(f"memhil could not attach the memory report: {exc}")

    def _close(self) -> None:
        session = self.ctx.session
        if session is not None:
            session.stop()


def _heap_report_html(session) -> str:
    from memhil.report.memreport import site_report

    session.drain()
    rows = []
    for mid, stat in sorted(session.ledger.modules.items()):
        rows.append(f"<tr><td>{html.escape(session.options.modules.name(mid))}</td><td>{stat.current}</td><td>{stat.peak}</td><td>{stat.blocks}</td></tr>")
    report = site_report(session.ledger.live.values(), session.symbolizer)
    sites = "".join(f"<tr><td>{html.escape(r.site)}</td><td>{html.escape(r.function or '')}</td><td>{r.size}</td><td>{r.blocks}</td></tr>" for r in report.rows[:15])
    return (
        "<b>memhil: module usage</b><table border=1><tr><th>module</th><th>bytes</th><th>peak</th><th>blocks</th></tr>"
        + "".join(rows) + "</table><b>live memory by site</b><table border=1><tr><th>site</th><th>function</th><th>bytes</th><th>blocks</th></tr>"
        + sites + "</table>"
    )
