"""Every subcommand: an output path that cannot be written is a usage error (exit 2, the path and the
reason, no traceback), checked before any work; 1 stays reserved for memory verdicts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from memhil.cli import main

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "gate"))
from gate_rundirs import summary  # noqa: E402


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "runs" / "r1"
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps(summary()))
    return d


@pytest.fixture
def budgets(tmp_path):
    path = tmp_path / "budgets.toml"
    path.write_text("[modules.NET]\ncurrent = 8192\n")
    return path


def _bad_paths(tmp_path):
    afile = tmp_path / "plain-file"
    afile.write_text("x")
    return {
        # mkdir fails there even for root (a virtual file system)
        "missing-dir": (__import__("pathlib").Path("/proc/memhil-no-such-dir/out.x"), "cannot create directory"),
        "under-a-file": (afile / "out.x", "is a file, not a directory"),
        "a-directory": (tmp_path, "Is a directory"),
    }


@pytest.mark.parametrize("kind", ["missing-dir", "under-a-file", "a-directory"])
def test_gate_junit_bad_path_exits_2_not_1(kind, tmp_path, run_dir, budgets, capsys):
    bad, reason = _bad_paths(tmp_path)[kind]
    assert main(["gate", str(run_dir), "--budgets", str(budgets), "--junit", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and reason in err and "Traceback" not in err


def test_gate_markdown_bad_path_exits_2(tmp_path, run_dir, budgets, capsys):
    bad = tmp_path
    assert main(["gate", str(run_dir), "--budgets", str(budgets), "--markdown", str(bad)]) == 2
    assert f"cannot write the Markdown summary {bad}" in capsys.readouterr().err


def test_gate_failing_verdict_is_still_1(tmp_path, run_dir, capsys):
    tight = tmp_path / "tight.toml"
    tight.write_text("[modules.NET]\ncurrent = 16\n")
    assert main(["gate", str(run_dir), "--budgets", str(tight), "--junit", str(tmp_path / "j.xml")]) == 1
    assert (tmp_path / "j.xml").is_file()


@pytest.mark.parametrize("kind", ["missing-dir", "under-a-file", "a-directory"])
def test_report_output_bad_path_exits_2(kind, tmp_path, run_dir, capsys):
    bad, reason = _bad_paths(tmp_path)[kind]
    assert main(["report", str(run_dir), "--format", "html", "-o", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the report {bad}" in err and reason in err


@pytest.mark.parametrize("option", ["--csv", "--massif", "--png", "--html"])
def test_timeline_outputs_checked_before_reading(option, tmp_path, capsys):
    bad = tmp_path
    # the log directory does not exist either: the output is checked first, so that is what is reported
    assert main(["timeline", str(tmp_path / "logs"), option, str(bad)]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Is a directory" in err


@pytest.mark.parametrize("option", ["--png", "--html"])
def test_map_outputs_checked(option, tmp_path, firmware, capsys):
    bad = "/proc/memhil-no-such-dir/map.x"
    assert main(["map", str(firmware("leak_demo")), option, bad]) == 2
    assert f"{bad}: cannot create directory" in capsys.readouterr().err


def test_missing_parent_directories_are_created(tmp_path, run_dir, capsys):
    out = tmp_path / "new" / "dir" / "report.html"
    assert main(["report", str(run_dir), "--format", "html", "-o", str(out)]) == 0
    assert out.read_text().startswith("<!")


def test_a_failed_check_leaves_no_empty_file(tmp_path, capsys):
    out = tmp_path / "t.csv"
    assert main(["timeline", str(tmp_path / "no-logs"), "--csv", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err and not out.exists()


def test_soak_outdir_under_a_file_exits_2_before_starting(tmp_path, firmware, capsys):
    afile = tmp_path / "f"
    afile.write_text("x")
    assert main(["soak", str(firmware("leak_demo")), "--duration", "1s", "--outdir", str(afile / "run")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the run directory {afile / 'run'}" in err and "is a file" in err


def test_run_outdir_that_is_a_file_exits_2(tmp_path, capsys):
    suite = tmp_path / "s.robot"
    suite.write_text("*** Test Cases ***\nT\n    No Operation\n")
    assert main(["run", str(suite), "--outdir", str(suite)]) == 2
    assert "Not a directory" in capsys.readouterr().err


def test_other_os_errors_exit_2_without_traceback(tmp_path):
    # a budget file that is a directory: read fails with an OSError somewhere below the command
    run = tmp_path / "r"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps(summary()))
    result = subprocess.run([sys.executable, "-m", "memhil.cli", "gate", str(run), "--budgets", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and str(tmp_path) in result.stderr


def test_bench_json_checked_before_measuring(tmp_path, capsys):
    # no firmware there either: the results file is checked first, so that is what is reported
    bad = tmp_path
    assert main(["bench", "--json", str(bad), "--firmware-dir", str(tmp_path / "no-fw"), "--only", "elf_load"]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the results file {bad}" in err and "Is a directory" in err and "no-fw" not in err
