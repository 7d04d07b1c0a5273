"""Durations and sizes as people write them: ``6h``, ``100 ms``, ``1.5s``, ``96MiB``.

Sizes use binary units only: ``KiB``, ``MiB``, ``GiB`` (1024-based). ``KB``, ``MB``, ``k`` are refused
rather than guessed, since memory sizes are read as 1024-based and disk sizes as 1000-based.
Printed sizes and times use the same forms: ``4.5 KiB``, ``6h 10m 0s``."""

from __future__ import annotations

import re

from memhil.errors import ConfigError

_DURATION_UNITS = {
    "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0, "d": 86400.0, "day": 86400.0, "days": 86400.0,
}
_SIZE_UNITS = {
    "": 1, "b": 1, "byte": 1, "bytes": 1,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3,
}
_AMBIGUOUS_SIZE_UNITS = {"k": "KiB", "kb": "KiB", "m": "MiB", "mb": "MiB", "g": "GiB", "gb": "GiB"}
_TERM = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Zµ]*)\s*")


def parse_duration(value: str | int | float, *, default_unit: str = "s") -> float:
    """Return seconds for ``value``; several terms add up (``1h 30min``). Negative durations are refused."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value) * _DURATION_UNITS[default_unit]
    else:
        text = str(value).strip()
        if not text:
            raise ConfigError("empty duration", hint="write a number and a unit, e.g. '100ms', '6h', '1h 30min'")
        if text.startswith("-"):
            raise ConfigError(f"negative duration {text!r}", hint="durations must be zero or positive")
        seconds = 0.0
        pos = 0
        while pos < len(text):
            match = _TERM.match(text, pos)
            if not match or match.end() == pos:
                raise ConfigError(
                    f"cannot read duration {text!r}",
                    hint=f"write a number and one of the units {', '.join(sorted(set(_DURATION_UNITS)))}, e.g. '6h'",
                )
            number, unit = match.groups()
            unit = unit or default_unit
            if unit not in _DURATION_UNITS:
                raise ConfigError(
                    f"unknown time unit {unit!r} in {text!r}",
                    hint=f"use one of {', '.join(sorted(set(_DURATION_UNITS)))}",
                )
            seconds += float(number) * _DURATION_UNITS[unit]
            pos = match.end()
    if seconds < 0:
        raise ConfigError(f"negative duration {value!r}", hint="durations must be zero or positive")
    return seconds


def parse_size(value: str | int) -> int:
    """Return bytes for ``value`` (``4096``, ``4 KiB``, ``96MiB``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(f"negative size {value}", hint="sizes must be zero or positive")
        return value
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([a-zA-Z]*)", text)
    if not match:
        raise ConfigError(f"cannot read size {text!r}", hint="write a number and optionally a unit, e.g. '4096', '4KiB', '96MiB'")
    number, unit = match.groups()
    if unit.lower() in _AMBIGUOUS_SIZE_UNITS:
        binary = _AMBIGUOUS_SIZE_UNITS[unit.lower()]
        raise ConfigError(f"size unit {unit!r} in {text!r} is ambiguous (1000 or 1024 bytes?)",
                          hint=f"write {number} {binary} for {int(float(number) * _SIZE_UNITS[binary.lower()])} bytes, or the number of bytes")
    factor = _SIZE_UNITS.get(unit.lower())
    if factor is None:
        raise ConfigError(f"unknown size unit {unit!r} in {text!r}", hint=f"use one of {', '.join(k for k in _SIZE_UNITS if k)}")
    return int(float(number) * factor)


def format_duration(seconds: float, *, precise: bool = False) -> str:
    """Short human form: ``6h 10m 0s``, ``10m 0s``, ``1.500 s``, ``250.000 ms`` (whole seconds from a minute up;
    ``precise=True`` keeps milliseconds there too: ``7h 59m 59.900s``)."""
    if precise and seconds >= 60:
        ms = int(round(seconds * 1000))
        h, rem = divmod(ms, 3600_000)
        m, rem = divmod(rem, 60_000)
        sec = f"{rem / 1000:.3f}s"
        return f"{h}h {m}m {sec}" if h else f"{m}m {sec}"
    if seconds >= 59.5:
        total = int(round(seconds))
        h, rem = divmod(total, 3600)
        m, s = divmod(rem, 60)
        return f"{h}h {m}m {s}s" if h else f"{m}m {s}s"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    return f"{seconds * 1000:.3f} ms"


def format_size(nbytes: int | float, *, precision: int = 1) -> str:
    """``512 B``, ``4 KiB``, ``4.5 KiB``, ``1.2 MiB`` (binary units; trailing zeros dropped)."""
    n = float(nbytes)
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n < 1024:
        return f"{sign}{int(n)} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            text = f"{n:.{precision}f}".rstrip("0").rstrip(".") if precision else f"{n:.0f}"
            return f"{sign}{text} {unit}"
    raise AssertionError("unreachable")


def format_bytes(nbytes: int | None) -> str:
    """Exact bytes and, from 1 KiB up, the binary-unit form: ``512 B``, ``69,632 B (68 KiB)``; ``-`` for None."""
    if nbytes is None:
        return "-"
    exact = f"{int(nbytes):,} B"
    return exact if abs(nbytes) < 1024 else f"{exact} ({format_size(nbytes)})"
