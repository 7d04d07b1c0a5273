"""The run's own cost: getrusage of self and children, /proc readings of a live process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from memhil.errors import EngineError
from memhil.resources import child_usage, engine_usage, parse_proc, process_usage, self_usage

# touches 32 MiB page by page, so the child's peak RSS and minor faults must rise
_TOUCH = "b = bytearray(32 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"


def test_child_usage_counts_a_finished_child():
    before = child_usage()
    subprocess.run([sys.executable, "-c", _TOUCH], check=True)
    after = child_usage()
    assert after.peak_rss_mb >= 32
    assert (after - before).minor_faults >= (32 << 20) // 4096 // 2
    assert after.source == "children"


def test_self_usage_is_positive():
    usage = self_usage()
    assert usage.peak_rss_mb > 0 and usage.minor_faults > 0 and usage.user_s > 0
    assert "peak RSS" in usage.format()


def test_process_usage_of_a_running_child():
    child = subprocess.Popen([sys.executable, "-c", _TOUCH + "import sys; print('ready', flush=True); sys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        usage = process_usage(child.pid)
        assert usage.peak_rss_mb >= 32 and usage.rss_mb is not None and usage.rss_mb > 0
        assert usage.minor_faults >= (32 << 20) // 4096 // 2
        assert usage.source == f"pid {child.pid}"

        class Fake:  # engine_usage wants engine.process.pid, as QemuEngine has
            class process:
                pid = child.pid

        assert engine_usage(Fake()).peak_rss_mb == pytest.approx(usage.peak_rss_mb, rel=0.5)
    finally:
        child.stdin.close()
        child.wait(timeout=10)


def test_process_usage_of_a_gone_process():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(EngineError, match="not running") as exc:
        process_usage(child.pid)
    assert "child_usage" in exc.value.hint


@pytest.mark.parametrize("pid", [0, -3, "12"])
def test_process_usage_rejects_bad_pids(pid):
    with pytest.raises(EngineError, match="not a process id"):
        process_usage(pid)


def test_engine_without_process_has_no_usage():
    assert engine_usage(object()) is None


def test_parse_proc_with_spaces_and_parens_in_comm():
    status = "Name:\tq (x)\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n"
    fields = ["S", "1", "2", "3", "4", "5", "6", "777", "0", "9", "0", "300", "100"] + ["0"] * 30
    stat = "42 (qemu (a) b) " + " ".join(fields)
    usage = parse_proc(status, stat, 42)
    assert (usage.peak_rss_mb, usage.rss_mb, usage.minor_faults, usage.major_faults) == (20.0, 10.0, 777, 9)


def test_parse_proc_rejects_truncated_stat():
    with pytest.raises(EngineError, match="too short"):
        parse_proc("VmHWM: 1 kB\n", "42 (q) S 1 2", 42)
