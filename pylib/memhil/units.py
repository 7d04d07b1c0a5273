"""Durations and sizes as people write them: ``6h``, ``100 ms``, ``1.5s``, ``96MiB``."""

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
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3,
}
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
    factor = _SIZE_UNITS.get(unit.lower())
    if factor is None:
        raise ConfigError(f"unknown size unit {unit!r} in {text!r}", hint=f"use one of {', '.join(k for k in _SIZE_UNITS if k)}")
    return int(float(number) * factor)


def format_duration(seconds: float) -> str:
    """Short human form: ``6h 0m 0s``, ``1.500 s``, ``250 ms``."""
    if seconds >= 3600:
        h, rem = divmod(int(round(seconds)), 3600)
        m, s = divmod(rem, 60)
        return f"{h}h {m}m {s}s"
    if seconds >= 60:
        m, s = divmod(seconds, 60)
        return f"{int(m)}m {s:.1f}s"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    return f"{seconds * 1000:.3f} ms"
