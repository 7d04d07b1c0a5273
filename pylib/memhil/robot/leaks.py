"""Keywords that find leaks between snapshots and check their call stacks."""

from __future__ import annotations

import fnmatch

from assertionengine import AssertionOperator, int_str_verify_assertion
from robotlibcore import keyword

from memhil.analysis.reachability import LeakKind
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
        if report.leaks:
            from memhil.report.memcheck import leak_failure_text

            raise AssertionFailure(leak_failure_text(report, before, after),
                                   hint="fix the leak, or add a suppression for a known allocation")

    @keyword
    def get_leak_count(self, before: str, after: str, assertion_operator: AssertionOperator | None = None,
                       assertion_expected: str | None = None, suppressions: str | None = None) -> int:
        """Returns the number of leak sites between the snapshots, optionally asserting it: distinct allocation sites
        (``file:line``) of unsuppressed leaks. One leaking line is one site, however many loss records it makes
        (a definitely lost block with the blocks it holds, several call stacks into the line); indirectly lost
        blocks count with the block that holds them.

        | Get Leak Count    before    after    ==    0    suppressions=ci/leaks.supp
        """
        count = len(self.get_leaks(before, after, suppressions).leak_sites)
        return int_str_verify_assertion(count, assertion_operator, assertion_expected, "Leak sites")

    @keyword
    def get_leak_sites(self, before: str, after: str, suppressions: str | None = None) -> list[dict]:
        """Returns one dictionary per leak site (see `Get Leak Count`) between the snapshots, largest first, with keys
        ``site`` (file:line), ``function``, ``module``, ``kind`` (the worst: definitely before indirectly, possibly,
        not freed), ``kinds``, ``bytes`` (requested bytes, as memcheck counts them, all its records; ``node_bytes``
        what the pool pays, as module statistics and ``summary.json`` count them), ``blocks``, ``records``, ``first_s`` and ``last_s``
        (virtual seconds the first and last leaked block were allocated) and ``blocks_per_hour`` (the rate
        over that span; 0 for a single block).

        | ${sites} =    Get Leak Sites    at_6h    at_24h
        | Should Be Equal    ${sites}[0][function]    app_remember_session
        """
        report = self.get_leaks(before, after, suppressions)
        wanted = set(report.leak_sites)
        by_site: dict[str, list] = {}
        for record in report.leaks:
            if record.site.name in wanted:
                by_site.setdefault(record.site.name, []).append(record)
        sites = []
        for name, records in by_site.items():
            blocks = [b for r in records for b in r.blocks]
            times = sorted(b.t_us for b in blocks if b.seq >= 0)
            span_h = (times[-1] - times[0]) / 3.6e9 if times else 0.0
            top = records[0].site
            sites.append({
                "site": name,
                "function": top.function,
                "module": self.ctx.options.modules.name(blocks[0].module) if blocks else None,
                "kind": str(min((r.kind for r in records), key=_KIND_ORDER.index)),
                "kinds": sorted({str(r.kind) for r in records}),
                "bytes": sum(r.bytes for r in records),
                "node_bytes": sum(r.node_bytes for r in records),
                "blocks": len(blocks),
                "records": len(records),
                "first_s": times[0] / 1e6 if times else None,
                "last_s": times[-1] / 1e6 if times else None,
                "blocks_per_hour": (len(times) - 1) / span_h if span_h > 0 else 0.0,
            })
        return sorted(sites, key=lambda s: (-s["bytes"], s["site"]))

    @keyword
    def get_snapshot_diff(self, before: str, after: str) -> dict:
        """Returns what changed between two snapshots: ``new_bytes``, ``freed_bytes`` and ``net_bytes`` (what the
        pool pays), ``new_blocks``, ``freed_blocks``, and ``sites``: the blocks allocated in between and still live,
        by allocation site (``site``, ``function``, ``size`` requested bytes, ``blocks``), largest first.

        | ${diff} =    Get Snapshot Diff    before    after
        | Should Be True    ${diff}[net_bytes] <= 0
        """
        from memhil.analysis.diff import diff_snapshots

        session = self.ctx.current()
        d = diff_snapshots(session.snapshot(before), session.snapshot(after), session.symbolizer)
        return {"new_bytes": d.new_bytes, "freed_bytes": d.freed_bytes, "net_bytes": d.net_bytes,
                "new_blocks": len(d.new), "freed_blocks": len(d.freed),
                "sites": [{"site": r.site, "function": r.function, "size": r.size, "blocks": r.blocks} for r in d.by_site.rows]}

    @keyword
    def get_growing_sites(self, *snapshots: str) -> list[dict]:
        """Returns the allocation sites whose live memory grows across the named snapshots, fastest first: one
        dictionary per site with ``site``, ``function``, ``growing`` (``bytes``, ``blocks`` or both), ``bytes`` and
        ``blocks`` (requested bytes and live blocks at each snapshot), ``bytes_per_hour`` and ``blocks_per_hour``.

        The test is memhil's growth test (per site live requested bytes and block count; the first 20 % of the
        snapshots are warm-up; a one-sided Mann-Kendall trend at alpha 0.01 over at least 6 snapshots after it;
        the last value above the warm-up's highest), so take at least 8 snapshots over time.

        | FOR    ${i}    IN RANGE    10
        |     Run For    1h
        |     Take Heap Snapshot    h${i}
        | END
        | ${grow} =    Get Growing Sites    h0    h1    h2    h3    h4    h5    h6    h7    h8    h9
        """
        from memhil.analysis.growth import find_growth

        session = self.ctx.current()
        rows = find_growth([session.snapshot(name) for name in snapshots], session.symbolizer)
        return [{"site": r.site, "function": r.function, "growing": r.growing, "bytes": r.bytes, "blocks": r.blocks,
                 "bytes_per_hour": r.bytes_per_hour, "blocks_per_hour": r.blocks_per_hour} for r in rows]

    @keyword
    def should_not_grow(self, *snapshots: str) -> None:
        """Fails, naming each growing site and its rate, if any allocation site grows across the named snapshots
        (see `Get Growing Sites`)."""
        rows = self.get_growing_sites(*snapshots)
        if rows:
            raise AssertionFailure(
                f"{len(rows)} growing site(s) across {len(snapshots)} snapshots: "
                + "; ".join(f"{r['site']} ({r['function']}): {r['growing']}, {r['blocks_per_hour']:.1f} blocks "
                            f"and {r['bytes_per_hour']:.0f} B per virtual hour" for r in rows),
                hint="look at the site's call stacks (Get Leak Sites between the first and last snapshot)",
            )

    @keyword
    def leak_stack_should_contain(self, location: str, report=None) -> None:
        """Fails unless some leak's call stack has a frame matching ``location``: a function name, ``file:line``
        or a glob (``*app.c:*``). Uses the last report from `Get Leaks` unless one is given."""
        report = report if report is not None else self.last
        if report is None:
            raise ConfigError("no leak report yet", hint="call Get Leaks or Should Have No Leaks first")
        records = report.leaks
        for record in records:
            for frame in record.frames:
                if _frame_matches(frame, location):
                    return
        stacks = "\n".join("  " + " <- ".join(str(f) for f in r.frames[:6]) for r in records) or "  (no leaks)"
        raise AssertionFailure(f"no leak call stack contains {location!r}; stacks were:\n{stacks}", hint="check the function or file:line")


_KIND_ORDER = [LeakKind.DEFINITE, LeakKind.POSSIBLE, LeakKind.UNFREED, LeakKind.INDIRECT, LeakKind.REACHABLE]


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
