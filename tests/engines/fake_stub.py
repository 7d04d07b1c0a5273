"""A fake GDB stub for unit tests: a thread on one end of a socketpair speaking the RSP.

``handler(payload) -> reply bytes | None`` answers each packet (None: no reply);
raw bytes can be injected with :meth:`FakeStub.send_raw`. Everything received is kept
in ``packets`` and ``chunks`` (one entry per recv, to check pipelining).
"""

from __future__ import annotations

import socket
import threading
from typing import Callable

from memhil.engines.rsp_packet import PacketReader, encode_packet


class FakeStub:
    def __init__(self, handler: Callable[[bytes], bytes | None], *, no_ack: bool = True, packet_size: int = 0x1000) -> None:
        self.client_sock, self.sock = socket.socketpair()
        self.handler = handler
        self.supports_no_ack = no_ack
        self.ack_mode = True
        self.packet_size = packet_size
        self.packets: list[bytes] = []
        self.chunks: list[bytes] = []
        self.interrupts = 0
        self.acks = 0
        self.on_interrupt: Callable[[], bytes | None] | None = None
        self._lock = threading.Lock()
        self._seen = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _reply_default(self, payload: bytes) -> bytes | None:
        if payload.startswith(b"qSupported"):
            return b"PacketSize=%x;vContSupported+" % self.packet_size + (b";QStartNoAckMode+" if self.supports_no_ack else b"")
        if payload == b"QStartNoAckMode":
            return b"OK" if self.supports_no_ack else b""
        if payload == b"vCont?":
            return b""
        return self.handler(payload)

    def _run(self) -> None:
        reader = PacketReader()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return
                with self._seen:
                    self.chunks.append(data)
                    self._seen.notify_all()
                # the interrupt byte, alone or right after a complete packet (outside any packet)
                if data == b"\x03" or (data.endswith(b"\x03") and len(data) > 3 and data[-4:-3] == b"#"):
                    self.interrupts += 1
                    data = data[:-1]
                    if self.on_interrupt:
                        reply = self.on_interrupt()
                        if reply is not None:
                            self.send_packet(reply)
                reader.feed(data)
                for frame in reader.frames():
                    if frame.kind == "ack":
                        with self._seen:
                            self.acks += 1
                            self._seen.notify_all()
                        continue
                    if frame.kind != "packet":
                        continue
                    self.packets.append(frame.payload)
                    if self.ack_mode:
                        self.send_raw(b"+")
                    reply = self._reply_default(frame.payload)
                    if frame.payload == b"QStartNoAckMode" and reply == b"OK":
                        self.send_packet(reply)
                        self.ack_mode = False
                        continue
                    if reply is not None:
                        self.send_packet(reply)
        except OSError:
            return

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Block until ``condition()`` holds for what the stub has received (checked at each ack and each recv);
        the timeout only bounds a failing test, a passing one returns as soon as the bytes are in."""
        with self._seen:
            assert self._seen.wait_for(condition, timeout), "the fake stub never received what the test waits for"

    def send_packet(self, payload: bytes) -> None:
        self.send_raw(encode_packet(payload))

    def send_raw(self, data: bytes) -> None:
        with self._lock:
            self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
