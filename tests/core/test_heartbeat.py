"""Run For's heartbeat: plain lines while a long keyword runs, nothing for a short one."""

from __future__ import annotations

import threading

from memhil.robot.progress import heartbeat


def test_lines_while_the_body_runs_then_done():
    lines: list[str] = []
    three = threading.Event()

    def write(text: str) -> None:
        lines.append(text)
        if len(lines) == 3:
            three.set()

    with heartbeat("Run For 10 min (hooks capture)", every=0.01, write=write):
        assert three.wait(10), "three beats while the body runs"
    assert all(line.startswith("memhil: Run For 10 min (hooks capture): still running, ") for line in lines[:3])
    assert lines[-1].startswith("memhil: Run For 10 min (hooks capture): done in ")
    assert all("\r" not in line for line in lines)


def test_a_short_body_prints_nothing():
    lines: list[str] = []
    with heartbeat("Run For 1s", every=60, write=lines.append):
        pass
    assert lines == []


def test_the_body_s_error_passes_through_and_the_thread_stops():
    before = threading.active_count()
    try:
        with heartbeat("x", every=60, write=lambda t: None):
            raise KeyError("from the body")
    except KeyError as exc:
        assert "from the body" in str(exc)
    assert threading.active_count() == before


def test_a_console_that_fails_changes_nothing_for_the_body():
    """The heartbeat only writes: a write that raises (the console gone) neither reaches the keyword nor stops
    its body, in the thread or in the closing line."""
    before = threading.active_count()
    calls: list[str] = []
    tried = threading.Event()

    def broken(text: str) -> None:
        calls.append(text)
        tried.set()
        raise OSError(32, "Broken pipe")

    with heartbeat("Run For 1h", every=0.01, write=broken):
        assert tried.wait(10)
        result = "body finished"
    assert result == "body finished" and threading.active_count() == before
    assert calls[0].startswith("memhil: Run For 1h: still running") and calls[-1].startswith("memhil: Run For 1h: done in ")
