"""Emulator child processes that never outlive memhil.

Three layers keep a started emulator from becoming an orphan: ``PR_SET_PDEATHSIG``
(Linux ``prctl(2)``) makes the kernel send SIGKILL when the parent *thread* that
started it exits; a :func:`weakref.finalize` kills it when its owner is collected;
and the finalizer also runs at interpreter exit (``atexit``). :meth:`ChildProcess.stop`
terminates, waits, then kills, and reaps so no zombie stays.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import weakref
from pathlib import Path
from typing import Sequence

from memhil.errors import EngineError, ToolMissingError

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def find_program(program: str, package: str) -> str:
    """Absolute path of ``program`` (a name on PATH or a path), else :class:`ToolMissingError`."""
    if os.sep in program:
        if os.access(program, os.X_OK) and Path(program).is_file():
            return program
        raise ToolMissingError(program, package=package)
    path = shutil.which(program)
    if path is None:
        raise ToolMissingError(program, package=package)
    return path


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


class ChildProcess:
    """One emulator process with stdout/stderr kept in files (``<workdir>/<name>.stderr``). With ``pipes``, its
    stdin and stdout are unbuffered pipes instead (``proc.stdin``, ``proc.stdout``), for a program driven through
    its console, and ``stdout_path`` is None."""

    def __init__(self, argv: Sequence[str], *, workdir: Path, name: str, cwd: Path | None = None, pipes: bool = False) -> None:
        self.argv = list(argv)
        self.name = name
        self.stderr_path = workdir / f"{name}.stderr"
        self.stdout_path = None if pipes else workdir / f"{name}.stdout"
        stdout = contextlib.nullcontext(subprocess.PIPE) if self.stdout_path is None else open(self.stdout_path, "wb")
        with open(self.stderr_path, "wb") as err, stdout as out:
            try:
                self.proc = subprocess.Popen(
                    self.argv, stdin=subprocess.PIPE if pipes else subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd,
                    preexec_fn=_die_with_parent, close_fds=True, bufsize=0,
                )
            except OSError as exc:
                raise EngineError(f"cannot start {self.argv[0]}: {exc.strerror}", hint="check the program is installed and executable", argv=" ".join(self.argv)) from exc
        self._finalizer = weakref.finalize(self, _kill, self.proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self, lines: int = 15) -> str:
        try:
            text = self.stderr_path.read_bytes()[-8192:].decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 3.0) -> int | None:
        """Terminate (SIGTERM), wait up to ``grace`` s, then SIGKILL; always reaps. Returns the exit status."""
        if self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        self._finalizer()
        return self.proc.returncode

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
