"""Run Robot Framework suites with the memhil library, in parallel with pabot when --processes > 1.

Writes Robot's report.html and log.html, a JUnit file (junit.xml) and each suite's memory
reports (under memhil/) to --outdir. Exits with Robot's status (0 when every test passed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from memhil.errors import ConfigError

NAME = "run"
HELP = "run Robot suites on an engine (pabot for parallel runs)"
ROOT = Path(__file__).resolve().parents[3]


def add_arguments(p) -> None:
    p.add_argument("suites", nargs="+", help="suite files or directories")
    p.add_argument("--engine", default="qemu", help="emulator engine: qemu (default) or renode")
    p.add_argument("--platform", default="stm32f4", help="board under platforms/ (default stm32f4)")
    p.add_argument("--firmware-dir", default=str(ROOT / "firmware" / "build" / "stm32f4"), help="where the suites find firmware ELFs (${FIRMWARE_DIR})")
    p.add_argument("--processes", type=int, default=1, help="parallel processes (pabot) — 1 runs plain robot")
    p.add_argument("--outdir", default="out/robot", help="output directory for reports, logs and JUnit")
    p.add_argument("--include", action="append", default=[], help="only tests with this tag (repeatable)")
    p.add_argument("--exclude", action="append", default=[], help="skip tests with this tag (repeatable)")
    p.add_argument("--test", action="append", default=[], help="only tests with this name (repeatable)")


def robot_command(args, outdir: Path) -> list[str]:
    for suite in args.suites:
        if not Path(suite).exists():
            raise ConfigError(f"suite {suite!r} does not exist", hint="give a .robot file or a directory of them")
    if args.processes < 1:
        raise ConfigError(f"--processes must be at least 1, not {args.processes}", hint="use 1 for plain robot, 2+ for pabot")
    variables = [f"ENGINE:{args.engine}", f"PLATFORM:{args.platform}", f"FIRMWARE_DIR:{Path(args.firmware_dir).resolve()}",
                 f"MEMHIL_OUT:{(outdir / 'memhil').resolve()}"]
    common = ["--outputdir", str(outdir), "--xunit", "junit.xml", "--loglevel", "INFO"]
    for v in variables:
        common += ["--variable", v]
    for tag in args.include:
        common += ["--include", tag]
    for tag in args.exclude:
        common += ["--exclude", tag]
    for name in args.test:
        common += ["--test", name]
    if args.processes > 1:
        return [sys.executable, "-m", "pabot.pabot", "--no-pabotlib", "--processes", str(args.processes), *common, *args.suites]
    return [sys.executable, "-m", "robot", *common, *args.suites]


def run(args) -> int:
    from memhil.cli.outputs import check_dir

    cmd = robot_command(args, Path(args.outdir))  # checks the arguments before anything is created
    outdir = check_dir(args.outdir, "the output directory")
    env = dict(os.environ)
    # pabot starts `robot` by name: make it the one beside this interpreter (the venv's)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    result = subprocess.run(cmd, env=env)
    print(f"memhil run: report {outdir / 'report.html'}, log {outdir / 'log.html'}, JUnit {outdir / 'junit.xml'}, memory reports {outdir / 'memhil'}")
    return result.returncode
