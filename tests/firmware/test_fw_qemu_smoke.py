"""Boots each scenario ELF in QEMU (netduinoplus2) and reads the banner and the app's own lines from USART1."""

from __future__ import annotations

import os
import queue
import subprocess
import threading

import pytest

from memhil.engines.process import _die_with_parent as die_with_parent

PROMPT = "LiteOS # "


class Board:
    """qemu-system-arm with USART1 on stdio; always killed in close()."""

    def __init__(self, elf) -> None:
        self.proc = subprocess.Popen(
            [os.environ.get("MEMHIL_QEMU") or "qemu-system-arm", "-M", "netduinoplus2", "-display", "none", "-monitor", "none", "-serial", "stdio",
             "-icount", "shift=0,sleep=off", "-kernel", str(elf)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,  # no QEMU left behind when the test run itself is killed
        )
        self.buf = ""
        self._q: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        while chunk := self.proc.stdout.read1(4096):
            self._q.put(chunk)

    def expect(self, text: str, timeout: float = 20.0) -> str:
        while text not in self.buf:
            try:
                self.buf += self._q.get(timeout=timeout).decode(errors="replace")
            except queue.Empty:
                raise AssertionError(f"{text!r} not seen; console so far:\n{self.buf}") from None
        head, _, self.buf = self.buf.partition(text)
        return head + text

    def command(self, line: str) -> str:
        self.proc.stdin.write(line.encode() + b"\r")
        self.proc.stdin.flush()
        return self.expect(PROMPT)[: -len(PROMPT)].replace("\r\n", "\n")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def boot(firmware):
    boards = []

    def _boot(app, config):
        board = Board(firmware(app, config))
        boards.append(board)
        return board

    yield _boot
    for b in boards:
        b.close()


@pytest.mark.parametrize("config,node", [("debug", 44), ("release", 32)])
def test_module_stats(boot, firmware, config, node):
    b = boot("module_stats", config)
    out = b.expect(PROMPT).replace("\r\n", "\n")
    assert out.startswith(f"memhil module_stats {config} stm32f4 ready\n")
    assert (f"module 0 malloc successed\nmodule 0 mem used size {node}\n"
            f"module 1 malloc successed\nmodule 1 mem used size {node}\n") in out
    stat = b.command("memstat")
    assert "module 0 mem used size" not in stat and "module 2 mem used size" in stat
    assert b.command("memstat 99").strip().endswith("Usage: memstat [module 0-32]")
    assert "system memcheck over, all passed!" in b.command("memcheck")
    assert "\nUsage: memused\n" in b.command("memused x")
    assert "unknown command: nope" in b.command("nope")
    free = b.command("free").splitlines()
    assert free[-2] == "        total        used          free"
    pool = subprocess.run(["arm-none-eabi-nm", "-S", str(firmware("module_stats", config))], capture_output=True, text=True, check=True).stdout
    pool_size = next(int(line.split()[1], 16) for line in pool.splitlines() if line.endswith(" g_sysMemPool"))
    assert pool_size == 64 * 1024  # OS_SYS_MEM_SIZE: what fits the 128 KiB of SRAM beside the debug trace ring
    assert free[-1].split()[:2] == ["Mem:", str(pool_size)]


def test_bad_input(boot):
    b = boot("bad_input", "debug")
    out = b.expect(PROMPT).replace("\r\n", "\n")
    assert "bad_input malloc_module_33: LOS_MemMalloc(pool, 16, 33) = NULL" in out
    assert "error module ID input!" in out
    assert "alloced in module 1, but free in module 2" in out
    assert "bad_input double_free: LOS_MemFree(pool, q) = LOS_NOK" in out
    assert "bad_input done integrity ok" in out


def test_leak_demo_grows_app_only(boot):
    b = boot("leak_demo", "debug")
    b.expect(PROMPT)
    first = b.command("uptime")
    stat = b.command("memstat 3")
    assert "uptime" in first and "module 3 mem used size" in stat
    assert b.command("memstat 1").count("module 1 mem used size 0") == 1
