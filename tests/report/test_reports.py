import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "heap"))

from fakesym import FakeSymbolizer, blk, snap  # noqa: E402
from heap_synth import PoolBuilder, reader  # noqa: E402
from memhil.analysis.crosscheck import crosscheck_modules  # noqa: E402
from memhil.analysis.growth import find_growth  # noqa: E402
from memhil.analysis.leaks import find_leaks  # noqa: E402
from memhil.analysis.reachability import Region, classify  # noqa: E402
from memhil.analysis.suppress import Suppressions  # noqa: E402
from memhil.errors import ConfigError  # noqa: E402
from memhil.heap import Ledger  # noqa: E402
from memhil.heap.layout import NodeLayout  # noqa: E402
from memhil.heap.walker import HeapWalker  # noqa: E402
from memhil.report.collapsed import collapsed_stacks  # noqa: E402
from memhil.report.jsonout import to_json  # noqa: E402
from memhil.report.memcheck import format_loss_records, memcheck_text  # noqa: E402
from memhil.report.mtrace import mtrace_text  # noqa: E402

LEAK = (0x08001001, 0x08001101)
SHELL = (0x08002001, 0x08001101)


def leak_report(reach=False, supp=None):
    blocks = [blk(0x20002000, 100, stack=LEAK), blk(0x20002080, 100, stack=LEAK), blk(0x20002100, 256, stack=(0x08007777,))]
    r = classify(blocks, [Region("d", 0x20000000, b"\0" * 8)], []) if reach else None
    return find_leaks(snap("a", 0, []), snap("b", 1, blocks), FakeSymbolizer(), supp, r)


def test_mtrace_table_like_glibc():
    text = mtrace_text(leak_report(), FakeSymbolizer())
    assert text.splitlines() == [
        "",
        "Memory not freed:",
        "-----------------",
        "   Address     Size     Caller",
        "0x20002000     0x64  at app/leak.c:42",
        "0x20002080     0x64  at app/leak.c:42",
        "0x20002100    0x100  at 0x08007777",
    ]
    assert mtrace_text([]) == "No memory leaks.\n"


def test_memcheck_records_and_summary():
    text = memcheck_text(leak_report(reach=True))
    lines = text.splitlines()
    assert lines[0] == "200 bytes in 2 blocks are definitely lost in loss record 1 of 2"
    assert lines[1] == "   at 0x08001001: leaky_worker (app/leak.c:42)"
    assert lines[2] == "   by 0x08001101: task_main (app/main.c:10)"
    assert "256 bytes in 1 blocks are definitely lost in loss record 2 of 2" in lines
    assert "   at 0x08007777: ???" in lines
    i = lines.index("LEAK SUMMARY:")
    assert lines[i + 1 : i + 6] == [
        "   definitely lost: 456 bytes in 3 blocks",
        "   indirectly lost: 0 bytes in 0 blocks",
        "     possibly lost: 0 bytes in 0 blocks",
        "   still reachable: 0 bytes in 0 blocks",
        "        suppressed: 0 bytes in 0 blocks",
    ]


def test_memcheck_without_reachability_and_with_suppressions():
    supp = Suppressions.parse("{\n known\n ...\n fun:task_main\n}\n")
    rep = leak_report(supp=supp)
    text = memcheck_text(rep, prefix="==1== ")
    assert "==1== 256 bytes in 1 blocks are not freed in loss record 1 of 1" in text
    assert "==1==          not freed: 256 bytes in 1 blocks" in text.splitlines()[4]
    assert "==1==         suppressed: 200 bytes in 2 blocks" in text
    assert "leaky_worker" not in text
    assert "suppressed by: known" in format_loss_records(rep.suppressed)


def test_collapsed_stacks_root_first():
    text = collapsed_stacks(leak_report(), FakeSymbolizer())
    assert text == "0x08007777 272\ntask_main;leaky_worker 232\n"
    assert collapsed_stacks([blk(1, 8, stack=())], weight="blocks") == "[unknown] 1\n"
    with pytest.raises(ConfigError, match="unknown weight"):
        collapsed_stacks([], weight="pages")


def test_json_of_everything_round_trips():
    b = PoolBuilder(NodeLayout.liteos_default(True))
    b.alloc(16, module=3, lrs=(1, 2, 3))
    walk = HeapWalker(b.layout).walk(reader(b.build(), b.pool), b.pool)
    snaps = [snap(f"s{i}", 10 * i, [blk(0x10 * (k + 1), stack=LEAK) for k in range(i + 1)]) for i in range(8)]
    doc = json.loads(to_json(walk=walk, snapshots=snaps[:1], ledger=Ledger(), leaks=leak_report(),
                             growth=find_growth(snaps), crosscheck=crosscheck_modules(Ledger(), [0, 0])))
    assert doc["walk"]["modules"] == {"3": 44} and doc["walk"]["nodes"][0]["lrs"] == [1, 2, 3]
    assert doc["walk"]["ok"] is True and doc["walk"]["fragmentation"]["free_blocks"] == 1
    assert doc["leaks"]["summary"]["not freed"] == {"bytes": 456, "blocks": 3}
    assert doc["growth"][0]["blocks"] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert doc["snapshots"][0]["blocks"][0]["stack"] == list(LEAK)
    assert doc["crosscheck"]["ok"] is True and doc["ledger"]["events"] == 0
    assert json.loads(to_json()) == {"memhil_report": 1}
