"""Print the target memory map of a firmware, like /proc/PID/maps: one line per region (flash text and
rodata, RAM data and bss, the heap pool, each stack, free memory), address range first.

With RUN_DIR (the directory a memhil run wrote: summary.json, targetmap.json), the bytes the heap
and each stack used in that run are shown too. --png draws the regions as bars; --html writes a page.
"""

from __future__ import annotations

import json
from pathlib import Path

NAME = "map"
HELP = "target memory map of a firmware (and bytes used in a run)"


def add_arguments(p) -> None:
    p.add_argument("firmware", help="firmware ELF")
    p.add_argument("run_dir", nargs="?", help="run directory with summary.json / targetmap.json (optional)")
    p.add_argument("--platform", default="stm32f4", help="board under platforms/ (default stm32f4)")
    p.add_argument("--png", metavar="FILE", help="also draw the map as a bar picture (PNG)")
    p.add_argument("--html", metavar="FILE", help="also write an HTML page with the picture and the table")
    p.add_argument("--json", action="store_true", help="print the map as JSON instead of text")


def run(args) -> int:
    from memhil.cli.outputs import check_file
    from memhil.elf import Image
    from memhil.platform import Platform
    from memhil.targetmap import apply_run_dir, build_map, format_html, format_maps, plot_map_png

    png = check_file(args.png, "the picture")
    page = check_file(args.html, "the page")
    image = Image.open(args.firmware)
    platform = Platform.load(args.platform)
    tmap = build_map(image, platform)
    if args.run_dir:
        apply_run_dir(tmap, args.run_dir)
    if args.json:
        print(json.dumps(tmap.as_dict(), indent=1))
    else:
        print(format_maps(tmap), end="")
    if png is not None:
        print(f"# picture: {plot_map_png(tmap, png, _fragmentation(args.run_dir))}")
    if page is not None:
        page.write_text(format_html(tmap, args.png))
        print(f"# page: {page}")
    return 0


def _fragmentation(run_dir: str | None) -> list:
    """Fragmentation samples a run recorded (summary.json), for the picture's lower panel."""
    from memhil.targetmap.render import FragmentationSample

    summary = Path(run_dir) / "summary.json" if run_dir else None
    if summary is None or not summary.is_file():
        return []
    try:
        items = json.loads(summary.read_text()).get("fragmentation") or []
        return [FragmentationSample(int(i["t_s"] * 1e6), int(i["free"]), int(i["largest_free"])) for i in items]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []  # an older or damaged summary: the map is still drawn, without the curve
