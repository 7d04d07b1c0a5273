"""Output paths of the subcommands, checked before any long work starts: a path that cannot be written
is a usage error (exit 2, the path and the reason), never a traceback after the work is done.

The check is a real attempt, not a permission guess: missing parent directories are created (as
``--junit reports/gate.xml`` in CI expects) and the file is opened for appending, then removed again
if it did not exist before. ``os.access`` would answer yes to root on a read-only or virtual file system.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from memhil.errors import ConfigError


def check_file(value: str | os.PathLike | None, what: str) -> Path | None:
    """``value`` as a Path a file can be written to; :class:`ConfigError` naming the path and the reason
    otherwise. ``None`` passes through (an output that was not asked for)."""
    if value is None:
        return None
    path = Path(value)
    if path.is_dir():
        raise _error(what, path, os.strerror(errno.EISDIR), "give a file name, not a directory")
    _make_parent(path, what)
    existed = path.exists()
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise _error(what, path, exc.strerror or str(exc), "choose a path you may write, or fix its permissions") from None
    if not existed:
        path.unlink(missing_ok=True)
    return path


def check_dir(value: str | os.PathLike, what: str) -> Path:
    """``value`` as a directory that exists (created if missing) and takes files."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise _error(what, path, os.strerror(errno.ENOTDIR), "give a directory, not a file")
    if not path.exists():
        _make_parent(path / "x", what, shown=path)
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise _error(what, path, exc.strerror or str(exc), "choose a directory you may write, or fix its permissions") from None
    return path


def _make_parent(path: Path, what: str, *, shown: Path | None = None) -> None:
    parent = path.parent
    if parent.is_dir():
        return
    for base in (parent, *parent.parents):
        if base.exists():
            if not base.is_dir():
                raise _error(what, shown or path, f"{base} is a file, not a directory", "choose a path under a directory")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = f"cannot create directory {parent}: {exc.strerror or exc}"
        raise _error(what, shown or path, reason, "choose a directory you may write") from None


def _error(what: str, path: Path, reason: str, hint: str) -> ConfigError:
    err = ConfigError(f"cannot write {what} {path}: {reason}", hint=hint)
    err.path = str(path)  # kept for callers, not repeated in the message (which names it already)
    return err


def write_error(what: str, exc: OSError) -> ConfigError:
    """A write that failed after all (disk full, a race): the same form of error."""
    path = Path(exc.filename) if exc.filename else Path("?")
    return _error(what, path, exc.strerror or str(exc), "free space or choose another path")
