"""Stack high-water budgets in the gate: [stacks] name = size."""

from __future__ import annotations

import pytest

from gate_rundirs import BUDGETS, summary, write_run
from memhil.errors import ConfigError
from memhil.gate.budgets import Budgets
from memhil.cli import main

STACKS = {"main": {"base": "0x2002e000", "size": 8192, "used": 3000, "high_water_addr": "0x2002f448", "painted": True, "note": None}}


def run_gate(tmp_path, capsys, data, budget_text):
    budgets = tmp_path / "b.toml"
    budgets.write_text(budget_text)
    write_run(tmp_path / "runs" / "Soak", data)
    md = tmp_path / "gate.md"
    code = main(["gate", str(tmp_path / "runs"), "--budgets", str(budgets), "--markdown", str(md)])
    return code, capsys.readouterr().out + md.read_text()


def test_stack_under_its_budget_passes(tmp_path, capsys):
    code, out = run_gate(tmp_path, capsys, summary(stacks=STACKS), BUDGETS + '\n[stacks]\nmain = "4 KiB"\n')
    assert code == 0 and "stack main" in out


def test_stack_over_its_budget_fails(tmp_path, capsys):
    code, out = run_gate(tmp_path, capsys, summary(stacks=STACKS), BUDGETS + '\n[stacks]\nmain = "2 KiB"\n')
    assert code == 1
    assert "high-water mark 2.9 KiB" in out


def test_unpainted_or_unknown_stack_is_skipped_visibly(tmp_path, capsys):
    unpainted = {"main": dict(STACKS["main"], used=None, painted=False, note="the stack bottom is not the paint pattern")}
    code, out = run_gate(tmp_path, capsys, summary(stacks=unpainted), BUDGETS + '\n[stacks]\nmain = "2 KiB"\nirq = "1 KiB"\n')
    assert code == 0
    assert "not measurable" in out and "no stack named 'irq'" in out


def test_bad_stack_budget_names_the_line():
    with pytest.raises(ConfigError) as err:
        Budgets.parse('[stacks]\nmain = "lots"\n', "b.toml")
    assert "b.toml:2" in str(err.value)
