"""A cap on the runs kept under an output directory (out/robot, out/soak...).

Before a command writes into an output directory that holds an earlier run's results, those results
move to ``<outdir>/previous/<UTC time>/``; only the newest ``keep`` previous runs stay there, older
ones are deleted. So ``out/`` holds the current run and at most ``keep`` earlier ones (a soak keeps
up to 10 x 96 MiB of timeline log per run), and the current results are never mixed with stale ones
(a suite removed since the last run would otherwise still be read by the gate).

A directory that does not look like a memhil output (no ``summary.json``, ``console.log``,
``output.xml`` or ``memhil/`` in it) is left alone: memhil never moves files it did not write.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

PREVIOUS = "previous"
MARKERS = ("summary.json", "output.xml", "memhil", "console.log")


def keep_previous(outdir: Path, keep: int) -> tuple[Path | None, list[Path]]:
    """Move ``outdir``'s earlier results aside and prune; returns (where they went or None, deleted dirs)."""
    if not outdir.is_dir() or not any((outdir / m).exists() for m in MARKERS):
        return None, []
    entries = [p for p in outdir.iterdir() if p.name != PREVIOUS]
    moved_to = None
    if keep > 0 and entries:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S.%f")  # sorts by time, also within a second
        moved_to = outdir / PREVIOUS / stamp
        n = 1
        while moved_to.exists():
            n += 1
            moved_to = outdir / PREVIOUS / f"{stamp}-{n}"
        moved_to.mkdir(parents=True)
        for p in entries:
            p.rename(moved_to / p.name)
    else:
        for p in entries:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    previous = outdir / PREVIOUS
    runs = sorted((p for p in previous.iterdir() if p.is_dir()), key=lambda p: p.name) if previous.is_dir() else []
    doomed = runs[:-keep] if keep > 0 else runs
    for p in doomed:
        shutil.rmtree(p)
    if previous.is_dir() and not any(previous.iterdir()):
        previous.rmdir()
    return moved_to, doomed


def add_keep_argument(p, default: int = 1) -> None:
    p.add_argument("--keep-runs", type=int, default=default, metavar="N",
                   help=f"earlier runs kept under OUTDIR/{PREVIOUS}/ (default {default}; 0 keeps none). "
                        "An earlier run's results are moved there before this run writes")


def apply(outdir: Path, keep: int, command: str) -> None:
    from memhil.errors import ConfigError

    if keep < 0:
        raise ConfigError(f"--keep-runs must be 0 or more, not {keep}", hint="0 deletes earlier results, 1 keeps the last one")
    moved, deleted = keep_previous(outdir, keep)
    if moved is not None or deleted:
        text = f"earlier results moved to {moved}" if moved is not None else "earlier results removed"
        if deleted:
            text += f"; {len(deleted)} older run(s) deleted (--keep-runs {keep})"
        print(f"memhil {command}: {text}")
