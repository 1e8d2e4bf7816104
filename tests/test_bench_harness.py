"""The bench harness's ratios: per-pair, with their spread, from runs taken in turns."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from bench import harness
from bench.harness import Figure, Ratio, interleaved, ratio, table


def test_a_ratio_is_the_median_of_the_per_pair_ratios_with_its_interquartile_range():
    found = Ratio.of([2.0, 4.0, 6.0, 9.0, 10.0], [1.0, 2.0, 3.0, 3.0, 2.0])
    assert found.median == 2.0
    assert (found.q1, found.q3, found.pairs) == (2.0, 3.0, 5)
    assert found.spread == pytest.approx(0.5)


def test_runs_alternate_and_each_pair_is_timed_back_to_back():
    calls: list[str] = []
    times = interleaved(
        {"plugin": lambda: calls.append("p"), "baseline": lambda: calls.append("b")},
        runs=4,
        warmup=0,
        min_unit=0,
        max_runs=4,
    )
    assert calls == ["p", "b"] + ["p", "b", "b", "p"] * 2  # one untimed call each first
    assert len(times["plugin"].seconds) == len(times["baseline"].seconds) == 4


class Clock:
    """A stand-in for perf_counter that moves only when a contender "works"."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def work(self, seconds: float) -> Callable[[], None]:
        return lambda: self.spend(seconds)

    def spend(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(harness.time, "perf_counter", fake)
    return fake


def test_a_call_too_short_to_measure_is_timed_in_units_of_several_calls(clock: Clock):
    times = interleaved(
        {"a": clock.work(0.001), "b": clock.work(0.005)}, runs=3, min_unit=0.02, max_runs=3
    )
    assert times["a"].repeat == times["b"].repeat == 20
    assert len(times["a"].seconds) == 3
    assert times["a"].median == pytest.approx(0.001)  # per call, not per unit
    assert ratio(times, "b", "a").median == pytest.approx(5)


def test_pairs_are_added_until_the_spread_is_known_and_no_further_than_max_runs(clock: Clock):
    steady = interleaved(
        {"a": clock.work(0.4), "b": clock.work(0.2)}, runs=5, min_unit=0, max_runs=20
    )
    naps = itertools.cycle([0.2, 0.3, 1.2])
    noisy = interleaved(
        {"a": lambda: clock.spend(next(naps)), "b": clock.work(0.2)},
        runs=5,
        warmup=0,
        min_unit=0,
        max_runs=12,
    )
    assert len(steady["a"].seconds) == 5
    assert ratio(steady, "a", "b").spread == pytest.approx(0)
    assert len(noisy["a"].seconds) == 12
    assert ratio(noisy, "a", "b").spread > 0.5


def test_the_table_shows_each_ratio_with_its_spread_and_pairs():
    figure = Figure.of_ratio(
        "licences", "sqlite", Ratio.of([1.1, 1.0, 1.2], [1.0, 1.0, 1.0]), key="licences_vs_sql"
    )
    row = table([figure]).splitlines()[2]
    assert "1.10×" in row
    assert "9.1 % (3 pairs)" in row
    assert "<= 1.3" in row
