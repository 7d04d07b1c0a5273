"""Keywords that start, run and talk to the emulated target."""

from __future__ import annotations

import re
from pathlib import Path

from robotlibcore import keyword

from memhil.errors import ConfigError
from memhil.robot.base import LibraryContext
from memhil.session import Session, SessionOptions, parse_pools
from memhil.units import format_duration, parse_duration


class EmulatorKeywords:
    def __init__(self, ctx: LibraryContext) -> None:
        self.ctx = ctx

    @keyword
    def start_emulator(self, firmware: str, engine: str | None = None, platform: str | None = None,
                       capture: str | None = None, accelerate: bool = True, name: str | None = None,
                       profile: str | None = None, pools: str | None = None) -> None:
        """Starts ``firmware`` (an ELF) on ``platform`` in ``engine`` with the given capture mode.

        | =Argument= | =Meaning= |
        | firmware | path of the firmware ELF |
        | engine | ``qemu`` (default) or ``renode``; default from the library import |
        | platform | board under ``platforms/``, default ``stm32f4`` |
        | capture | ``hooks`` (exact, slowest), ``trace`` (firmware RAM ring), ``snapshot`` (heap walks only) or ``none`` |
        | profile | allocator profile for ``capture=hooks``: ``liteos``, ``newlib``, ``freertos`` or the path of your own .toml; default from the library import (every entry point of the profile the ELF has is hooked; it needs one allocation and one free function) |
        | pools | more LiteOS memory pools to walk with the system pool: symbols of the buffers the firmware passes to ``LOS_MemInit``, or addresses, separated by commas; default from the library import. Only pools made before capture began need naming: with ``capture=hooks`` every successful ``LOS_MemInit`` is seen. A name that holds no valid pool header when the heap is walked is an error |
        | accelerate | skip idle time instead of waiting it out (virtual time runs faster than wall time) |
        | name | name of the run directory under the output directory; default: the suite's name, and the test's below it when started inside a test, so every test keeps its own results |

        Example: ``Start Emulator    ${FW}/leak_demo.elf    capture=trace``
        """
        if self.ctx.session is not None and self.ctx.session.running:
            raise ConfigError("an emulator is already running in this suite", hint="call Stop Emulator first")
        base = self.ctx.options
        options = SessionOptions(
            engine=engine or base.engine, platform=platform or base.platform, capture=capture or base.capture,
            profile=profile or base.profile, accelerate=accelerate, modules=base.modules, engine_options=dict(base.engine_options),
            pools=parse_pools(pools) if pools else base.pools,
        )
        run_dir = self.ctx.output_dir().joinpath(*(_safe(part) for part in ([name] if name else _run_names())))
        session = Session(options, run_dir=run_dir)
        self.ctx.session = session
        path = Path(firmware)
        if not path.is_file():
            raise ConfigError(f"firmware {firmware!r} does not exist", hint="build it first (make -C firmware) or fix the path")
        session.start(path)

    @keyword
    def stop_emulator(self, write_summary: bool = True) -> None:
        """Stops the emulator (also safe when none runs) and writes ``summary.json`` to the run directory."""
        session = self.ctx.session
        if session is None:
            return
        try:
            if write_summary and session.running:
                session.write_summary()
        finally:
            session.stop()

    @keyword
    def run_for(self, duration: str) -> None:
        """Runs the target for ``duration`` of virtual time: ``100ms``, ``2.5 s``, ``6h``, ``1h 30min``.

        When it takes long in wall time (hooks capture is the slowest), a line on the console every 30 s says
        it is still running."""
        seconds = parse_duration(duration)
        session = self.ctx.current()
        from memhil.robot.progress import heartbeat

        with heartbeat(f"Run For {duration} ({session.options.capture} capture)"):  # a line every 30 s of wall time
            session.run_for(seconds)

    @keyword
    def get_virtual_time(self) -> float:
        """Returns the target's virtual time in seconds since reset."""
        return self.ctx.current().virtual_time()

    @keyword
    def write_line(self, text: str) -> None:
        """Writes ``text`` and a carriage return to the console UART."""
        self.ctx.current().write_line(text)

    @keyword
    def wait_for_line(self, pattern: str, timeout: str = "10s") -> str:
        """Runs the target until a console line matches the regular expression ``pattern``; returns the line.

        ``timeout`` is virtual time. On timeout the failure shows the console's last lines and the log path.
        """
        match = self.ctx.current().wait_for_line(pattern, parse_duration(timeout))
        return match.group(0).strip()

    @keyword
    def execute_shell_command(self, command: str, timeout: str = "5s") -> str:
        """Runs a firmware shell command (``memused``, ``memstat``, ``free``...) and returns its output."""
        return self.ctx.current().command(command, timeout=parse_duration(timeout))

    @keyword
    def get_console_log(self) -> str:
        """Returns the whole console transcript so far."""
        return self.ctx.current().engine.console.text()


def _run_names() -> list[str]:
    """``[suite]`` in a suite setup, ``[suite, test]`` inside a test."""
    try:
        from robot.libraries.BuiltIn import BuiltIn

        builtin = BuiltIn()
        names = [builtin.get_variable_value("${SUITE NAME}") or "run"]
        test = builtin.get_variable_value("${TEST NAME}")
        if test:
            names.append(test)
        return names
    except Exception:  # outside a Robot run
        return ["run"]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "run"


__all__ = ["EmulatorKeywords", "format_duration"]
