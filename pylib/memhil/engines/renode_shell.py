"""How memhil talks to Renode's monitor: three transports with one ``execute(cmd) -> output``.

- :class:`PipeShell` (what the engine starts): ``renode --disable-gui --console --plain --config <run>/renode.config``
  with its stdin and stdout as pipes. Under ``--console`` the monitor reads and writes the process's own console
  (infra ``src/UI/CommandLineInterface.cs``, ``PrepareShell``: ``options.Console`` gives a ``ConsoleIOSource``,
  which reads redirected input with ``Console.Read()``, ``RedirectedHandling``; read at infra ``f43f0eb``, not in
  renode-source.md: unsure for 1.15.x); no port is opened, so **nothing listens on the network**.
  Renode's log shares that stdout in ``--plain`` form; its lines are taken out of replies into ``renode.log``.
- :class:`PyRenodeShell`: Renode loaded into this Python process by pyrenode3 (no socket either).
- :class:`TelnetShell`: only to attach to a Renode *a user started* with ``--port N``. That port binds every
  interface (``SocketServerProvider.cs``:36, ``IPAddress.Any``; renode-source.md row 2) and its monitor runs host
  Python: whoever can reach it controls the host. memhil connects over loopback only and never opens such a port.
  It answers the telnet negotiation with nine bytes, which Renode 1.15.x reads before it sends anything (row 3),
  and 1.16.x drops as three IAC commands; and it sends an empty line and an ``echo`` marker, because the banner and
  prompt are written once and never re-sent to a new connection (row 4).
"""

from __future__ import annotations

import os
import re
import select
import socket
import time
import uuid
from pathlib import Path
from typing import Callable, Sequence

from memhil.engines.process import ChildProcess
from memhil.engines.renode_monitor import LOG_LINE, PROMPT, RenodeCommandError, check_command, clean, is_error, split_log, strip_telnet, trace
from memhil.errors import EngineError, EngineTimeout, ProtocolError

#: IAC WONT BINARY, IAC DONT ECHO, IAC DONT SGA: 1.15.x reads exactly 9 bytes after its own offers (row 3)
TELNET_REPLY = b"\xff\xfc\x00\xff\xfe\x01\xff\xfe\x03"


def prompt_at_end(text: str) -> str | None:
    """The prompt if ``text`` ends with one, followed at most by complete log lines (the log shares the console
    under ``--console``, and a line logged after the prompt was written lands behind it)."""
    text = re.sub(r"(\((?:monitor|[A-Za-z0-9_.\-]+)\) )(?=\d{2}:\d{2}:\d{2}\.\d{4} \[)", "\\1\n", text)
    lines = text.split("\n")
    last = lines[-1]  # the line still being written ("" when text ends with a newline)
    if last:
        match = PROMPT.fullmatch(last)
        return match.group(0).strip() if match else None
    body = lines[:-1]
    logged = False
    while body and LOG_LINE.match(body[-1]):
        body.pop()
        logged = True
    match = PROMPT.fullmatch(body[-1]) if logged and body else None
    return match.group(0).strip() if match else None


class Shell:
    """Renode's monitor, whatever carries it: ``execute(cmd) -> output``. A transport supplies :meth:`_exchange`
    (and :meth:`_close`); the checks before a command and the error reply after it are here, once."""

    name = "monitor"

    def __init__(self, *, on_log: Callable[[str], None] | None = None) -> None:
        self.prompt = ""
        self.banner = ""
        self.commands: list[str] = []
        self.closed = False
        self.on_log = on_log or (lambda line: None)

    def _exchange(self, cmd: str, timeout: float | None) -> tuple[str, str]:
        """Run ``cmd``: (its output without echo, prompt and log lines, with the colours the transport shows; an
        error text the transport keeps apart, or "")."""
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def execute(self, cmd: str, *, timeout: float | None = None) -> str:
        """Run one monitor command; its output without prompt, echo and log lines. An error reply raises
        :class:`RenodeCommandError` with Renode's text."""
        if self.closed:
            raise ProtocolError(f"the Renode monitor ({self.name}) is closed", hint="start the engine again")
        check_command(cmd)
        trace.debug("-> %s", cmd)
        self.commands.append(cmd)
        out, err = self._exchange(cmd, timeout)
        trace.debug("<- %s", out[:300])
        if err or is_error(out):  # the reply without the echo, colours kept (a command's own text is not an error)
            raise RenodeCommandError(f"Renode refused `{cmd}`: {clean(err or out)[:300]}", hint="check the command's arguments and the platform/ELF paths", command=cmd)
        return clean(out)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._close()


class StreamShell(Shell):
    """Renode's monitor over a byte stream: send one line, read to the next prompt."""

    def __init__(self, *, timeout: float, on_log: Callable[[str], None] | None = None) -> None:
        super().__init__(on_log=on_log)
        self.timeout = timeout
        self._buf = ""

    # transport primitives
    def _send(self, data: bytes) -> None:
        raise NotImplementedError

    def _recv(self, timeout: float) -> bytes | None:
        """Bytes that arrived within ``timeout`` (None: none yet); raises ProtocolError when the stream ended."""
        raise NotImplementedError

    def read_until_prompt(self, deadline: float) -> str:
        """Everything up to and including the next prompt (log lines taken out), raw."""
        while True:
            found = prompt_at_end(clean(self._buf))
            if found is not None:
                self.prompt = found
                raw, self._buf = self._buf, ""
                reply, log = split_log(raw.replace("\r", ""))
                for line in log:
                    self.on_log(line)
                return reply
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineTimeout(f"Renode's monitor gave no prompt within {self.timeout:g} s",
                                    hint="Renode hangs or a command runs long; see renode.log in the run directory",
                                    output_tail=clean(self._buf)[-300:])
            data = self._recv(remaining)
            if data:
                self._buf += data.decode("utf-8", "replace")

    def _exchange(self, cmd: str, timeout: float | None) -> tuple[str, str]:
        self._send(cmd.encode() + b"\n")
        raw = self.read_until_prompt(time.monotonic() + (self.timeout if timeout is None else timeout))
        lines = raw.split("\n")[:-1]  # the last line is the prompt
        while lines and not lines[0].strip():
            lines = lines[1:]
        if lines and lines[0].strip().endswith(cmd.strip()):
            lines = lines[1:]  # the echo of the command (row 6)
        return "\n".join(lines).strip(), ""


class PipeShell(StreamShell):
    """``renode --console --plain`` as a child process (:attr:`process`, stderr in ``<workdir>/renode.stderr``),
    its monitor on stdin/stdout pipes."""

    name = "console pipe"

    def __init__(self, argv: Sequence[str], *, workdir: Path, timeout: float, on_log: Callable[[str], None] | None = None) -> None:
        super().__init__(timeout=timeout, on_log=on_log)
        self.process = ChildProcess(argv, workdir=workdir, name="renode", cwd=workdir, pipes=True)
        self.proc = self.process.proc
        self._fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        try:
            # the banner ("Renode, version ...") and the first prompt, written once when the shell starts (row 4)
            self.banner = self.read_until_prompt(time.monotonic() + timeout)
        except BaseException:
            self.close()
            raise

    def _send(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)  # type: ignore[union-attr]
        except (OSError, ValueError) as exc:
            raise ProtocolError(f"cannot write to Renode's console: {exc}", hint="Renode probably exited; see renode.stderr") from exc

    def _recv(self, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return None
        data = os.read(self._fd, 65536)
        if not data:
            raise ProtocolError("Renode closed its console (it exited)", hint="see renode.stderr and renode.log in the run directory",
                                exit_status=self.proc.poll())
        return data

    def quit(self, wait: float = 3.0) -> None:
        """``quit`` (QuitCommand.cs; row 26), then wait for the process; killed if it does not exit."""
        if self.process.alive() and not self.closed:
            try:
                self._send(b"quit\n")
                self.process.wait(wait)
            except ProtocolError:
                pass
        self.close()

    def _close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        self.process.stop(grace=0)  # reaps one that quit; kills one that did not


class TelnetShell(StreamShell):
    """A connection to the monitor of a Renode the user started with ``--port N`` (loopback only)."""

    name = "telnet (attached)"

    def __init__(self, sock: socket.socket, *, timeout: float, on_log: Callable[[str], None] | None = None) -> None:
        super().__init__(timeout=timeout, on_log=on_log)
        self.sock = sock

    @classmethod
    def attach(cls, host: str, port: int, *, timeout: float = 30.0, on_log: Callable[[str], None] | None = None) -> "TelnetShell":
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise EngineError(f"refusing to connect to a Renode monitor on {host}", hint="memhil talks to Renode over loopback only")
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise EngineError(f"cannot connect to Renode's monitor on {host}:{port}: {exc}", hint="is Renode running with --port? see its output") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        shell = cls(sock, timeout=timeout, on_log=on_log)
        try:
            shell._send(TELNET_REPLY)
            shell.sync()
        except BaseException:
            shell.close()
            raise
        return shell

    def sync(self) -> None:
        """Reach a known point in the stream: an empty line reprints the prompt (``CommandLine.cs``:566-617), and
        the reply of ``echo "<marker>"`` followed by a prompt is the end of everything sent before."""
        marker = f"memhil-sync-{uuid.uuid4().hex[:12]}"
        self._send(b"\n")
        self._send(f'echo "{marker}"\n'.encode())
        deadline = time.monotonic() + self.timeout
        seen = ""
        while True:
            seen += self.read_until_prompt(deadline)
            lines = [line.strip().strip("\"'") for line in clean(seen).split("\n")]
            if marker in lines:  # the reply line (the echo of the typed command starts with `echo`)
                self.banner = seen
                return

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ProtocolError(f"cannot send to Renode's monitor: {exc}", hint="Renode probably exited; see its output") from exc

    def _recv(self, timeout: float) -> bytes | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        except OSError as exc:
            raise ProtocolError(f"Renode's monitor connection dropped: {exc}", hint="Renode probably exited; see its output") from exc
        if not data:
            raise ProtocolError("Renode closed the monitor connection", hint="Renode probably exited; see its output")
        return strip_telnet(data)

    def _close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class PyRenodeShell(Shell):
    """The same ``execute`` over pyrenode3 (Renode loaded into this Python process):
    ``pyrenode3.wrappers.Monitor().execute(cmd) -> (output, error)`` (pyrenode3 ``wrappers/monitor.py``:52-69;
    row 30). Importing pyrenode3 loads Renode and raises ImportError when it cannot find it. Commands run
    in-process and block; ``timeout`` cannot interrupt them."""

    name = "pyrenode3"

    def __init__(self, *, on_log: Callable[[str], None] | None = None) -> None:
        super().__init__(on_log=on_log)
        try:
            from pyrenode3.wrappers import Monitor  # type: ignore[import-not-found]

            self._monitor = Monitor()
        except Exception as exc:  # noqa: BLE001 - pyrenode3 raises ImportError, .NET and loader errors
            raise EngineError(f"pyrenode3 could not load Renode: {exc}",
                              hint="set PYRENODE_PKG, PYRENODE_BUILD_DIR, or PYRENODE_BIN with PYRENODE_RUNTIME=coreclr "
                                   "(see pyrenode3's README), or use backend='binary'") from exc
        self.prompt = "(pyrenode3)"

    def _exchange(self, cmd: str, timeout: float | None) -> tuple[str, str]:
        out, err = self._monitor.execute(cmd)
        out, log = split_log(clean(str(out or "")))
        for line in log:
            self.on_log(line)
        return out.strip(), clean(str(err or "")).strip()

    def _close(self) -> None:
        try:
            self._monitor.execute("emulation Clear")
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
