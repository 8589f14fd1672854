"""Show a `RunMetrics` while a run goes: a rich bar on a terminal, log lines otherwise.

The display samples the counters on a timer; engines never call it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dataworks.monitoring.logs import json_logging
from dataworks.monitoring.metrics import RunMetrics

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
    if metrics.throttled:
        parts.append(f"[bold red]throttled {metrics.throttled}[/]")
    if metrics.errors or metrics.rejected:
        parts.append(f"[red]errors {metrics.errors} rejected {metrics.rejected}[/]")
    if metrics.live:  # --live, after the copy: how far behind the source
        lag = metrics.live.get("lag_s")
        parts.append(f"{metrics.live.get('phase', 'replay')}: "
                     f"{metrics.live.get('events_applied', 0):,} events, "
                     f"{metrics.live.get('events_per_s', 0):,.0f} events/s, "
                     f"lag {'?' if lag is None else f'{lag:,.0f}'} s")
    if metrics.request_units_by:  # known only when a side is Cosmos DB
        parts.append(f"RU/s {metrics.request_units / max(metrics.elapsed, 1e-9):,.0f} "
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
    """Render progress while the body runs (rich bar on a TTY, periodic log lines off one)."""
    if not enabled:
        yield
        return
    # A rich bar would break "one JSON object per line": JSON logs get log lines instead.
    terminal = sys.stderr.isatty() and not json_logging()
    if terminal:
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
            console=Console(stderr=True),
            transient=False,
        )
        task = progress.add_task(label, total=metrics.total, stats="")

        async def refresh() -> None:
            while True:
                progress.update(task, completed=metrics.done, total=metrics.total,
                                stats=_stats_line(metrics))
                await asyncio.sleep(interval)

        with progress:
            ticker = asyncio.create_task(refresh())
            try:
                yield
            finally:
                ticker.cancel()
                progress.update(task, completed=metrics.done, stats=_stats_line(metrics))
        return

    async def log_lines() -> None:
        while True:
            await asyncio.sleep(log_interval)
            total = f"/{metrics.total:,}" if metrics.total is not None else ""
            plain = _stats_line(metrics).replace("[bold red]", "").replace("[red]", "").replace("[/]", "")
            log.info("%s: %s%s documents · %s", label, f"{metrics.done:,}", total, plain)

    ticker = asyncio.create_task(log_lines())
    try:
        yield
    finally:
        ticker.cancel()
