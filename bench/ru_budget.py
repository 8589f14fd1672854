"""Does `--ru-per-second` hold a migration to its request-unit budget on a Cosmos DB source?

    .venv/bin/python -m bench.ru_budget [--docs 50000] [--provisioned 1000]
                                        [--runs full,half,changed,adaptive]

Two fresh mongo-java-server JVMs (2 and 3 GB heap; FerretDB reads far below 1,000 RU/s of
volvo documents on a busy 2-core machine, so the budget would never bind); the source is
loaded with volvo documents (`dataworks generate`, seed 42) and read through the Cosmos DB
stand-in (`dataworks.testing.cosmos`)
provisioned at `--provisioned` RU/s (reads cost about 1 RU per KB returned). Up to four runs of
`dataworks migrate --source-kind cosmos` (metering by getLastRequestStatistics):

1. `--ru-per-second` = the provisioned rate;
2. half of it;
3. half of it, changed to the full rate with `dataworks throttle RUN_ID` after 30 s;
4. (`adaptive`) no `--ru-per-second`: only the stand-in's 16500 answers and the adaptive
   read limiter hold the rate.

`--runs full,half,changed,adaptive` picks some of them.

For each: byte-exact check of the target, throttling answers met, and the RU/s spent once
warmed up (what the stand-in billed, polled every 0.25 s; the first 10 s of reading and the last 2 s
left out); for run 3, how long after the `throttle` command returned the account's rate rose
above 75% of the new budget.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.migrate_scale import _load_volvo
from bench.run import DB, SOURCE, clean_env, dataworks_argv, drop
from dataworks.testing.cosmos import CosmosStandIn
from dataworks.testing.mongojava import MongoJavaServer
from tests.migration_helpers import raw_by_id

WARM_UP_S = 10.0


def migrate(source: str, target: str, work: Path, name: str, budget: float | None,
            standin: CosmosStandIn, standin_rate: float,
            change: tuple[float, float] | None = None) -> dict[str, Any]:
    """One run; the account's side of it (what the stand-in billed) polled every 0.25 s."""
    store = work / f"{name}.ckpt.json"
    metrics_file = work / f"{name}.metrics.json"
    limit = [] if budget is None else ["--ru-per-second", str(budget)]
    argv = [*dataworks_argv(), "migrate", "--quiet", "--source-kind", "cosmos", *limit,
            "--verify", "none", "--batch-size", "200",
            "--checkpoint-store", f"file:{store}", "--metrics-file", str(metrics_file),
            "--source-uri", source, "--source-db", DB, "--source-collection", SOURCE,
            "--target-uri", target, "--target-db", DB, "--target-collection", name]
    load = os.getloadavg()
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=work, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    series: list[tuple[float, float]] = []
    changer: subprocess.Popen[str] | None = None
    launched = written = None
    while proc.poll() is None:
        now = time.monotonic() - started
        series.append((now, standin.counters.request_units))
        if change is not None and changer is None and now >= change[0] and store.exists():
            run_id = json.loads(store.read_text())["run_id"]
            launched = now
            changer = subprocess.Popen(
                [*dataworks_argv(), "throttle", run_id, "--ru-per-second", str(change[1]),
                 "--checkpoint-store", f"file:{store}"], cwd=work, env=clean_env(),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if changer is not None and written is None and changer.poll() is not None:
            written = now
        time.sleep(0.25)
    out, err = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"migrate {name} failed ({proc.returncode}): {err[-2000:]}")
    report = json.loads(metrics_file.read_text())["summary"]["report"]
    result = {"name": name, "budget": budget, "load_before": [round(x, 2) for x in load],
              "seconds": report["duration_s"],
              "throttled": report["throttled"], "source_throttled": report["source_throttled"],
              "request_units": report["request_units"], "read": report["read"]}
    reading = next(t for t, ru in series if ru > 500)  # start-up over, reading
    end = max(t for t, ru in series if ru < series[-1][1])  # the last bill
    result["warm_ru_per_s"] = _rate(series, reading + WARM_UP_S, end - 2)
    # Against --ru-per-second, or what the account provisions when there is none (adaptive).
    result["share_of_budget"] = (None if result["warm_ru_per_s"] is None else
                                 round(result["warm_ru_per_s"] / (budget or standin_rate), 3))
    if launched is not None and written is not None:
        result["throttle_command_s"] = [round(launched, 1), round(written, 1)]
        result["before_change_ru_per_s"] = _rate(series, reading + WARM_UP_S, launched)
        result["after_change_ru_per_s"] = _rate(series, written + 5, end - 2)
        result["took_effect_after_s"] = _took_effect(series, written, 0.75 * change[1])
    return result


def _rate(series: list[tuple[float, float]], start: float, end: float) -> float | None:
    inside = [(t, ru) for t, ru in series if start <= t <= end]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    (t0, ru0), (t1, ru1) = inside[0], inside[-1]
    return round((ru1 - ru0) / (t1 - t0), 1)


def _took_effect(series: list[tuple[float, float]], at: float, above: float) -> float | None:
    """Seconds from `at` until a 2-second window first billed more than `above` RU/s."""
    for t, _ in series:
        if t >= at and (rate := _rate(series, t, t + 2.0)) is not None and rate > above:
            return round(t - at, 1)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--provisioned", type=float, default=1000.0)
    parser.add_argument("--runs", default="full,half,changed,adaptive")
    args = parser.parse_args(argv)
    wanted = set(args.runs.split(","))
    full, half = args.provisioned, args.provisioned / 2
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg())
          + f"; {args.docs:,} volvo documents, the stand-in provisioned at {full:,.0f} RU/s",
          flush=True)
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
                                             ("changed", half, (30.0, full)),
                                             ("adaptive", None, None)):
                    if name not in wanted:
                        continue
                    standin.reset_counters()
                    row = migrate(standin.uri, target.uri, work, name, budget, standin, full,
                                  change)
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
