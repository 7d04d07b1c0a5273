"""What a run keeps of the memory map: the ``stacks`` entry of ``summary.json`` (the CI gate budgets
it) and ``targetmap.json`` (every region with bytes used), and reading them back for ``memhil map``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memhil.errors import ConfigError, LogFormatError
from memhil.targetmap.model import TargetMap

MAP_FILE = "targetmap.json"
SUMMARY_FILE = "summary.json"


def stack_summary(session: Any, *, paint: int | None = None) -> dict[str, dict]:
    """The ``stacks`` entry of a session summary: ``{name: {base, size, used, high_water_addr, painted, note}}``.

    Needs a running session (target memory is read). ``used`` is None for a stack that is not painted.
    Use: ``session.write_summary(extra={"stacks": stack_summary(session)})``.
    """
    from memhil.targetmap.stacks import stack_usage

    if getattr(session, "engine", None) is None or getattr(session, "image", None) is None:
        raise ConfigError("stack use is read from the running target", hint="call stack_summary(session) before session.stop()")
    return {s.name: {k: v for k, v in s.as_dict().items() if k != "name"} for s in stack_usage(session.image, session.engine.read_memory, paint=paint)}


def save_run_map(session: Any, *, paint: int | None = None) -> Path:
    """Write ``targetmap.json`` (the measured map) into the session's run directory; returns its path."""
    from memhil.targetmap.build import build_map

    if getattr(session, "engine", None) is None:
        raise ConfigError("the map is measured on the running target", hint="call save_run_map(session) before session.stop()")
    tmap = build_map(session.image, session.platform, session.engine.read_memory, paint=paint)
    path = Path(session.run_dir) / MAP_FILE
    path.write_text(json.dumps(tmap.as_dict(), indent=1))
    return path


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LogFormatError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})", hint="the run may have been cut short; re-run it", path=str(path)) from exc
    if not isinstance(data, dict):
        raise LogFormatError(f"{path} does not hold a JSON object", hint="pass a memhil run directory", path=str(path))
    return data


def apply_run_dir(tmap: TargetMap, run_dir: str | Path) -> list[str]:
    """Fill ``used`` from a run directory: ``targetmap.json`` if present, else ``summary.json``'s ``stacks``.

    Returns the files read. Raises :class:`ConfigError` when the directory holds neither.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} does not exist", hint="pass the --outdir of a memhil run (it holds summary.json)")
    read: list[str] = []
    by_name = {r.name: r for r in tmap.regions}
    map_file = run_dir / MAP_FILE
    if map_file.is_file():
        data = _load_json(map_file)
        for item in data.get("regions", []):
            region = by_name.get(item.get("name"))
            if region is not None and region.start == item.get("start") and region.kind in ("heap", "stack"):
                region.used = item.get("used")
                region.note = item.get("note", "")
                region.detail.update(item.get("detail") or {})
        read.append(str(map_file))
    summary_file = run_dir / SUMMARY_FILE
    if summary_file.is_file():
        stacks = _load_json(summary_file).get("stacks")
        if isinstance(stacks, dict) and not read:
            for name, entry in stacks.items():
                region = by_name.get(f"[stack:{name}]")
                if region is not None and isinstance(entry, dict):
                    region.used = entry.get("used")
                    region.note = entry.get("note", "")
        read.append(str(summary_file))
        if stacks is None and len(read) == 1:
            tmap.notes.append(f"{summary_file} has no 'stacks' entry: the run did not measure its stacks")
    if not read:
        raise ConfigError(f"{run_dir} holds neither {MAP_FILE} nor {SUMMARY_FILE}", hint="pass the directory a memhil run wrote")
    tmap.measured = True
    return read
