"""Console input at a defined virtual time, through the UART's own registers.

A console byte sent to an emulator's UART backend reaches the device when the emulator's I/O thread gets to it:
at a wall-clock moment, while an idle core under ``-icount sleep=off`` jumps ahead to its next timer deadline.
So the virtual time at which the firmware sees a byte would depend on the host's load. Instead, memhil hands
the UART one byte at a time, with the target halted:

- the first byte when the host writes, if the receive register is empty: memhil waits (wall time, the target
  halted, so no virtual time passes) until the device shows it received (RXNE);
- each next byte at the instruction that reads the data register: a read watchpoint stops the target before the
  load, the host performs the load itself (the debug read has the device's side effect: RXNE clears), hands
  over the next byte and waits again until the device holds it, then resumes.

A command's virtual duration then depends on the firmware alone. The register layout comes from the board's
UART type (STM32F4 USART: SR at +0 with RXNE = bit 5, DR at +4; RM0090 30.6).
"""

from __future__ import annotations

from dataclasses import dataclass

from memhil.errors import PlatformError


@dataclass(frozen=True)
class UartRegisters:
    status: int  # address of the status register
    data: int  # address of the data register (reading it takes the received byte)
    rx_ready: int  # status bit set while a received byte waits in the data register

    def received(self, status_word: bytes) -> bool:
        return bool(int.from_bytes(status_word[:4], "little") & self.rx_ready)


#: UART register layouts by the .repl's peripheral type (last component)
LAYOUTS = {
    "STM32_UART": lambda base: UartRegisters(base, base + 4, 1 << 5),
}


def uart_registers(uart) -> UartRegisters:
    """The register layout of a platform :class:`~memhil.platform.Uart`."""
    kind = (uart.type or "STM32_UART").split(".")[-1]
    make = LAYOUTS.get(kind)
    if make is None:
        raise PlatformError(f"memhil does not know the registers of UART type {uart.type!r} ({uart.name})",
                            hint=f"use one of {', '.join(sorted(LAYOUTS))}, or add its layout to memhil.engines.uart.LAYOUTS")
    return make(uart.base)

