"""Does `--ru-per-second` hold a migration to its request-unit budget on a Cosmos DB source?

    .venv/bin/python -m bench.ru_budget [--docs 50000] [--provisioned 1000]

Two fresh mongo-java-server JVMs (2 and 3 GB heap; FerretDB reads far below 1,000 RU/s of
volvo documents on a busy 2-core machine, so the budget would never bind); the source is
loaded with volvo documents (`dataworks generate`, seed 42) and read through the Cosmos DB
stand-in (`dataworks.testing.cosmos`)
provisioned at `--provisioned` RU/s (reads cost about 1 RU per KB returned). Three runs of
`dataworks migrate --source-kind cosmos` (metering by getLastRequestStatistics):

1. `--ru-per-second` = the provisioned rate;
2. half of it;
3. half of it, changed to the full rate with `dataworks throttle RUN_ID` after 30 s.

For each: byte-exact check of the target, throttling answers met, and the RU/s spent once
warmed up (from the metrics file's cumulative request units, first 10 s and the tail left
out); for run 3, how long after the `throttle` command the rate rose above 75% of the new
budget.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.migrate_scale import _load_volvo
from bench.run import DB, SOURCE, clean_env, dataworks_argv, drop
from dataworks.testing.cosmos import CosmosStandIn
from dataworks.testing.mongojava import MongoJavaServer
from tests.migration_helpers import raw_by_id

WARM_UP_S = 10.0


def migrate(source: str, target: str, work: Path, name: str, budget: float,
            change: tuple[float, float] | None = None) -> dict[str, Any]:
    store = work / f"{name}.ckpt.json"
    metrics_file = work / f"{name}.metrics.json"
    argv = [*dataworks_argv(), "migrate", "--quiet", "--source-kind", "cosmos",
            "--ru-per-second", str(budget), "--verify", "none", "--batch-size", "200",
            "--checkpoint-store", f"file:{store}", "--metrics-file", str(metrics_file),
            "--source-uri", source, "--source-db", DB, "--source-collection", SOURCE,
            "--target-uri", target, "--target-db", DB, "--target-collection", name]
    started = time.monotonic()
    changed_at: list[float] = []
    proc = subprocess.Popen(argv, cwd=work, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if change is not None:
        after_s, new_budget = change

        def later() -> None:
            time.sleep(after_s)
            run_id = json.loads(store.read_text())["run_id"]
            subprocess.run([*dataworks_argv(), "throttle", run_id, "--ru-per-second",
                            str(new_budget), "--checkpoint-store", f"file:{store}"],
                           cwd=work, env=clean_env(), check=True, capture_output=True)
            changed_at.append(time.monotonic() - started)

        threading.Thread(target=later, daemon=True).start()
    out, err = proc.communicate(timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"migrate {name} failed ({proc.returncode}): {err[-2000:]}")
    data = json.loads(metrics_file.read_text())
    samples = [s for s in data["samples"] if s.get("kind") == "sample"]
    report = data["summary"]["report"]
    result = {"name": name, "budget": budget, "seconds": report["duration_s"],
              "throttled": report["throttled"], "source_throttled": report["source_throttled"],
              "request_units": report["request_units"], "read": report["read"]}
    result["warm_ru_per_s"] = _rate(samples, WARM_UP_S, None)
    if changed_at:
        at = changed_at[0]
        result["changed_at_s"] = round(at, 1)
        result["before_change_ru_per_s"] = _rate(samples, WARM_UP_S, at)
        result["after_change_ru_per_s"] = _rate(samples, at + 10, None)
        result["took_effect_after_s"] = _took_effect(samples, at, 0.75 * change[1])
    return result


def _rate(samples: list[dict[str, Any]], start: float, end: float | None) -> float | None:
    """RU/s between the first sample at or after `start` and the last one before `end`
    (the run's last sample left out: the tail of a run has less to read)."""
    inside = [s for s in samples[:-1] if s["elapsed_s"] >= start
              and (end is None or s["elapsed_s"] <= end)]
    if len(inside) < 2:
        return None
    first, last = inside[0], inside[-1]
    span = last["elapsed_s"] - first["elapsed_s"]
    return round((last["request_units"] - first["request_units"]) / span, 1) if span else None


def _took_effect(samples: list[dict[str, Any]], at: float, above: float) -> float | None:
    """Seconds from the change until a 5-second window first spent more than `above`."""
    for i, s in enumerate(samples):
        if s["elapsed_s"] < at:
            continue
        window = [p for p in samples[i:] if p["elapsed_s"] <= s["elapsed_s"] + 5]
        if len(window) >= 2:
            span = window[-1]["elapsed_s"] - window[0]["elapsed_s"]
            if span > 0 and (window[-1]["request_units"] - window[0]["request_units"]) / span \
                    > above:
                return round(window[0]["elapsed_s"] - at, 1)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--provisioned", type=float, default=1000.0)
    args = parser.parse_args(argv)
    full, half = args.provisioned, args.provisioned / 2
    with tempfile.TemporaryDirectory(prefix="dw-ru-budget-") as tmp:
        work = Path(tmp)
        source = MongoJavaServer(work / "source", heap="2g").start()
        target = MongoJavaServer(work / "target", heap="3g").start()
        try:
            _load_volvo(source.uri, args.docs, work)
            expected = raw_by_id(source.uri, DB, SOURCE)
            with CosmosStandIn.in_front_of(source.uri, ru_per_s=full) as standin:
                rows = []
                for name, budget, change in (("full", full, None), ("half", half, None),
                                             ("changed", half, (30.0, full))):
                    standin.reset_counters()
                    row = migrate(standin.uri, target.uri, work, name, budget, change)
                    row["standin_throttled"] = standin.counters.throttled
                    row["standin_request_units"] = round(standin.counters.request_units, 1)
                    row["exact"] = raw_by_id(target.uri, DB, name) == expected
                    drop(target.uri, name)  # the in-memory target keeps one copy at a time
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            source.stop()
            target.stop()
    return 0 if all(r["exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
