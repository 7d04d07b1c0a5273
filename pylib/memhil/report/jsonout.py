"""JSON of everything a run found: heap walk, module figures, leaks, growth, cross-check, site report."""

from __future__ import annotations

import json
from typing import Any, Iterable

from memhil.heap.model import LiveBlock, Snapshot

FORMAT_VERSION = 1


def walk_dict(walk: Any, *, nodes: bool = True) -> dict:
    frag = walk.fragmentation
    out = {
        "pool": walk.pool,
        "pool_size": walk.pool_size,
        "head_size": walk.head_size,
        "ok": walk.ok,
        "errors": [
            {"address": e.address, "kind": e.kind, "detail": e.detail, "prev": e.prev, "next": e.next, "dump": e.dump.hex()}
            for e in walk.errors
        ],
        "totals": {
            "used": walk.used, "free": walk.free, "stat_used": walk.stat_used, "peak": walk.stat_peak,
            "used_nodes": len(walk.used_nodes), "free_nodes": len(walk.free_nodes),
        },
        "fragmentation": {
            "free_bytes": frag.free_bytes, "free_blocks": frag.free_blocks, "largest_free": frag.largest_free,
            "ratio": round(frag.ratio, 6), "histogram_log2": {str(k): v for k, v in frag.histogram.items()},
        },
        "modules": {str(m): b for m, b in walk.modules.items()},
    }
    if nodes:
        out["nodes"] = [
            {"address": n.address, "ptr": n.ptr, "size": n.size, "used": n.used, "aligned": n.aligned,
             "module": n.module, "task": n.task, "lrs": list(n.lrs)}
            for n in walk.nodes
        ]
    return out


def block_dict(b: LiveBlock) -> dict:
    return {"ptr": b.ptr, "size": b.size, "node_size": b.node_size, "module": b.module, "task": b.task,
            "seq": b.seq, "t_us": b.t_us, "stack": list(b.stack), "lrs": list(b.lrs), "tracked": b.tracked}


def snapshot_dict(snap: Snapshot) -> dict:
    return {"name": snap.name, "t_us": snap.t_us, "source": snap.source, "total": snap.total,
            "modules": {str(m): v for m, v in sorted(snap.modules.items())},
            "blocks": [block_dict(b) for b in sorted(snap.blocks.values(), key=lambda b: b.ptr)]}


def ledger_dict(ledger: Any) -> dict:
    def stat(s: Any) -> dict:
        return {"current": s.current, "peak": s.peak, "blocks": s.blocks, "allocs": s.allocs, "frees": s.frees}

    return {
        "total": stat(ledger.total),
        "modules": {str(m): stat(s) for m, s in sorted(ledger.modules.items())},
        "tasks": {str(t): stat(s) for t, s in sorted(ledger.tasks.items())},
        "events": ledger.events,
        "anomalies": [{"kind": a.kind, "seq": a.seq, "ptr": a.ptr, "detail": a.detail} for a in ledger.anomalies],
    }


def to_json(
    *,
    walk: Any = None,
    snapshots: Iterable[Snapshot] = (),
    ledger: Any = None,
    leaks: Any = None,
    growth: Iterable[Any] = (),
    crosscheck: Any = None,
    mem_report: Any = None,
    indent: int | None = 2,
) -> str:
    """One JSON document; sections given as None/empty are left out. Addresses are plain integers."""
    doc: dict[str, Any] = {"memhil_report": FORMAT_VERSION}
    if walk is not None:
        doc["walk"] = walk_dict(walk)
    snaps = list(snapshots)
    if snaps:
        doc["snapshots"] = [snapshot_dict(s) for s in snaps]
    if ledger is not None:
        doc["ledger"] = ledger_dict(ledger)
    if leaks is not None:
        doc["leaks"] = leaks.as_dict()
    rows = list(growth)
    if rows:
        doc["growth"] = [r.as_dict() for r in rows]
    if crosscheck is not None:
        doc["crosscheck"] = crosscheck.as_dict()
    if mem_report is not None:
        doc["mem_report"] = mem_report.as_dict()
    return json.dumps(doc, indent=indent, sort_keys=False)
