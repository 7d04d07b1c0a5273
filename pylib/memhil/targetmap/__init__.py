"""The target's memory map, stack high-water marks and heap fragmentation over time.

    tmap = build_map(Image.open(elf), Platform.load("stm32f4"), engine.read_memory)
    print(format_maps(tmap))
    for s in stack_usage(image, engine.read_memory): print(s.name, s.used, s.size)
"""

from memhil.targetmap.build import build_map, measure
from memhil.targetmap.model import MapRegion, TargetMap
from memhil.targetmap.render import FragmentationSample, format_html, format_maps, fragmentation_sample, plot_map_png
from memhil.targetmap.rundir import apply_run_dir, save_run_map, stack_summary
from memhil.targetmap.stacks import StackDesc, StackUsage, find_stacks, high_water, stack_usage

__all__ = [
    "FragmentationSample", "MapRegion", "StackDesc", "StackUsage", "TargetMap", "apply_run_dir", "build_map",
    "find_stacks", "format_html", "format_maps", "fragmentation_sample", "high_water", "measure", "plot_map_png",
    "save_run_map", "stack_summary", "stack_usage",
]
