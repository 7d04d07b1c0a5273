"""Emulator engines behind one interface (:class:`memhil.engines.base.Engine`).

Engines are found by name through the ``memhil.engines`` entry-point group, so the
core never names a particular emulator and users can plug in their own.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from memhil.errors import ConfigError


def available_engines() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group="memhil.engines")}


def get_engine_class(name: str):
    """Return the engine class registered under ``name`` (``qemu``, ``renode``, ...)."""
    eps = available_engines()
    if name not in eps:
        raise ConfigError(f"unknown engine {name!r}", hint=f"use one of {', '.join(sorted(eps)) or '(none installed)'}")
    return eps[name].load()  # type: ignore[attr-defined]


def create_engine(name: str, **options):
    return get_engine_class(name)(**options)
