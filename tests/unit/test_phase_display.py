"""The phase line after the copy (index builds, verification), rendered as a person sees it:
what is being done, count, rate and ETA where a total is known, and a plain note (never a
guessed ETA) where it is not."""

from __future__ import annotations

import io
import re
import time

from rich.console import Console

from dataworks.indexes.build_progress import NO_PROGRESS, build_progress
from dataworks.monitoring.display import ProgressView
from dataworks.monitoring.metrics import RunMetrics, current_run, phase_position, phase_step


def screen(metrics: RunMetrics, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(ProgressView(metrics, "migrate db.orders"))
    return console.export_text()


def copied(total: int = 5_000) -> RunMetrics:
    metrics = RunMetrics(total=total)
    metrics.written = total
    return metrics


def seconds_ago(metrics: RunMetrics, seconds: float) -> None:
    """Pretend the step started `seconds` ago, so its rate is known exactly."""
    metrics.phase_step_at = time.monotonic() - seconds


def test_sample_verification_shows_documents_compared_per_second_and_eta():
    metrics = copied()
    with current_run(metrics), metrics.in_phase("verifying (sample)", total=1_000):
        phase_step("comparing with the target", total=1_000)
        seconds_ago(metrics, 10)
        metrics.phase_done = 250
        text = screen(metrics)
    assert re.search(r"▸ verifying \(sample\): comparing with the target · 250/1,000 documents "
                     r"· 25 documents/s · ETA 0:00:30", text), text


def test_count_verification_counts_partitions():
    metrics = copied()
    with current_run(metrics), metrics.in_phase("verifying (count)"):
        phase_step("counting the source, partition by partition", total=8, unit="partitions")
        seconds_ago(metrics, 6)
        metrics.phase_done = 2
        text = screen(metrics, width=160)
    assert ("▸ verifying (count): counting the source, partition by partition · 2/8 partitions "
            "· 0.3 partitions/s · ETA 0:00:18") in text, text


def test_index_build_without_server_progress_says_so_and_shows_no_eta():
    metrics = copied()
    with current_run(metrics), metrics.in_phase("building indexes", unit="indexes"):
        phase_step("by_date (1/2)")
        phase_position(0, note=NO_PROGRESS)
        text = screen(metrics, width=160)
    phase = next(line for line in text.splitlines() if "▸" in line)
    assert phase.startswith("▸ building indexes: by_date (1/2) · documents/s unknown: the "
                            "server reports no index build progress · 0:00:0"), phase
    assert "ETA" not in phase and "/s ·" not in phase, phase


def test_index_build_with_server_progress_shows_rate_and_eta():
    metrics = copied()
    with current_run(metrics), metrics.in_phase("building indexes", unit="indexes"):
        phase_step("by_date (1/2)")
        seconds_ago(metrics, 4)
        phase_position(20_000, 100_000)
        text = screen(metrics)
    assert re.search(r"by_date \(1/2\) · 20,000/100,000 documents · (4,999|5,000) documents/s · "
                     r"ETA 0:00:16", text), text
    assert NO_PROGRESS not in text


def test_a_new_step_clears_what_the_last_one_said():
    metrics = copied()
    with current_run(metrics), metrics.in_phase("building indexes"):
        phase_step("a (1/2)")
        phase_position(0, note=NO_PROGRESS)
        phase_step("b (2/2)")
        assert metrics.phase_note == "" and metrics.phase_detail == "b (2/2)"
    assert metrics.phase == "" and "building indexes" in metrics.phase_seconds


def test_progress_outside_a_phase_changes_nothing():
    metrics = copied()
    with current_run(metrics):
        phase_step("nothing", total=3)
        phase_position(2, 3)
    assert metrics.phase_total is None and metrics.phase_done == 0


# currentOp as MongoDB 7 reports an index build (trimmed to what is read).
CURRENT_OP = [
    {"desc": "conn12", "ns": "shop.$cmd", "command": {"createIndexes": "orders",
                                                      "indexes": [{"name": "by_date"}]}},
    {"desc": "IndexBuildsCoordinatorMongod-3", "ns": "shop.orders",
     "command": {"createIndexes": "orders", "indexes": [{"key": {"d": 1}, "name": "by_date"}]},
     "msg": "Index Build: scanning collection Index Build: scanning collection: 4200/90000 4%",
     "progress": {"done": 4200, "total": 90000}},
    {"desc": "IndexBuildsCoordinatorMongod-4", "ns": "shop.other",
     "command": {"createIndexes": "other", "indexes": [{"name": "by_date"}]},
     "progress": {"done": 1, "total": 2}},
]


def test_build_progress_is_read_from_current_op():
    assert build_progress(CURRENT_OP, "shop.orders", "orders", "by_date") == (4200, 90000)
    assert build_progress(CURRENT_OP, "shop.orders", "orders", "by_name") is None
    assert build_progress(CURRENT_OP[:1], "shop.orders", "orders", "by_date") is None
