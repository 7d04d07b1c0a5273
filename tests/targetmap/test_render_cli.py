"""Pictures, HTML, fragmentation samples, run-directory files and the ``memhil map`` command."""

from __future__ import annotations

import json

import pytest

from memhil.cli import main
from memhil.elf import Image
from memhil.heap.walker import HeapNode, HeapWalk
from memhil.targetmap import apply_run_dir, build_map, format_html, fragmentation_sample, plot_map_png

PNG = b"\x89PNG\r\n\x1a\n"


def _walk() -> HeapWalk:
    walk = HeapWalk(0x20001000, 4096, 16, 0)
    walk.nodes = [HeapNode(0x20001100, 256, False), HeapNode(0x20001200, 64, True), HeapNode(0x20001240, 1024, False)]
    return walk


def test_fragmentation_sample():
    s = fragmentation_sample(_walk(), 1_500_000)
    assert (s.t_us, s.free_bytes, s.largest_free) == (1_500_000, 1280, 1024)
    assert s.ratio == pytest.approx(1 - 1024 / 1280)


def test_png_with_fragmentation_curve(firmware, platform, tmp_path):
    tmap = build_map(Image.open(firmware("module_stats")), platform)
    out = plot_map_png(tmap, tmp_path / "map.png", [fragmentation_sample(_walk(), t) for t in (0, 10, 20)])
    assert out.read_bytes().startswith(PNG)


def test_html_embeds_picture_and_every_region(firmware, platform):
    tmap = build_map(Image.open(firmware("module_stats")), platform)
    page = format_html(tmap)
    assert "data:image/png;base64," in page
    for r in tmap.regions:
        assert f"{r.start:08x}-{r.end:08x}" in page


def test_cli_static_map(firmware, platform, capsys):
    elf = firmware("module_stats")
    assert main(["map", str(elf)]) == 0
    out = capsys.readouterr().out
    text = out.splitlines()
    tmap = build_map(Image.open(elf), platform)
    assert [l.split()[0] for l in text if not l.startswith("#")] == [f"{r.start:08x}-{r.end:08x}" for r in tmap.regions]
    assert "used" not in out


def test_cli_png_html_json(firmware, tmp_path, capsys):
    png, page = tmp_path / "m.png", tmp_path / "m.html"
    assert main(["map", str(firmware("module_stats")), "--png", str(png), "--html", str(page), "--json"]) == 0
    data = json.loads(capsys.readouterr().out.split("# picture")[0])
    assert {r["name"] for r in data["regions"]} >= {".text", "[heap]", "[stack:main]", "[free]"}
    assert png.read_bytes().startswith(PNG) and "<table" in page.read_text()


def test_cli_run_dir_with_summary_stacks(firmware, tmp_path, capsys):
    (tmp_path / "summary.json").write_text(json.dumps({"version": 1, "stacks": {"main": {"used": 1234, "size": 8192}}}))
    assert main(["map", str(firmware("module_stats")), str(tmp_path)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if "[stack:main]" in l)
    assert "used 1234 (15%)" in line


def test_run_dir_without_stacks_says_so(firmware, platform, tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"version": 1}))
    tmap = build_map(Image.open(firmware("module_stats")), platform)
    apply_run_dir(tmap, tmp_path)
    assert tmap.region("[stack:main]").used is None
    assert any("no 'stacks' entry" in n for n in tmap.notes)


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: None, "holds neither"),
        (lambda d: (d / "summary.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "targetmap.json").write_text("[1, 2]"), "does not hold a JSON object"),
    ],
)
def test_cli_bad_run_dirs(firmware, tmp_path, capsys, setup, message):
    setup(tmp_path)
    assert main(["map", str(firmware("module_stats")), str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_cli_bad_inputs(tmp_path, capsys, firmware):
    not_elf = tmp_path / "x.bin"
    not_elf.write_bytes(b"\0" * 64)
    assert main(["map", str(not_elf)]) == 2
    assert "not an ELF" in capsys.readouterr().err
    assert main(["map", str(firmware("module_stats")), str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["map", str(firmware("module_stats")), "--platform", "nosuchboard"]) == 2
    assert "unknown platform" in capsys.readouterr().err
