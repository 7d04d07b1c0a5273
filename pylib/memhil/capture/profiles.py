"""Allocator profiles as data: which functions to hook and where their arguments are.

A profile is a TOML file (see ``profiles/liteos.toml``)::

    name = "liteos"
    description = "..."
    nodes = "liteos"              # node headers to read at return ("liteos"), or "none"

    [functions.LOS_MemMalloc]
    kind = "alloc"                # alloc | free | realloc | aligned_alloc
    size = "r1"                   # or ["r0", "r1"]: the product (calloc)
    module = "r2"
    calls = ["LOS_MemAlloc"]      # hooked functions it calls internally (they are not events)
    success = 0                   # (status-returning functions) what a call that did its work returns

Every function of the profile that the ELF contains is hooked; the linker drops what an application does not
call, so no function is required by name. A profile matches an ELF that has at least one allocation entry
(kind ``alloc`` or ``aligned_alloc``) and one ``free`` entry. (``optional``, from older profiles, is accepted and
changes nothing.)

A profile may also name the functions that create and retire heap pools (LiteOS ``LOS_MemInit`` and
``LOS_MemDeInit``): they make no event, but every pool a successful call makes is walked with the others::

    [pools.LOS_MemInit]
    kind = "init"                 # init (needs pool and size) | deinit (needs pool)
    pool = "r0"
    size = "r1"
    success = 0                   # what a call that made (or retired) the pool returns

Argument places are AAPCS core registers r0-r3 (ARM IHI 0042, section 6.1.1). ``ptr`` is the block
freed or reallocated, ``boundary`` the alignment, ``pool`` and ``reent`` are informational.
Built-in profiles live next to this module; users pass a path to their own file.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from memhil.errors import CaptureError, ConfigError
from memhil.events import EventKind

if TYPE_CHECKING:
    from memhil.elf import Image

PROFILE_DIR = Path(__file__).with_name("profiles")

ALLOC_KINDS = (EventKind.ALLOC, EventKind.ALIGNED_ALLOC)
FREE_KINDS = (EventKind.FREE,)
_KINDS = {"alloc": EventKind.ALLOC, "free": EventKind.FREE, "realloc": EventKind.REALLOC, "aligned_alloc": EventKind.ALIGNED_ALLOC}
_ARG_NAMES = ("pool", "size", "ptr", "module", "boundary", "reent")
_FUNC_KEYS = {"kind", "returns", "calls", "optional", "untracked", "success", *_ARG_NAMES}
_TOP_KEYS = {"name", "description", "nodes", "functions", "pools"}
_POOL_KINDS = ("init", "deinit")
_NODES = ("none", "liteos")
_REGS = {f"r{i}": i for i in range(4)}


@dataclass(frozen=True)
class FunctionSpec:
    """How one allocator function is called. Argument fields hold register numbers (0-3) or None."""

    name: str
    kind: EventKind
    size: tuple[int, ...] = ()  # registers multiplied together (one for most, two for calloc)
    ptr: int | None = None
    module: int | None = None
    boundary: int | None = None
    pool: int | None = None
    reent: int | None = None
    returns: str = "ptr"  # "ptr" (the block) or "status" (ignored)
    calls: tuple[str, ...] = ()
    optional: bool = False
    untracked: bool = False  # the firmware's per-module statistics do not count it (plain LiteOS API)
    success: int | None = None  # the status a call that did its work returns (returns = "status"), when known, as a 32-bit register holds it

    @property
    def needs_return(self) -> bool:
        """Frees are complete at entry; everything else needs the returned pointer."""
        return self.kind is not EventKind.FREE

    def arg(self, regs: dict[str, int], reg: int | None, default: int = 0) -> int:
        return regs[f"r{reg}"] if reg is not None else default

    def size_of(self, regs: dict[str, int]) -> int:
        value = 1 if self.size else 0
        for reg in self.size:
            value *= regs[f"r{reg}"]
        return value & 0xFFFFFFFF


@dataclass(frozen=True)
class PoolFunctionSpec:
    """A function that creates (``init``) or retires (``deinit``) a heap pool: the registers of the pool's address
    and size at entry, and the status a call that did its work returns."""

    name: str
    kind: str  # "init" | "deinit"
    pool: int
    size: int | None = None
    success: int = 0  # as a 32-bit register holds it (-1 is 0xFFFFFFFF)


@dataclass(frozen=True)
class AllocatorProfile:
    name: str
    functions: dict[str, FunctionSpec]
    nodes: str = "none"
    description: str = ""
    source: str = ""
    pools: dict[str, PoolFunctionSpec] = field(default_factory=dict)
    _closure: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in self.functions:
            self._closure[name] = self._reach(name)

    def _reach(self, name: str) -> frozenset[str]:
        seen: set[str] = set()
        todo = list(self.functions[name].calls)
        while todo:
            callee = todo.pop()
            if callee in seen or callee not in self.functions:
                continue
            seen.add(callee)
            todo.extend(self.functions[callee].calls)
        return frozenset(seen)

    def calls_closure(self, name: str) -> frozenset[str]:
        """Every hooked function ``name`` may call, directly or through other hooked functions."""
        return self._closure.get(name, frozenset())

    @property
    def allocators(self) -> list[str]:
        """The allocation entry points (``alloc``, ``aligned_alloc``)."""
        return [f.name for f in self.functions.values() if f.kind in ALLOC_KINDS]

    @property
    def freers(self) -> list[str]:
        return [f.name for f in self.functions.values() if f.kind in FREE_KINDS]

    def missing_symbols(self, image: Image) -> list[str]:
        """What the ELF lacks for this profile to match: ``"one of A, B"`` per missing role (empty when it matches)."""
        out = []
        for names in (self.allocators, self.freers):
            if names and not any(_func_symbol(image, n) is not None for n in names):
                out.append(names[0] if len(names) == 1 else "one of " + ", ".join(names))
        if not self.allocators or not self.freers:
            out.append("an allocation and a free function in the profile")
        return out

    def present(self, image: Image) -> list[FunctionSpec]:
        """Every function of the profile the ELF contains: all of them are hooked."""
        return [f for f in self.functions.values() if _func_symbol(image, f.name) is not None]

    def present_pool_functions(self, image: Image) -> list[PoolFunctionSpec]:
        """The pool functions of the profile the ELF contains (each is hooked where it is)."""
        return [f for f in self.pools.values() if _func_symbol(image, f.name) is not None]

    def check(self, image: Image) -> None:
        """Raise :class:`CaptureError` unless the ELF has an allocation and a free entry point of this profile."""
        missing = self.missing_symbols(image)
        if missing:
            matching = [p.name for p in matching_profiles(image)]
            raise CaptureError(
                f"allocator profile {self.name!r} cannot hook this ELF: it has no {' and no '.join(missing)}",
                hint=(f"use a profile that matches this ELF: {', '.join(matching)}" if matching else "no built-in profile matches this ELF; write one (see memhil/capture/profiles/*.toml)")
                + " (or check the functions are not inlined or garbage-collected)",
                profile=self.name,
                missing=missing,
                matching=matching,
                elf=str(getattr(image, "path", "")) or None,
            )


def _func_symbol(image: Image, name: str):
    sym = image.find_symbol(name)
    if sym is None or getattr(sym, "kind", "func") != "func":
        return None
    return sym


def builtin_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(name_or_path: str | Path | AllocatorProfile) -> AllocatorProfile:
    """A built-in profile by name (:func:`builtin_names`) or a user's TOML file."""
    if isinstance(name_or_path, AllocatorProfile):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith(".toml") or path.exists()):
        path = PROFILE_DIR / f"{text}.toml"
        if not path.exists():
            near = difflib.get_close_matches(text, builtin_names(), n=3)
            raise ConfigError(
                f"unknown allocator profile {text!r}" + (f"; did you mean {', '.join(near)}?" if near else ""),
                hint=f"built-in profiles are {', '.join(builtin_names())}; or pass the path of your own .toml profile",
            )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"allocator profile file {path} does not exist", hint="check the path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"allocator profile {path} is not valid TOML: {exc}", hint="fix the syntax (see memhil/capture/profiles/liteos.toml)", path=str(path)) from None
    return parse_profile(data, source=str(path))


def parse_profile(data: dict, *, source: str = "<dict>") -> AllocatorProfile:
    """Validate a profile's TOML data; every problem names the key and the file."""

    def bad(what: str) -> ConfigError:
        return ConfigError(f"allocator profile {source}: {what}", hint="see memhil/capture/profiles/liteos.toml for the format", path=source)

    def reg(where: str, value: object) -> int:
        if isinstance(value, str) and value in _REGS:
            return _REGS[value]
        raise bad(f"{where}: {value!r} is not an argument register (r0-r3)")

    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise bad(f"unknown key(s) {', '.join(sorted(unknown))}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise bad("'name' must be a non-empty string")
    nodes = data.get("nodes", "none")
    if nodes not in _NODES:
        raise bad(f"'nodes' must be one of {', '.join(_NODES)}, not {nodes!r}")
    funcs = data.get("functions")
    if not isinstance(funcs, dict) or not funcs:
        raise bad("needs a [functions.<name>] table for at least one function")
    specs: dict[str, FunctionSpec] = {}
    for fname, f in funcs.items():
        if not isinstance(f, dict):
            raise bad(f"functions.{fname} must be a table")
        extra = set(f) - _FUNC_KEYS
        if extra:
            raise bad(f"functions.{fname}: unknown key(s) {', '.join(sorted(extra))}")
        kind = _KINDS.get(f.get("kind", ""))
        if kind is None:
            raise bad(f"functions.{fname}.kind must be one of {', '.join(_KINDS)}, not {f.get('kind')!r}")

        args: dict[str, object] = {}
        for key in ("pool", "ptr", "module", "boundary", "reent"):
            if key in f:
                args[key] = reg(f"functions.{fname}.{key}", f[key])
        size = f.get("size", ())
        size_regs = tuple(reg(f"functions.{fname}.size", r) for r in ([size] if isinstance(size, str) else size))
        if kind is not EventKind.FREE and not size_regs:
            raise bad(f"functions.{fname}: an {f['kind']} function needs 'size'")
        if kind in (EventKind.FREE, EventKind.REALLOC) and "ptr" not in args:
            raise bad(f"functions.{fname}: a {f['kind']} function needs 'ptr' (the block's register)")
        if kind is EventKind.ALIGNED_ALLOC and "boundary" not in args:
            raise bad(f"functions.{fname}: an aligned_alloc function needs 'boundary'")
        returns = f.get("returns", "status" if kind is EventKind.FREE else "ptr")
        if returns not in ("ptr", "status"):
            raise bad(f"functions.{fname}.returns must be 'ptr' or 'status'")
        calls = f.get("calls", [])
        if not isinstance(calls, list) or not all(isinstance(c, str) for c in calls):
            raise bad(f"functions.{fname}.calls must be a list of function names")
        for key in ("optional", "untracked"):
            if not isinstance(f.get(key, False), bool):
                raise bad(f"functions.{fname}.{key} must be true or false")
        success = f.get("success")
        if success is not None and (not isinstance(success, int) or isinstance(success, bool) or returns != "status"):
            raise bad(f"functions.{fname}.success must be an integer, for a function that returns a status")
        specs[fname] = FunctionSpec(
            fname, kind, size_regs, returns=returns, calls=tuple(calls),
            optional=f.get("optional", False), untracked=f.get("untracked", False),
            success=None if success is None else success & 0xFFFFFFFF, **args,  # type: ignore[arg-type]
        )
    for spec in specs.values():
        for callee in spec.calls:
            if callee not in specs:
                raise bad(f"functions.{spec.name}.calls names {callee!r}, which the profile does not define")
    pools = data.get("pools", {})
    if not isinstance(pools, dict):
        raise bad("'pools' must be a table of [pools.<name>] tables")
    pool_specs: dict[str, PoolFunctionSpec] = {}
    for fname, f in pools.items():
        if not isinstance(f, dict):
            raise bad(f"pools.{fname} must be a table")
        extra = set(f) - {"kind", "pool", "size", "success"}
        if extra:
            raise bad(f"pools.{fname}: unknown key(s) {', '.join(sorted(extra))}")
        kind = f.get("kind")
        if kind not in _POOL_KINDS:
            raise bad(f"pools.{fname}.kind must be one of {', '.join(_POOL_KINDS)}, not {kind!r}")
        if fname in specs:
            raise bad(f"pools.{fname} is also an allocator function")
        pool = reg(f"pools.{fname}.pool", f.get("pool"))
        size = reg(f"pools.{fname}.size", f.get("size")) if kind == "init" else None
        success = f.get("success", 0)
        if not isinstance(success, int) or isinstance(success, bool):
            raise bad(f"pools.{fname}.success must be an integer")
        pool_specs[fname] = PoolFunctionSpec(fname, kind, pool, size, success & 0xFFFFFFFF)
    return AllocatorProfile(name, specs, nodes=nodes, description=str(data.get("description", "")), source=source, pools=pool_specs)


def builtin_profiles() -> list[AllocatorProfile]:
    return [load_profile(n) for n in builtin_names()]


def matching_profiles(image: Image, profiles: Iterable[AllocatorProfile] | None = None) -> list[AllocatorProfile]:
    """The profiles ``image`` has an allocation and a free entry point of."""
    return [p for p in (builtin_profiles() if profiles is None else profiles) if not p.missing_symbols(image)]
