"""Partition boundaries without a sample: interpolation between the smallest and largest
`_id` (pure logic; the planner's use of it runs against real servers in
tests/integration/test_source_throttling.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import Int64, ObjectId

from dataworks.migrations.partitioning import _boundaries, interpolate


def test_object_ids_are_cut_by_their_timestamp():
    low = ObjectId.from_datetime(datetime(2024, 1, 1, tzinfo=UTC))
    high = ObjectId.from_datetime(datetime(2024, 1, 5, tzinfo=UTC))
    points = interpolate(low, high, 4)
    assert points[0] == low and points[-1] == high and len(points) == 5
    assert [p.generation_time.day for p in points] == [1, 2, 3, 4, 5]
    assert points == sorted(points)


def test_numbers_and_dates_are_interpolated_and_other_types_keep_their_ends():
    assert interpolate(0, 100, 4) == [0, 25, 50, 75, 100]
    assert interpolate(Int64(0), 10, 2) == [0, 5, 10]
    assert interpolate(0.0, 1.0, 2) == [0.0, 0.5, 1.0]
    start = datetime(2024, 1, 1)
    assert interpolate(start, start + timedelta(days=2), 2)[1] == start + timedelta(days=1)
    assert interpolate("a", "z", 8) == ["a", "z"]
    assert _boundaries(interpolate(0, 100, 4), 4) == [25, 50, 75]


def test_count_filters_follow_the_migration_partitions():
    from dataworks.migrations.partitioning import NATURAL, Partition
    from dataworks.verify.counting import partition_filters

    parts = [Partition(0, "number", None, 10), Partition(1, "number", 10, None)]
    assert partition_filters(parts, None) == [{"_id": {"$type": "number", "$lt": 10}},
                                              {"_id": {"$type": "number", "$gte": 10}}]
    assert partition_filters([Partition(0, NATURAL)], {"x": 1}) == [{"x": 1}]
    assert partition_filters([], None) == [{}]
