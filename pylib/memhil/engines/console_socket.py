"""A console UART reached through a socket (unix path or loopback TCP).

A daemon thread reads bytes into the engine's :class:`~memhil.engines.base.ConsoleLog` while the target runs
(so the emulator never blocks on a full socket), and :meth:`ConsoleSocket.drain` takes in, in the caller's
thread and without waiting, everything already sent: QEMU writes each byte the firmware stores to its UART's
data register into the socket before the store completes, so at a halt, after ``drain()``, the log holds
everything the target wrote. Both read under one lock, so bytes are fed in order.
"""

from __future__ import annotations

import select
import socket
import threading
import time

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
    def __init__(self, sock: socket.socket, log: ConsoleLog, *, name: str = "console") -> None:
        self.sock = sock
        self.log = log
        self.closed = False
        self.eof = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"memhil-{name}-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(None)  # blocking sends; receives never block (MSG_DONTWAIT after select)
        try:
            while not self.closed:
                readable, _, _ = select.select([self.sock], [], [], 0.2)
                if readable and not self._take():
                    break
        except (OSError, ValueError):  # closed under us
            pass
        finally:
            self.eof.set()

    def _take(self) -> bool:
        """Feed everything the socket holds now; False at end of stream."""
        with self._lock:
            while True:
                try:
                    data = self.sock.recv(65536, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                if not data:
                    return False
                self.log.feed(data)
        return True

    def drain(self) -> None:
        """Take in every byte already sent to the socket (call it with the target halted), without waiting."""
        if self.closed or self.eof.is_set():
            return
        try:
            self._take()
        except OSError:
            pass

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
