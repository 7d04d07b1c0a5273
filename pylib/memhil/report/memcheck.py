"""Valgrind memcheck-style leak text: loss records with ``at``/``by`` frames and a LEAK SUMMARY."""

from __future__ import annotations

from typing import Sequence

from memhil.analysis.leaks import LeakReport, LossRecord
from memhil.analysis.reachability import LeakKind

_SUMMARY_LABELS = (
    (LeakKind.DEFINITE.value, "definitely lost"),
    (LeakKind.INDIRECT.value, "indirectly lost"),
    (LeakKind.POSSIBLE.value, "possibly lost"),
    (LeakKind.REACHABLE.value, "still reachable"),
    ("suppressed", "suppressed"),
)


def _frame_text(frame) -> str:
    where = frame.function or "???"
    if frame.file and frame.line:
        where += f" ({frame.file}:{frame.line})"
    return f"0x{frame.address:08X}: {where}"


def format_loss_records(records: Sequence[LossRecord], *, prefix: str = "") -> str:
    """One block per record: ``N bytes in M blocks are definitely lost in loss record i of n`` and its frames."""
    out: list[str] = []
    n = len(records)
    for i, r in enumerate(records, 1):
        size = f"{r.total} ({r.bytes} direct, {r.indirect_bytes} indirect)" if r.indirect_bytes else f"{r.bytes}"
        verb = "are not freed" if r.kind is LeakKind.UNFREED else f"are {r.kind.value}"
        out.append(f"{prefix}{size} bytes in {r.count} blocks {verb} in loss record {i} of {n}")
        if r.frames:
            for k, f in enumerate(r.frames):
                out.append(f"{prefix}   {'at' if k == 0 else 'by'} {_frame_text(f)}")
        else:
            out.append(f"{prefix}   (no call stack recorded)")
        if r.suppressed_by:
            out.append(f"{prefix}   suppressed by: {r.suppressed_by}")
        out.append(prefix.rstrip())
    return "\n".join(out)


def leak_failure_text(report: LeakReport, before: str | None = None, after: str | None = None) -> str:
    """Why a no-leak check failed (Robot's ``Should Have No Leaks``, pytest's ``assert_no_leaks``): the leak
    sites, requested and node bytes, then the unsuppressed loss records with their stacks."""
    records = report.leaks
    sites = report.leak_sites
    before = report.before if before is None else before
    after = report.after if after is None else after
    return (f"{len(sites)} leak site(s) ({', '.join(sites)}), {sum(r.bytes for r in records):,} requested bytes "
            f"({sum(r.node_bytes for r in records):,} node bytes, as module statistics count them) in "
            f"{len(records)} loss record(s) between {before!r} and {after!r}:\n" + format_loss_records(records))


def memcheck_text(report: LeakReport, *, prefix: str = "", show_reachable: bool = False) -> str:
    """The whole report: unsuppressed loss records, then LEAK SUMMARY (with a ``not freed`` line when no
    reachability scan classified the blocks)."""
    records = list(report.leaks) + ([r for r in report.reachable if not r.suppressed_by] if show_reachable else [])
    records.sort(key=lambda r: (r.total, r.count))
    parts: list[str] = []
    if records:
        parts.append(format_loss_records(records, prefix=prefix))
    summary = report.summary()
    lines = [f"{prefix}LEAK SUMMARY:"]
    for key, label in _SUMMARY_LABELS:
        b, n = summary[key]
        lines.append(f"{prefix}   {label:>15}: {b:,} bytes in {n:,} blocks")
    b, n = summary[LeakKind.UNFREED.value]
    if n or not report.checked_reachability:
        lines.insert(1, f"{prefix}   {'not freed':>15}: {b:,} bytes in {n:,} blocks")
    if not report.checked_reachability:
        lines.append(f"{prefix}(no reachability scan: blocks allocated after {report.before or 'start'!r} and live at {report.after!r} are 'not freed')")
    parts.append("\n".join(lines))
    return "\n".join(parts) + "\n"
