"""Hand-made run directories for the gate tests (summary.json as memhil.results writes it)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from memhil.results import RESULTS_VERSION

LEAK_SITE = {
    "site": "apps/leak_demo/app.c:42", "file": "apps/leak_demo/app.c", "line": 42, "function": "leak_tick",
    "module": 3, "module_name": "APP", "bytes": 640, "blocks": 10, "grown_bytes": 576, "first_seen_s": 0.5,
    "rises": 7, "bytes_per_hour": 207360.0, "series": [64, 128, 192, 256, 320, 384, 448, 640], "pcs": ["0x08001235"],
    "stacks": [{"bytes": 640, "blocks": 10, "frames": [
        {"pc": "0x08001235", "function": "leak_tick", "file": "apps/leak_demo/app.c", "line": 42},
        {"pc": "0x08001301", "function": "app_task", "file": "apps/leak_demo/app.c", "line": 77},
    ]}],
}


def summary(**changes) -> dict:
    data = {
        "version": RESULTS_VERSION, "firmware": "leak_demo.elf", "build_id": "ab12", "engine": "qemu", "platform": "stm32f4",
        "capture": "trace", "virtual_s": 10.0, "wall_s": 2.0,
        "modules": {
            "0": {"name": "SYS", "current": 1024, "peak": 2048, "firmware": 1024, "growth_per_hour": 0.0, "leak_per_hour": 0.0},
            "1": {"name": "NET", "current": 4096, "peak": 6000, "firmware": 4096, "growth_per_hour": 0.0, "leak_per_hour": 0.0},
            "3": {"name": "APP", "current": 700, "peak": 800, "firmware": 700, "growth_per_hour": 0.0, "leak_per_hour": 0.0},
        },
        "total": {"current": 5820, "peak": 8000, "allocs": 100, "frees": 80},
        "samples": {"count": 8, "times_s": [1.25 * i for i in range(1, 9)]},
        "leak_sites": [],
        "heap": {"checked": True, "ok": True, "errors": [], "nodes": 12, "used": 5820, "free": 100000},
        "anomaly_count": 0, "anomalies": [], "snapshots": [],
    }
    for key, value in changes.items():
        data[key] = value
    return data


def leaky(**changes) -> dict:
    return summary(leak_sites=[copy.deepcopy(LEAK_SITE)], **changes)


def write_run(directory: Path, data: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.json").write_text(json.dumps(data, indent=2))
    return directory


BUDGETS = """\
[defaults]
current = "64 KiB"
peak = "96 KiB"
leak_per_hour = 0

[modules.NET]
current = "8 KiB"
peak = "12 KiB"

[baseline]
tolerance_pct = 5
"""
