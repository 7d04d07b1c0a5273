"""The main job, end to end: run the product's Robot suites on an engine and collect everything a person
looks at under --outdir: Robot's report.html and log.html, JUnit, the memory reports of each suite, and
the keyword documentation (libdoc)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from memhil.cli import run_cmd

NAME = "demo"
HELP = "run the product's suites and write every report to out/"


def add_arguments(p) -> None:
    p.add_argument("--engine", default="qemu", help="emulator engine: qemu (default) or renode")
    p.add_argument("--outdir", default="out", help="where everything goes (default out/)")
    p.add_argument("--processes", type=int, default=2, help="parallel suite processes (pabot)")
    p.add_argument("--suites", default=str(run_cmd.ROOT / "robot-tests"), help="suite directory")
    from memhil.cli.keep import add_keep_argument

    add_keep_argument(p)


def run(args) -> int:
    from memhil.cli.outputs import check_dir

    out = check_dir(args.outdir, "the output directory")
    libdoc = out / "memhil-keywords.html"
    subprocess.run([sys.executable, "-m", "robot.libdoc", "memhil.robot", str(libdoc)], check=True, stdout=subprocess.DEVNULL)
    run_args = run_cmd_args(args, out / "robot")
    status = run_cmd.run(run_args)
    reports = sorted((out / "robot" / "memhil").glob("*/*")) if (out / "robot" / "memhil").is_dir() else []
    print("\nmemhil demo: results")
    print(f"  Robot report   {out / 'robot' / 'report.html'}")
    print(f"  Robot log      {out / 'robot' / 'log.html'}")
    print(f"  JUnit          {out / 'robot' / 'junit.xml'}")
    print(f"  keyword docs   {libdoc}")
    print(f"  memory reports {out / 'robot' / 'memhil'} ({len(reports)} files)")
    for path in reports:
        if path.suffix in (".html", ".png", ".txt"):
            print(f"    {path}")
    return status


def run_cmd_args(args, outdir: Path):
    """``memhil run``'s arguments for the demo, from run's own parser: every option run has gets its default."""
    from memhil.cli import build_parser

    return build_parser().parse_args(["run", str(args.suites), "--engine", args.engine, "--processes", str(args.processes),
                                      "--outdir", str(outdir), "--keep-runs", str(args.keep_runs)])
