"""Keywords for the memory timeline of long runs: rotating logs, local maxima per interval, reports at a time."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from assertionengine import AssertionOperator, int_str_verify_assertion
from robotlibcore import keyword

from memhil.errors import ConfigError
from memhil.robot.base import LibraryContext, to_bytes
from memhil.units import parse_duration, parse_size


class TimelineKeywords:
    def __init__(self, ctx: LibraryContext) -> None:
        self.ctx = ctx
        self.directory: Path | None = None
        self._reader = None

    @keyword
    def start_timeline_log(self, directory: str | None = None, max_file_size: str = "96MiB", max_files: int = 10) -> str:
        """Starts writing every allocator event to rotating binary log files; returns the log directory.

        Files rotate at ``max_file_size``; at most ``max_files`` are kept (the oldest is deleted)."""
        if max_files < 1:
            raise ConfigError(f"max_files must be at least 1, not {max_files}", hint="keep at least one log file")
        self.directory = self.ctx.current().start_timeline(directory, max_bytes=parse_size(max_file_size), max_files=max_files)
        self._reader = None
        return str(self.directory)

    @keyword
    def stop_timeline_log(self) -> None:
        """Stops the timeline log and closes its file."""
        if self.ctx.session is not None:
            self.ctx.session.stop_timeline()

    def _open(self, directory: str | None, interval: str, workers: int | None):
        from memhil.timeline.reader import TimelineReader

        path = Path(directory) if directory else self.directory
        if path is None:
            raise ConfigError("no timeline log to read", hint="call Start Timeline Log first, or give a directory")
        if self.ctx.session is not None and self.ctx.session.timeline is not None:
            self.ctx.session.drain()
            self.ctx.session.timeline.flush()
        interval_ms = int(round(parse_duration(interval) * 1000))
        if interval_ms <= 0:
            raise ConfigError(f"interval {interval!r} is shorter than 1 ms", hint="use e.g. 100ms")
        return TimelineReader(path, workers=workers, interval_ms=interval_ms)

    @keyword
    def get_all_time_size(self, module: str | None = None, directory: str | None = None, interval: str = "100ms",
                          workers: int | None = None) -> list:
        """Returns ``[(t_ms, bytes)]``: the local maximum of live bytes in each interval of virtual time
        (intervals without events are left out: the level holds). ``workers`` parses the files in parallel."""
        if workers is not None:
            workers = int(workers)
            if workers < 1:
                raise ConfigError(f"workers must be at least 1, not {workers}", hint="use 1 or more parsing processes")
        reader = self._open(directory, interval, workers)
        mid = self.ctx.options.modules.id(module) if module is not None else None
        return reader.all_time_size(module=mid)

    @keyword
    def get_memory_report_at(self, time: str, directory: str | None = None, interval: str = "100ms"):
        """Returns live memory by allocation site at the local maximum of the interval holding ``time``."""
        reader = self._open(directory, interval, None)
        resolver = self.ctx.session.symbolizer if self.ctx.session is not None and self.ctx.session.image is not None else None
        return reader.report_at(int(parse_duration(time) * 1000), resolver)

    @keyword
    def get_timeline_files(self, directory: str | None = None) -> list[str]:
        """Returns the log files of the running timeline log (or all in ``directory``), oldest first."""
        path = Path(directory) if directory else self.directory
        if path is None:
            raise ConfigError("no timeline log", hint="call Start Timeline Log first, or give a directory")
        pattern = "memlog*.bin"
        writer = self.ctx.session.timeline if self.ctx.session is not None else None
        if writer is not None:
            self.ctx.session.drain()
            writer.flush()
            pattern = f"memlog*_{writer.run_id}-*.bin"  # this run's files, not those of earlier runs kept beside them
        return sorted((str(p) for p in path.glob(pattern)), key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0]))

    @keyword
    def save_timeline_plot(self, path: str, leak_sites: list | None = None, directory: str | None = None) -> str:
        """Draws live bytes over virtual time (total and per module, each leak site's own series highlighted and
        named in the legend, a small chart per module) to a PNG at ``path``, embeds the picture itself in the log,
        and returns the path. ``leak_sites`` are ``file:line`` strings, e.g. from `Get Leak Sites`."""
        from robot.api import logger

        from memhil.timeline.export import plot_png

        reader = self._open(directory, "100ms", None)
        session = self.ctx.session
        resolver = session.symbolizer if session is not None and session.image is not None else None
        sites = [s["site"] if isinstance(s, dict) else s for s in (leak_sites or [])]
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        plot_png(reader, out, sites, resolver=resolver, module_names=self.ctx.options.modules.by_id)
        # the picture itself goes into the log (a data: URI): a file link breaks when pabot merges logs elsewhere
        data = base64.b64encode(out.read_bytes()).decode("ascii")
        logger.info(f'<img src="data:image/png;base64,{data}" width="900" alt="timeline: {html.escape(str(out))}">', html=True)
        return str(out)

    @keyword
    def get_timeline_peak(self, module: str | None = None, assertion_operator: AssertionOperator | None = None,
                          assertion_expected: str | None = None, directory: str | None = None) -> int:
        """Returns the highest live bytes over the whole timeline (per module if given), optionally asserting it."""
        series = self.get_all_time_size(module, directory)
        peak = max((b for _, b in series), default=0)
        if assertion_operator is None:
            return peak
        return int_str_verify_assertion(peak, assertion_operator, to_bytes(assertion_expected), "Timeline peak bytes")
