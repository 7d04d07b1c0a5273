"""Leak analysis on snapshots: diff, growth, reachability, suppressions, loss records, ledger cross-check."""
