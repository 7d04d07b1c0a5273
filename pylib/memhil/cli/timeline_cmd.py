"""Query a timeline log directory: the local maximum of live bytes per interval of virtual time
(get_all_time_size), or live memory by allocation site at a time (get_mem_report_with_time),
and export it (CSV, massif for ms_print, PNG, HTML)."""

from __future__ import annotations

from pathlib import Path

from memhil.units import format_bytes, format_duration, parse_duration

NAME = "timeline"
HELP = "query a timeline log: sizes over time, the report at a time, exports"


def add_arguments(p) -> None:
    p.add_argument("logdir", help="directory of memlog*.bin files")
    p.add_argument("--at", default=None, help="report live memory by site at this virtual time (e.g. 6h, 3600s)")
    p.add_argument("--elf", default=None, help="the firmware ELF, to show file:line (its build must match the log)")
    p.add_argument("--module", default=None, help="only this module (name or id) in the series")
    p.add_argument("--interval", default="100ms", help="interval of the local maxima (default 100ms)")
    p.add_argument("--workers", type=int, default=None, help="parsing processes (default one per file)")
    p.add_argument("--csv", default=None, help="write the series as CSV")
    p.add_argument("--massif", default=None, help="write a massif file for ms_print")
    p.add_argument("--png", default=None, help="draw bytes over time to a PNG")
    p.add_argument("--html", default=None, help="write an HTML page with the plot and the top sites at the peak")
    p.add_argument("--limit", type=int, default=20, help="rows of the series or report to print (default 20)")


def run(args) -> int:
    from memhil.cli.outputs import check_file
    from memhil.errors import ConfigError
    from memhil.modules import ModuleMap
    from memhil.report.memreport import format_mem_report
    from memhil.timeline import export
    from memhil.timeline.reader import FilesProgress, TimelineReader

    outputs = {"csv": check_file(args.csv, "the CSV file"), "massif": check_file(args.massif, "the massif file"),
               "png": check_file(args.png, "the picture"), "html": check_file(args.html, "the page")}
    interval_ms = int(round(parse_duration(args.interval) * 1000))
    if interval_ms <= 0:
        raise ConfigError(f"--interval {args.interval!r} is shorter than 1 ms", hint="use e.g. 100ms")
    resolver = None
    build_id = None
    if args.elf:
        from memhil.elf import Image, Symbolizer

        image = Image.open(args.elf)
        resolver, build_id = Symbolizer(image), image.build_id
    modules = ModuleMap()
    reader = TimelineReader(Path(args.logdir), build_id=build_id, workers=args.workers, interval_ms=interval_ms,
                            progress=FilesProgress())
    for gap in reader.gaps:
        print(f"note: {gap}")
    if reader.stats.bad_records:
        print(f"note: {reader.stats.bad_records} damaged record(s) skipped")
    if args.at is not None:
        print(format_mem_report(reader.report_at(int(parse_duration(args.at) * 1000), resolver)))
    else:
        mid = modules.id(args.module) if args.module is not None else None
        series = reader.all_time_size(module=mid)
        t_peak, b_peak = reader.peak(mid)
        lo, hi = reader.t_range_ms
        print(f"{len(series)} intervals with events between {format_duration(lo / 1000)} and {format_duration(hi / 1000)} of virtual time; "
              f"peak {format_bytes(b_peak)} (node bytes) at {format_duration(t_peak / 1000)}")
        print(f"  {'virtual time':>16}  live node bytes (the interval's maximum)")
        for t, b in series[-args.limit:]:
            print(f"  {format_duration(t / 1000, precise=True):>16}  {format_bytes(b)}")
    names = modules.by_id
    if outputs["csv"]:
        export.to_csv(reader, outputs["csv"], module_names=names)
    if outputs["massif"]:
        export.to_massif(reader, outputs["massif"], resolver=resolver)
    if outputs["png"]:
        export.plot_png(reader, outputs["png"], resolver=resolver, module_names=names)
    if outputs["html"]:
        export.to_html(reader, outputs["html"], resolver=resolver, module_names=names)
    return 0

