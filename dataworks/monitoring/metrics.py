"""Counters the engines bump; progress displays, summaries and exports read them.

Engines never call into the UI: they increment fields of a `RunMetrics` (cheap attribute
adds on the event loop), and whoever wants to show or export figures samples it.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psutil

T = TypeVar("T")
# The metrics of the run being shown (set by `show_progress`), so that the phases after the
# copy can report themselves without every layer passing a `RunMetrics` down.
_current: ContextVar[RunMetrics | None] = ContextVar("dataworks_run_metrics", default=None)
LATENCY_KEEP = 100_000  # batch latencies kept for percentiles (the most recent ones)


@dataclass
class RunMetrics:
    """Live counters of one run. All counts are documents unless named otherwise."""

    total: int | None = None  # expected documents, when known
    read: int = 0
    written: int = 0  # acknowledged by the target (or sent, when unacknowledged)
    already_present: int = 0  # duplicate key on insert, the same bytes on the target
    replaced: int = 0  # duplicate `_id`, a different document: replaced by the new version
    kept_different: int = 0  # ... kept as it was (--keep-existing)
    transformed: int = 0
    dropped: int = 0  # the strategy returned None
    rejected: int = 0  # dead-lettered
    bytes_written: int = 0
    batches: int = 0
    retries: int = 0
    throttled: int = 0  # throttling answers, both sides (16500 / 429 / 50)
    source_throttled: int = 0  # of which on reads (find, getMore, aggregate, count, $sample)
    errors: int = 0
    concurrency: int = 0
    read_concurrency: int = 0  # source round trips allowed in flight (adaptive)
    read_batch_size: int = 0  # documents per source round trip (adaptive)
    request_units: float = 0.0
    ru_budget: float | None = None  # RU/s allowed per Cosmos side (--ru-per-second), if any
    resumed_from: int = 0  # documents already done by earlier runs
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    peak_rss_bytes: int = 0
    # request units by "side:command" (e.g. "target:insert"), filled by monitoring.ru
    request_units_by: dict[str, float] = field(default_factory=dict)
    # sides whose server answered that it reports no charges: said once per run, not per meter
    request_units_unsupported: set[str] = field(default_factory=set)
    # --live after the copy: phase, events_applied, events_per_s, lag_s (seconds behind)
    live: dict[str, Any] = field(default_factory=dict)
    batch_latencies: deque[float] = field(
        default_factory=lambda: deque(maxlen=LATENCY_KEEP), repr=False
    )
    batch_latency_count: int = 0  # all batches timed, also those no longer in the deque
    batch_latency_total_s: float = 0.0
    # After the copy: what is being done now ("verifying (hash)"), how far it is, and how
    # long each finished phase took (for the summary).
    phase: str = ""
    phase_done: int = 0
    phase_total: int | None = None
    phase_unit: str = "documents"
    phase_started_at: float | None = None
    phase_seconds: dict[str, float] = field(default_factory=dict)
    # Within a phase: the step under way ("comparing with the target", "index by_date (1/2)"),
    # since when (its rate and ETA count from there), and what is not known, said plainly
    # instead of guessed ("docs/s unknown: ...").
    phase_detail: str = ""
    phase_note: str = ""
    phase_step_at: float | None = None
    _process: psutil.Process = field(default_factory=psutil.Process, repr=False)
    _ru_samples: deque[tuple[float, float]] = field(default_factory=deque, repr=False)

    @property
    def done(self) -> int:
        """Documents accounted for, including earlier runs of a resumed job."""
        return (self.resumed_from + self.written + self.already_present + self.replaced
                + self.kept_different + self.dropped + self.rejected)

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started_at

    def docs_per_second(self) -> float:
        elapsed = self.elapsed
        handled = self.written + self.already_present + self.replaced + self.kept_different
        return handled / elapsed if elapsed > 0 else 0.0

    def mb_per_second(self) -> float:
        elapsed = self.elapsed
        return self.bytes_written / elapsed / 1e6 if elapsed > 0 else 0.0

    def recent_request_units_per_second(self, window_s: float = 10.0) -> float:
        """RU/s over about the last `window_s` seconds (sampled by whoever calls this)."""
        now = time.monotonic()
        self._ru_samples.append((now, self.request_units))
        while len(self._ru_samples) > 2 and now - self._ru_samples[1][0] >= window_s:
            self._ru_samples.popleft()
        first_t, first_ru = self._ru_samples[0]
        if now - first_t <= 0.5:  # no earlier sample yet: the run's average
            return self.request_units / self.elapsed if self.elapsed > 0 else 0.0
        return (self.request_units - first_ru) / (now - first_t)

    def sample_memory(self) -> int:
        rss = int(self._process.memory_info().rss)
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        return rss

    def record_batch_latency(self, seconds: float) -> None:
        self.batch_latencies.append(seconds)
        self.batch_latency_count += 1
        self.batch_latency_total_s += seconds

    async def timed(self, awaitable: Awaitable[T]) -> T:
        """Await one batch write and record how long it took (retries included)."""
        started = time.monotonic()
        try:
            return await awaitable
        finally:
            self.record_batch_latency(time.monotonic() - started)

    @contextlib.contextmanager
    def in_phase(self, name: str, total: int | None = None,
                 unit: str = "documents") -> Iterator[None]:
        """Mark a phase after the copy (index builds, verification) for the display and
        record its duration under `name` in `phase_seconds`."""
        self.phase, self.phase_done, self.phase_total, self.phase_unit = name, 0, total, unit
        self.phase_started_at = self.phase_step_at = time.monotonic()
        self.phase_detail = self.phase_note = ""
        try:
            yield
        finally:
            self.phase_seconds[name] = time.monotonic() - self.phase_started_at
            self.phase, self.phase_started_at, self.phase_step_at = "", None, None
            self.phase_detail = self.phase_note = ""

    def phase_step(self, detail: str, total: int | None = None, unit: str = "documents",
                   note: str = "") -> None:
        """A new step of the current phase: its own count, total and rate from now."""
        self.phase_detail, self.phase_note = detail, note
        self.phase_done, self.phase_total, self.phase_unit = 0, total, unit
        self.phase_step_at = time.monotonic()

    def finish(self) -> None:
        self.sample_memory()
        self.finished_at = time.monotonic()


@contextlib.contextmanager
def current_run(metrics: RunMetrics) -> Iterator[None]:
    token = _current.set(metrics)
    try:
        yield
    finally:
        _current.reset(token)


@contextlib.contextmanager
def run_phase(name: str, total: int | None = None, unit: str = "documents") -> Iterator[None]:
    """`RunMetrics.in_phase` on the current run's metrics (nothing when there are none)."""
    metrics = _current.get()
    if metrics is None:
        yield
        return
    with metrics.in_phase(name, total, unit):
        yield


def phase_progress(count: int) -> None:
    """`count` more units of the current phase are done (documents compared, ...)."""
    metrics = _current.get()
    if metrics is not None and metrics.phase:
        metrics.phase_done += count


def in_a_phase() -> bool:
    """Whether a phase of the current run is being shown (progress is wanted)."""
    metrics = _current.get()
    return metrics is not None and bool(metrics.phase)


def phase_step(detail: str, total: int | None = None, unit: str = "documents",
               note: str = "") -> None:
    """`RunMetrics.phase_step` on the current run's phase (nothing outside a phase)."""
    metrics = _current.get()
    if metrics is not None and metrics.phase:
        metrics.phase_step(detail, total, unit, note)


def phase_position(done: int, total: int | None = None, note: str = "") -> None:
    """Where the current step is, as the server reports it (an index build's documents)."""
    metrics = _current.get()
    if metrics is not None and metrics.phase:
        metrics.phase_done, metrics.phase_note = done, note
        if total is not None:
            metrics.phase_total = total
