"""A console UART reached through a socket (unix path or loopback TCP).

A daemon thread reads bytes into the engine's :class:`~memhil.engines.base.ConsoleLog`
and calls ``on_data`` after each chunk (the QEMU engine uses it to interrupt the
target as soon as an awaited line appears).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable

from memhil.engines.base import ConsoleLog
from memhil.errors import EngineError


def connect_socket(address: str | tuple[str, int], *, timeout: float, what: str) -> socket.socket:
    """Connect, retrying until ``timeout`` (the emulator creates its server socket while starting)."""
    if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "localhost"):
        raise EngineError(f"refusing to connect the {what} on {address[0]}", hint="memhil uses loopback or unix sockets only")
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX if isinstance(address, str) else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.1))
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            if time.monotonic() >= deadline:
                raise EngineError(f"cannot connect to the {what} at {address}: {exc}", hint="the emulator did not start; see its stderr") from exc
            time.sleep(0.02)


class ConsoleSocket:
    def __init__(self, sock: socket.socket, log: ConsoleLog, *, on_data: Callable[[], None] | None = None, name: str = "console") -> None:
        self.sock = sock
        self.log = log
        self.on_data = on_data
        self.closed = False
        self.eof = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"memhil-{name}-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(None)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.log.feed(data)
                if self.on_data is not None:
                    try:
                        self.on_data()
                    except Exception:  # noqa: BLE001 - a failing hook must not kill the reader
                        pass
        except OSError:
            pass
        finally:
            self.eof.set()

    def write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise EngineError(f"cannot write to the console: {exc}", hint="the emulator probably exited; see its stderr") from exc

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(timeout=2)
