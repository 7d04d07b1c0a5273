"""Suppressions: known allocations that are accepted, in a file format like Valgrind memcheck's.

::

    # lines starting with '#' are comments
    {
       shell-history-buffer           <- the name, reported as "suppressed by"
       memhil:Leak                    <- optional "<Tool>:Leak" line (Memcheck:Leak works too)
       match-leak-kinds: definite,possible   <- optional; default all
       fun:ShellHistory*              <- frame matchers, innermost frame first: fun:<glob>,
       ...                               src:<glob>[:<line>], and '...' for any number of frames
       src:shell/*.c
    }

Frames are matched from the innermost one, as memcheck does: the suppression matches when its
lines match a prefix of the stack (``...`` standing for zero or more frames).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Protocol, Sequence

from memhil.errors import ConfigError

from .reachability import LeakKind

_KINDS = {
    "definite": LeakKind.DEFINITE,
    "indirect": LeakKind.INDIRECT,
    "possible": LeakKind.POSSIBLE,
    "reachable": LeakKind.REACHABLE,
    "unfreed": LeakKind.UNFREED,
}
_TOOL_LINE = re.compile(r"^[A-Za-z][\w-]*:[A-Za-z][\w-]*$")


class _Frame(Protocol):
    function: str | None
    file: str | None
    line: int | None


@dataclass(frozen=True)
class FrameMatcher:
    kind: str  # "fun" | "src" | "..."
    glob: str = ""
    line: int | None = None

    def matches(self, frame: _Frame) -> bool:
        if self.kind == "fun":
            return frame.function is not None and fnmatch.fnmatchcase(frame.function, self.glob)
        if frame.file is None:
            return False
        if self.line is not None and frame.line != self.line:
            return False
        return fnmatch.fnmatchcase(frame.file, self.glob) or fnmatch.fnmatchcase(posixpath.basename(frame.file), self.glob) or (
            "/" in self.glob and fnmatch.fnmatchcase(frame.file, "*/" + self.glob)
        )

    def __str__(self) -> str:
        if self.kind == "...":
            return "..."
        return f"{self.kind}:{self.glob}" + (f":{self.line}" if self.line is not None else "")


@dataclass(frozen=True)
class Suppression:
    name: str
    frames: tuple[FrameMatcher, ...]
    kinds: frozenset[LeakKind] | None = None  # None: every kind
    source: str = ""
    line: int = 0

    def matches(self, stack: Sequence[_Frame], kind: LeakKind | None = None) -> bool:
        if kind is not None and self.kinds is not None and kind not in self.kinds:
            return False
        return _match(self.frames, stack)


def _match(pattern: Sequence[FrameMatcher], stack: Sequence[_Frame]) -> bool:
    """Whether ``pattern`` matches a prefix of ``stack``; '...' matches zero or more frames."""
    memo: dict[tuple[int, int], bool] = {}

    def go(p: int, s: int) -> bool:
        if p == len(pattern):
            return True
        key = (p, s)
        if key in memo:
            return memo[key]
        m = pattern[p]
        if m.kind == "...":
            ok = go(p + 1, s) or (s < len(stack) and go(p, s + 1))
        else:
            ok = s < len(stack) and m.matches(stack[s]) and go(p + 1, s + 1)
        memo[key] = ok
        return ok

    return go(0, 0)


class Suppressions:
    """A set of suppressions; :meth:`match` names the first that matches a stack. ``used`` counts matches."""

    def __init__(self, items: Iterable[Suppression] = ()) -> None:
        self.items = list(items)
        self.used: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def load(cls, *paths: str | Path) -> "Suppressions":
        items: list[Suppression] = []
        for path in paths:
            p = Path(path)
            try:
                text = p.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read suppression file: {exc.strerror}", hint="check the path given for suppressions", file=str(p)) from exc
            except UnicodeDecodeError as exc:
                raise ConfigError("suppression file is not UTF-8 text", hint="save it as plain UTF-8 text", file=str(p)) from exc
            items.extend(parse_suppressions(text, str(p)))
        return cls(items)

    @classmethod
    def parse(cls, text: str, source: str = "<string>") -> "Suppressions":
        return cls(parse_suppressions(text, source))

    def match(self, stack_frames: Sequence[_Frame], kind: LeakKind | None = None) -> str | None:
        for item in self.items:
            if item.matches(stack_frames, kind):
                self.used[item.name] += 1
                return item.name
        return None


def parse_suppressions(text: str, source: str = "<string>") -> list[Suppression]:
    """Parse suppression text; :class:`ConfigError` names the file, the line and what is wrong."""
    out: list[Suppression] = []
    names: dict[str, int] = {}
    block: list[tuple[int, str]] | None = None
    opened = 0

    def err(lineno: int, what: str, hint: str) -> ConfigError:
        return ConfigError(f"{source}:{lineno}: {what}", hint=hint, file=source, line=lineno)

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if block is None:
            if line != "{":
                raise err(lineno, f"expected '{{' to start a suppression, found {line!r}", "each suppression is '{', a name, frame lines, '}'")
            block, opened = [], lineno
            continue
        if line == "{":
            raise err(lineno, f"'{{' inside the suppression opened at line {opened}", "close the previous suppression with '}' first")
        if line != "}":
            block.append((lineno, line))
            continue
        out.append(_build(block, opened, lineno, source, err))
        if out[-1].name in names:
            raise err(opened, f"suppression name {out[-1].name!r} already used at line {names[out[-1].name]}", "give each suppression a unique name")
        names[out[-1].name] = opened
        block = None
    if block is not None:
        raise err(opened, "suppression is not closed: '}' missing before the end of the file", "add a line with '}' after its frame lines")
    return out


def _build(block: list[tuple[int, str]], opened: int, closed: int, source: str, err) -> Suppression:
    if not block:
        raise err(closed, "empty suppression: a name and at least one frame line are needed", "write a name, then fun:/src: lines")
    name_line, name = block[0]
    if name.startswith(("fun:", "src:", "obj:")) or name == "...":
        raise err(name_line, f"the first line must be the suppression's name, found frame line {name!r}", "put a name on the line after '{'")
    kinds: frozenset[LeakKind] | None = None
    frames: list[FrameMatcher] = []
    for lineno, line in block[1:]:
        if line == "...":
            frames.append(FrameMatcher("..."))
        elif line.startswith("fun:"):
            glob = line[4:].strip()
            if not glob:
                raise err(lineno, "fun: needs a function name or glob", "e.g. fun:LOS_MemAlloc or fun:Shell*")
            frames.append(FrameMatcher("fun", glob))
        elif line.startswith("src:"):
            frames.append(_src(line[4:].strip(), lineno, err))
        elif line.startswith("obj:"):
            raise err(lineno, "obj: frames are not supported: firmware is one object", "use fun:<function> or src:<file>[:<line>]")
        elif line.startswith("match-leak-kinds:"):
            if frames:
                raise err(lineno, "match-leak-kinds must come before the frame lines", "move it up, under the name")
            kinds = _kinds(line.split(":", 1)[1], lineno, err)
        elif _TOOL_LINE.match(line) and not frames and kinds is None:
            tool, kind = line.split(":")
            if kind != "Leak":
                raise err(lineno, f"suppression kind {kind!r} is not supported; memhil suppresses leaks only", f"use {tool}:Leak")
        else:
            raise err(lineno, f"unrecognised line {line!r}", "frame lines are fun:<glob>, src:<glob>[:<line>] or '...'")
    if not frames:
        raise err(opened, f"suppression {name!r} has no frame lines", "add at least one fun:, src: or '...' line")
    return Suppression(name, tuple(frames), kinds, source, opened)


def _src(spec: str, lineno: int, err) -> FrameMatcher:
    if not spec:
        raise err(lineno, "src: needs a file name or glob", "e.g. src:app.c or src:drivers/*.c:120")
    glob, line = spec, None
    head, sep, tail = spec.rpartition(":")
    if sep and tail.isdigit():
        glob, line = head, int(tail)
    elif sep and not tail:
        raise err(lineno, f"src:{spec} ends with ':' but has no line number", "write src:<file>:<line> or drop the ':'")
    elif sep and tail and not any(c in tail for c in "*?[/.") and not tail.isdigit():
        raise err(lineno, f"line number {tail!r} in src:{spec} is not a number", "write src:<file>:<line>, e.g. src:app.c:42")
    return FrameMatcher("src", glob, line)


def _kinds(spec: str, lineno: int, err) -> frozenset[LeakKind] | None:
    words = [w.strip() for w in spec.split(",") if w.strip()]
    if not words:
        raise err(lineno, "match-leak-kinds lists no kinds", f"use all or a comma list of {', '.join(_KINDS)}")
    if words == ["all"]:
        return None
    bad = [w for w in words if w not in _KINDS]
    if bad:
        raise err(lineno, f"unknown leak kind(s) {', '.join(bad)}", f"use all or a comma list of {', '.join(_KINDS)}")
    return frozenset(_KINDS[w] for w in words)
