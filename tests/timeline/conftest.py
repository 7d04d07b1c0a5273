"""Fixtures for the timeline tests: a compressed soak run written with small rotating files."""

from __future__ import annotations

import shutil

import pytest

from memhil.timeline import TimelineWriter
from timeline_synth import BLOCK_EVENTS, BUILD, MAX_BYTES, MAX_FILES, soak_events


@pytest.fixture(scope="session")
def soak():
    """8 virtual hours: module 1 churns, module 4 keeps a few buffers, module 3 leaks 48 B every 10 min after 6 h."""
    return soak_events(hours=8.0)


@pytest.fixture(scope="session")
def soak_log(soak, tmp_path_factory):
    """``(directory, writer)`` of the soak written with rotation (more than MAX_FILES files made)."""
    directory = tmp_path_factory.mktemp("soaklog")
    writer = TimelineWriter(directory, build_id=BUILD, platform="stm32f4", engine="qemu", max_bytes=MAX_BYTES,
                            max_files=MAX_FILES, run_id="5F43FAFD5D7FF", block_events=BLOCK_EVENTS)
    writer.write_many(soak)
    writer.close()
    assert writer.error is None
    return directory, writer


@pytest.fixture
def soak_copy(soak_log, tmp_path):
    """A private copy of the soak log directory, for tests that damage files."""
    dst = tmp_path / "log"
    shutil.copytree(soak_log[0], dst)
    return dst

