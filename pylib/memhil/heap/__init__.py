"""Heap state on the host: the ledger of live blocks built from events, and snapshots."""

from memhil.heap.model import LiveBlock, Snapshot, UsageStat
from memhil.heap.ledger import Ledger

__all__ = ["Ledger", "LiveBlock", "Snapshot", "UsageStat"]
