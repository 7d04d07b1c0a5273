"""Run a firmware for a long stretch of virtual time (e.g. 24 h in about a minute) with trace capture and the
timeline log on, then report what grew: leak sites with their call stacks and rate per virtual hour, module
usage, the emulator's and memhil's own cost, and the timeline as a picture (timeline.png, timeline.html)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from memhil.units import format_bytes, format_duration, parse_duration, parse_size

NAME = "soak"
HELP = "run a firmware for hours of virtual time and report leaks and the memory timeline"


def add_arguments(p) -> None:
    p.add_argument("firmware", help="firmware ELF")
    p.add_argument("--duration", default="24h", help="virtual time to run, e.g. 24h, 90min (default 24h)")
    p.add_argument("--engine", default="qemu", help="emulator engine: qemu (default) or renode")
    p.add_argument("--platform", default="stm32f4", help="board under platforms/ (default stm32f4)")
    p.add_argument("--capture", default="trace", choices=("trace", "hooks"), help="capture mode (default trace: cheapest that sees every call)")
    p.add_argument("--profile", default="liteos", help="allocator profile for --capture hooks: liteos (default), newlib, freertos, or the path of a .toml profile")
    p.add_argument("--pool", action="append", default=[], metavar="SYMBOL|ADDRESS",
                   help="a LiteOS memory pool to walk with the system pool (repeatable): the buffer passed to LOS_MemInit, by "
                   "symbol or address; pools LOS_MemInit makes under --capture hooks are found without it")
    p.add_argument("--outdir", default="out/soak", help="run directory (default out/soak)")
    p.add_argument("--max-file-size", default="96MiB", help="timeline log rotation size (default 96MiB)")
    p.add_argument("--max-files", type=int, default=10, help="timeline log files kept (default 10)")
    p.add_argument("--modules", default=None, help="module names, e.g. NET=1,FS=2 (default the product's)")
    p.add_argument("--steps", type=int, default=48, help="progress steps (each one a sample of live memory)")
    from memhil.cli.keep import add_keep_argument

    add_keep_argument(p)


def run(args) -> int:
    from memhil.cli.outputs import check_dir
    from memhil.progress import StepProgress
    from memhil.errors import ConfigError
    from memhil.modules import ModuleMap
    from memhil.resources import engine_usage, self_usage
    from memhil.session import Session, SessionOptions

    seconds = parse_duration(args.duration)
    if seconds <= 0:
        raise ConfigError(f"--duration {args.duration!r} is zero", hint="give a positive duration, e.g. 24h")
    if args.steps < 1:
        raise ConfigError(f"--steps must be at least 1, not {args.steps}", hint="e.g. --steps 48")
    max_bytes = parse_size(args.max_file_size)
    from memhil.capture import load_profile

    load_profile(args.profile)  # an unknown profile is an error before anything starts
    from memhil.session import parse_pools

    pools = tuple(parse_pools(args.pool))  # so is a malformed pool
    out = check_dir(args.outdir, "the run directory")
    from memhil.cli import keep

    keep.apply(out, args.keep_runs, "soak")
    options = SessionOptions(engine=args.engine, platform=args.platform, capture=args.capture, profile=args.profile,
                             modules=ModuleMap.parse(args.modules), pools=pools)
    session = Session(options, run_dir=out)
    wall0 = time.monotonic()
    progress = StepProgress(args.steps, f"soak {format_duration(seconds)}")
    with session:
        session.start(args.firmware)
        log_dir = session.start_timeline(out / "timeline", max_bytes=max_bytes, max_files=args.max_files)
        step = seconds / args.steps
        for i in range(args.steps):
            session.run_for(step if i < args.steps - 1 else seconds - step * (args.steps - 1))
            progress.step(i + 1, f"{format_duration(session.virtual_time())} virtual, {time.monotonic() - wall0:.1f} s wall, "
                                 f"{format_bytes(session.ledger.total.current)} live")
        progress.close()
        emulator = engine_usage(session.engine)
        session.stop_timeline()
        summary_path = session.write_summary()
    data = json.loads(summary_path.read_text())
    wall = time.monotonic() - wall0
    print(f"memhil soak: {format_duration(seconds)} of virtual time in {wall:.1f} s wall ({seconds / wall:.0f}x)")
    _print_leaks(data)
    print("modules (node bytes): " + ", ".join(f"{m['name']} {format_bytes(m['current'])}, peak {format_bytes(m['peak'])}"
                                              for m in data["modules"].values() if m.get("peak")))
    if emulator is not None:
        print(emulator.format())
    print(self_usage().format())
    pictures = _timeline_pictures(log_dir, data, session)
    print(f"results: {summary_path}" + "".join(f", {p}" for p in pictures))
    return 0


def _print_leaks(data: dict) -> None:
    sites = data.get("leak_sites") or []
    if not sites:
        print("no growing leak site")
        return
    print(f"{len(sites)} growing leak site(s):")
    from memhil.report.frametext import leak_site_lines

    for site in sites:
        print("\n".join(leak_site_lines(site)))


def _timeline_pictures(log_dir: Path, data: dict, session) -> list[Path]:
    from memhil.timeline.export import plot_png, to_html
    from memhil.timeline.reader import TimelineReader

    from memhil.report.html import write_report
    from memhil.results import load_run

    reader = TimelineReader(log_dir, progress=False)
    sites = data.get("leak_sites") or []  # matched by their pcs: no second symbolizing
    png, page, report = session.run_dir / "timeline.png", session.run_dir / "timeline.html", session.run_dir / "report.html"
    names = session.options.modules.by_id
    title = f"memhil soak: {Path(str(data.get('firmware'))).name}, {data.get('virtual')} of virtual time"
    picture = io.BytesIO()
    plot_png(reader, picture, sites, resolver=session.symbolizer, module_names=names, title=title)
    png.write_bytes(picture.getvalue())
    to_html(reader, page, leak_sites=sites, resolver=session.symbolizer, module_names=names, title=title, picture=picture.getvalue())
    write_report(report, [load_run(session.run_dir)], title=title)
    return [png, page, report]
