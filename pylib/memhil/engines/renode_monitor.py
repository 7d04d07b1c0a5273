"""Renode's monitor (its command line) over the telnet port, as a request/response client.

Renode prints a prompt -- ``(monitor) `` before a machine exists, ``(<machine>) ``
after ``mach create`` -- when a command is done. This client sends one command line,
reads until the next prompt, strips telnet negotiation (RFC 854 IAC sequences), ANSI
colour codes and the echoed command, and raises :class:`RenodeCommandError` when the
reply is one of Renode's error texts (which Renode also colours red).

Commands are built by :func:`command` from validated values only: ints, identifiers,
existing paths without quotes or whitespace, and Renode time strings.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from pathlib import Path

from memhil.errors import EngineError, EngineTimeout, ProtocolError

trace = logging.getLogger("memhil.trace.renode")

PROMPT = re.compile(r"\((?:monitor|[A-Za-z0-9_.\-]+)\) $")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_ERROR_TEXTS = (
    "There was an error executing command",
    "No such command or device",
    "Could not find",
    "Parameters did not match",
    "Could not tokenize",
    "is not a valid",
    "Exception:",
    "error:",
)
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
    """Renode colours errors red (ESC[31m) and words them in a few fixed ways."""
    if "\x1b[31" in raw:
        return True
    text = clean(raw)
    return any(marker in text for marker in _ERROR_TEXTS)


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
    """Bytes printed by ``sysbus ReadBytes``: a list of ``0xNN`` values."""
    values = [int(v, 16) for v in re.findall(r"0x([0-9A-Fa-f]{1,2})\b", clean(text))]
    if len(values) != expected:
        raise ProtocolError(f"ReadBytes returned {len(values)} bytes, asked for {expected}", hint="the address may be unmapped in Renode's platform")
    return bytes(values)


def check_command(cmd: str) -> None:
    """Refuse what no monitor command of memhil's may be: several lines, or Renode's GDB server
    (it binds every network interface)."""
    if "\n" in cmd or "\r" in cmd:
        raise EngineError("a monitor command must be one line", hint="split it into several commands", command=cmd)
    if any(word in cmd for word in _FORBIDDEN):
        raise EngineError("memhil never starts Renode's GDB server: it binds every network interface", hint="use monitor hooks (cpu AddHook) instead", command=cmd)


class MonitorClient:
    """One telnet connection to Renode's monitor (loopback only)."""

    def __init__(self, sock: socket.socket, *, timeout: float = 30.0) -> None:
        self.sock = sock
        self.timeout = timeout
        self.prompt = ""
        self.commands: list[str] = []
        self._buf = ""
        self.closed = False

    @classmethod
    def connect(cls, host: str, port: int, *, timeout: float = 30.0, retry_for: float = 0.0) -> "MonitorClient":
        if host not in ("127.0.0.1", "localhost"):
            raise EngineError(f"refusing to connect to a Renode monitor on {host}", hint="memhil talks to Renode over loopback only")
        deadline = time.monotonic() + retry_for
        while True:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect((host, port))
                break
            except OSError as exc:
                sock.close()
                if time.monotonic() >= deadline:
                    raise EngineError(f"cannot connect to Renode's monitor on {host}:{port}: {exc}", hint="is Renode running with --port? see its output") from exc
                time.sleep(0.1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = cls(sock, timeout=timeout)
        client._read_until_prompt(time.monotonic() + timeout)  # banner
        return client

    def _read_until_prompt(self, deadline: float) -> str:
        while True:
            text = clean(self._buf)
            lines = text.rsplit("\n", 1)
            if PROMPT.search(lines[-1]):
                self.prompt = PROMPT.search(lines[-1]).group(0).strip()  # type: ignore[union-attr]
                raw = self._buf
                self._buf = ""
                return raw
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineTimeout(f"Renode's monitor gave no prompt within {self.timeout:g} s", hint="Renode hangs or a command runs long; raise the timeout", output_tail=clean(self._buf)[-300:])
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as exc:
                raise ProtocolError(f"Renode's monitor connection dropped: {exc}", hint="Renode probably exited; see its output") from exc
            if not data:
                raise ProtocolError("Renode closed the monitor connection", hint="Renode probably exited; see its output")
            self._buf += strip_telnet(data).decode("utf-8", "replace")

    def execute(self, cmd: str, *, timeout: float | None = None) -> str:
        """Run one monitor command; return its output without prompt, echo and colours."""
        if self.closed:
            raise ProtocolError("the Renode monitor connection is closed", hint="start the engine again")
        check_command(cmd)
        trace.debug("-> %s", cmd)
        self.commands.append(cmd)
        try:
            self.sock.sendall(cmd.encode() + b"\n")
        except OSError as exc:
            raise ProtocolError(f"cannot send to Renode's monitor: {exc}", hint="Renode probably exited; see its output") from exc
        raw = self._read_until_prompt(time.monotonic() + (self.timeout if timeout is None else timeout))
        text = clean(raw)
        lines = text.split("\n")[:-1]  # the last line is the prompt
        if lines and lines[0].strip().endswith(cmd.strip()):
            lines = lines[1:]  # telnet echo of the command
        out = "\n".join(lines).strip()
        trace.debug("<- %s", out[:300])
        if is_error(raw):
            raise RenodeCommandError(f"Renode refused `{cmd}`: {out[:300]}", hint="check the command's arguments and the platform/ELF paths", command=cmd)
        return out

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


class PyRenodeMonitor:
    """The same ``execute`` interface over pyrenode3 (Renode loaded into this Python process):
    ``pyrenode3.wrappers.Monitor().execute(cmd) -> (output, error)``. Commands run in-process
    and block; the ``timeout`` argument cannot interrupt them."""

    def __init__(self) -> None:
        try:
            from pyrenode3.wrappers import Monitor  # type: ignore[import-not-found]

            self._monitor = Monitor()
        except Exception as exc:  # noqa: BLE001 - pyrenode3 raises .NET and loader errors
            raise EngineError(f"pyrenode3 could not load Renode: {exc}", hint="set PYRENODE_PKG/PYRENODE_BIN/PYRENODE_BUILD_DIR (see pyrenode3's README) or use backend='telnet'") from exc
        self.prompt = "(pyrenode3)"
        self.commands: list[str] = []
        self.closed = False

    def execute(self, cmd: str, *, timeout: float | None = None) -> str:
        if self.closed:
            raise ProtocolError("the pyrenode3 monitor is closed", hint="start the engine again")
        check_command(cmd)
        trace.debug("-> %s", cmd)
        self.commands.append(cmd)
        out, err = self._monitor.execute(cmd)
        out, err = clean(str(out or "")).strip(), clean(str(err or "")).strip()
        if err or is_error(out):
            raise RenodeCommandError(f"Renode refused `{cmd}`: {(err or out)[:300]}", hint="check the command's arguments and the platform/ELF paths", command=cmd)
        return out

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._monitor.execute("emulation Clear")
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
