"""Fixtures of the target-map tests: the firmware ELFs and a stripped copy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(params=[("module_stats", "debug"), ("soak", "release")], ids=lambda p: f"{p[1]}-{p[0]}")
def elf(request, firmware) -> Path:
    return firmware(*request.param)


@pytest.fixture
def stripped_elf(firmware, tmp_path) -> Path:
    assert shutil.which("arm-none-eabi-strip"), "arm-none-eabi-strip is part of the toolchain setup installs"
    out = tmp_path / "stripped.elf"
    subprocess.run(["arm-none-eabi-strip", "-o", str(out), str(firmware("module_stats"))], check=True)
    return out
