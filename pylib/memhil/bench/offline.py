"""Benchmarks that need no emulator: ELF loading, symbolization, timeline log writing and parsing.

The parse benchmark runs the reader in a child process (:mod:`memhil.bench.parse_child`) so its
peak RSS (``getrusage(2)`` ``ru_maxrss``, self and waited-for children) is the reader's alone.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path
from typing import Callable, Iterator, Sequence

from memhil.errors import MemhilError
from memhil.events import AllocEvent, EventKind

Progress = Callable[[str], None]


def elf_load(elf: Path) -> dict[str, float]:
    """Seconds to open the ELF (symbols, sections) and to build its line index (DWARF .debug_line)."""
    from memhil.elf import Image, Symbolizer

    started = time.perf_counter()
    image = Image.open(elf)
    opened = time.perf_counter()
    sym = Symbolizer(image)
    sym.site(image.entry)
    lines = time.perf_counter()
    return {"elf_load_s": opened - started, "elf_lines_s": lines - opened}


def symbolize(elf: Path, addresses: Sequence[int], count: int) -> dict[str, float | int]:
    """Symbolize ``count`` return addresses cycled from ``addresses`` with a fresh (cold) Symbolizer.

    The address mix is the one a capture produced; every distinct address is looked up once
    in DWARF, then served from the cache, as reports do."""
    from memhil.elf import Image, Symbolizer

    if not addresses:
        raise MemhilError("no addresses to symbolize", hint="the soak run produced no events with call stacks")
    image = Image.open(elf)
    seq = list(addresses)
    seconds = _time_lookups(Symbolizer(image).site, seq, count)
    # the same through frame() (no file:line string): shows what site()'s path formatting costs
    frame_s = _time_lookups(Symbolizer(image).frame, seq, count)
    return {"symbolize_addrs": count, "symbolize_distinct": len(set(seq)), "symbolize_s": seconds,
            "symbolize_addrs_per_s": count / seconds, "symbolize_1m_s": seconds * 1_000_000 / count,
            "symbolize_frame_addrs_per_s": count / frame_s}


def _time_lookups(lookup: Callable[..., object], seq: Sequence[int], count: int) -> float:
    """Seconds for ``count`` lookups of return addresses, cycling through ``seq`` (a fresh cache per call)."""
    started = time.perf_counter()
    done = 0
    while done < count:
        n = min(len(seq), count - done)
        for pc in islice(seq, n):
            lookup(pc, is_return_address=True)
        done += n
    return time.perf_counter() - started


def synthetic_events(seed: int = 1, lrs: Sequence[int] = (0x08001001, 0x08002003, 0x08003005)) -> Iterator[AllocEvent]:
    """Soak-like events forever: NET allocates 1-4 blocks of 16-512 B every 100 ms and frees each
    2 s later, FS allocates and frees 1 KiB every second, APP leaks 48 B every 10 minutes."""
    rng = random.Random(seed)
    seq = 0
    next_ptr = 0x20001000
    pending: list[tuple[int, int, int]] = []  # (free_at_us, ptr, size)
    t_us = 0
    lr_pool = [tuple(lrs[i:] + lrs[:i]) for i in range(len(lrs))]
    while True:
        t_us += 100_000
        while pending and pending[0][0] <= t_us:
            _, ptr, size = pending.pop(0)
            yield AllocEvent(seq, t_us, EventKind.FREE, ptr, size, size + 16, 2, 1, (), 0, lr_pool[0])
            seq += 1
        for _ in range(rng.randint(1, 4)):
            size = rng.randint(16, 512)
            ptr = next_ptr
            next_ptr = 0x20001000 + (next_ptr - 0x20001000 + 528) % 0x20000
            yield AllocEvent(seq, t_us, EventKind.ALLOC, ptr, size, size + 16, 2, 1, (), 0, lr_pool[seq % len(lr_pool)])
            seq += 1
            pending.append((t_us + 2_000_000, ptr, size))
        if t_us % 1_000_000 == 0:
            yield AllocEvent(seq, t_us, EventKind.ALLOC, 0x2002F000, 1024, 1040, 3, 2, (), 0, lr_pool[1])
            yield AllocEvent(seq + 1, t_us + 50, EventKind.FREE, 0x2002F000, 1024, 1040, 3, 2, (), 0, lr_pool[1])
            seq += 2
        if t_us % 600_000_000 == 0:
            yield AllocEvent(seq, t_us, EventKind.ALLOC, 0x2002E000 + (t_us // 600_000_000) % 64 * 64, 48, 64, 4, 3, (), 0, lr_pool[2])
            seq += 1


def write_log(directory: Path, total_bytes: int, max_bytes: int, progress: Progress | None = None) -> dict[str, float | int]:
    """Write synthetic events with :class:`TimelineWriter` until the files hold ``total_bytes``."""
    from memhil.timeline.writer import TimelineWriter

    directory.mkdir(parents=True, exist_ok=True)
    max_files = max(10, total_bytes // max_bytes + 2)
    writer = TimelineWriter(directory, build_id="bench0000", platform="stm32f4", engine="synthetic", max_bytes=max_bytes, max_files=max_files)
    started = time.perf_counter()
    events = synthetic_events()
    next_report = total_bytes // 10
    try:
        while writer.bytes_written < total_bytes:
            for event in islice(events, 4096):
                writer.write(event)
            if writer.error is not None:
                raise writer.error
            if progress and writer.bytes_written >= next_report:
                progress(f"wrote {writer.bytes_written / 1e6:.0f} / {total_bytes / 1e6:.0f} MB")
                next_report += total_bytes // 10
    finally:
        writer.close()
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in directory.glob("memlog*.bin"))
    return {"log_bytes": size, "log_files": len(list(directory.glob("memlog*.bin"))), "log_events": writer.events,
            "write_s": seconds, "write_mb_per_s": size / 1e6 / seconds}


def parse(directory: Path, workers: int) -> dict[str, float | int]:
    """Parse the log in a child process with ``workers`` workers; MB/s and the reader's peak RSS."""
    argv = [sys.executable, "-m", "memhil.bench.parse_child", str(directory), str(workers)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise MemhilError(f"the parse benchmark child failed (exit {proc.returncode})", hint="run it by hand to see the error",
                          argv=" ".join(argv), stderr_tail=proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])
