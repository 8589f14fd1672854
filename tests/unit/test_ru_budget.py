"""The RU token bucket (pure logic, a fake clock)."""

from __future__ import annotations

import math

import pytest

from dataworks.monitoring.ru_budget import RequestUnitBucket


def test_bucket_lets_a_second_through_then_paces_by_what_was_charged():
    now = [0.0]
    bucket = RequestUnitBucket(100, clock=lambda: now[0])
    assert bucket.wait_s() == 0
    bucket.charge(150)  # the charge is known only afterwards: the bucket goes into debt
    assert bucket.wait_s() == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.wait_s() == pytest.approx(0.0, abs=1e-6)
    now[0] += 10  # a quiet period refills one second's worth, not ten
    bucket.charge(100)
    assert bucket.wait_s() > 0


def test_spend_over_time_is_the_rate_and_follows_a_change():
    now = [0.0]
    bucket = RequestUnitBucket(1000, clock=lambda: now[0])
    spent = 0.0
    while now[0] < 20:
        now[0] += bucket.wait_s() + 1e-6
        if now[0] >= 10 and bucket.rate == 1000:
            spent_first = spent
            bucket.set_rate(500)
        bucket.charge(37.0)
        spent += 37.0
    assert spent_first == pytest.approx(10 * 1000 + 1000, rel=0.02)  # plus the first second
    assert spent - spent_first == pytest.approx(10 * 500, rel=0.02)


def test_no_budget_never_waits():
    bucket = RequestUnitBucket()
    bucket.charge(1e9)
    assert bucket.wait_s() == 0 and not bucket.limited and bucket.rate == math.inf
    bucket.set_rate(10)
    assert bucket.limited and bucket.tokens == 10
