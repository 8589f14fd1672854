"""Monitoring logic without a server: collector windows and exports, alerts, JSON logs."""

from __future__ import annotations

import csv
import io
import json
import logging
import time

import pytest

from dataworks.errors import UserError
from dataworks.monitoring.alerts import AlertManager, AlertThresholds, WindowStats
from dataworks.monitoring.collector import MetricsCollector, percentile
from dataworks.monitoring.exporters import metrics_format, write_metrics
from dataworks.monitoring.logs import JsonFormatter, configure_logging, event
from dataworks.monitoring.metrics import RunMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def collector_with_clock(**kwargs):
    clock = Clock()
    metrics = RunMetrics()
    thresholds = kwargs.pop("thresholds", AlertThresholds(max_rss_mb=1e9))
    collector = MetricsCollector(metrics, clock=clock, log_events=False,
                                 alerts=AlertManager(thresholds), **kwargs)
    return collector, metrics, clock


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 50) == 0.0
    assert percentile([7.0], 99) == 7.0


def test_window_rate_uses_only_the_window():
    collector, metrics, clock = collector_with_clock(window_s=10.0)
    collector.sample()
    for _ in range(4):  # 100 docs/s for 20 s ...
        clock.now += 5
        metrics.written += 500
        collector.sample()
    for _ in range(2):  # ... then 10 docs/s for 10 s: the window sees only the slow part
        clock.now += 5
        metrics.written += 50
        row = collector.sample()
    assert row["docs_per_s"] == pytest.approx(10.0)
    assert row["written"] == 2100


def test_batch_latency_percentiles_per_sample_and_overall():
    collector, metrics, clock = collector_with_clock()
    collector.sample()
    for ms in range(1, 101):
        metrics.record_batch_latency(ms / 1000)
    row = collector.sample()
    assert row["batches_timed"] == 100
    assert row["batch_latency_p50_ms"] == pytest.approx(50.0)
    assert row["batch_latency_p99_ms"] == pytest.approx(99.0)
    metrics.record_batch_latency(0.5)
    row = collector.sample()
    assert row["batches_timed"] == 1 and row["batch_latency_p50_ms"] == pytest.approx(500.0)
    latency = collector.get_summary()["batch_latency_ms"]
    assert latency["count"] == 101
    assert latency["max"] == pytest.approx(500.0)
    assert latency["mean"] == pytest.approx((5050 + 500) / 101, rel=1e-3)


async def test_timed_records_even_when_the_write_fails():
    metrics = RunMetrics()

    async def ok():
        return 42

    async def boom():
        raise RuntimeError("no")

    assert await metrics.timed(ok()) == 42
    with pytest.raises(RuntimeError):
        await metrics.timed(boom())
    assert metrics.batch_latency_count == 2 and len(metrics.batch_latencies) == 2


def filled_collector():
    collector, metrics, clock = collector_with_clock()
    collector.sample()
    metrics.read, metrics.written, metrics.already_present = 1200, 1100, 50
    metrics.rejected, metrics.retries, metrics.throttled, metrics.batches = 3, 4, 2, 12
    metrics.bytes_written, metrics.request_units = 123_456, 77.5
    clock.now += 5
    collector.sample()
    metrics.finish()
    collector.attach_report({"status": "completed", "written": 1100})
    collector.sample()
    return collector, metrics


def test_summary_totals_are_the_run_counters():
    collector, metrics = filled_collector()
    summary = collector.get_summary()
    totals = summary["totals"]
    for name in ("read", "written", "already_present", "rejected", "retries", "throttled",
                 "batches", "bytes_written", "request_units"):
        assert totals[name] == getattr(metrics, name), name
    assert totals["done"] == metrics.done == 1153
    assert summary["status"] == "completed"
    assert summary["report"]["written"] == 1100
    assert summary["duration_s"] == pytest.approx(metrics.elapsed, abs=1e-3)


def test_json_export_parses_with_summary_and_samples():
    collector, metrics = filled_collector()
    data = json.loads(collector.export_metrics("json"))
    assert data["format"] == "dataworks-metrics/1"
    assert len(data["samples"]) == 3
    assert [s["written"] for s in data["samples"]] == [0, 1100, 1100]
    assert data["summary"]["totals"]["written"] == 1100


def test_csv_export_has_sample_rows_then_summary_row():
    collector, metrics = filled_collector()
    rows = list(csv.DictReader(io.StringIO(collector.export_metrics("csv"))))
    assert [r["kind"] for r in rows] == ["sample", "sample", "sample", "summary"]
    summary = rows[-1]
    assert int(summary["written"]) == 1100
    assert int(summary["already_present"]) == 50
    assert float(summary["request_units"]) == 77.5
    assert summary["status"] == "completed"
    with pytest.raises(ValueError):
        collector.export_metrics("xml")


def test_metrics_file_format_by_extension(tmp_path):
    assert metrics_format("a/b.JSON") == "json"
    assert metrics_format("run.csv") == "csv"
    with pytest.raises(UserError):
        metrics_format("run.txt")
    collector, _ = filled_collector()
    path = write_metrics(collector, tmp_path / "deep" / "m.csv")
    assert path.read_text().startswith("kind,")
    assert not list(path.parent.glob(".*.tmp"))


# -- alerts ---------------------------------------------------------------------------------


def test_injected_error_burst_fires_one_alert_to_callbacks_and_log(dw_caplog):
    received = []
    collector, metrics, clock = collector_with_clock(
        window_s=30.0, thresholds=AlertThresholds(error_rate=0.05, min_errors=5, max_rss_mb=1e9))
    collector.alerts.add_callback(received.append)
    collector.sample()
    clock.now += 5
    metrics.written += 1000
    collector.sample()
    assert received == []  # healthy so far
    dw_caplog.set_level(logging.WARNING, logger="dataworks.alerts")
    clock.now += 5
    metrics.written += 100
    metrics.errors += 40  # the burst: 40 failures against 1,100 documents in the window
    metrics.rejected += 20
    collector.sample()
    clock.now += 5
    collector.sample()  # still in the window: the same alert does not fire again
    assert [a.rule for a in received] == ["error_rate"]
    assert received[0].value == pytest.approx(60 / 1160)
    records = [r for r in dw_caplog.records if getattr(r, "event", None) == "alert"]
    assert len(records) == 1 and records[0].alert == "error_rate"
    assert collector.get_summary()["alerts"][0]["rule"] == "error_rate"


def test_one_bad_document_is_not_a_burst():
    manager = AlertManager(AlertThresholds(error_rate=0.01, min_errors=5, max_rss_mb=1e9))
    fired = manager.evaluate(WindowStats(30, processed=10, failures=1, throttled=0,
                                         rss_bytes=0, since_progress_s=0))
    assert fired == []


def test_alert_rearms_after_clearing_and_broken_callback_is_contained():
    def broken(alert):
        raise RuntimeError("callback bug")

    manager = AlertManager(AlertThresholds(throttled_per_minute=10, max_rss_mb=1e9), [broken])
    hot = WindowStats(60, processed=100, failures=0, throttled=30, rss_bytes=0,
                      since_progress_s=0)
    calm = WindowStats(60, processed=100, failures=0, throttled=0, rss_bytes=0,
                       since_progress_s=0)
    assert [a.rule for a in manager.evaluate(hot)] == ["throttling"]
    assert manager.evaluate(hot) == []
    assert manager.evaluate(calm) == []
    assert [a.rule for a in manager.evaluate(hot)] == ["throttling"]
    assert len(manager.fired) == 2


def test_memory_and_stall_alerts():
    manager = AlertManager(AlertThresholds(max_rss_mb=100, stall_seconds=60))
    window = WindowStats(30, processed=0, failures=0, throttled=0, rss_bytes=200_000_000,
                         since_progress_s=90)
    assert sorted(a.rule for a in manager.evaluate(window)) == ["memory", "stalled"]
    finished = AlertManager(AlertThresholds(max_rss_mb=1e9, stall_seconds=60))
    assert finished.evaluate(WindowStats(30, 0, 0, 0, 0, since_progress_s=90,
                                         finished=True)) == []


def test_collector_detects_stall_from_unchanged_done_count():
    collector, metrics, clock = collector_with_clock(
        thresholds=AlertThresholds(stall_seconds=60, max_rss_mb=1e9))
    metrics.written = 10
    collector.sample()
    clock.now += 61
    collector.sample()
    assert [a.rule for a in collector.alerts.fired] == ["stalled"]


# -- logs -----------------------------------------------------------------------------------


def test_collector_logs_retry_throttle_and_error_events_once_per_sample(dw_caplog):
    dw_caplog.set_level(logging.INFO, logger="dataworks")
    metrics = RunMetrics()
    collector = MetricsCollector(metrics, alerts=AlertManager(AlertThresholds(max_rss_mb=1e9)))
    metrics.retries += 3
    metrics.throttled += 2
    metrics.rejected += 1
    collector.sample()
    collector.sample()  # nothing new: nothing logged
    events = [r.event for r in dw_caplog.records if hasattr(r, "event")]
    assert sorted(events) == ["error", "retry", "throttled"]
    throttled = next(r for r in dw_caplog.records if getattr(r, "event", None) == "throttled")
    assert throttled.count == 2 and throttled.levelno == logging.WARNING


def test_json_formatter_one_parsable_object_per_line():
    formatter = JsonFormatter()
    logger = logging.getLogger("dataworks.test")
    record = logger.makeRecord("dataworks.test", logging.WARNING, __file__, 1,
                               'quote " and\nnewline', (), None,
                               extra={"event": "alert", "alert": "memory", "value": 1.5})
    line = formatter.format(record)
    assert "\n" not in line
    payload = json.loads(line)
    assert payload["event"] == "alert" and payload["alert"] == "memory"
    assert payload["message"] == 'quote " and\nnewline' and payload["level"] == "warning"


def test_configure_logging_json_routes_events(capsys):
    configure_logging(fmt="json")
    try:
        event(logging.getLogger("dataworks.migrate"), "run_started", "go", run_id="r1")
        logging.getLogger("pymongo").warning("driver says hi")
        err = capsys.readouterr().err.strip().splitlines()
        parsed = [json.loads(line) for line in err]
        assert parsed[0]["event"] == "run_started" and parsed[0]["run_id"] == "r1"
        assert parsed[1]["logger"] == "pymongo"
    finally:
        configure_logging(fmt="text")


def test_a_sample_counts_the_seconds_since_the_run_started_after_the_copy_finished():
    """`--live`: the copy's counters stop (`finish()`), the run goes on replaying; the
    metrics file's elapsed_s must keep counting."""
    metrics = RunMetrics()
    metrics.started_at = time.monotonic() - 10.0
    metrics.finished_at = metrics.started_at + 1.0  # the copy took 1 s
    row = MetricsCollector(metrics, log_events=False).sample()
    assert row["elapsed_s"] >= 10.0
