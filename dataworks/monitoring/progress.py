"""Show a `RunMetrics` while a run goes: a live display on a terminal, log lines otherwise.

The display (`display.ProgressView`, laid out for the terminal's width) samples the counters
on a timer; engines never call it. While it is up, log lines go through the same console,
so they print above it instead of through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator

from rich.console import Console
from rich.live import Live

from dataworks.monitoring.display import SEP, PhaseView, ProgressView, phase_cells
from dataworks.monitoring.logs import json_logging, logs_above_display
from dataworks.monitoring.metrics import RunMetrics, current_run

log = logging.getLogger("dataworks.progress")


def _stats_line(metrics: RunMetrics) -> str:
    parts = [
        f"{metrics.docs_per_second():,.0f} docs/s",
        f"{metrics.mb_per_second():,.1f} MB/s",
        f"mem {metrics.sample_memory() / 1e6:,.0f} MB",
    ]
    if metrics.concurrency:
        parts.append(f"workers {metrics.concurrency}")
    if metrics.retries:
        parts.append(f"retries {metrics.retries}")
    if metrics.read_concurrency and metrics.source_throttled:  # reads slowed down
        parts.append(f"reads {metrics.read_concurrency}×{metrics.read_batch_size}")
    if metrics.throttled:
        source = f" (source {metrics.source_throttled})" if metrics.source_throttled else ""
        parts.append(f"[bold red]throttled {metrics.throttled}{source}[/]")
    if metrics.errors or metrics.rejected:
        parts.append(f"[red]errors {metrics.errors} rejected {metrics.rejected}[/]")
    if metrics.live:  # --live, after the copy: how far behind the source
        lag = metrics.live.get("lag_s")
        parts.append(f"{metrics.live.get('phase', 'replay')}: "
                     f"{metrics.live.get('events_applied', 0):,} events, "
                     f"{metrics.live.get('events_per_s', 0):,.0f} events/s, "
                     f"lag {'?' if lag is None else f'{lag:,.0f}'} s")
    if metrics.request_units_by:  # known only when a side is Cosmos DB
        budget = f" of {metrics.ru_budget:,.0f} budget" if metrics.ru_budget else ""
        parts.append(f"RU/s {metrics.recent_request_units_per_second():,.0f}{budget} "
                     f"(total {metrics.request_units:,.0f})")
    return " · ".join(parts)


@contextlib.asynccontextmanager
async def show_progress(
    metrics: RunMetrics,
    label: str,
    *,
    enabled: bool = True,
    interval: float = 0.25,
    log_interval: float = 10.0,
) -> AsyncIterator[None]:
    """Render progress while the body runs (live display on a TTY, log lines off one).
    Phases after the copy (`metrics.run_phase`) report to `metrics` inside, shown or not."""
    with current_run(metrics):
        async with _show(metrics, label, enabled=enabled, interval=interval,
                         log_interval=log_interval):
            yield


@contextlib.asynccontextmanager
async def show_phase(name: str, *, total: int | None = None, enabled: bool = True,
                     interval: float = 0.25, log_interval: float = 10.0) -> AsyncIterator[None]:
    """A command that is one phase (`verify`, `indexes copy`): only its phase line, live on
    a terminal, a log line every `log_interval` seconds otherwise."""
    metrics = RunMetrics()
    with current_run(metrics), metrics.in_phase(name, total=total):
        async with _show(metrics, name, enabled=enabled, interval=interval,
                         log_interval=log_interval, phase_only=True):
            yield


@contextlib.asynccontextmanager
async def _show(metrics: RunMetrics, label: str, *, enabled: bool, interval: float,
                log_interval: float, phase_only: bool = False) -> AsyncIterator[None]:
    if not enabled:
        yield
        return
    # A live display would break "one JSON object per line": JSON logs get log lines instead.
    terminal = sys.stderr.isatty() and not json_logging()
    if terminal:
        console = Console(stderr=True)
        view = PhaseView(metrics) if phase_only else ProgressView(metrics, label)
        with Live(view, console=console, refresh_per_second=max(1, int(1 / interval)),
                  transient=False, redirect_stdout=False, redirect_stderr=True), \
                logs_above_display():
            yield
        return

    async def log_lines() -> None:
        while True:
            await asyncio.sleep(log_interval)
            if not phase_only:
                total = f"/{metrics.total:,}" if metrics.total is not None else ""
                plain = _stats_line(metrics).replace("[bold red]", "").replace(
                    "[red]", "").replace("[/]", "")
                log.info("%s: %s%s documents · %s", label, f"{metrics.done:,}", total, plain)
            if metrics.phase:
                phase = SEP.join(c.text for c in phase_cells(metrics)).removeprefix("▸ ")
                if phase_only:
                    log.info("%s", phase)
                else:
                    log.info("%s: %s", label, phase)

    ticker = asyncio.create_task(log_lines())
    try:
        yield
    finally:
        ticker.cancel()
