"""The pytest plugin, used the way a firmware project uses it: an inner pytest run in its own process."""

import os
import subprocess
import sys
import textwrap

import pytest

INNER = textwrap.dedent('''
    def test_modules(memhil_session):
        s = memhil_session(r"{elf}", capture="hooks")
        s.wait_for_line("module 7 mem used size", 5)
        s.run_for(0.05)
        assert s.module_used("FS") == 348          # 3 x ALIGN(100 + 16, 4)
        assert s.firmware_module_used("FS") == 348
        global SESSION
        SESSION = s

    def test_session_was_stopped():
        assert not SESSION.running

    def test_failure_still_stops(memhil_session):
        s = memhil_session(r"{elf}", capture="none")
        global FAILED
        FAILED = s
        raise AssertionError("planned failure")

    def test_failed_session_was_stopped():
        assert not FAILED.running
''')


@pytest.mark.emulator
def test_plugin_sessions_run_and_are_always_stopped(tmp_path, firmware):
    elf = firmware("module_stats", "release")
    (tmp_path / "test_inner.py").write_text(INNER.format(elf=elf))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_inner.py")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, env=dict(os.environ),
    )
    assert "1 failed, 3 passed" in result.stdout, result.stdout[-2000:]
    assert "planned failure" in result.stdout
    children = subprocess.run(["pgrep", "-f", f"qemu-system-arm.*{tmp_path.name}"], capture_output=True, text=True)
    assert children.stdout.strip() == ""


def test_plugin_options_are_registered():
    result = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, timeout=60)
    assert "--memhil-engine" in result.stdout and "--memhil-outdir" in result.stdout


LEAK_INNER = textwrap.dedent('''
    def _leaky(memhil_session):
        s = memhil_session(r"{elf}", capture="trace")
        s.wait_for_line("ready", 5)
        s.run_for(1)
        s.take_snapshot("before")
        s.run_for(10)
        s.take_snapshot("after")
        return s

    def test_fixture_message(memhil_session, assert_no_leaks):
        assert_no_leaks(_leaky(memhil_session), "before", "after")

    def test_compare_message(memhil_session):
        assert _leaky(memhil_session).leaks("before", "after").leaks == []
''')


@pytest.mark.emulator
def test_leak_failures_read_like_robot_s(tmp_path, firmware):
    import re

    (tmp_path / "test_leak.py").write_text(LEAK_INNER.format(elf=firmware("leak_demo")))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_leak.py")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, env=dict(os.environ),
    )
    out = result.stdout
    assert "2 failed" in out, out[-3000:]
    fixture, compare = out.split("test_compare_message")[0], out.split("test_compare_message", 1)[1]
    for text in (fixture, compare):
        # the leak's stack at file:line, addresses in hex, no object reprs
        assert re.search(r"at 0x0800[0-9A-F]{4}: app_build_response \(\S*apps/leak_demo/app\.c:\d+\)", text), text[-3000:]
        assert "by 0x" in text and "LossRecord(" not in text and "LiveBlock(" not in text
    # the words of Robot's Should Have No Leaks: the site named, both byte figures, the records
    assert re.search(r"1 leak site\(s\) \(\S*apps/leak_demo/app\.c:\d+\), [\d,]+ requested bytes \([\d,]+ node bytes, as module "
                     r"statistics count them\) in \d+ loss record\(s\) between 'before' and 'after':", fixture)
    assert "loss record(s), expected []" in compare


def test_docstring_uses_only_fixtures_that_exist():
    import memhil.pytest_plugin as plugin

    example = plugin.__doc__.split("def test_no_leak(")[1].split(")")[0]
    names = [n.strip() for n in example.split(",")]
    assert names == ["memhil_session", "assert_no_leaks"]
    assert all(callable(getattr(plugin, n)) for n in names)
