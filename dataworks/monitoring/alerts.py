"""Alerts: thresholds on error rate, throttling, memory and stalled progress.

The `MetricsCollector` hands an `AlertManager` one `WindowStats` per sample. A rule fires
when its condition becomes true and re-arms only after it has cleared, so a run that stays
throttled for an hour raises one alert, not one per sample. Each alert goes to the log
(event `alert`, level WARNING) and to every registered callback; a callback that raises is
logged and does not stop the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import psutil

from dataworks.monitoring.logs import event

log = logging.getLogger("dataworks.alerts")


@dataclass(frozen=True)
class AlertThresholds:
    # share of the documents handled in the window that failed (errors + rejected)
    error_rate: float = 0.01
    min_errors: int = 5  # ...and at least this many failures, so one bad document is no burst
    throttled_per_minute: float = 60.0  # throttling responses per minute, over the window
    max_rss_mb: float | None = None  # None: 80% of this machine's memory
    stall_seconds: float = 120.0  # no document done for this long while running

    def rss_limit_bytes(self) -> float:
        if self.max_rss_mb is not None:
            return self.max_rss_mb * 1e6
        return 0.8 * psutil.virtual_memory().total


@dataclass(frozen=True)
class WindowStats:
    """What happened over the collector's sliding window, as alert rules see it."""

    seconds: float
    processed: int  # documents written or already present in the window
    failures: int  # errors + rejected in the window
    throttled: int  # throttling responses in the window
    rss_bytes: int
    since_progress_s: float  # seconds since the done count last moved
    finished: bool = False


@dataclass(frozen=True)
class Alert:
    rule: str  # error_rate | throttling | memory | stalled
    message: str
    value: float
    threshold: float
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    severity: str = "warning"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


AlertCallback = Callable[[Alert], None]


class AlertManager:
    def __init__(self, thresholds: AlertThresholds | None = None,
                 callbacks: list[AlertCallback] | None = None) -> None:
        self.thresholds = thresholds or AlertThresholds()
        self.callbacks: list[AlertCallback] = list(callbacks or [])
        self.fired: list[Alert] = []
        self._active: set[str] = set()
        self._rss_limit = self.thresholds.rss_limit_bytes()

    def add_callback(self, callback: AlertCallback) -> None:
        self.callbacks.append(callback)

    def evaluate(self, window: WindowStats) -> list[Alert]:
        """Check every rule against one window; return (and deliver) the alerts that fire."""
        fired = []
        for rule, alert in self._conditions(window).items():
            if alert is None:
                self._active.discard(rule)
            elif rule not in self._active:
                self._active.add(rule)
                fired.append(alert)
                self._deliver(alert)
        return fired

    def _conditions(self, w: WindowStats) -> dict[str, Alert | None]:
        t = self.thresholds
        out: dict[str, Alert | None] = {}
        handled = w.processed + w.failures
        rate = w.failures / handled if handled else 0.0
        out["error_rate"] = (
            Alert("error_rate", f"{w.failures:,} of {handled:,} documents failed in the last "
                  f"{w.seconds:.0f}s ({rate:.1%})", rate, t.error_rate)
            if w.failures >= t.min_errors and rate >= t.error_rate else None
        )
        per_minute = w.throttled * 60.0 / w.seconds if w.seconds > 0 else 0.0
        out["throttling"] = (
            Alert("throttling", f"throttled {w.throttled:,} times in the last {w.seconds:.0f}s "
                  f"({per_minute:,.0f}/min): the server wants fewer requests; consider more "
                  "RU/s or fewer workers", per_minute, t.throttled_per_minute)
            if w.throttled and per_minute >= t.throttled_per_minute else None
        )
        out["memory"] = (
            Alert("memory", f"memory {w.rss_bytes / 1e6:,.0f} MB is over "
                  f"{self._rss_limit / 1e6:,.0f} MB", w.rss_bytes / 1e6, self._rss_limit / 1e6)
            if w.rss_bytes >= self._rss_limit else None
        )
        out["stalled"] = (
            Alert("stalled", f"no progress for {w.since_progress_s:,.0f}s",
                  w.since_progress_s, t.stall_seconds)
            if not w.finished and w.since_progress_s >= t.stall_seconds else None
        )
        return out

    def _deliver(self, alert: Alert) -> None:
        self.fired.append(alert)
        event(log, "alert", f"alert {alert.rule}: {alert.message}", level=logging.WARNING,
              alert=alert.rule, value=alert.value, threshold=alert.threshold,
              severity=alert.severity)
        for callback in self.callbacks:
            try:
                callback(alert)
            except Exception:  # noqa: BLE001 - a broken callback must not stop the run
                log.exception("alert callback %r failed", callback)
