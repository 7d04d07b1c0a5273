import subprocess
import sys

from memhil.cli import main


def test_help_lists_subcommands(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "run" in out and "demo" in out


def test_run_refuses_missing_suite(capsys, tmp_path):
    assert main(["run", str(tmp_path / "nope.robot"), "--outdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Hint:" in err


def test_run_refuses_zero_processes(capsys, tmp_path):
    suite = tmp_path / "s.robot"
    suite.write_text("*** Test Cases ***\nT\n    No Operation\n")
    assert main(["run", str(suite), "--processes", "0", "--outdir", str(tmp_path)]) == 2


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "memhil.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("memhil ")


def test_capturing_commands_take_a_profile_and_refuse_an_unknown_one(capsys, tmp_path):
    from memhil.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["soak", "fw.elf", "--capture", "hooks", "--profile", "newlib"]).profile == "newlib"
    assert parser.parse_args(["run", "suite.robot", "--profile", "freertos"]).profile == "freertos"
    assert main(["soak", str(tmp_path / "fw.elf"), "--capture", "hooks", "--profile", "newlb", "--outdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown allocator profile 'newlb'" in err and "did you mean newlib" in err
    assert not (tmp_path / "summary.json").exists()
    suite = tmp_path / "s.robot"
    suite.write_text("*** Test Cases ***\nT\n    No Operation\n")
    assert main(["run", str(suite), "--profile", "nope", "--outdir", str(tmp_path)]) == 2
    assert "unknown allocator profile 'nope'" in capsys.readouterr().err


def test_demo_runs_the_suites_with_every_option_memhil_run_has():
    """`make demo` calls `memhil run`'s code with arguments the demo builds: they must carry every option run
    reads (a hand-built set missed --profile once and `make demo` failed with an AttributeError)."""
    from pathlib import Path

    from memhil.cli import build_parser
    from memhil.cli.demo_cmd import run_cmd_args

    demo = run_cmd_args(build_parser().parse_args(["demo", "--processes", "1"]), Path("/tmp/out"))
    run = build_parser().parse_args(["run", "robot-tests"])
    assert set(vars(run)) <= set(vars(demo))
    assert demo.processes == 1 and demo.outdir == "/tmp/out" and demo.command == "run"
