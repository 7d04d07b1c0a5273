"""Live memory by allocation site: the ``get_mem_report`` of the timeline's LOG mode.

Sites are named, and blocks grouped, in :mod:`memhil.analysis.sites` (the one place for site names).
"""

from __future__ import annotations

from memhil.analysis.sites import UNKNOWN_SITE, MemReport, SiteResolver, SiteRow, site_report

__all__ = ["UNKNOWN_SITE", "MemReport", "SiteResolver", "SiteRow", "format_mem_report", "site_report"]


def format_mem_report(report: MemReport) -> str:
    """Text like the LOG mode's ``get_mem_report``: ``file  line:N  size:N``, largest first."""
    width = max((len(r.file or r.site) for r in report.rows), default=10) + 4
    lines = [f"total_size: {report.total_size}", "mem_report:"]
    for r in report.rows:
        where = r.file or r.site
        line = f"line:{r.line}" if r.line else "line:?"
        lines.append(f"    {where:<{width}}{line:<12}size:{r.size:<10} blocks:{r.blocks}" + (f"  {r.function}" if r.function else ""))
    return "\n".join(lines)
