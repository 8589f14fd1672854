"""The pure helpers of bench/live_lag.py: the writer's id bookkeeping and the figures taken
from the metrics samples and the polled checkpoint."""

from __future__ import annotations

import random

from pymongo import DeleteOne, ReplaceOne, UpdateOne

from bench.live_lag import IdPool, caught_up_at, operation, percentile, window_figures


def test_id_pool_picks_present_ids_and_absent_ones():
    ids = IdPool(range(5), 10, random.Random(1))
    ids.remove(2)
    ids.remove(4)  # the last one: nothing to move
    ids.add(7)
    assert sorted(i for i in range(10) if i in ids) == [0, 1, 3, 7]
    assert len(ids) == 4
    assert {ids.pick() for _ in range(200)} == {0, 1, 3, 7}
    assert all(ids.absent() not in ids for _ in range(200))


def test_parallel_writers_own_disjoint_ids():
    """`--writers N`: writer k changes only ids i % N == k, so two never race on one _id."""
    pools = [IdPool(range(10), 20, random.Random(k), k, 3) for k in range(3)]
    for k, ids in enumerate(pools):
        present = {i for i in range(20) if i in ids}
        assert present == {i for i in range(10) if i % 3 == k}
        assert ids.capacity == len(range(k, 20, 3))
        assert all(ids.pick() % 3 == k for _ in range(100))
        absent = {ids.absent() for _ in range(300)}
        assert absent == {i for i in range(10, 20) if i % 3 == k}


def test_bulk_writer_sends_the_same_four_changes():
    """The ticked writer's operations are the paced writer's: insert (replace-upsert),
    update, replace, delete at the 0.3/0.6/0.8 cut points."""
    insert, update, replace, delete = (operation(7, k, 0.5) for k in (0.0, 0.45, 0.7, 0.9))
    assert isinstance(insert, ReplaceOne) and insert._upsert
    assert insert._doc == {"n": 7, "v": 0.5, "pad": "i", "tags": ["ins"], "updates": 0}
    assert isinstance(update, UpdateOne)
    assert update._doc == {"$set": {"v": 0.5}, "$inc": {"updates": 1}}
    assert isinstance(replace, ReplaceOne) and not replace._upsert
    assert isinstance(delete, DeleteOne)
    assert all(op._filter == {"_id": 7} for op in (insert, update, replace, delete))


def test_percentile_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0


def test_window_figures_by_wall_clock():
    def sample(ts: str, applied: int, lag: float | None) -> dict:
        return {"ts": f"2026-12-01T05:00:{ts}+00:00", "elapsed_s": 1.5,  # not used: wall clock
                "live": {"events_applied": applied, "lag_s": lag}}

    samples = [{"ts": "2026-12-01T05:00:00+00:00", "elapsed_s": 0.1},  # copying: no "live"
               sample("05", 0, 0.0), sample("10", 1000, 2.0), sample("15", 3000, None),
               sample("20", 4000, 4.0)]
    start = 1796101205.0  # 2026-12-01T05:00:05Z
    figures = window_figures(samples, start, start + 10)
    assert figures == {"samples": 3, "applied_per_s": 300.0, "lag_p50_s": 0.0,
                       "lag_max_s": 2.0}


def test_caught_up_at_is_the_first_poll_with_the_final_count():
    assert caught_up_at([]) is None
    assert caught_up_at([(1.0, 5, 1.0), (2.0, 9, 0.5), (3.0, 9, 0.0)]) == 2.0
