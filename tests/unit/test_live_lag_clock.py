"""The live replay's lag (dataworks.migrations.live_lag): what the target is known to hold."""

from __future__ import annotations

from dataworks.migrations.live_lag import Lag


def test_unknown_until_the_first_page():
    assert Lag().seconds(now=100.0) is None


def test_an_empty_page_means_complete_up_to_when_it_was_asked_for_and_the_lag_grows_after():
    lag = Lag()
    lag.caught_up(asked_at=100.0)
    assert lag.seconds(now=100.2) == 0.2
    assert lag.seconds(now=115.0) == 15.0  # the next page is slow: 15 s of changes may wait


def test_a_page_of_events_means_complete_up_to_its_last_event_never_backwards():
    lag = Lag()
    lag.applied(last_event_at=90.0)
    assert lag.seconds(now=100.0) == 10.0
    lag.caught_up(asked_at=99.5)
    lag.applied(last_event_at=99.0)  # an event of an earlier second: no step back
    assert lag.seconds(now=100.0) == 0.5


def test_a_stream_without_times_never_claims_a_lag():
    lag = Lag(timed=False)  # Cosmos DB: no clusterTime, empty pages under throttling
    lag.caught_up(asked_at=100.0)
    lag.applied(last_event_at=None)
    assert lag.seconds(now=101.0) is None
