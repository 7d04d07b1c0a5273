"""Renode's monitor (its command line): reply parsing, error texts, versions, and the values commands are built from.

The transports are in :mod:`memhil.engines.renode_shell` (a pipe to ``renode --console``, a telnet attach, or
pyrenode3 in-process). What Renode prints, as read in its source (``../shared/reference/renode-source.md``,
rows cited as "row N"):

- the prompt is ``(monitor) ``, or ``(<machine>) `` after ``mach create`` (row 5);
- every typed character is echoed, Enter writes ``"\\n\\r"``, results end in ``"\\r\\n"`` (row 6);
- with ``--plain`` nothing is coloured; without it an error is ``ConsoleColor.Red``, ``ESC[;031m``, while the
  ``(monitor) `` prompt is DarkRed, ``ESC[31;1m`` (row 7): only the first marks an error;
- the error texts are :data:`ERROR_TEXTS` (row 8);
- ``sysbus ReadBytes`` prints ``0xNN, `` per byte, 10 a line, between ``[`` and ``]``; unmapped bytes read as 0
  with a log warning, never an error (row 21); numbers print in hexadecimal after ``numbersMode Hexadecimal``.

Commands are built from validated values only: ints, identifiers, existing paths without quotes or whitespace,
and Renode time strings.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from memhil.errors import EngineError, ProtocolError

trace = logging.getLogger("memhil.trace.renode")

PROMPT = re.compile(r"\((?:monitor|[A-Za-z0-9_.\-]+)\) $")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: ConsoleColor.Red as AntShell writes it (NavigableTerminalEmulator.cs:676-678; row 7)
ERROR_COLOUR = "\x1b[;031m"
#: every error text Renode's monitor prints (row 8, with file and line there)
ERROR_TEXTS = (
    "There was an error executing command",  # Monitor.cs:996 (every RecoverableException of a device method)
    "Parameters did not match the signature",  # ParametersMismatchException.cs:16
    "No such command or device",  # Monitor.cs:692, 727
    "Could not tokenize here",  # Monitor.cs:1162
    "Could not find file",  # Monitor.cs:319
    "Bad parameters for command",  # MonitorCommands.cs:1064
    "Wrong machine number",  # MachCommand.cs:71
    "No such variable",  # Monitor.cs:1148
    "Failed to download",  # Monitor.cs:230
)
_MACHINE_NOT_FOUND = re.compile(r"^Machine .+ not found\.\s*$", re.MULTILINE)  # MachCommand.cs:92, 100
#: a line of Renode's log in --plain mode ("13:55:04.6427 [INFO] sysbus: ..."), which shares stdout with the
#: monitor under --console: such lines are taken out of replies and kept in the run's renode.log
LOG_LINE = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{4} \[(NOISY|DEBUG|INFO|WARNING|ERROR)\] ")
#: "Renode, version 1.16.1.12345 (hash-date)": the banner the shell prints once at its start (row 4) and `version`
VERSION = re.compile(r"Renode,? version (\d+)\.(\d+)\.(\d+)")
#: the releases memhil was checked against, line by line in their source (renode-source.md)
SUPPORTED = ((1, 15), (1, 16))
SUPPORTED_TEXT = " and ".join(f"{major}.{minor}.x" for major, minor in SUPPORTED)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_FORBIDDEN = ("StartGdbServer",)  # Renode's GDB server binds every interface (IPAddress.Any)


class RenodeCommandError(EngineError):
    """Renode answered a monitor command with an error text."""


def strip_telnet(data: bytes) -> bytes:
    """Remove telnet IAC sequences (RFC 854): ``IAC cmd opt``, ``IAC SB ... IAC SE``, ``IAC IAC``."""
    if b"\xff" not in data:
        return data
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b != 0xFF:
            out.append(b)
            i += 1
            continue
        if i + 1 >= len(data):
            break
        cmd = data[i + 1]
        if cmd == 0xFF:
            out.append(0xFF)
            i += 2
        elif cmd == 0xFA:  # subnegotiation until IAC SE
            end = data.find(b"\xff\xf0", i + 2)
            i = len(data) if end < 0 else end + 2
        elif 0xFB <= cmd <= 0xFE:
            i += 3
        else:
            i += 2
    return bytes(out)


def clean(text: str) -> str:
    return _ANSI.sub("", text).replace("\r", "")


def is_error(raw: str) -> bool:
    """An error reply: coloured ``ConsoleColor.Red`` (not the prompt's DarkRed), or one of Renode's error texts."""
    if ERROR_COLOUR in raw:
        return True
    text = clean(raw)
    return any(marker in text for marker in ERROR_TEXTS) or _MACHINE_NOT_FOUND.search(text) is not None


def split_log(text: str) -> tuple[str, list[str]]:
    """Separate Renode's log lines (:data:`LOG_LINE`) from a monitor reply: (reply, log lines)."""
    keep, log = [], []
    for line in text.split("\n"):
        (log if LOG_LINE.match(line) else keep).append(line)
    return "\n".join(keep), log


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = VERSION.search(clean(text))
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def check_version(version: tuple[int, int, int] | None, text: str) -> tuple[int, int, int]:
    """Refuse a Renode whose release memhil was not checked against."""
    if version is None:
        raise EngineError(f"cannot tell which Renode this is (no 'Renode, version X.Y.Z' in {clean(text)[:160]!r})",
                          hint=f"memhil supports Renode {SUPPORTED_TEXT}; check `renode --version`")
    if version[:2] not in SUPPORTED:
        raise EngineError(f"Renode {'.'.join(map(str, version))} is not supported",
                          hint=f"memhil supports Renode {SUPPORTED_TEXT} (checked line by line in their source); "
                               "install one of those from https://builds.renode.io or github.com/renode/renode/releases",
                          version=".".join(map(str, version)))
    return version


# -- building commands from validated values ---------------------------------------------
def ident(name: str) -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise EngineError(f"{name!r} is not a valid Renode name", hint="use letters, digits, '_', '.', '-'")
    return name


def path_arg(path: Path | str, *, must_exist: bool = True) -> str:
    """``@/absolute/path`` for Renode; refuses quotes, whitespace and control characters."""
    p = Path(path).resolve()
    text = str(p)
    if any(c in text for c in "\"'`$;") or any(c.isspace() or ord(c) < 32 for c in text):
        raise EngineError(f"path {text!r} cannot be passed to Renode safely", hint="use a path without quotes, spaces or shell characters")
    if must_exist and not p.exists():
        raise EngineError(f"{text} does not exist", hint="check the path", path=text)
    return "@" + text


def int_arg(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >= 1 << 64:
        raise EngineError(f"{value!r} is not a valid unsigned integer argument", hint="pass an int in 0..2**64-1")
    return hex(value)


def time_arg(seconds: float) -> str:
    """Renode's time string ``"hh:mm:ss.ffffff"`` (microseconds) for ``emulation RunFor``."""
    if not isinstance(seconds, (int, float)) or seconds < 0 or seconds != seconds:
        raise EngineError(f"cannot run for {seconds!r} s", hint="durations must be zero or positive")
    us = round(seconds * 1_000_000)
    h, rest = divmod(us, 3_600_000_000)
    m, rest = divmod(rest, 60_000_000)
    s, frac = divmod(rest, 1_000_000)
    return f'"{h:02d}:{m:02d}:{s:02d}.{frac:06d}"'


def parse_time(text: str) -> float:
    """Seconds from ``Elapsed Virtual Time: hh:mm:ss.fffffffff`` (or a bare time string)."""
    match = re.search(r"Elapsed Virtual Time:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", clean(text))
    if not match:
        match = re.fullmatch(r"\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)\s*", clean(text))
    if not match:
        raise ProtocolError(f"no virtual time in Renode's reply {clean(text)[:120]!r}", hint="check the Renode version (GetTimeSourceInfo output changed?)")
    return int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3])


def parse_int(text: str) -> int:
    """A number Renode printed (``0x...`` or decimal), e.g. from ``ReadDoubleWord`` or ``cpu PC``."""
    match = re.fullmatch(r"\s*(0x[0-9A-Fa-f]+|\d+)\s*", clean(text))
    if not match:
        raise ProtocolError(f"no number in Renode's reply {clean(text)[:120]!r}", hint="the command did not return a value")
    return int(match[1], 0)


def parse_bytes(text: str, expected: int) -> bytes:
    """Bytes printed by ``sysbus ReadBytes``: ``[``, ``0xNN, `` per byte (10 a line), ``]`` (row 21)."""
    values = [int(v, 16) for v in re.findall(r"0x([0-9A-Fa-f]{1,2})\b", clean(text))]
    if len(values) != expected:
        raise ProtocolError(f"ReadBytes returned {len(values)} bytes, asked for {expected}",
                            hint="is `numbersMode Hexadecimal` in effect? see renode.log in the run directory")
    return bytes(values)


def check_command(cmd: str) -> None:
    """Refuse what no monitor command of memhil's may be: several lines, or Renode's GDB server
    (it binds every network interface)."""
    if "\n" in cmd or "\r" in cmd:
        raise EngineError("a monitor command must be one line", hint="split it into several commands", command=cmd)
    if any(word in cmd for word in _FORBIDDEN):
        raise EngineError("memhil never starts Renode's GDB server: it binds every network interface", hint="use monitor hooks (cpu AddHook) instead", command=cmd)


