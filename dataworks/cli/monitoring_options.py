"""Monitoring options shared by `generate` and `migrate`: --metrics-file, --source-kind,
--target-kind, and the closing request-unit line."""

# No `from __future__ import annotations`: typer reads these annotations at runtime.

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dataworks.monitoring.metrics import RunMetrics

PANEL = "Monitoring"


class ServerKind(str, Enum):
    auto = "auto"
    cosmos = "cosmos"
    mongodb = "mongodb"


METRICS_FILE_HELP = ("Write a time series and a final summary here: JSON or CSV, chosen by "
                     "the extension (.json or .csv).")
KIND_HELP = ("cosmos counts request units with getLastRequestStatistics; auto: cosmos when "
             "the host ends in .cosmos.azure.com or the server answers as Cosmos DB does "
             "(hello _t: IsMasterResponse, getLastRequestStatistics).")

MetricsFileOption = Annotated[
    Path | None, typer.Option("--metrics-file", help=METRICS_FILE_HELP, rich_help_panel=PANEL)
]
SourceKindOption = Annotated[
    ServerKind, typer.Option("--source-kind", help=f"Source server kind: {KIND_HELP}",
                             rich_help_panel=PANEL)
]
TargetKindOption = Annotated[
    ServerKind, typer.Option("--target-kind", help=f"Target server kind: {KIND_HELP}",
                             rich_help_panel=PANEL)
]


def request_units_line(metrics: RunMetrics) -> str | None:
    """"1,234.5 RU (56 RU/s; target:insert 1,000.0, source:find 234.5)", when any were read."""
    if not metrics.request_units_by:
        return None
    elapsed = metrics.elapsed
    rate = metrics.request_units / elapsed if elapsed > 0 else 0.0
    parts = ", ".join(f"{k} {v:,.1f}" for k, v in sorted(metrics.request_units_by.items()))
    return f"request units: {metrics.request_units:,.1f} RU ({rate:,.1f} RU/s; {parts})"


def print_request_units(metrics: RunMetrics, console: Console | None = None) -> None:
    line = request_units_line(metrics)
    if line is not None:
        (console or Console(soft_wrap=True)).print(line, markup=False)
