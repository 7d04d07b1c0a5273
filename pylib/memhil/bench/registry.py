"""Where the figures of ``memhil bench`` are registered: one small function each.

A figure is a function ``fn(ctx: BenchContext) -> dict`` decorated with :func:`figure`; it returns
its keys (medians with :func:`memhil.bench.stats.spread`) and may leave artifacts for later
figures in ``ctx.artifacts`` (the recorded soak log, the events of the burst log). Figures run in
the order they are registered; the runner imports :mod:`.engine_bench` first, then :mod:`.offline`.
Keys starting with ``_`` are kept out of the JSON. A key belongs to one figure: a second figure returning
it is reported as an error (replace the first figure's function instead).

Adding a figure::

    @figure("my_figure", shown=(("my_rate_per_s", "ev/s"),))
    def my_figure(ctx):
        runs = [one_run(ctx) for _ in range(ctx.scale.runs)]
        return spread("my_rate_per_s", runs)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from memhil.errors import ConfigError, MemhilError

if TYPE_CHECKING:
    from memhil.bench.runner import Scale

Progress = Callable[[str], None]


@dataclass
class BenchContext:
    """What a figure gets: the scale, the firmware, a scratch directory, a progress line, and artifacts."""

    scale: "Scale"
    firmware_dir: Path
    workdir: Path
    say: Progress
    artifacts: dict[str, object] = field(default_factory=dict)

    def elf(self, name: str) -> Path:
        return self.firmware_dir / f"{name}.elf"

    def artifact(self, name: str, made_by: str) -> object:
        """An artifact an earlier figure left; a clear error when it did not."""
        if name not in self.artifacts:
            raise MemhilError(f"no {name}: the {made_by} figure did not produce it", hint=f"see the error of {made_by} above")
        return self.artifacts[name]


@dataclass(frozen=True)
class Figure:
    name: str
    fn: Callable[[BenchContext], dict[str, object]]
    shown: tuple[tuple[str, str], ...]  # (key, unit) rows printed as the figure completes


FIGURES: dict[str, Figure] = {}


def figure(name: str, *, shown: tuple[tuple[str, str], ...] = ()) -> Callable:
    """Register ``fn`` as the figure ``name`` (a name registered twice is an error, not a silent replacement)."""

    def register(fn: Callable[[BenchContext], dict[str, object]]) -> Callable[[BenchContext], dict[str, object]]:
        if name in FIGURES and FIGURES[name].fn.__qualname__ != fn.__qualname__:
            raise ConfigError(f"bench figure {name!r} is registered twice ({FIGURES[name].fn.__qualname__} and {fn.__qualname__})",
                              hint="give the new figure its own name")
        FIGURES[name] = Figure(name, fn, tuple(shown))
        return fn

    return register
