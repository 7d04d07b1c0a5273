"""The ``memhil`` command. One module per subcommand under ``memhil.cli``; each defines
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from memhil import __version__
from memhil.errors import MemhilError

SUBCOMMANDS = ("run", "demo", "soak", "report", "timeline", "gate", "bench", "map", "doctor")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memhil",
        description="Hardware-in-the-loop memory testing of firmware: run suites in QEMU or Renode, "
        "assert module memory, find leaks by call stack, keep a memory timeline of long runs.",
    )
    parser.add_argument("--version", action="version", version=f"memhil {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for protocol traces)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"memhil.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("memhil.cli."):
                continue
            raise
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 passed, 1 a memory verdict failed (gate) or a test failed (run, demo), 2 a usage
    error (bad argument, unreadable input, an output path that cannot be written), 130 interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 1), format="%(levelname)s %(name)s: %(message)s")
    if args.verbose >= 2:
        for name in ("memhil.trace.rsp", "memhil.trace.alloc"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MemhilError as exc:
        print(f"memhil {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the command had to read or write; never a traceback, never exit 1
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"memhil {args.command}: error: {where}{exc.strerror or exc}\nHint: check the path and its permissions",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"memhil {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
