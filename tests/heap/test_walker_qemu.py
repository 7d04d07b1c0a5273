"""The walker on the real firmware heap in QEMU: layout from DWARF, module totals against the
firmware's g_moduleMemUsedSize, and the listing against the shell's own `memused` output."""

from __future__ import annotations

import re

import pytest

from memhil.analysis.crosscheck import crosscheck_modules, read_module_table
from memhil.elf import Image
from memhil.engines.qemu import QemuEngine
from memhil.heap.layout import NodeLayout
from memhil.heap.walker import HeapWalker

pytestmark = pytest.mark.emulator

_ROW = re.compile(r"^0x[0-9a-f]{8}: ")


def _memused_from_console(text: str) -> str:
    text = text.replace("\r\n", "\n")
    start = text.rindex("node        ")
    lines = text[start:].split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        if not _ROW.match(line):
            break
        out.append(line)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("config", ["debug", "release"])
def test_walk_matches_firmware_statistics_and_memused(firmware, platform, tmp_path, config):
    elf = firmware("module_stats", config)
    image = Image.open(elf)
    layout = NodeLayout.from_image(image)
    assert layout.head_size == (28 if config == "debug" else 16)
    engine = QemuEngine()
    try:
        engine.start(platform, elf, workdir=tmp_path)
        engine.wait_for_line(r"memhil module_stats .* ready", timeout=5)
        engine.run_for(0.1)
        engine.console_write("memused\r")
        engine.wait_for_line(r"^node        ", timeout=2)
        engine.run_for(0.2)
        shell = _memused_from_console(engine.console.text())
        pool = int.from_bytes(engine.read_memory(image.symbol("m_aucSysMem0").address, 4), "little")
        walk = HeapWalker(layout).walk(engine.read_memory, pool)
        table_sym = image.symbol("g_moduleMemUsedSize")
        table = read_module_table(engine.read_memory, table_sym.address, table_sym.size // 4)
    finally:
        engine.stop()
    assert walk.ok, walk.errors
    assert len(walk.used_nodes) >= 6
    assert walk.memused_text() == shell
    snap = walk.to_snapshot("now")
    # module 0 in the nodes also holds plain LOS_MemAlloc blocks, which the firmware's module statistics do not count
    modules = [m for m in range(len(table)) if m != 0]
    check = crosscheck_modules(snap, table, modules)
    assert check.ok, check.text()
    assert {m: walk.module_used(m) for m in (2, 5, 7)} == {m: table[m] for m in (2, 5, 7)}
    assert table[2] == 3 * ((100 + layout.head_size + 3) & ~3)
    assert walk.stat_used == walk.used + layout.head_size
    aligned = [n for n in walk.used_nodes if n.aligned]
    assert len(aligned) == 1 and aligned[0].ptr % 32 == 0 and aligned[0].module == 5


def test_snapshot_capture_matches_firmware_from_the_walk(firmware, tmp_path):
    """capture=snapshot keeps no ledger: Module Usage Should Match Firmware compares the walk's module figures."""
    from memhil.session import Session, SessionOptions

    session = Session(SessionOptions(capture="snapshot"), run_dir=tmp_path)
    with session:
        session.start(firmware("module_stats", "debug"))
        session.wait_for_line("module 7 mem used size", timeout=30)
        check = session.crosscheck()
        walked = session.walk_heap().to_snapshot()
        assert session.ledger.live == {}  # nothing captured: the figures must come from the walk
    by_id = {m.module: m for m in check.modules}
    nonzero = [m for m in check.modules if m.module and m.firmware]
    assert nonzero, check.text()
    for m in nonzero:
        assert m.agrees and m.host == walked.module_used(m.module), m.describe()
    assert all(m.explained for m in check.modules), check.text()
    assert by_id[0].unknown_bytes == walked.module_used(0)
