"""Capture: turn a running firmware's allocator calls into an :class:`~memhil.events.AllocEvent` stream.

Modes (DESIGN.md "Capture modes"): ``hooks`` (the allocator patched in emulator memory, no firmware change),
``breakpoints`` (gdbstub breakpoints per allocator profile: the exact, slow fallback), ``trace`` (drain the
debug build's RAM ring), ``none``. Every mode hands events to ``sinks``:
callables taking one event, such as ``Ledger.apply``.
"""

from __future__ import annotations

from typing import Iterable

from memhil.capture.base import Capture, EventSink
from memhil.capture.hooks import HookCapture
from memhil.capture.patch import PatchCapture
from memhil.capture.profiles import AllocatorProfile, FunctionSpec, load_profile, matching_profiles
from memhil.capture.trace import TraceCapture, TraceGap
from memhil.errors import ConfigError

MODES = ("hooks", "breakpoints", "trace", "none")

__all__ = [
    "AllocatorProfile",
    "Capture",
    "EventSink",
    "FunctionSpec",
    "HookCapture",
    "MODES",
    "PatchCapture",
    "TraceCapture",
    "TraceGap",
    "create_capture",
    "load_profile",
    "matching_profiles",
]


def create_capture(mode: str, engine, image, *, profile: str | AllocatorProfile = "liteos", sinks: Iterable[EventSink] = (), **options) -> Capture:
    """A capture of ``mode`` (not yet attached). ``options`` go to :class:`PatchCapture` (``unwind_depth``,
    ``stack_words``, ``ram``, ``capacity``) or :class:`HookCapture` (``unwind_depth``, ``stack_bytes``)."""
    if mode == "hooks":
        return PatchCapture(engine, image, profile, sinks=sinks, **options)
    if mode == "breakpoints":
        return HookCapture(engine, image, profile, sinks=sinks, **options)
    if mode == "trace":
        return TraceCapture(engine, image, sinks=sinks)
    if mode == "none":
        return Capture(engine, image, sinks=sinks)
    raise ConfigError(f"unknown capture mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
