"""Session.run_for spaces its chunks and heap walks in virtual time (few engine stops in a long soak), on a fake
engine that only keeps a clock."""

from __future__ import annotations

import pytest

from memhil.session import SAMPLES_PER_RUN, Session, SessionOptions


class ClockEngine:
    def __init__(self) -> None:
        self.t = 0.0
        self.calls: list[float] = []

    def run_for(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.t += seconds

    def virtual_time(self) -> float:
        return self.t


@pytest.fixture
def session(tmp_path, monkeypatch):
    s = Session(SessionOptions(capture="trace"), run_dir=tmp_path)
    s.engine = ClockEngine()
    walks: list[float] = []

    def fake_walk():
        walks.append(s.engine.t)
        return None

    monkeypatch.setattr(s, "_sample_walk", fake_walk)
    s.walks = walks
    return s


def test_a_day_in_48_steps_stops_the_engine_far_less_than_8_times_per_step(session):
    for _ in range(48):
        session.run_for(1800.0)
    calls = session.engine.calls
    assert sum(calls) == pytest.approx(86400.0)
    assert 48 <= len(calls) <= 3 * SAMPLES_PER_RUN < 48 * 8
    assert len(session.sampler.samples) == len(calls)  # one ledger sample per chunk, none lost


def test_short_runs_keep_eight_samples(session):
    session.run_for(10.0)
    assert len(session.engine.calls) == 8 and len(session.walks) == 8


def test_heap_walks_are_spaced_by_the_sample_gap(session):
    session.engine.t = 20_000.0
    session._last_walk_us = int(19_990.0 * 1e6)  # walked 10 s ago
    session.run_for(100.0)
    gap = Session.sample_gap(20_100.0)
    assert gap == pytest.approx(20_100.0 / SAMPLES_PER_RUN)
    assert len(session.engine.calls) == 1  # 100 s is shorter than one gap: no reason to stop inside it
    assert session.walks == []  # the last walk is closer than one gap
    session.run_for(2 * gap)
    assert len(session.walks) >= 1
    assert all(b - a >= Session.sample_gap(session.engine.t) * 0.99 for a, b in zip(session.walks, session.walks[1:]))


def test_free_runs_are_one_engine_call(tmp_path):
    s = Session(SessionOptions(capture="none"), run_dir=tmp_path)
    s.engine = ClockEngine()
    s.run_for(3600.0)
    assert s.engine.calls == [3600.0]


def test_sample_gap_has_a_floor():
    assert Session.sample_gap(0.0) == Session.sample_gap(1.0) == 0.1
