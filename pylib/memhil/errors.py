"""One exception tree for memhil, rooted at :class:`MemhilError`.

Every error carries structured fields and renders them in its message, and every
message says what to do about it (the ``hint``).
"""

from __future__ import annotations


class MemhilError(RuntimeError):
    """Base of every error memhil raises on purpose.

    ``hint`` tells the user how to fix the problem; extra keyword fields are kept
    as attributes and shown in the message, e.g. ``path=...``.
    """

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None, **fields: object) -> None:
        self.message = message
        if hint is not None:
            self.hint = hint
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)
        super().__init__(self._render())

    def _render(self) -> str:
        text = self.message
        shown = {k: v for k, v in self.fields.items() if v is not None and k not in ("tail", "console_tail", "stack")}
        if shown:
            text += " [" + ", ".join(f"{k}={_short(v)}" for k, v in shown.items()) + "]"
        for key in ("tail", "console_tail"):
            value = self.fields.get(key)
            if value:
                text += f"\n--- {key.replace('_', ' ')} ---\n{value}"
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text


def _short(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0xFFFF:
        return hex(value)
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


class ConfigError(MemhilError):
    """Bad user input: an unknown unit, a malformed budget file, an unknown platform."""


class ToolMissingError(MemhilError):
    """A required program (emulator, toolchain) is not installed."""

    def __init__(self, program: str, *, package: str, **fields: object) -> None:
        super().__init__(
            f"{program} was not found on PATH",
            hint=f"install the Debian package '{package}' (run ./scripts/setup.sh, or `make test`, which runs it)",
            program=program,
            package=package,
            **fields,
        )


class PlatformError(MemhilError):
    """A platform description that is missing, malformed, or does not fit the firmware."""


class ElfError(MemhilError):
    """A firmware file that is not a usable ARM ELF."""


class SymbolNotFoundError(ElfError):
    """A symbol asked for by name is not in the ELF."""


class DebugInfoMissingError(ElfError):
    """The ELF has no DWARF, so a feature that needs it (lines, struct layouts) cannot work."""


class EngineError(MemhilError):
    """The emulator failed: it could not start, died, hung, or answered nonsense."""


class EngineTimeout(EngineError):
    """An emulator did not answer or a wait expired (not the built-in TimeoutError)."""


class ProtocolError(EngineError):
    """A malformed or unexpected packet from the emulator's remote protocol."""


class TargetError(EngineError):
    """The target refused a request (a gdbstub's ``Exx``, e.g. a read of unmapped memory)."""


class TargetFault(EngineError):
    """The firmware took a fault exception (HardFault, MemManage, BusFault, UsageFault, NMI): the target is halted
    at the handler's first instruction. ``kind``, ``pc``/``lr`` of the faulting code, the fault status registers
    and ``stack`` (the call stack at the fault, innermost first, symbolized) are fields."""


class ConsoleTimeout(EngineTimeout):
    """A line expected on the console did not come within the (virtual) timeout."""


class CaptureError(MemhilError):
    """Allocator hooks or trace capture could not be set up or lost events."""


class HeapCorruptionError(MemhilError):
    """The target's heap is inconsistent; fields say where."""


class LogFormatError(MemhilError):
    """A timeline log file is unreadable, from another ELF, or of an unknown version."""


class AssertionFailure(MemhilError, AssertionError):
    """A memory assertion failed (module budget, leak, integrity); also an AssertionError for test runners."""
