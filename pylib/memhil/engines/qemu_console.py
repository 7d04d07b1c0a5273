"""The QEMU engine's console: waits that end at the store of the awaited text, and input handed to the UART at a
defined virtual time (see :mod:`memhil.engines.uart`). Mixed into :class:`memhil.engines.qemu.QemuEngine`."""

from __future__ import annotations

import re
import time

from memhil.engines import thumb_emulate
from memhil.engines.base import CORE_REGS
from memhil.engines.qemu_stops import READ, WRITE


class ConsoleWatch:
    """Console output waits and console input (a mixin of QemuEngine)."""

    # -- the console -----------------------------------------------------------------------------
    # While a wait watches the console, the engine stops at each store to the UART's data register and at each read
    # of its status register. QEMU stops *before* a watched access and would stop again on a plain continue, and
    # QEMU 7.2's gdbstub drops debug writes to device registers, so the host cannot make the store itself. So:
    # at a store, the byte is taken from the register being stored; if it completes the awaited text, the store is
    # stepped (one translation-cache flush per wait) and the wait ends right after it; otherwise the data-register
    # watch is lifted, the store runs, and the next status read (a polled driver checks TXE before each byte)
    # stops the target, where the host performs that read, drains the console and puts the data watch back.
    def _watch_console(self, watch: re.Pattern[str] | None) -> None:
        uart = self._uart
        self._console_watch = watch
        self._set_internal_watch(WRITE, uart.data, self._on_console_store if watch is not None else None)
        self._set_internal_watch(READ, uart.status, self._on_console_status if watch is not None else None)

    def _on_console_store(self) -> str:
        regs, pc = self._halted_regs, self._halted_pc
        store = thumb_emulate.decode_store(self._code(pc))  # type: ignore[arg-type]
        byte = b""
        if store is not None and regs is not None:
            byte = bytes([regs[CORE_REGS[store.rt]] & 0xFF])
        self._set_internal_watch(WRITE, self._uart.data, None)
        if byte and self.console.matches_with(self._console_watch, byte):  # type: ignore[arg-type]
            self._gdb_call(self.client.step, self.timeout)  # the store, with its watch lifted
            self._clear_halt()
            self.launch.console.drain()  # type: ignore[union-attr]
            return "console"
        self._clear_halt()  # the store runs unwatched
        return "tx"

    def _on_console_status(self) -> str:
        self._complete_access_now()
        self.launch.console.drain()  # type: ignore[union-attr]
        if self.console.search(self._console_watch, consume=False):  # type: ignore[arg-type]
            return "console"
        self._set_internal_watch(WRITE, self._uart.data, self._on_console_store)
        return "tx"

    def _on_console_load(self) -> str:
        self._complete_access_now()  # the host read the data register: the UART is free for the next byte
        self._feed_uart()
        return "input"

    def _feed_uart(self) -> None:
        """Hand the UART the next pending console byte if its receive register is empty, and wait (the target
        halted, so no virtual time passes) until it holds it; watch reads of the data register while bytes wait."""
        uart = self._uart
        if self._input and not uart.received(self.read_memory(uart.status, 4)):
            self.launch.console.write(bytes(self._input[:1]))  # type: ignore[union-attr]
            del self._input[:1]
            deadline = time.monotonic() + self.timeout
            while not uart.received(self.read_memory(uart.status, 4)):
                if time.monotonic() > deadline:
                    raise self._hung(f"QEMU did not hand a console byte to the UART within {self.timeout:g} s")
                time.sleep(0.0001)
        self._set_internal_watch(READ, uart.data, self._on_console_load if self._input else None)

    def console_write(self, data: bytes | str) -> None:
        self.check_running()
        self._input += data.encode() if isinstance(data, str) else bytes(data)
        self._feed_uart()

    def _settle_console(self) -> None:
        if self.launch is not None and self.launch.console is not None:
            self.launch.console.drain()

    def _run_until_console(self, regex: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        self.check_running()
        self._run_for(timeout, watch=regex)
        return self.console.search(regex)
