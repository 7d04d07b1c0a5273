"""The CI merge gate: budgets per module, leaks not suppressed, heap integrity, growth over a baseline.

``memhil gate RUN_DIR --budgets ci/budgets.toml`` reads each run's ``summary.json``
(:mod:`memhil.results`), checks it against the budget file (:mod:`.budgets`), and writes JUnit
(:mod:`.junit`) and Markdown (:mod:`.markdown`). Exit 0 pass, 1 violation, 2 bad input.
"""

from memhil.gate.budgets import Budgets, ModuleBudget
from memhil.gate.checks import Check, GateResult, run_gate
from memhil.gate.junit import junit_tree, write_junit
from memhil.gate.markdown import gate_markdown, write_markdown

__all__ = ["Budgets", "Check", "GateResult", "ModuleBudget", "gate_markdown", "junit_tree", "run_gate", "write_junit", "write_markdown"]
