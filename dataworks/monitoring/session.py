"""`monitor_run`: collect metrics, raise alerts and write `--metrics-file` around one run.

    metrics = RunMetrics()
    async with monitor_run(metrics, label="migrate", metrics_file="run.json") as collector:
        report = await commands.migrate(settings, metrics=metrics)
        collector.attach_report(report.to_dict())
    collector.get_summary()

The file is written on the way out whatever happened (status completed / interrupted /
failed), so a failed night run still leaves its time series behind.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from dataworks.errors import Interrupted
from dataworks.monitoring.alerts import AlertCallback, AlertManager, AlertThresholds
from dataworks.monitoring.collector import MetricsCollector
from dataworks.monitoring.exporters import metrics_format, write_metrics
from dataworks.monitoring.logs import event
from dataworks.monitoring.metrics import RunMetrics

log = logging.getLogger("dataworks.metrics")
DEFAULT_INTERVAL_S = 5.0


@contextlib.asynccontextmanager
async def monitor_run(
    metrics: RunMetrics,
    *,
    label: str,
    metrics_file: str | Path | None = None,
    interval: float = DEFAULT_INTERVAL_S,
    window_s: float = 30.0,
    thresholds: AlertThresholds | None = None,
    callbacks: list[AlertCallback] | None = None,
) -> AsyncIterator[MetricsCollector]:
    if metrics_file is not None:
        metrics_format(metrics_file)  # a bad name fails before the run, not after it
    collector = MetricsCollector(metrics, label=label, window_s=window_s,
                                 alerts=AlertManager(thresholds, callbacks))
    collector.start(interval)
    status = "completed"
    try:
        yield collector
    except Interrupted:
        status = "interrupted"
        raise
    except BaseException:
        status = "failed"
        raise
    finally:
        await collector.stop(None if status == "completed" and collector.report else status)
        if metrics_file is not None:
            try:
                path = write_metrics(collector, metrics_file)
            except OSError as exc:
                log.error("could not write the metrics file %s: %s", metrics_file, exc)
            else:
                event(log, "metrics_written", f"metrics written to {path}", path=str(path),
                      samples=len(collector.samples))
