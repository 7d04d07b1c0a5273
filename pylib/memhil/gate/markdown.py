"""A short Markdown summary of the gate, fit for a pull-request comment (GitHub / GitLab flavoured):
a verdict line, a table of the checks (failures first), and the leak stacks in ``<details>`` blocks."""

from __future__ import annotations

from pathlib import Path

from memhil.gate.checks import FAIL, PASS, SKIP, GateResult

_ICON = {PASS: "✅ pass", FAIL: "❌ fail", SKIP: "⚪ skip"}
_ORDER = {FAIL: 0, SKIP: 1, PASS: 2}
MAX_ROWS = 60


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def gate_markdown(result: GateResult, *, title: str = "memhil memory gate") -> str:
    fails, skips, passes = result.count(FAIL), result.count(SKIP), result.count(PASS)
    verdict = "❌ **failed**" if fails else "✅ **passed**"
    lines = [f"### {title}: {verdict}", "",
             f"{len(result.runs)} run(s), {len(result.checks)} checks: {fails} failed, {passes} passed, {skips} skipped.", "",
             "| Result | Run | Check | Detail |", "|---|---|---|---|"]
    ordered = sorted(result.checks, key=lambda c: _ORDER[c.status])
    for c in ordered[:MAX_ROWS]:
        lines.append(f"| {_ICON[c.status]} | {_cell(c.run)} | {_cell(c.name)} | {_cell(c.message)} |")
    if len(ordered) > MAX_ROWS:
        lines.append(f"| | | … | {len(ordered) - MAX_ROWS} more passing or skipped checks in the JUnit file |")
    for c in result.failures:
        if c.details:
            lines += ["", f"<details><summary>{_cell(c.run)}: {_cell(c.name)}</summary>", "", "```", c.details, "```", "", "</details>"]
    return "\n".join(lines) + "\n"


def write_markdown(result: GateResult, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(gate_markdown(result), encoding="utf-8")
    return p
