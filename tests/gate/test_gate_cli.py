"""memhil gate on hand-made run directories: pass, each kind of violation, baseline, bad input."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gate_rundirs import BUDGETS, LEAK_SITE, leaky, summary, write_run
from memhil.cli import main


@pytest.fixture
def budgets(tmp_path: Path) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text(BUDGETS)
    return path


def gate(capsys, *args) -> tuple[int, str, str]:
    code = main(["gate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_clean_run_passes(tmp_path, budgets, capsys):
    run = write_run(tmp_path / "runs" / "Boot", summary())
    code, out, _ = gate(capsys, run, "--budgets", budgets)
    assert code == 0
    assert "memhil gate: passed: 1 run(s)" in out
    assert "0 failed" in out


def test_module_current_over_budget_fails(tmp_path, budgets, capsys):
    data = summary()
    data["modules"]["1"]["current"] = 9000  # NET budget 8 KiB = 8192
    run = write_run(tmp_path / "r", data)
    code, out, _ = gate(capsys, run, "--budgets", budgets)
    assert code == 1
    assert "module NET current: current bytes 9000" in out
    assert "> budget 8192" in out


def test_module_peak_over_default_budget_fails(tmp_path, budgets, capsys):
    data = summary()
    data["modules"]["0"]["peak"] = 100 * 1024  # defaults peak 96 KiB
    code, out, _ = gate(capsys, write_run(tmp_path / "r", data), "--budgets", budgets)
    assert code == 1
    assert "module SYS peak" in out


def test_leak_fails_with_call_stack(tmp_path, budgets, capsys):
    code, out, _ = gate(capsys, write_run(tmp_path / "r", leaky()), "--budgets", budgets)
    assert code == 1
    assert "apps/leak_demo/app.c:42" in out
    assert "#1 0x08001301 in app_task (apps/leak_demo/app.c:77)" in out
    # the module's leak rate budget (defaults leak_per_hour = 0) fails too
    assert "module APP leak_per_hour" in out


def test_suppressed_leak_passes(tmp_path, budgets, capsys):
    supp = tmp_path / "leaks.supp"
    supp.write_text("{\n   demo-leak\n   memhil:Leak\n   fun:leak_tick\n   ...\n}\n")
    code, out, _ = gate(capsys, write_run(tmp_path / "r", leaky()), "--budgets", budgets, "--suppressions", supp)
    assert code == 0, out


def test_suppression_of_another_function_does_not_hide_the_leak(tmp_path, budgets, capsys):
    supp = tmp_path / "leaks.supp"
    supp.write_text("{\n   other\n   fun:shell_*\n}\n")
    code, out, _ = gate(capsys, write_run(tmp_path / "r", leaky()), "--budgets", budgets, "--suppressions", supp)
    assert code == 1
    assert "leak_tick" in out


def test_site_with_too_few_rises_is_not_a_leak(tmp_path, budgets, capsys):
    data = leaky()
    data["leak_sites"][0]["rises"] = 1  # default min_rises = 2
    code, out, _ = gate(capsys, write_run(tmp_path / "r", data), "--budgets", budgets)
    assert code == 0, out


def _leak_check(capsys, tmp_path, budgets, name: str, data: dict) -> tuple[str, str]:
    """(status, message) of the run's leaks check, from the JUnit file."""
    xml = tmp_path / f"{name}.xml"
    gate(capsys, write_run(tmp_path / name, data), "--budgets", budgets, "--junit", xml)
    case = next(c for c in ET.parse(xml).getroot().iter("testcase") if c.get("name") == "leaks")
    if case.find("skipped") is not None:
        return "skip", case.find("skipped").get("message")
    if case.find("failure") is not None:
        return "fail", case.find("failure").get("message")
    return "pass", case.find("system-out").text


def test_too_few_samples_for_the_growth_test_skip_the_leak_check(tmp_path, budgets, capsys):
    growth = {"warmup_fraction": 0.2, "min_samples": 6, "alpha": 0.01, "samples_used": 4}
    short = summary(samples={"count": 5, "times_s": [0.1 * i for i in range(1, 6)]}, growth=growth)
    assert _leak_check(capsys, tmp_path, budgets, "short", short) == (
        "skip", "only 5 sample(s), 4 after the warm-up: the growth test needs 6 (run longer with Run For)")
    enough = summary(growth={**growth, "samples_used": 6})
    assert _leak_check(capsys, tmp_path, budgets, "enough", enough) == ("pass", "no growing leak site")
    older = summary(samples={"count": 2, "times_s": [0.1, 0.2]})  # no "growth": the sample count decides
    assert _leak_check(capsys, tmp_path, budgets, "older", older)[1].startswith("only 2 sample(s): growth needs at least 3")


def test_broken_heap_fails(tmp_path, budgets, capsys):
    heap = {"checked": True, "ok": False, "errors": ["broken node head 0x20001000 (magic): bad magic"], "nodes": 3}
    code, out, _ = gate(capsys, write_run(tmp_path / "r", summary(heap=heap)), "--budgets", budgets)
    assert code == 1
    assert "heap integrity: broken node head 0x20001000" in out


def test_unwalked_heap_is_skipped_not_failed(tmp_path, budgets, capsys):
    heap = {"checked": False, "reason": "no DWARF"}
    code, out, _ = gate(capsys, write_run(tmp_path / "r", summary(heap=heap)), "--budgets", budgets)
    assert code == 0
    assert "1 skipped" in out


def test_many_runs_under_one_directory(tmp_path, budgets, capsys):
    root = tmp_path / "memhil"
    write_run(root / "Boot", summary())
    write_run(root / "Leak_Demo", leaky())
    code, out, _ = gate(capsys, root, "--budgets", budgets)
    assert code == 1
    assert "2 run(s)" in out
    assert "FAIL Leak_Demo: leaks" in out
    assert "FAIL Boot" not in out


def test_baseline_growth_beyond_tolerance_fails(tmp_path, budgets, capsys):
    base = write_run(tmp_path / "base" / "Suite", summary())
    now = summary()
    now["modules"]["1"]["current"] = 4096 + 400  # +9.8% > 5%
    now["modules"]["3"]["peak"] = 800 + 20  # +2.5%: within tolerance
    run = write_run(tmp_path / "now" / "Suite", now)
    code, out, _ = gate(capsys, tmp_path / "now", "--budgets", budgets, "--baseline", tmp_path / "base")
    assert code == 1
    assert "baseline module NET current: current 4496 vs baseline 4096: +400 B (+9.8%)" in out
    assert "baseline module APP peak" not in out
    code, out, _ = gate(capsys, run, "--budgets", budgets, "--baseline", base)
    assert code == 1


def test_baseline_tolerance_in_bytes(tmp_path, capsys):
    budgets = tmp_path / "b.toml"
    budgets.write_text('[baseline]\ntolerance_bytes = "1 KiB"\n[leaks]\nfail = true\n')
    base = write_run(tmp_path / "base", summary())
    now = summary()
    now["modules"]["1"]["current"] = 4096 + 1000
    code, out, _ = gate(capsys, write_run(tmp_path / "now", now), "--budgets", budgets, "--baseline", base)
    assert code == 0, out
    now["modules"]["1"]["current"] = 4096 + 1100
    code, out, _ = gate(capsys, write_run(tmp_path / "now", now), "--budgets", budgets, "--baseline", base)
    assert code == 1


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ('[modules.NET]\ncurrent = "8 KiB"\npeak = "12 KiBB"\n', 3, "unknown size unit"),
        ("[defaults]\ncurrent = 1\n\n[modules.NET]\ncurent = 5\n", 5, "unknown key 'curent'"),
        ("[defaults]\ncurrent = \n", 2, "invalid TOML"),
        ("[baseline]\ntolerance_pct = -3\n", 2, "tolerance_pct must be a number"),
        ("[leaks]\nmin_rises = 0\n", 2, "min_rises must be an integer >= 1"),
        ("[heap]\nintegrity = 1\n", 2, "integrity must be true or false"),
        ("[limits]\nx = 1\n", 1, "unknown section"),
        ("\n\n[modules.NETT]\ncurrent = 1\n", 3, "module 'NETT' is not a module of any run"),
    ],
)
def test_bad_budgets_exit_2_with_line(tmp_path, capsys, text, line, what):
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(text)
    code, _, err = gate(capsys, write_run(tmp_path / "r", summary()), "--budgets", budgets)
    assert code == 2
    assert f"{budgets}:{line}" in err
    assert what in err


def test_unreadable_budgets_exit_2(tmp_path, capsys):
    code, _, err = gate(capsys, write_run(tmp_path / "r", summary()), "--budgets", tmp_path / "nope.toml")
    assert code == 2
    assert "cannot read budget file" in err


def test_bad_suppressions_exit_2_with_line(tmp_path, budgets, capsys):
    supp = tmp_path / "bad.supp"
    supp.write_text("{\n   name\n   fun:x\n")
    code, _, err = gate(capsys, write_run(tmp_path / "r", summary()), "--budgets", budgets, "--suppressions", supp)
    assert code == 2
    assert f"{supp}:1" in err
    assert "not closed" in err


def test_missing_results_exit_2_naming_them(tmp_path, budgets, capsys):
    old = summary(version=1)
    del old["leak_sites"]
    del old["heap"]
    old["modules"]["1"]["peak"] = None
    code, _, err = gate(capsys, write_run(tmp_path / "r", old), "--budgets", budgets)
    assert code == 2
    assert "results version 2" in err
    assert "leak sites" in err
    assert "heap integrity" in err
    assert "peak bytes of module NET" in err


def test_capture_none_runs_are_skipped_and_alone_exit_2(tmp_path, budgets, capsys):
    none = summary(capture="none", leak_sites=None, leak_sites_reason="capture mode 'none' sees no allocations",
                   heap={"checked": False, "reason": "no DWARF"})
    for entry in none["modules"].values():
        entry["current"] = entry["peak"] = None
    write_run(tmp_path / "all" / "Boot", none)
    code, _, err = gate(capsys, tmp_path / "all", "--budgets", budgets)
    assert code == 2
    assert "no run recorded memory results" in err and "capture 'none'" in err
    write_run(tmp_path / "all" / "Leak", leaky())
    code, out, _ = gate(capsys, tmp_path / "all", "--budgets", budgets)
    assert code == 1
    assert "FAIL Boot" not in out and "FAIL Leak: leaks" in out


def test_snapshot_capture_skips_peaks(tmp_path, budgets, capsys):
    data = summary(capture="snapshot")
    for entry in data["modules"].values():
        entry["peak"] = None
    code, out, _ = gate(capsys, write_run(tmp_path / "r", data), "--budgets", budgets)
    assert code == 0, out
    assert "3 skipped" in out  # SYS, NET, APP peaks


@pytest.mark.parametrize("capture", ["hooks", "breakpoints", "trace"])
def test_a_capture_that_sees_every_call_must_record_peaks(tmp_path, budgets, capsys, capture):
    data = summary(capture=capture)
    data["modules"]["1"]["peak"] = None
    code, _, err = gate(capsys, write_run(tmp_path / "r", data), "--budgets", budgets)
    assert code == 2
    assert f"peak bytes of module NET (capture {capture!r} does not record them" in err


def test_run_dir_without_results_exit_2(tmp_path, budgets, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = gate(capsys, tmp_path / "empty", "--budgets", budgets)
    assert code == 2
    assert "no summary.json under" in err
    code, _, err = gate(capsys, tmp_path / "absent", "--budgets", budgets)
    assert code == 2
    assert "does not exist" in err


def test_corrupt_summary_exit_2_with_line(tmp_path, budgets, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / "summary.json").write_text('{\n  "version": 2,\n  "modules": {\n')
    code, _, err = gate(capsys, run, "--budgets", budgets)
    assert code == 2
    assert "summary.json:4: not valid JSON" in err


def test_junit_has_one_case_per_check(tmp_path, budgets, capsys):
    root = tmp_path / "memhil"
    write_run(root / "Boot", summary())
    write_run(root / "Leak", leaky())
    xml = tmp_path / "out" / "gate.xml"
    code, out, _ = gate(capsys, root, "--budgets", budgets, "--junit", xml)
    assert code == 1
    tree = ET.parse(xml).getroot()
    cases = tree.findall(".//testcase")
    total = int(out.split(" checks")[0].rsplit(", ", 1)[1])
    assert len(cases) == total == int(tree.get("tests"))
    names = [(c.get("classname"), c.get("name")) for c in cases]
    assert len(set(names)) == len(names)
    failed = [c for c in cases if c.find("failure") is not None]
    assert int(tree.get("failures")) == len(failed) >= 2
    leak = next(c for c in failed if c.get("name") == "leaks")
    assert "apps/leak_demo/app.c:42" in leak.find("failure").text
    assert {s.get("name") for s in tree.findall("testsuite")} == {"memhil gate: Boot", "memhil gate: Leak"}


def test_markdown_table_and_stack_details(tmp_path, budgets, capsys):
    md = tmp_path / "gate.md"
    code, _, _ = gate(capsys, write_run(tmp_path / "r", leaky()), "--budgets", budgets, "--markdown", md)
    assert code == 1
    text = md.read_text()
    assert text.startswith("### memhil memory gate: ❌ **failed**")
    assert "| Result | Run | Check | Detail |" in text
    rows = [l for l in text.splitlines() if l.startswith("| ❌") or l.startswith("| ✅") or l.startswith("| ⚪")]
    assert rows and rows[0].startswith("| ❌")  # failures first
    assert "<details><summary>r: leaks</summary>" in text
    assert "in leak_tick (apps/leak_demo/app.c:42)" in text


def test_markdown_passed_verdict(tmp_path, budgets, capsys):
    md = tmp_path / "gate.md"
    gate(capsys, write_run(tmp_path / "r", summary()), "--budgets", budgets, "--markdown", md)
    assert "✅ **passed**" in md.read_text()
    assert "<details>" not in md.read_text()


def test_shipped_budgets_and_suppressions_parse():
    from memhil.analysis.suppress import Suppressions
    from memhil.gate import Budgets

    root = Path(__file__).resolve().parents[2]
    budgets = Budgets.load(root / "ci" / "budgets.toml")
    assert budgets.for_module("NET").current is not None
    supp = Suppressions.load(root / "ci" / "leaks.supp")
    site = copy.deepcopy(LEAK_SITE)
    from memhil.gate.checks import _suppressed_by

    assert _suppressed_by(site, supp) is None  # the planted leak is never suppressed
    assert json.dumps(summary())  # fixture sanity


def _ci(name: str) -> tuple[str, dict]:
    import yaml

    text = (Path(__file__).resolve().parents[2] / "ci" / name).read_text()
    return text, yaml.safe_load(text)


def _commands(job_steps) -> str:
    return "\n".join(str(step.get("run", "")) if isinstance(step, dict) else str(step) for step in job_steps)


def test_github_workflow_runs_shards_as_a_matrix_then_merges_and_gates():
    _, wf = _ci("github-actions.yml")
    suites, gate = wf["jobs"]["suites"], wf["jobs"]["gate"]
    shards = suites["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1)) and len(shards) > 1 and suites["strategy"]["fail-fast"] is False
    run = _commands(suites["steps"])
    assert "make firmware" in run
    # N is the matrix's own job count: the shard count is written once, in the matrix list
    assert "memhil run robot-tests --processes 2 --shard ${{ matrix.shard }}/${{ strategy.job-total }} --outdir out/robot" in run
    upload = next(s for s in suites["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["name"] == "memhil-shard-${{ matrix.shard }}"
    assert gate["needs"] == "suites" and gate["if"] == "always()"
    download = next(s for s in gate["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["pattern"] == "memhil-shard-*" and download["with"]["path"] == "shards"
    cmds = _commands(gate["steps"])
    assert "rebot --merge --outputdir out/robot --output output.xml --xunit junit.xml shards/*/output.xml" in cmds
    assert 'for d in shards/*/memhil; do cp -r "$d"/. out/robot/memhil/; done' in cmds
    assert "memhil gate out/robot/memhil --budgets ci/budgets.toml --suppressions ci/leaks.supp" in cmds
    assert "--junit out/gate.xml --markdown out/gate.md" in cmds
    kept = next(s for s in gate["steps"] if s.get("name") == "Keep reports, logs and plots")["with"]["path"]
    for artifact in ("out/robot/log.html", "out/robot/memhil/", "out/gate.md", "out/memory-report.html"):
        assert artifact in kept


def test_gitlab_pipeline_runs_parallel_shards_then_merges_and_gates():
    _, pipeline = _ci("gitlab-ci.yml")
    suites, gate = pipeline["memhil-suites"], pipeline["memhil-memory-gate"]
    assert suites["parallel"] == 3 and suites["stage"] == "test" and gate["stage"] == "gate"
    assert "make firmware JOBS=2" in _commands(suites["before_script"])
    assert ('memhil run robot-tests --processes 2 --shard "$CI_NODE_INDEX/$CI_NODE_TOTAL" --outdir "shards/shard-$CI_NODE_INDEX"'
            in _commands(suites["script"]))
    assert suites["artifacts"]["when"] == "always" and suites["artifacts"]["paths"] == ["shards/"]
    assert gate["needs"] == [{"job": "memhil-suites", "artifacts": True}]
    cmds = _commands(gate["script"])
    assert "rebot --merge --outputdir out/robot --output output.xml --xunit junit.xml shards/*/output.xml" in cmds
    assert "memhil gate out/robot/memhil --budgets ci/budgets.toml --suppressions ci/leaks.supp" in cmds
    assert gate["artifacts"]["when"] == "always" and "out/robot/memhil/" in gate["artifacts"]["paths"]
    assert "out/gate.xml" in gate["artifacts"]["reports"]["junit"]
