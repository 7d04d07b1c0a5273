"""Session.run_for spaces its samples and heap walks in virtual time (few engine stops in a long soak), on a fake
engine that only keeps a clock and, where asked, feeds allocator events as the firmware's calls would arrive."""

from __future__ import annotations

import pytest

from memhil.events import AllocEvent, EventKind
from memhil.session import MIN_WALK_GAP_S, SAMPLES_PER_RUN, Session, SessionOptions


class ClockEngine:
    """Runs in steps of ``step`` virtual seconds; ``on_step(t)`` is called at each, as a capture's background
    decoding hands the session the events it took in while the firmware ran."""

    def __init__(self, step: float = 0.01, on_step=None) -> None:
        self.t = 0.0
        self.calls: list[float] = []
        self.step, self.on_step = step, on_step

    def run_for(self, seconds: float) -> None:
        self.calls.append(seconds)
        end = self.t + seconds
        while self.on_step is not None and self.t + self.step < end - 1e-9:
            self.t += self.step
            self.on_step(self.t)
        self.t = end

    def virtual_time(self) -> float:
        return self.t


def _session(tmp_path, monkeypatch, capture: str, engine: ClockEngine | None = None) -> Session:
    s = Session(SessionOptions(capture=capture), run_dir=tmp_path)
    s.engine = engine or ClockEngine()
    walks: list[float] = []

    def fake_walk():
        walks.append(s.engine.t)
        return None

    monkeypatch.setattr(s, "_sample_walk", fake_walk)
    s.walks = walks
    return s


@pytest.fixture
def session(tmp_path, monkeypatch):
    return _session(tmp_path, monkeypatch, "trace")


def test_a_day_in_48_steps_stops_the_engine_far_less_than_8_times_per_step(session):
    for _ in range(48):
        session.run_for(1800.0)
    calls = session.engine.calls
    assert sum(calls) == pytest.approx(86400.0)
    assert 48 <= len(calls) <= 3 * SAMPLES_PER_RUN < 48 * 8
    assert len(session.walks) <= len(calls)
    # no events came: one ledger sample per call, at its end
    assert [s.t_us for s in session.sampler.samples] == [int(1800e6) * (i + 1) for i in range(48)]


def test_a_short_run_of_an_event_mode_stops_once_and_samples_as_the_events_arrive(tmp_path, monkeypatch):
    """1 s of a firmware allocating 100 bytes every 10 ms: the ledger is sampled every sample gap of the events'
    virtual time, each sample holding what was live then, with one engine call and one walk (at its end)."""
    seq = iter(range(1_000_000))

    def allocate(t: float) -> None:
        s._on_events([AllocEvent(next(seq), round(t * 1e6), EventKind.ALLOC, 0x20000000 + 0x100 * round(t * 100), 100)])

    s = _session(tmp_path, monkeypatch, "hooks", ClockEngine(0.01, allocate))
    s.run_for(1.0)
    assert s.engine.calls == [1.0]
    assert s.walks == [1.0]
    samples = s.sampler.samples
    gap_us = Session.sample_gap(1.0) * 1e6
    assert len(samples) == 10  # 9 while it ran (0.1 s apart), the last at its end
    assert all(b.t_us - a.t_us >= gap_us * 0.99 for a, b in zip(samples, samples[1:]))
    for sample in samples:
        live = sum(nbytes for nbytes, _ in sample.sites.values())
        assert live == 100 * len([i for i in range(1, 100) if i * 10_000 <= sample.t_us])


def test_walks_inside_a_long_event_mode_run_are_a_second_apart_at_least(session):
    session.run_for(10.0)
    assert len(session.engine.calls) == 8 and len(session.walks) == 8
    assert all(b - a >= MIN_WALK_GAP_S for a, b in zip(session.walks, session.walks[1:]))
    session.run_for(0.5)
    assert len(session.walks) == 8  # the last walk is less than MIN_WALK_GAP_S ago


def test_snapshot_runs_keep_eight_samples(tmp_path, monkeypatch):
    s = _session(tmp_path, monkeypatch, "snapshot")
    s.run_for(10.0)
    assert len(s.engine.calls) == 8 and len(s.walks) == 8


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
