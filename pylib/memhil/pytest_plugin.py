"""pytest plugin: fixtures to run firmware and check its memory from Python.

    def test_no_leak(memhil_session, assert_no_leaks):
        s = memhil_session("build/debug/leak_demo.elf", capture="trace")   # your firmware ELF
        s.wait_for_line("ready")
        s.take_snapshot("before"); s.run_for(10); s.take_snapshot("after")
        assert_no_leaks(s, "before", "after")

A leak fails the test with each loss record and its call stack at ``file:line`` (addresses in hex),
as Robot's ``Should Have No Leaks`` does; ``assert report.leaks == []`` on a leak report is shown the
same way. Options: ``--memhil-engine`` (qemu), ``--memhil-platform`` (stm32f4), ``--memhil-outdir``.
Every session a test starts is stopped at teardown, also when the test fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest


def pytest_addoption(parser) -> None:
    group = parser.getgroup("memhil", "firmware memory testing")
    group.addoption("--memhil-engine", default="qemu", help="emulator engine (qemu, renode)")
    group.addoption("--memhil-platform", default="stm32f4", help="board under platforms/")
    group.addoption("--memhil-outdir", default=None, help="where run directories go (default: pytest's tmp_path)")


@pytest.fixture
def memhil_session(request, tmp_path):
    """Factory: ``memhil_session(elf, capture="hooks", modules=None, pools=()) -> Session``, started; stopped at
    teardown. ``pools`` names LiteOS pools to walk besides the system pool (symbols or addresses)."""
    from memhil.modules import ModuleMap
    from memhil.session import Session, SessionOptions

    started: list[Session] = []
    outdir = request.config.getoption("--memhil-outdir")
    base = Path(outdir) if outdir else tmp_path

    def start(elf, capture: str = "hooks", modules=None, accelerate: bool = True, profile: str = "liteos", pools=()) -> Session:
        options = SessionOptions(
            engine=request.config.getoption("--memhil-engine"),
            platform=request.config.getoption("--memhil-platform"),
            capture=capture, profile=profile, accelerate=accelerate, modules=ModuleMap.parse(modules), pools=pools,
        )
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        session = Session(options, run_dir=base / f"{name}-{len(started)}")
        started.append(session)
        session.start(elf)
        return session

    yield start
    for session in started:
        session.stop()


class LeakFound(AssertionError):
    """A leak found by ``assert_no_leaks``; the message is Robot's ``Should Have No Leaks`` text
    (:func:`memhil.report.memcheck.leak_failure_text`)."""


@pytest.fixture
def assert_no_leaks():
    """``assert_no_leaks(session, before, after, suppressions=None) -> LeakReport``: fails listing each leak's
    bytes, blocks and call stack at file:line if anything allocated after snapshot ``before`` is still live at
    ``after`` (minus ``suppressions``, a file)."""
    def check(session, before: str, after: str, suppressions=None):
        report = session.leaks(before, after, suppressions=suppressions)
        if report.leaks:
            from memhil.report.memcheck import leak_failure_text

            raise LeakFound(leak_failure_text(report, before, after))
        return report

    return check


def pytest_assertrepr_compare(op, left, right):
    """``assert report.leaks == []`` (or a report's records): show the loss records, not object reprs."""
    from memhil.analysis.leaks import LeakReport, LossRecord

    def records(side):
        if isinstance(side, LeakReport):
            return side.leaks
        if isinstance(side, (list, tuple)) and side and all(isinstance(x, LossRecord) for x in side):
            return list(side)
        return None

    for side, other in ((left, right), (right, left)):
        found = records(side)
        if found is not None and op == "==" and not records(other):
            from memhil.report.memcheck import format_loss_records

            text = format_loss_records([r for r in found if not r.suppressed_by] or found)
            return [f"{len(found)} loss record(s), expected {other!r}:", *text.splitlines()]
    return None


@pytest.fixture
def assert_stack_below():
    """``assert_stack_below(session, stack_name, limit_bytes)``: the stack's high-water mark stays below the limit."""
    def check(session, name: str, limit: int) -> int:
        from memhil.errors import AssertionFailure
        from memhil.targetmap import stack_usage

        usage = {s.name: s for s in stack_usage(session.image, session.engine.read_memory)}
        if name not in usage:
            raise AssertionFailure(f"no stack named {name!r}", hint=f"known stacks: {', '.join(usage) or 'none'}")
        used = usage[name].used
        if used is None:
            raise AssertionFailure(f"stack {name!r} is not painted, its use cannot be measured", hint="paint stacks at start-up (see firmware/README.md)")
        if used >= limit:
            raise AssertionFailure(f"stack {name} used {used} bytes, limit {limit}", hint="raise the stack size or lower its use")
        return used

    return check
