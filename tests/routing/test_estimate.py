"""The announced wait: the caller's place, the handlers on duty for them, recent handling."""

from __future__ import annotations

import random

import pytest

from routing.estimate import announcement, expected_wait_s


def test_nobody_on_duty_or_not_waiting_announces_nothing():
    assert expected_wait_s(1, 0, 120) is None
    assert expected_wait_s(0, 3, 120) is None
    assert announcement(None) is None


def test_the_wait_grows_with_the_place_and_shrinks_with_the_handlers():
    h = 240.0
    assert expected_wait_s(1, 1, h) == 120  # one busy handler: half-way through on average
    assert expected_wait_s(2, 1, h) == 240 + 120  # a whole call more
    assert expected_wait_s(1, 3, h) == 60  # the first of three to finish
    assert expected_wait_s(3, 3, h) == 180
    assert expected_wait_s(4, 3, h) == 240 + 60  # the second round
    places = [expected_wait_s(p, 30, h) for p in range(1, 200)]
    assert places == sorted(places) and places[0] < 10 < places[-1]


def test_it_matches_handlers_busy_at_random_points_of_their_calls():
    """Simulated: n handlers each part-way through a call of h seconds (uniformly), taking the
    waiting callers in order as they come free. The formula's error stays small."""
    rng = random.Random(7)
    h, n = 200.0, 20
    for position in (1, 5, 20, 21, 60):
        waits = []
        for _ in range(2000):
            free_at = sorted(rng.uniform(0, h) for _ in range(n))
            for _ahead in range(position - 1):  # each caller ahead takes the first free handler
                free_at[0] += h
                free_at.sort()
            waits.append(free_at[0])
        simulated = sum(waits) / len(waits)
        assert expected_wait_s(position, n, h) == pytest.approx(simulated, rel=0.1)


@pytest.mark.parametrize(
    ("seconds", "spoken"),
    [
        (3, ("queue_estimate_seconds", {"seconds": 10})),
        (44, ("queue_estimate_seconds", {"seconds": 40})),
        (46, ("queue_estimate_seconds", {"seconds": 50})),
        (94, ("queue_estimate_seconds", {"seconds": 90})),
        (95, ("queue_estimate", {"minutes": 2})),
        (150, ("queue_estimate", {"minutes": 3})),
        (600, ("queue_estimate", {"minutes": 10})),
    ],
)
def test_the_announcement_says_seconds_under_a_minute_and_a_half(seconds, spoken):
    assert announcement(seconds) == spoken
