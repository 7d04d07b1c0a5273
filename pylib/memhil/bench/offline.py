"""Figures that need no emulator: ELF loading, symbolizing from a cold cache, the host's cost per
captured event, and parsing the recorded logs.

The parse figure runs the reader in a child process (:mod:`memhil.bench.parse_child`) so its peak
RSS (``getrusage(2)`` ``ru_maxrss``, self and waited-for children) is the reader's alone.
"""

from __future__ import annotations

import gc
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

from memhil.bench.registry import BenchContext, figure
from memhil.bench.stats import interleave, spreads
from memhil.capture.trace import _REC  # struct memhil_trace_rec: one layout, the decoder's
from memhil.errors import ElfError, MemhilError
from memhil.events import UNTRACKED_MODULE, AllocEvent, EventFlag



def encode_record(ev: AllocEvent) -> bytes:
    """``ev`` as the firmware's trace record (the inverse of ``memhil.capture.trace.decode_record``, with its layout)."""
    lrs = (tuple(ev.lrs) + (0, 0, 0))[:3]
    module = UNTRACKED_MODULE if ev.flags & EventFlag.UNTRACKED else ev.module
    return _REC.pack(ev.seq & 0xFFFFFFFF, ev.t_us // 1000, int(ev.kind), module, ev.task, ev.ptr, ev.old_ptr, ev.size, ev.node_size, *lrs)


@figure("elf_load", shown=(("elf_load_s", "s"), ("elf_lines_s", "s")))
def elf_load(ctx: BenchContext) -> dict[str, object]:
    """Seconds to open the soak ELF (symbols, sections) and to build its line index (DWARF .debug_line)."""
    from memhil.elf import Image

    per = []
    for _ in range(ctx.scale.runs):
        t0 = time.perf_counter()
        image = Image.open(ctx.elf("soak"))
        t1 = time.perf_counter()
        image.lines  # noqa: B018 - builds the line index
        per.append({"elf_load_s": t1 - t0, "elf_lines_s": time.perf_counter() - t1})
    return spreads(per, ("elf_load_s", "elf_lines_s"))


def text_addresses(image, limit: int) -> tuple[list[int], int]:
    """Thumb addresses (bit 0 set) spread over ``.text``: every halfword when ``.text`` holds at most ``limit``,
    else ``limit`` of them evenly spaced; in a fixed shuffled order. Returns (addresses, halfwords in .text)."""
    text = next((s for s in image.sections if s.name == ".text"), None)
    if text is None or text.size < 2:
        raise ElfError(f"{image.path} has no .text section to symbolize", hint="use the debug build of the firmware")
    halfwords = text.size // 2
    if halfwords <= limit:
        picks = range(halfwords)
    else:
        picks = sorted({i * halfwords // limit for i in range(limit)})
    addrs = [(text.addr + 2 * i) | 1 for i in picks]
    random.Random(1).shuffle(addrs)
    return addrs, halfwords


@figure("symbolize", shown=(("symbolize_addrs_per_s", "addr/s"), ("symbolize_distinct", "addr"),
                            ("symbolize_cached_addrs_per_s", "addr/s")))
def symbolize(ctx: BenchContext) -> dict[str, object]:
    """Distinct addresses spread over the soak ELF's ``.text`` symbolized (``site()``: function, file:line)
    from a cold cache: a fresh :class:`Symbolizer` per pass, every address once, passes until at least
    ``symbolize_addrs`` cold lookups; then the same addresses again from the warm cache. The line index
    is built before (``elf_lines_s``)."""
    from memhil.elf import Image, Symbolizer

    image = Image.open(ctx.elf("soak"))
    image.lines  # noqa: B018 - the index is elf_lines_s, not part of a lookup
    addrs, halfwords = text_addresses(image, ctx.scale.symbolize_addrs)
    passes = max(ctx.scale.runs, math.ceil(ctx.scale.symbolize_addrs / len(addrs)))
    ctx.say(f"symbolize: {len(addrs):,} distinct addresses of {halfwords:,} halfwords in .text, {passes} cold passes")
    per = []
    for _ in range(passes):
        sym = Symbolizer(image)
        cold = _time_lookups(sym.site, addrs)
        warm = _time_lookups(sym.site, addrs)
        per.append({"symbolize_addrs_per_s": len(addrs) / cold, "symbolize_cached_addrs_per_s": len(addrs) / warm})
    every = "every halfword address" if len(addrs) == halfwords else f"{len(addrs):,} evenly spaced halfword addresses"
    return {"symbolize_workload": f"{every} of soak.elf's .text ({halfwords:,} halfwords), a cold cache per pass, {passes} passes",
            "symbolize_distinct": len(addrs), "symbolize_text_halfwords": halfwords, "symbolize_cold_lookups": passes * len(addrs),
            **spreads(per, ("symbolize_addrs_per_s", "symbolize_cached_addrs_per_s"))}


def _time_lookups(lookup: Callable[..., object], addrs: Sequence[int]) -> float:
    started = time.perf_counter()
    for pc in addrs:
        lookup(pc)
    return time.perf_counter() - started


@figure("host_cost", shown=(("host_trace_us_per_event", "us"), ("host_decode_us_per_event", "us"),
                            ("host_ledger_us_per_event", "us"), ("host_soak_us_per_event", "us")))
def host_cost(ctx: BenchContext) -> dict[str, object]:
    """The host's work per captured event, measured on the burst app's recorded trace records with no
    emulator running: unpack + ``Ledger.apply_rows`` (a trace drain feeding the ledger alone),
    decode (unpack + ``events_from_rows``), ``Ledger.apply_many`` on the decoded events, and what a soak does
    per event (decode, ``TimelineWriter.write``, ``Ledger.apply``). Microseconds per event, median of runs."""
    from memhil.capture.trace import REC_SIZE, events_from_rows, unpack_rows
    from memhil.heap import Ledger
    from memhil.timeline.writer import TimelineWriter

    raw = ctx.artifact("trace_records", "burst_log")
    assert isinstance(raw, bytes)
    n = len(raw) // REC_SIZE
    if n == 0:
        raise MemhilError("the burst log recorded no events to measure the host's cost on", hint="check the burst app's trace capture")
    ctx.say(f"host cost: {n:,} recorded trace records, {ctx.scale.runs} runs")
    per = []
    for _ in range(ctx.scale.runs):
        gc.collect()
        t0 = time.perf_counter()
        Ledger().apply_rows(unpack_rows(raw))
        t1 = time.perf_counter()
        events = events_from_rows(unpack_rows(raw))
        t2 = time.perf_counter()
        Ledger().apply_many(events)
        t3 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="memhil-bench-host-") as tmp:
            ledger = Ledger()
            writer = TimelineWriter(Path(tmp), build_id="bench", platform="stm32f4", engine="none", follow=ledger,
                                    max_bytes=1 << 40, max_files=2)
            t4 = time.perf_counter()
            for ev in events_from_rows(unpack_rows(raw)):
                writer.write(ev)
                ledger.apply(ev)
            writer.close()
            t5 = time.perf_counter()
            if writer.error is not None:
                raise writer.error
        per.append({"host_trace_us_per_event": (t1 - t0) / n * 1e6, "host_decode_us_per_event": (t2 - t1) / n * 1e6,
                    "host_ledger_us_per_event": (t3 - t2) / n * 1e6, "host_soak_us_per_event": (t5 - t4) / n * 1e6})
    return {"host_events": n, **spreads(per, per[0].keys())}


def parse_once(directory: Path, workers: int) -> dict[str, float | int]:
    """Parse the log in a child process with ``workers`` workers; MB/s and the reader's peak RSS."""
    argv = [sys.executable, "-m", "memhil.bench.parse_child", str(directory), str(workers)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2])] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False, env=env)
    if proc.returncode != 0:
        raise MemhilError(f"the parse benchmark child failed (exit {proc.returncode})", hint="run it by hand to see the error",
                          argv=" ".join(argv), stderr_tail=proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parse_log(ctx: BenchContext, directory: Path, label: str) -> dict[str, object]:
    """Interleaved pairs of parses of ``directory`` (1 worker, 2 workers): MB/s, the speed-up per pair, peak RSS."""
    pairs = interleave(ctx.scale.runs, lambda i: parse_once(directory, 1), lambda i: parse_once(directory, 2), ctx.say,
                       f"parse {label}: 1 worker, then 2 workers")
    per = [{"parse_mb_per_s_1worker": a["mb_per_s"], "parse_mb_per_s_2workers": b["mb_per_s"],
            "parse_speedup_2workers": b["mb_per_s"] / a["mb_per_s"],
            "reader_peak_rss_mb": max(a["peak_rss_self_mb"], a["peak_rss_workers_mb"], b["peak_rss_self_mb"], b["peak_rss_workers_mb"])}
           for a, b in pairs]
    a = pairs[0][0]
    return {"parse_log_bytes": a["bytes"], "parse_log_files": a["files"], "parse_events": a["events"],
            "parse_bad_records": sum(p["bad_records"] for pair in pairs for p in pair), **spreads(per, per[0].keys())}


@figure("parse", shown=(("parse_mb_per_s_1worker", "MB/s"), ("parse_mb_per_s_2workers", "MB/s"), ("parse_speedup_2workers", "x"),
                        ("reader_peak_rss_mb", "MB")))
def parse(ctx: BenchContext) -> dict[str, object]:
    """The soak log recorded by the soak figure, parsed as users parse it (the target's figure)."""
    directory, kind = ctx.artifact("soak_log", "soak")  # type: ignore[misc]
    return {"parse_log_kind": kind, **parse_log(ctx, directory, "soak log")}


@figure("parse_burst", shown=(("burst_parse_mb_per_s_1worker", "MB/s"), ("burst_parse_mb_per_s_2workers", "MB/s")))
def parse_burst(ctx: BenchContext) -> dict[str, object]:
    """The burst log recorded by the burst_log figure (dense: 48,000 events per virtual second), ``burst_`` keys."""
    directory, kind = ctx.artifact("burst_log", "burst_log")  # type: ignore[misc]
    return {"burst_parse_log_kind": kind, **{f"burst_{k}": v for k, v in parse_log(ctx, directory, "burst log").items()}}
