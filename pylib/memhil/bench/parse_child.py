"""Child process of the parse benchmark: ``python -m memhil.bench.parse_child DIR WORKERS``.

Prints one JSON line: seconds, bytes, events, bad records, and peak RSS (MB) of this process and of
its worker processes (``getrusage(2)``: ``RUSAGE_SELF`` / ``RUSAGE_CHILDREN``, ``ru_maxrss`` in KiB)."""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    from memhil.resources import child_usage, self_usage
    from memhil.timeline.reader import TimelineReader

    directory, workers = argv[0], int(argv[1])
    started = time.perf_counter()
    reader = TimelineReader(directory, workers=workers, progress=False)
    seconds = time.perf_counter() - started
    st = reader.stats
    out = {"seconds": seconds, "bytes": st.bytes, "files": st.files, "events": st.events, "bad_records": st.bad_records,
           "mb_per_s": st.bytes / 1e6 / seconds, "peak_rss_self_mb": self_usage().peak_rss_mb,
           "peak_rss_workers_mb": child_usage().peak_rss_mb}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
