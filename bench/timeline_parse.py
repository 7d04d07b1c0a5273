"""Benchmark: timeline log parsing speed per worker (issue 7: >= 100 MB/s per worker, bounded memory).

``measure(directory, workers)`` parses the newest run of ``memlog*.bin`` files in ``directory``
in a fresh child process (so the peak RSS is the parser's own) and returns
``{"mb_per_s", "mb_per_s_per_worker", "events_per_s", "peak_rss_mb", "mb", "events", "seconds", "workers"}``.
``peak_rss_mb`` is the largest resident set of any process that parsed (the worker processes
with ``workers > 1``, the child itself with ``workers == 1``), from ``resource.getrusage``.

``write_synthetic(directory, mb)`` writes a soak-like log of about ``mb`` megabytes with the
public :class:`~memhil.timeline.TimelineWriter`. Run as a script for a side-by-side run::

    .venv/bin/python bench/timeline_parse.py [--mb 200] [--dir /tmp/tlbench]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import sys
import time
from pathlib import Path

MB = 1_000_000


def synthetic_events(n: int, *, seed: int = 11):
    """``n`` soak-like allocator events: bursts inside 100 ms intervals, several modules, reallocs, call stacks."""
    from memhil.events import AllocEvent, EventKind as K

    rng = random.Random(seed)
    live: list[int] = []
    next_ptr = 0x2000_0100
    t = 0
    seq = 0
    sites = [0x0800_1000 + 0x40 * i for i in range(64)]
    while seq < n:
        t += rng.randrange(2_000, 40_000)
        module = rng.randrange(1, 6)
        if len(live) < 200 or (rng.random() < 0.52 and len(live) < 3000):
            size = rng.choice((16, 24, 32, 48, 100, 256, 1024))
            stack = tuple(rng.sample(sites, rng.randrange(2, 5)))
            if live and rng.random() < 0.08:
                old = live.pop(rng.randrange(len(live)))
                yield AllocEvent(seq, t, K.REALLOC, next_ptr, size, (size + 23) & ~7, module, 3, stack, old, (stack[0] | 1,))
            else:
                yield AllocEvent(seq, t, K.ALLOC, next_ptr, size, (size + 23) & ~7, module, 3, stack, 0, (stack[0] | 1, stack[1] | 1))
            live.append(next_ptr)
            next_ptr += 0x20
        else:
            ptr = live.pop(rng.randrange(len(live)))
            yield AllocEvent(seq, t, K.FREE, ptr, 0, 0, 0, 3, (sites[0],))
        seq += 1


def write_synthetic(directory: str | Path, mb: float = 200.0, *, max_bytes: int = 96 * 1024 * 1024) -> dict:
    """Write about ``mb`` MB of log to ``directory`` (a new run); returns events written, bytes and seconds."""
    from memhil.timeline import TimelineWriter

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    w = TimelineWriter(directory, build_id="bench", platform="stm32f4", engine="qemu", max_bytes=max_bytes, max_files=100)
    target = int(mb * MB)
    gen = synthetic_events(1 << 62)
    while w.bytes_written < target and w.error is None:
        for _ in range(10_000):
            w.write(next(gen))
    w.close()
    if w.error is not None:
        raise w.error
    seconds = time.perf_counter() - started
    return {"events": w.events, "bytes": w.bytes_written, "seconds": seconds, "events_per_s": w.events / seconds}


def _child(directory: str, workers: int, out) -> None:
    from memhil.timeline import TimelineReader

    started = time.perf_counter()
    r = TimelineReader(directory, workers=workers, progress=False)
    seconds = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out.send({"bytes": r.stats.bytes, "events": r.stats.events, "files": r.stats.files, "seconds": seconds,
              "rss_kb": own if workers == 1 else kids, "self_rss_kb": own, "bad": r.stats.bad_records})
    out.close()


def measure(directory: str | Path, workers: int = 1) -> dict:
    """Parse ``directory`` with ``workers`` processes in a fresh child; MB/s (total and per worker), events/s, peak RSS."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(str(directory), workers, send))
    proc.start()
    send.close()
    try:
        res = recv.recv()
    finally:
        proc.join()
    used = min(workers, res["files"])
    mb_s = res["bytes"] / MB / res["seconds"]
    return {"mb_per_s": mb_s, "mb_per_s_per_worker": mb_s / used, "events_per_s": res["events"] / res["seconds"],
            "peak_rss_mb": res["rss_kb"] / 1024, "mb": res["bytes"] / MB, "events": res["events"], "seconds": res["seconds"],
            "workers": workers, "files": res["files"], "bad_records": res["bad"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/tmp/memhil-tlbench")
    ap.add_argument("--mb", type=float, default=200.0)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--keep", action="store_true", help="reuse the log in --dir if present")
    args = ap.parse_args(argv)
    d = Path(args.dir)
    if not (args.keep and any(d.glob("memlog*.bin"))):
        for p in d.glob("memlog*.bin"):
            p.unlink()
        print(json.dumps({"write": write_synthetic(d, args.mb)}), flush=True)
    for n in args.workers:
        print(json.dumps({"parse": measure(d, n)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
