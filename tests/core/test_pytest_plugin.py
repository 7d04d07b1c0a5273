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
