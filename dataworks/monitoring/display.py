"""The live progress display, laid out for the terminal's width.

The count and the ETA are what a person watches, so they are always shown, down to 80
columns; the rest gives way in a fixed order when space runs out: memory first, then MB/s,
then the display wraps into two lines (bar, count, ETA above; rates and warnings below), and
on the second line the least useful figures are dropped until it fits. A phase after the
copy (building indexes, verifying) gets its own line with its own count, rate and ETA.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from dataworks.monitoring.metrics import RunMetrics

SEP = " · "
BAR_MIN = 10
BAR_MAX = 40
ECHO_ROOM = 2
LABEL_WHOLE = 40


@dataclass(frozen=True)
class Cell:
    text: str
    rank: int  # lower is more important; the highest rank is dropped first
    style: str = ""


def clock(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds) or seconds < 0 or seconds > 99 * 3600:
        return "-:--:--"
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def eta_seconds(done: int, total: int | None, rate: float) -> float | None:
    if total is None:
        return None
    if done >= total:
        return 0.0
    return (total - done) / rate if rate > 0 else None


def stats_cells(metrics: RunMetrics) -> list[Cell]:
    """Rates and warnings, most important first (rank decides what is dropped)."""
    cells = [Cell(f"{metrics.docs_per_second():,.0f} docs/s", 0)]
    if metrics.live:  # --live, after the copy: events applied and how far behind the source
        lag = metrics.live.get("lag_s")
        cells.append(Cell(f"{metrics.live.get('events_applied', 0):,} events "
                          f"{metrics.live.get('events_per_s', 0):,.0f}/s lag "
                          f"{'?' if lag is None else f'{lag:,.0f}'} s", 0))
    if metrics.errors or metrics.rejected:
        cells.append(Cell(f"errors {metrics.errors} rejected {metrics.rejected}", 1, "red"))
    if metrics.throttled:
        cells.append(Cell(f"throttled {metrics.throttled}", 1, "bold red"))
    if metrics.retries:
        cells.append(Cell(f"retries {metrics.retries}", 2, "yellow"))
    if metrics.concurrency:
        cells.append(Cell(f"workers {metrics.concurrency}", 3))
    if metrics.request_units_by:  # known only when a side is Cosmos DB
        rate = metrics.request_units / max(metrics.elapsed, 1e-9)
        cells.append(Cell(f"RU/s {rate:,.0f}", 4))
    cells.append(Cell(f"{metrics.mb_per_second():,.1f} MB/s", 5))
    cells.append(Cell(f"mem {metrics.sample_memory() / 1e6:,.0f} MB", 6))
    return cells


def _width(cells: list[Cell]) -> int:
    return sum(len(c.text) for c in cells) + len(SEP) * max(0, len(cells) - 1)


def _fit(cells: list[Cell], width: int) -> list[Cell]:
    """Drop the least important cells until the rest fit in `width` (rank 0 always stays)."""
    kept = list(cells)
    while _width(kept) > width and any(c.rank > 0 for c in kept):
        worst = max(range(len(kept)), key=lambda i: (kept[i].rank, i))
        del kept[worst]
    return kept


def _join(cells: list[Cell]) -> Text:
    text = Text()
    for i, cell in enumerate(cells):
        if i:
            text.append(SEP, style="dim")
        text.append(cell.text, style=cell.style)
    return text


def _bar(done: int, total: int | None, width: int) -> Text:
    if total is None or total <= 0:
        return Text("━" * width, style="dim")
    filled = min(width, int(width * min(done, total) / total))
    text = Text("━" * filled, style="green" if done >= total else "magenta")
    text.append("━" * (width - filled), style="grey23")
    return text


class ProgressView:
    """A rich renderable: the run's progress in one, two or three lines for any width."""

    def __init__(self, metrics: RunMetrics, label: str) -> None:
        self.metrics = metrics
        self.label = label

    def lines(self, width: int) -> list[Text]:
        m = self.metrics
        done, total = m.done, m.total
        rate = m.docs_per_second()
        count = f"{done:,}/{total:,}" if total is not None else f"{done:,}"
        if total:
            count += f" {100 * min(done, total) / total:3.0f}%"
        head = [Cell(count, 0), Cell(clock(m.elapsed), 2),
                Cell(f"ETA {clock(eta_seconds(done, total, rate))}", 0)]
        stats = stats_cells(m)
        lines = self._one_line(head, stats, width, done, total)
        if lines is None:
            lines = [self._bar_line(head, width, done, total), _join(_fit(stats, width))]
        phase = self._phase_line(width)
        return lines + ([phase] if phase is not None else [])

    def _one_line(self, head: list[Cell], stats: list[Cell], width: int, done: int,
                  total: int | None) -> list[Text] | None:
        essentials = [c for c in stats if c.rank <= 4]  # without MB/s and memory
        for candidate in (stats, [c for c in stats if c.rank != 6], essentials):
            cells = head + candidate
            # One line only if the label (what is being copied) shows whole, up to 40 chars.
            need = len(self.label[:LABEL_WHOLE]) + 1 + BAR_MIN + 1 + _width(cells)
            if need <= width:
                return [self._bar_line(cells, width, done, total)]
        return None

    def _bar_line(self, cells: list[Cell], width: int, done: int, total: int | None) -> Text:
        text = _join(cells)
        room = width - len(text)
        label_room = max(0, room - BAR_MIN - 2)
        label = self.label
        if len(label) > label_room:
            label = label[:max(0, label_room - 1)] + "…" if label_room > 1 else ""
        bar_room = room - len(label) - (2 if label else 1)
        line = Text()
        if label:
            line.append(label, style="bold")
            line.append(" ")
        if bar_room >= BAR_MIN // 2:
            line.append_text(_bar(done, total, min(BAR_MAX, bar_room)))
            line.append(" ")
        line.append_text(text)
        return line

    def _phase_line(self, width: int) -> Text | None:
        if not self.metrics.phase:
            return None
        return _join(_fit(phase_cells(self.metrics), width))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Two columns spare: the terminal echoes a Ctrl-C as "^C" after the last line, and a
        # line that wraps there would leave a copy of the display behind.
        for line in self.lines(max(20, options.max_width - ECHO_ROOM)):
            line.no_wrap = True
            line.overflow = "ellipsis"
            yield line


class PhaseView:
    """Only the phase line, for commands that are nothing but a phase (`verify`,
    `indexes copy`): there is no copy to show a bar for."""

    def __init__(self, metrics: RunMetrics) -> None:
        self.metrics = metrics

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.metrics.phase:
            line = _join(_fit(phase_cells(self.metrics), max(20, options.max_width - ECHO_ROOM)))
            line.no_wrap, line.overflow = True, "ellipsis"
            yield line


def phase_cells(m: RunMetrics) -> list[Cell]:
    """The phase after the copy: what is being done, its count, rate and ETA where a total
    is known, what is not known (said, not guessed), and how long the phase has run."""
    now = time.monotonic()
    elapsed = now - (m.phase_started_at or now)
    step = now - (m.phase_step_at or m.phase_started_at or now)
    cells = [Cell(f"▸ {m.phase}" + (f": {m.phase_detail}" if m.phase_detail else ""), 0,
                  "bold cyan")]
    rate = m.phase_done / step if step > 0 else 0.0
    per_second = f"{rate:,.1f}" if 0 < rate < 10 else f"{rate:,.0f}"  # partitions: slow
    if m.phase_total:
        cells.append(Cell(f"{m.phase_done:,}/{m.phase_total:,} {m.phase_unit}", 0))
        cells.append(Cell(f"{per_second} {m.phase_unit}/s", 1))
        cells.append(Cell(f"ETA {clock(eta_seconds(m.phase_done, m.phase_total, rate))}", 0))
    elif m.phase_done:  # no total: a rate, but no ETA to invent
        cells.append(Cell(f"{m.phase_done:,} {m.phase_unit}", 0))
        cells.append(Cell(f"{per_second} {m.phase_unit}/s", 1))
    if m.phase_note:
        cells.append(Cell(m.phase_note, 1, "dim"))
    cells.append(Cell(clock(elapsed), 0))
    return cells
