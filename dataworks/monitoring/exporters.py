"""Metrics files: JSON (`{"format", "summary", "samples"}`) or CSV (one row per sample,
then one `kind=summary` row with the run's totals in the same columns), chosen by extension.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataworks.errors import UserError

if TYPE_CHECKING:
    from dataworks.monitoring.collector import MetricsCollector

FORMAT = "dataworks-metrics/1"
SUMMARY_ONLY = ("label", "status", "alerts", "batch_latency_mean_ms", "batch_latency_max_ms")


def metrics_format(path: str | Path) -> str:
    """"json" or "csv" from the file name; anything else is a user error (caught early)."""
    suffix = Path(path).suffix.lower()
    if suffix in (".json", ".csv"):
        return suffix[1:]
    raise UserError(
        f"--metrics-file {path}: the name must end in .json or .csv",
        hint="the extension chooses the format",
    )


def to_json(summary: dict[str, Any], samples: list[dict[str, Any]]) -> str:
    return json.dumps({"format": FORMAT, "summary": summary, "samples": samples},
                      indent=1, default=str)


def summary_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary flattened into the time series' columns (totals, overall rates)."""
    latency = summary["batch_latency_ms"]
    resources = summary["resources"]
    return {
        "kind": "summary",
        "label": summary["label"],
        "status": summary["status"],
        "elapsed_s": summary["duration_s"],
        **summary["totals"],
        "concurrency": resources["concurrency"],
        **summary["rates"],
        "batch_latency_p50_ms": latency["p50"],
        "batch_latency_p95_ms": latency["p95"],
        "batch_latency_p99_ms": latency["p99"],
        "batch_latency_mean_ms": latency["mean"],
        "batch_latency_max_ms": latency["max"],
        "batches_timed": latency["count"],
        "cpu_percent": resources["cpu_percent_mean"],
        "rss_mb": resources["peak_rss_mb"],
        "children_rss_mb": resources["peak_children_rss_mb"],
        "alerts": ";".join(a["rule"] for a in summary["alerts"]),
    }


def to_csv(summary: dict[str, Any], samples: list[dict[str, Any]]) -> str:
    last = summary_row(summary)
    columns = list(samples[0]) if samples else [k for k in last if k not in SUMMARY_ONLY]
    columns += [k for k in SUMMARY_ONLY if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(samples)
    writer.writerow(last)
    return out.getvalue()


def write_metrics(collector: MetricsCollector, path: str | Path) -> Path:
    """Write atomically (temp file, then rename): a reader never sees half a file."""
    target = Path(path)
    text = collector.export_metrics(metrics_format(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return target
