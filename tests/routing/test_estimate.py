"""The announced wait: the caller's place, when each handler on duty for them comes free, and
recent handling times."""

from __future__ import annotations

import random

import pytest

from routing.estimate import Handling, announcement, expected_wait_s

H = Handling(ring_s=5, talk_s=200, wrap_up_s=35)  # 240 s a call


def test_nobody_on_duty_or_not_waiting_announces_nothing():
    assert expected_wait_s(1, [], H) is None
    assert expected_wait_s(0, [10.0], H) is None
    assert announcement(None) is None


def test_each_caller_takes_the_next_handler_to_come_free():
    free_in = [30.0, 0.0, 100.0]  # one free now, one in 30 s, one in 100 s
    assert expected_wait_s(1, free_in, H) == 0 + 5  # the free one: the ring only
    assert expected_wait_s(2, free_in, H) == 30 + 5
    assert expected_wait_s(3, free_in, H) == 100 + 5
    assert expected_wait_s(4, free_in, H) == 240 + 5  # the first again, after a whole call
    assert expected_wait_s(5, free_in, H) == 270 + 5
    places = [expected_wait_s(p, free_in, H) for p in range(1, 50)]
    assert places == sorted(places)


def test_it_matches_a_simulated_day_of_handlers_part_way_through_their_calls():
    """Handlers each part-way through a call (uniformly), every call lasting the mean: the
    estimate is the simulation's own answer, to within the ring."""
    rng = random.Random(7)
    for position in (1, 5, 20, 21, 60):
        free_in = [rng.uniform(0, H.total_s) for _ in range(20)]
        simulated = sorted(free_in)
        for _ahead in range(position - 1):
            simulated[0] += H.total_s
            simulated.sort()
        assert expected_wait_s(position, free_in, H) == pytest.approx(simulated[0] + H.ring_s)


@pytest.mark.parametrize(
    ("seconds", "spoken"),
    [
        (1, ("queue_estimate_seconds", {"seconds": 5})),
        (13.3, ("queue_estimate_seconds", {"seconds": 15})),
        (44, ("queue_estimate_seconds", {"seconds": 45})),
        (57, ("queue_estimate_seconds", {"seconds": 55})),
        (58, ("queue_estimate_seconds", {"seconds": 60})),
        (94, ("queue_estimate_seconds", {"seconds": 90})),
        (95, ("queue_estimate", {"minutes": 2})),
        (150, ("queue_estimate", {"minutes": 3})),
        (600, ("queue_estimate", {"minutes": 10})),
    ],
)
def test_the_announcement_says_seconds_under_a_minute_and_a_half_then_minutes(seconds, spoken):
    assert announcement(seconds) == spoken
