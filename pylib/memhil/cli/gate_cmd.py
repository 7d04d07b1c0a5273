"""Gate a firmware merge on the memory results of its test runs.

Reads every summary.json under RUN_DIR (one run directory, or many such as out/robot/memhil),
checks module budgets (current, peak, leak bytes per virtual hour), leaks not covered by a
suppression (their call stacks in the failure text), heap integrity, and, with --baseline,
growth of module current/peak over the baseline's runs. Exit 0 when every check passes,
1 on a violation, 2 on bad input (unreadable budgets or suppressions, missing results).
"""

from __future__ import annotations

import sys

NAME = "gate"
HELP = "check run results against memory budgets, suppressions and a baseline (CI merge gate)"


def add_arguments(p) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, or a directory of them (searched for **/summary.json)")
    p.add_argument("--budgets", required=True, help="budget file (TOML; see ci/README.md)")
    p.add_argument("--suppressions", action="append", default=[], help="leak suppression file (repeatable)")
    p.add_argument("--baseline", metavar="RUN_DIR", help="results of the target branch to compare module growth against")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test case per check")
    p.add_argument("--markdown", metavar="FILE", help="write a Markdown summary for a pull-request comment")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the verdict line")


def run(args) -> int:
    from memhil.analysis.suppress import Suppressions
    from memhil.gate import Budgets, run_gate, write_junit, write_markdown
    from memhil.gate.checks import FAIL, PASS, SKIP, iter_failures
    from memhil.cli.outputs import check_file, write_error
    from memhil.results import find_runs

    junit = check_file(args.junit, "the JUnit file")
    markdown = check_file(args.markdown, "the Markdown summary")
    budgets = Budgets.load(args.budgets)
    suppressions = Suppressions.load(*args.suppressions) if args.suppressions else None
    runs = find_runs(args.run_dir)
    baseline = find_runs(args.baseline) if args.baseline else None
    result = run_gate(runs, budgets, suppressions=suppressions, baseline=baseline)
    for path, write, what in ((junit, write_junit, "the JUnit file"), (markdown, write_markdown, "the Markdown summary")):
        if path is not None:
            try:
                write(result, path)
            except OSError as exc:
                raise write_error(what, exc) from None
    if not args.quiet:
        for text in iter_failures(result):
            print(text)
    verdict = "FAILED" if result.exit_code else "passed"
    print(f"memhil gate: {verdict}: {len(runs)} run(s), {len(result.checks)} checks, "
          f"{result.count(FAIL)} failed, {result.count(PASS)} passed, {result.count(SKIP)} skipped", file=sys.stdout)
    return result.exit_code
