"""Shared state of the keyword components (SeleniumLibrary's LibraryComponent pattern, without private reach-ins)."""

from __future__ import annotations

from pathlib import Path

from memhil.errors import ConfigError
from memhil.session import Session, SessionOptions
from memhil.units import parse_size


class LibraryContext:
    """Owns the session and the options the library was imported with; components ask it, never each other."""

    def __init__(self, options: SessionOptions, outdir: Path | None) -> None:
        self.options = options
        self.outdir = outdir
        self.session: Session | None = None

    def output_dir(self) -> Path:
        if self.outdir is not None:
            return self.outdir
        try:
            from robot.libraries.BuiltIn import BuiltIn

            return Path(BuiltIn().get_variable_value("${OUTPUT DIR}")) / "memhil"
        except Exception:  # outside a Robot run (e.g. libdoc)
            return Path("out") / "memhil"

    def current(self) -> Session:
        if self.session is None or not self.session.running:
            raise ConfigError("no emulator is running", hint="call Start Emulator first (usually in Suite Setup)")
        return self.session


def to_bytes(value) -> int:
    """Expected byte counts may carry units in keywords: ``4096``, ``4 KiB``."""
    return parse_size(value.strip() if isinstance(value, str) else value)
