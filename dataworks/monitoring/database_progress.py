"""Progress of a database run: a line per running collection and one overall line; finished
collections fold into the overall count. Rich lines on a terminal, log lines otherwise.

The display samples the run on a timer (`DatabaseRun.running()`, `.finished_count()`,
`.refresh_metrics()`); the run never calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from dataworks.monitoring.display import SEP, phase_cells
from dataworks.monitoring.logs import json_logging
from dataworks.monitoring.metrics import RunMetrics

log = logging.getLogger("dataworks.progress")


def _eta(done: int, total: int | None, rate: float) -> str:
    if not total or rate <= 0 or done >= total:
        return "-"
    seconds = int((total - done) / rate)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def collection_line(name: str, m: RunMetrics) -> str:
    """The collection's copy, then the phase after it (index build, verification) if one
    is under way: what is being done, and its own count, rate and ETA."""
    if m.phase:
        return f"  {name}: {m.done:,} documents copied · " + SEP.join(
            c.text for c in phase_cells(m))
    total = f"/{m.total:,}" if m.total is not None else ""
    rate = m.docs_per_second()
    if m.live:  # --live, copied: replaying and following its change stream
        lag = m.live.get("lag_s")
        return (f"  {name}: {m.live.get('phase', 'replay')} · "
                f"{m.live.get('events_applied', 0):,} events · "
                f"{m.live.get('events_per_s', 0):,.0f} events/s · "
                f"lag {'?' if lag is None else f'{lag:,.1f}'} s")
    return (f"  {name}: {m.done:,}{total} documents · {rate:,.0f} docs/s · "
            f"ETA {_eta(m.done, m.total, rate)}")


def overall_line(run: Any) -> str:
    m: RunMetrics = run.refresh_metrics()
    rate = m.docs_per_second()
    return (f"database: {run.finished_count()}/{len(run.jobs)} collections done · "
            f"{m.done:,}/{m.total or 0:,} documents · {m.bytes_written / 1e6:,.1f} MB · "
            f"{rate:,.0f} docs/s · ETA {_eta(m.done, m.total, rate)}")


def _lines(run: Any) -> list[str]:
    return [overall_line(run)] + [collection_line(j.pair.source, j.metrics)
                                  for j in run.running()]


@contextlib.asynccontextmanager
async def show_database_progress(current: Callable[[], Any | None], *, enabled: bool = True,
                                 interval: float = 0.5,
                                 log_interval: float = 10.0) -> AsyncIterator[None]:
    """`current()` returns the `DatabaseRun` once it exists (None before)."""
    if not enabled:
        yield
        return
    if sys.stderr.isatty() and not json_logging():
        console = Console(stderr=True)
        with Live(Text(""), console=console, refresh_per_second=4, transient=False) as live:

            async def refresh() -> None:
                while True:
                    run = current()
                    if run is not None and run.jobs:
                        live.update(Group(*(Text(line) for line in _lines(run))))
                    await asyncio.sleep(interval)

            ticker = asyncio.create_task(refresh())
            try:
                yield
            finally:
                ticker.cancel()
                run = current()
                if run is not None and run.jobs:
                    live.update(Text(overall_line(run)))
        return

    async def log_lines() -> None:
        while True:
            await asyncio.sleep(log_interval)
            run = current()
            if run is not None and run.jobs:
                for line in _lines(run):
                    log.info("%s", line.strip())

    ticker = asyncio.create_task(log_lines())
    try:
        yield
    finally:
        ticker.cancel()
