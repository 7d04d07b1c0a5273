"""Run Robot Framework suites with the memhil library, in parallel with pabot when --processes > 1.

Writes Robot's report.html and log.html, a JUnit file (junit.xml) and each suite's memory
reports (under memhil/) to --outdir. Exits with Robot's status (0 when every test passed;
2 for a usage error such as a missing suite or an output directory that cannot be written).

--shard K/N runs the K-th of N parts of the suites (or, with --shard-by test, of the tests), so N CI
machines share one run. The split is stable: it depends only on the suite and test names, never
on the machine or the order the files are listed in; every suite (test) lands in exactly one shard.
Merge the shards' output.xml files with ``rebot --merge`` and gate every shard's memhil/ directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from memhil.errors import ConfigError

NAME = "run"
HELP = "run Robot suites on an engine (pabot for parallel runs; --shard K/N for several machines)"
ROOT = Path(__file__).resolve().parents[3]
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*:")


def add_arguments(p) -> None:
    p.add_argument("suites", nargs="+", help="suite files or directories")
    p.add_argument("--engine", default="qemu", help="emulator engine: qemu (default) or renode")
    p.add_argument("--platform", default="stm32f4", help="board under platforms/ (default stm32f4)")
    p.add_argument("--firmware-dir", default=str(ROOT / "firmware" / "build" / "stm32f4"), help="where the suites find firmware ELFs (${FIRMWARE_DIR})")
    p.add_argument("--profile", default=None, help="allocator profile for capture=hooks in every suite (liteos, newlib, freertos, or a .toml path); default: the suites' own")
    p.add_argument("--pool", action="append", default=[], metavar="SYMBOL|ADDRESS",
                   help="a LiteOS memory pool to walk with the system pool in every suite (repeatable): the buffer the firmware "
                   "passes to LOS_MemInit, by symbol or address; needed only for pools made before capture began")
    p.add_argument("--processes", type=int, default=1, help="parallel processes (pabot) — 1 runs plain robot")
    p.add_argument("--outdir", default="out/robot", help="output directory for reports, logs and JUnit")
    p.add_argument("--include", action="append", default=[], help="only tests with this tag (repeatable)")
    p.add_argument("--exclude", action="append", default=[], help="skip tests with this tag (repeatable)")
    p.add_argument("--test", action="append", default=[], help="only tests with this name (repeatable)")
    p.add_argument("--variable", "-v", action="append", default=[], metavar="NAME:VALUE",
                   help="a Robot variable, as robot --variable (repeatable; overrides ENGINE, FIRMWARE_DIR... set by memhil)")
    p.add_argument("--shard", default=None, metavar="K/N", help="run only part K of N (1 <= K <= N) of the suites, e.g. 2/3")
    p.add_argument("--shard-by", choices=("suite", "test"), default="suite",
                   help="what --shard splits: whole suites (default; suite setups run once) or single tests")
    from memhil.cli.keep import add_keep_argument

    add_keep_argument(p)


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if not m:
            raise ConfigError(f"--shard {text!r} is not K/N", hint="write the part and the number of parts, e.g. --shard 2/3")
        k, n = int(m.group(1)), int(m.group(2))
        if n < 1 or not 1 <= k <= n:
            raise ConfigError(f"--shard {text!r}: K must be between 1 and N", hint=f"parts are numbered 1 to {max(n, 1)}")
        return cls(k, n)


def split(items: dict[str, int], count: int) -> list[list[str]]:
    """Split named items with weights (tests per suite) into ``count`` parts, deterministically: heaviest
    first (ties by name), each to the part with the least weight so far (ties to the lowest part)."""
    parts: list[list[str]] = [[] for _ in range(count)]
    load = [0] * count
    for name in sorted(items, key=lambda n: (-items[n], n)):
        i = min(range(count), key=lambda j: (load[j], j))
        parts[i].append(name)
        load[i] += max(1, items[name])
    return [sorted(p) for p in parts]


def top_suite_name(suites: list[str]) -> str:
    """The name Robot gives the top suite of several paths ("Bad Input & Boot"), passed as ``--name`` so every
    run of them agrees: pabot would call it "Suites", and Robot renames it after the children a shard keeps
    (rebot then refuses to merge the shards, and run directories are named differently from run to run)."""
    from robot.model import TestSuite

    return " & ".join(TestSuite.name_from_source(s, (".robot",)) for s in suites)


def shard_selection(suites: list[str], shard: Shard, by: str) -> list[str]:
    """Robot options selecting this shard's suites (``--suite LONGNAME``) or tests (``--test LONGNAME``); none
    for a shard with nothing to run."""
    from robot.api import TestSuiteBuilder
    from robot.errors import DataError

    try:
        top = TestSuiteBuilder(included_extensions=("robot",)).build(*suites)
    except DataError as exc:
        raise ConfigError(f"cannot read the suites to shard them: {exc}", hint="fix the suite files (robot --dryrun shows the same error)") from None
    leaves = [s for s in _walk(top) if s.tests]
    if by == "test":
        items = {t.full_name: 1 for s in leaves for t in s.tests}
    else:
        items = {s.full_name: len(s.tests) for s in leaves}
    mine = split(items, shard.count)[shard.index - 1]
    if not mine:
        return []
    option = "--test" if by == "test" else "--suite"
    out: list[str] = []
    for name in mine:
        out += [option, _glob_escape(name)]
    return out


def _walk(suite):
    yield suite
    for child in suite.suites:
        yield from _walk(child)


def _glob_escape(name: str) -> str:
    """Robot matches --suite/--test as glob patterns: make ``*``, ``?`` and ``[`` literal."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def robot_command(args, outdir: Path) -> list[str]:
    for suite in args.suites:
        if not Path(suite).exists():
            raise ConfigError(f"suite {suite!r} does not exist", hint="give a .robot file or a directory of them")
    if args.processes < 1:
        raise ConfigError(f"--processes must be at least 1, not {args.processes}", hint="use 1 for plain robot, 2+ for pabot")
    for v in getattr(args, "variable", []):
        if not _VARIABLE.match(v):
            raise ConfigError(f"--variable {v!r} is not NAME:VALUE", hint="e.g. --variable ENGINE:renode (as robot --variable)")
    variables = [f"ENGINE:{args.engine}", f"PLATFORM:{args.platform}", f"FIRMWARE_DIR:{Path(args.firmware_dir).resolve()}",
                 f"MEMHIL_OUT:{(outdir / 'memhil').resolve()}", *getattr(args, "variable", [])]  # the user's last: they win
    common = ["--outputdir", str(outdir), "--xunit", "junit.xml", "--loglevel", "INFO"]
    if len(args.suites) > 1:
        common += ["--name", top_suite_name(args.suites)]
    for v in variables:
        common += ["--variable", v]
    for tag in args.include:
        common += ["--include", tag]
    for tag in args.exclude:
        common += ["--exclude", tag]
    for name in args.test:
        common += ["--test", name]
    if getattr(args, "shard", None):
        shard = Shard.parse(args.shard)
        selection = shard_selection(list(args.suites), shard, getattr(args, "shard_by", "suite"))
        if not selection:
            return []
        common += selection
    if args.processes > 1:
        return [sys.executable, "-m", "pabot.pabot", "--no-pabotlib", "--processes", str(args.processes), *common, *args.suites]
    return [sys.executable, "-m", "robot", *common, *args.suites]


def run(args) -> int:
    from memhil.cli import keep
    from memhil.cli.outputs import check_dir

    cmd = robot_command(args, Path(args.outdir))  # checks the arguments before anything is created
    outdir = check_dir(args.outdir, "the output directory")
    keep.apply(outdir, getattr(args, "keep_runs", 1), "run")
    if not cmd:
        print(f"memhil run: shard {args.shard} has nothing to run ({len(args.suites)} suite path(s) split by {args.shard_by}); no output written")
        return 0
    env = dict(os.environ)
    # pabot starts `robot` by name: make it the one beside this interpreter (the venv's)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if args.profile:
        from memhil.capture import load_profile

        load_profile(args.profile)  # an unknown profile is an error before any suite runs
        env["MEMHIL_PROFILE"] = str(args.profile)
    if args.pool:
        from memhil.session import parse_pools

        env["MEMHIL_POOLS"] = ",".join(str(p) for p in parse_pools(args.pool))  # a malformed one is an error now
    result = subprocess.run(cmd, env=env)
    print(f"memhil run: report {outdir / 'report.html'}, log {outdir / 'log.html'}, JUnit {outdir / 'junit.xml'}, memory reports {outdir / 'memhil'}")
    return result.returncode
