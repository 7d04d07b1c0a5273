"""The cap on runs kept under out/: earlier results move to OUTDIR/previous/<time>/, only the newest N stay."""

from __future__ import annotations

import re

from memhil.cli import main
from memhil.cli.keep import keep_previous


def _fake_run(outdir, tag):
    (outdir / "memhil" / "Suite").mkdir(parents=True, exist_ok=True)
    (outdir / "memhil" / "Suite" / "summary.json").write_text(tag)
    (outdir / "output.xml").write_text(tag)


def test_earlier_results_move_aside_and_only_the_newest_are_kept(tmp_path):
    out = tmp_path / "robot"
    kept = []
    for i in range(4):
        _fake_run(out, f"run {i}")
        moved, deleted = keep_previous(out, 2)
        kept.append(moved)
        assert not (out / "output.xml").exists() and not (out / "memhil").exists()  # the new run starts clean
    previous = sorted(p.name for p in (out / "previous").iterdir())
    assert previous == sorted(p.name for p in kept[-2:])
    assert [(out / "previous" / n / "output.xml").read_text() for n in previous] == ["run 2", "run 3"]


def test_keep_zero_removes_earlier_results(tmp_path):
    out = tmp_path / "soak"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / "timeline").mkdir()
    (out / "timeline" / "memlog_1-0.bin").write_bytes(b"x" * 100)
    moved, _ = keep_previous(out, 0)
    assert moved is None and list(out.iterdir()) == []


def test_a_directory_memhil_did_not_write_is_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert keep_previous(tmp_path, 1) == (None, [])
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_memhil_run_moves_the_previous_run_and_says_so(tmp_path, capsys):
    suite = tmp_path / "s.robot"
    suite.write_text("*** Test Cases ***\nT\n    No Operation\n")
    out = tmp_path / "out"
    for _ in range(3):
        assert main(["run", str(suite), "--outdir", str(out), "--keep-runs", "1"]) == 0
    text = capsys.readouterr().out
    assert len(re.findall(r"memhil run: earlier results moved to \S+/previous/\d{8}-\d{6}", text)) == 2
    assert "1 older run(s) deleted (--keep-runs 1)" in text
    assert len(list((out / "previous").iterdir())) == 1 and (out / "output.xml").is_file()


def test_negative_keep_runs_exits_2(tmp_path, capsys):
    suite = tmp_path / "s.robot"
    suite.write_text("*** Test Cases ***\nT\n    No Operation\n")
    assert main(["run", str(suite), "--outdir", str(tmp_path / "o"), "--keep-runs", "-1"]) == 2
    assert "--keep-runs must be 0 or more" in capsys.readouterr().err
