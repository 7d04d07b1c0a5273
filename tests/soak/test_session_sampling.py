"""Session.run_for spaces its samples and heap walks in virtual time (few engine stops in a long soak), on a fake
engine that only keeps a clock and, where asked, feeds allocator events as the firmware's calls would arrive."""

from __future__ import annotations

import pytest

from memhil.events import AllocEvent, EventKind
from memhil.results import MAX_SAMPLES
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
    # no events came: the ledger is still sampled on the grid (the same flat figures at each point) and at each
    # call's end, in time order, within the sampler's bound
    times = [s.t_us for s in session.sampler.samples]
    assert all(a < b for a, b in zip(times, times[1:])) and times[-1] == int(86400e6)
    assert 48 < len(times) <= MAX_SAMPLES


@pytest.mark.parametrize("feed", ["batch", "one by one", "rows", "rows in one batch"])
def test_a_short_run_of_an_event_mode_stops_once_and_samples_as_the_events_arrive(tmp_path, monkeypatch, feed):
    """1 s of a firmware allocating 100 bytes every 10 ms: the ledger is sampled every sample gap of the events'
    virtual time, each sample holding the events up to its time and none after, however the events were handed
    over (a batch of events, one at a time as with a timeline, rows, or everything in one late batch), with one
    engine call and one walk (at its end)."""
    seq = iter(range(1_000_000))
    held: list = []

    def event(t: float) -> AllocEvent:
        return AllocEvent(next(seq), round(t * 1e6), EventKind.ALLOC, 0x20000000 + 0x100 * round(t * 100), 100, 116)

    def allocate(t: float) -> None:
        ev = event(t)
        row = (ev.seq, ev.t_us // 1000, 1, 0, 0, ev.ptr, 0, ev.size, ev.node_size, 0, 0, 0)
        if feed == "batch":
            s._on_events([ev])
        elif feed == "one by one":
            s._on_event(ev)
        elif feed == "rows":
            s._on_rows([row], [()])
        else:
            held.append(row)

    s = _session(tmp_path, monkeypatch, "hooks", ClockEngine(0.01, allocate))
    if feed == "rows in one batch":  # the host decoded nothing until the run's end
        monkeypatch.setattr(s, "drain", lambda: s._on_rows(held, [()] * len(held)))
    s.run_for(1.0)
    assert s.engine.calls == [1.0]
    assert s.walks == [1.0]
    samples = s.sampler.samples
    assert [x.t_us for x in samples] == [100_000 * k for k in range(1, 11)]  # on the grid, the last at the end
    for sample in samples:
        live = sum(nbytes for nbytes, _ in sample.sites.values())
        assert live == 100 * len([i for i in range(1, 100) if i * 10_000 <= sample.t_us])
        assert sum(sample.modules.values()) == 116 * len([i for i in range(1, 100) if i * 10_000 <= sample.t_us])
    s.run_for(0.25)  # the grid goes on after the end's sample
    assert [x.t_us for x in samples[10:]] == [1_100_000, 1_200_000, 1_250_000]


def test_a_long_quiet_stretch_takes_a_bounded_number_of_samples(tmp_path, monkeypatch):
    s = _session(tmp_path, monkeypatch, "trace")
    s.run_for(0.05)
    s._stream_gap_us = 100_000
    s._on_events([AllocEvent(0, 3_600_000_000, EventKind.ALLOC, 0x20000000, 8)])  # an hour later
    assert 1 < len(s.sampler.samples) <= SAMPLES_PER_RUN + 3
    assert all(a.t_us < b.t_us for a, b in zip(s.sampler.samples, s.sampler.samples[1:]))
    assert s.sampler.samples[-1].t_us <= 3_600_000_000 and not s.sampler.samples[-1].sites


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
