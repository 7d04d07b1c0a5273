"""Module names and ids: ``NET`` or ``1`` in a keyword both mean LiteOS module 1."""

from __future__ import annotations

from typing import Iterable, Mapping

from memhil.errors import ConfigError

#: LiteOS's MEM_MODULE_MAX: module ids run 0..0x20.
MEM_MODULE_MAX = 0x20

#: The module ids of the product's own firmware (firmware/apps/modules.h).
DEFAULT_MODULES = {"SYS": 0, "NET": 1, "FS": 2, "APP": 3, "SHELL": 4}


class ModuleMap:
    """Two-way map between module names and ids, with validation that says what is accepted."""

    def __init__(self, names: Mapping[str, int] | None = None) -> None:
        self.by_name = {k.upper(): int(v) for k, v in (DEFAULT_MODULES if names is None else names).items()}
        for name, mid in self.by_name.items():
            if not 0 <= mid <= MEM_MODULE_MAX:
                raise ConfigError(f"module {name} has id {mid}, outside 0-{MEM_MODULE_MAX}", hint="LiteOS module ids run from 0 to MEM_MODULE_MAX (0x20)")
        self.by_id = {v: k for k, v in self.by_name.items()}

    @classmethod
    def parse(cls, spec: str | Mapping[str, int] | None) -> "ModuleMap":
        """From ``"NET=1,FS=2"`` (or a mapping, or None for the defaults)."""
        if spec is None or isinstance(spec, Mapping):
            return cls(spec)
        names: dict[str, int] = {}
        for item in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise ConfigError(f"cannot read module mapping {item!r}", hint="write NAME=ID pairs separated by commas, e.g. 'NET=1,FS=2'")
            try:
                names[name.strip()] = int(value.strip(), 0)
            except ValueError as exc:
                raise ConfigError(f"module id {value.strip()!r} of {name.strip()} is not a number", hint="ids are integers 0-32") from exc
        return cls(names)

    def id(self, module: str | int) -> int:
        """The id of ``module`` (a name, a decimal or 0x string, or an int), validated."""
        if isinstance(module, bool):
            raise ConfigError(f"module {module!r} is not a module", hint=self._accepted())
        if isinstance(module, int):
            mid = module
        else:
            text = str(module).strip()
            if text.upper() in self.by_name:
                return self.by_name[text.upper()]
            try:
                mid = int(text, 0)
            except ValueError:
                raise ConfigError(f"unknown module {text!r}", hint=self._accepted()) from None
        if not 0 <= mid <= MEM_MODULE_MAX:
            raise ConfigError(f"module id {mid} is out of range", hint=self._accepted())
        return mid

    def name(self, mid: int) -> str:
        return self.by_id.get(mid, str(mid))

    def names(self, ids: Iterable[int]) -> list[str]:
        return [self.name(i) for i in ids]

    def _accepted(self) -> str:
        known = ", ".join(f"{n}={i}" for n, i in sorted(self.by_name.items(), key=lambda kv: kv[1]))
        return f"use a module name ({known or 'none defined'}) or an id from 0 to {MEM_MODULE_MAX}"
