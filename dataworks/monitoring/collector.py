"""`MetricsCollector`: samples a `RunMetrics` on a timer into a time series and a summary.

Engines only bump counters; the collector turns them into what operators read:

- rates over a sliding window (docs/s, MB/s, RU/s), batch latency percentiles,
- per-window errors, retries and throttling, logged as structured events (`retry`,
  `throttled`, `error`) once per sample that saw any, so a storm of retries is a few lines,
- CPU and memory from a `PerformanceMonitor`, alerts from an `AlertManager`,
- `get_summary()` and `export_metrics("json"|"csv")`; the summary's totals are the
  `RunMetrics` counters, the same numbers the run's report is built from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dataworks.monitoring.alerts import AlertManager, WindowStats
from dataworks.monitoring.logs import event
from dataworks.monitoring.metrics import RunMetrics
from dataworks.monitoring.performance import PerformanceMonitor

log = logging.getLogger("dataworks.metrics")

TOTALS = ("read", "written", "already_present", "replaced", "kept_different", "transformed",
          "dropped", "rejected",
          "errors", "retries", "throttled", "batches", "bytes_written", "request_units",
          "resumed_from")


@dataclass(frozen=True)
class _Point:
    at: float
    done: int
    processed: int  # written + already_present + replaced + kept_different
    bytes: int
    request_units: float
    failures: int  # errors + rejected
    throttled: int


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(rank) - 1]


class MetricsCollector:
    def __init__(
        self,
        metrics: RunMetrics | None = None,
        *,
        label: str = "run",
        window_s: float = 30.0,
        performance: PerformanceMonitor | None = None,
        alerts: AlertManager | None = None,
        log_events: bool = True,
        max_samples: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics or RunMetrics()
        self.label = label
        self.window_s = window_s
        self.performance = performance or PerformanceMonitor()
        self.alerts = alerts or AlertManager()
        self.log_events = log_events
        self.clock = clock
        self.samples: list[dict[str, Any]] = []
        self.max_samples = max_samples
        self.status = "running"
        self.report: dict[str, Any] | None = None
        self.started_wall = datetime.now(UTC)
        self._window: deque[_Point] = deque()
        self._last_done = self.metrics.done
        self._last_progress_at = clock()
        self._seen_latencies = self.metrics.batch_latency_count
        self._seen = {"retries": self.metrics.retries, "throttled": self.metrics.throttled,
                      "errors": self.metrics.errors, "rejected": self.metrics.rejected}
        self._task: asyncio.Task[None] | None = None

    # -- sampling ---------------------------------------------------------------------------

    def sample(self) -> dict[str, Any]:
        """Take one time-series sample now (also evaluates alerts and logs events)."""
        m = self.metrics
        now = self.clock()
        point = _Point(now, m.done,
                       m.written + m.already_present + m.replaced + m.kept_different,
                       m.bytes_written,
                       m.request_units, m.errors + m.rejected, m.throttled)
        self._window.append(point)
        while len(self._window) > 2 and now - self._window[1].at >= self.window_s:
            self._window.popleft()  # keep one point at or before the window's start
        first = self._window[0]
        span = now - first.at
        if point.done != self._last_done:
            self._last_done, self._last_progress_at = point.done, now

        resources = self.performance.sample()
        m.peak_rss_bytes = max(m.peak_rss_bytes, resources.rss_bytes)
        new = m.batch_latency_count - self._seen_latencies
        self._seen_latencies = m.batch_latency_count
        recent = list(m.batch_latencies)[-new:] if new > 0 else []

        def rate(value: float) -> float:
            return value / span if span > 0 else 0.0

        row: dict[str, Any] = {
            "kind": "sample",
            "ts": datetime.now(UTC).isoformat(),
            # Since the run started, whatever it does now: a live run's replay follows its
            # copy (`m.elapsed` stops at the copy's end, for the copy's rates).
            "elapsed_s": round(time.monotonic() - m.started_at, 3),
            "done": m.done,
            "total": m.total,
            **{name: getattr(m, name) for name in TOTALS},
            "concurrency": m.concurrency,
            "docs_per_s": round(rate(point.processed - first.processed), 2),
            "mb_per_s": round(rate(point.bytes - first.bytes) / 1e6, 3),
            "ru_per_s": round(rate(point.request_units - first.request_units), 2),
            "batch_latency_p50_ms": round(percentile(recent, 50) * 1e3, 2),
            "batch_latency_p95_ms": round(percentile(recent, 95) * 1e3, 2),
            "batch_latency_p99_ms": round(percentile(recent, 99) * 1e3, 2),
            "batches_timed": len(recent),
            "cpu_percent": round(resources.cpu_percent, 1),
            "rss_mb": round(resources.rss_bytes / 1e6, 1),
            "children_cpu_percent": round(resources.children_cpu_percent, 1),
            "children_rss_mb": round(resources.children_rss_bytes / 1e6, 1),
            **({"live": dict(m.live)} if m.live else {}),
        }
        if len(self.samples) < self.max_samples:
            self.samples.append(row)
        self._log_deltas()
        self.alerts.evaluate(WindowStats(
            seconds=span,
            processed=point.processed - first.processed,
            failures=point.failures - first.failures,
            throttled=point.throttled - first.throttled,
            rss_bytes=resources.rss_bytes,
            since_progress_s=now - self._last_progress_at,
            finished=m.finished_at is not None,
        ))
        return row

    def _log_deltas(self) -> None:
        m = self.metrics
        current = {"retries": m.retries, "throttled": m.throttled, "errors": m.errors,
                   "rejected": m.rejected}
        delta = {k: current[k] - self._seen[k] for k in current}
        self._seen = current
        if not self.log_events:
            return
        if delta["throttled"] > 0:
            event(log, "throttled", f"throttled {delta['throttled']:,} more times "
                  f"(total {m.throttled:,}); backing off", level=logging.WARNING,
                  count=delta["throttled"], total_throttled=m.throttled)
        if delta["retries"] > 0:
            event(log, "retry", f"{delta['retries']:,} more retries (total {m.retries:,})",
                  count=delta["retries"], total_retries=m.retries)
        if delta["errors"] > 0 or delta["rejected"] > 0:
            event(log, "error", f"{delta['errors']:,} errors and {delta['rejected']:,} rejected "
                  f"documents since the last sample (totals {m.errors:,}, {m.rejected:,})",
                  level=logging.WARNING, errors=delta["errors"], rejected=delta["rejected"],
                  total_errors=m.errors, total_rejected=m.rejected)

    # -- timer ------------------------------------------------------------------------------

    def start(self, interval: float = 5.0) -> None:
        """Sample every `interval` seconds on the running event loop until `stop()`."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    self.sample()
                except Exception:  # noqa: BLE001 - monitoring must never stop a run
                    log.exception("metrics sample failed")

        self.sample()
        self._task = asyncio.create_task(loop(), name="dataworks-metrics")

    async def stop(self, status: str | None = None) -> None:
        """Stop the timer and take the final sample (after the engine's last increment)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if status is not None:
            self.status = status
        self.sample()

    def attach_report(self, report: dict[str, Any]) -> None:
        """Keep the run's own report in the summary, so files show both side by side."""
        self.report = report
        status = report.get("status")
        if isinstance(status, str):
            self.status = status

    # -- results ----------------------------------------------------------------------------

    def get_summary(self) -> dict[str, Any]:
        m = self.metrics
        latencies = list(m.batch_latencies)
        perf = self.performance
        elapsed = m.elapsed
        summary: dict[str, Any] = {
            "label": self.label,
            "status": self.status,
            "started_at": self.started_wall.isoformat(),
            "duration_s": round(elapsed, 3),
            "totals": {"done": m.done, "total": m.total,
                       **{name: getattr(m, name) for name in TOTALS}},
            "rates": {
                "docs_per_s": round(m.docs_per_second(), 2),
                "mb_per_s": round(m.mb_per_second(), 3),
                "ru_per_s": round(m.request_units / elapsed, 2) if elapsed > 0 else 0.0,
            },
            "request_units_by": {k: round(v, 3) for k, v in sorted(m.request_units_by.items())},
            "batch_latency_ms": {
                "count": m.batch_latency_count,
                "mean": round(m.batch_latency_total_s / m.batch_latency_count * 1e3, 2)
                if m.batch_latency_count else 0.0,
                "p50": round(percentile(latencies, 50) * 1e3, 2),
                "p95": round(percentile(latencies, 95) * 1e3, 2),
                "p99": round(percentile(latencies, 99) * 1e3, 2),
                "max": round(max(latencies, default=0.0) * 1e3, 2),
            },
            "resources": {
                "peak_rss_mb": round(max(m.peak_rss_bytes, perf.peak_rss_bytes) / 1e6, 1),
                "peak_children_rss_mb": round(perf.peak_children_rss_bytes / 1e6, 1),
                "cpu_percent_mean": round(perf.cpu_percent_mean, 1),
                "cpu_percent_max": round(perf.cpu_percent_max, 1),
                "concurrency": m.concurrency,
            },
            "alerts": [a.to_dict() for a in self.alerts.fired],
            "samples": len(self.samples),
        }
        if self.report is not None:
            summary["report"] = self.report
        return summary

    def export_metrics(self, fmt: str = "json") -> str:
        from dataworks.monitoring.exporters import to_csv, to_json

        if fmt == "json":
            return to_json(self.get_summary(), self.samples)
        if fmt == "csv":
            return to_csv(self.get_summary(), self.samples)
        raise ValueError(f"unknown metrics format {fmt!r} (json or csv)")
