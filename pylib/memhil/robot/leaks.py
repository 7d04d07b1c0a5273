"""Keywords that find leaks between snapshots and check their call stacks."""

from __future__ import annotations

import fnmatch

from assertionengine import AssertionOperator, int_str_verify_assertion
from robotlibcore import keyword

from memhil.errors import AssertionFailure, ConfigError
from memhil.robot.base import LibraryContext


class LeakKeywords:
    def __init__(self, ctx: LibraryContext) -> None:
        self.ctx = ctx
        self.last = None

    @keyword
    def get_leaks(self, before: str, after: str, suppressions: str | None = None):
        """Returns the leak report between snapshots ``before`` and ``after``: blocks allocated after ``before``
        and still live at ``after``, grouped by call stack (loss records), minus ``suppressions`` (a file)."""
        self.last = self.ctx.current().leaks(before, after, suppressions=suppressions)
        return self.last

    @keyword
    def should_have_no_leaks(self, before: str, after: str, suppressions: str | None = None) -> None:
        """Fails, listing each leak's bytes, blocks and call stack, if anything leaked between the two snapshots."""
        report = self.get_leaks(before, after, suppressions)
        records = _unsuppressed(report)
        if records:
            from memhil.report.memcheck import format_loss_records

            raise AssertionFailure(
                f"{len(records)} leak site(s), {sum(r.bytes for r in records):,} requested bytes ({sum(r.node_bytes for r in records):,} node bytes, "
                f"as module statistics count them) between {before!r} and {after!r}:\n"
                + format_loss_records(records),
                hint="fix the leak, or add a suppression for a known allocation",
            )

    @keyword
    def get_leak_count(self, before: str, after: str, assertion_operator: AssertionOperator | None = None,
                       assertion_expected: str | None = None, suppressions: str | None = None) -> int:
        """Returns the number of leak sites (loss records not suppressed) between the snapshots, optionally asserting it.

        | Get Leak Count    before    after    ==    0    suppressions=ci/leaks.supp
        """
        count = len(_unsuppressed(self.get_leaks(before, after, suppressions)))
        return int_str_verify_assertion(count, assertion_operator, assertion_expected, "Leak sites")

    @keyword
    def get_leak_sites(self, before: str, after: str, suppressions: str | None = None) -> list[dict]:
        """Returns one dictionary per leak site between the snapshots, largest first, with keys ``site``
        (file:line), ``function``, ``module``, ``kind``, ``bytes`` (requested bytes, as memcheck counts them;
        ``node_bytes`` what the pool pays, as module statistics and ``summary.json`` count them), ``blocks``, ``first_s`` and ``last_s``
        (virtual seconds the first and last leaked block were allocated) and ``blocks_per_hour`` (the rate
        over that span; 0 for a single block).

        | ${sites} =    Get Leak Sites    at_6h    at_24h
        | Should Be Equal    ${sites}[0][function]    app_remember_session
        """
        report = self.get_leaks(before, after, suppressions)
        sites = []
        for record in _unsuppressed(report):
            times = sorted(b.t_us for b in record.blocks)
            span_h = (times[-1] - times[0]) / 3.6e9 if times else 0.0
            top = record.frames[0] if record.frames else None
            sites.append({
                "site": f"{top.file}:{top.line}" if top is not None and top.file and top.line else (str(top) if top else "?"),
                "function": getattr(top, "function", None),
                "module": self.ctx.options.modules.name(record.blocks[0].module) if record.blocks else None,
                "kind": str(record.kind),
                "bytes": record.bytes,
                "node_bytes": record.node_bytes,
                "blocks": len(record.blocks),
                "first_s": times[0] / 1e6 if times else None,
                "last_s": times[-1] / 1e6 if times else None,
                "blocks_per_hour": (len(times) - 1) / span_h if span_h > 0 else 0.0,
            })
        return sorted(sites, key=lambda s: -s["bytes"])

    @keyword
    def leak_stack_should_contain(self, location: str, report=None) -> None:
        """Fails unless some leak's call stack has a frame matching ``location``: a function name, ``file:line``
        or a glob (``*app.c:*``). Uses the last report from `Get Leaks` unless one is given."""
        report = report if report is not None else self.last
        if report is None:
            raise ConfigError("no leak report yet", hint="call Get Leaks or Should Have No Leaks first")
        records = _unsuppressed(report)
        for record in records:
            for frame in record.frames:
                if _frame_matches(frame, location):
                    return
        stacks = "\n".join("  " + " <- ".join(str(f) for f in r.frames[:6]) for r in records) or "  (no leaks)"
        raise AssertionFailure(f"no leak call stack contains {location!r}; stacks were:\n{stacks}", hint="check the function or file:line")


def _unsuppressed(report) -> list:
    return [r for r in report.records if not getattr(r, "suppressed_by", None)]


def _frame_matches(frame, location: str) -> bool:
    function = getattr(frame, "function", None) or ""
    file = getattr(frame, "file", None) or ""
    line = getattr(frame, "line", None)
    site = f"{file}:{line}" if file and line else ""
    candidates = [function, site, file]
    if site:
        candidates.append(site.rsplit("/", 1)[-1])
        candidates.append(f"{file.rsplit('/', 1)[-1]}:{line}")
    return any(c and (c == location or fnmatch.fnmatchcase(c, location)) for c in candidates)
