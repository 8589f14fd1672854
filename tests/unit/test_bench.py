"""The benchmark's own arithmetic and measurement, without servers."""

from __future__ import annotations

import sys
from pathlib import Path

from bench._common import VOLVO, encoded_batches, raw_documents, run_measured
from bench.run import IN_PROCESS_VOLVO, add_ratios, source_warm_up, summarize_profile, table


def test_run_measured_pipeline_counts_both_processes(tmp_path: Path) -> None:
    burn = "import sys\nx=0\nfor i in range(2_000_000): x+=i\nsys.stdout.write('a'*100000)"
    count = "import sys; n=len(sys.stdin.read()); x=sum(range(2_000_000)); print(n)"
    m = run_measured([[sys.executable, "-c", burn], [sys.executable, "-c", count]],
                     cwd=tmp_path, log_dir=tmp_path, name="pipe")
    assert m.ok
    assert (tmp_path / "pipe.out").read_text().strip() == "100000"
    assert m.cpu_seconds > 0.05  # both children's CPU, from wait4
    assert m.peak_rss_bytes > 5_000_000


def test_run_measured_reports_failure(tmp_path: Path) -> None:
    fail = "import sys; print('boom', file=sys.stderr); sys.exit(3)"
    m = run_measured([[sys.executable, "-c", fail]], cwd=tmp_path, log_dir=tmp_path, name="fail")
    assert not m.ok and m.returncodes == [3]
    assert m.stderr_tail == ["boom"]


def test_encoded_batches_are_deterministic_and_raw() -> None:
    first = encoded_batches(VOLVO, seed=5, total=30, batch_size=20)
    again = encoded_batches(VOLVO, seed=5, total=30, batch_size=20)
    assert first == again and len(first) == 2
    docs = raw_documents(first[1])
    assert len(docs) == 10 and docs[0].raw[:4] == len(docs[0].raw).to_bytes(4, "little")


def test_ratios_and_table() -> None:
    def r(name: str, kind: str, docs_per_s: float, cpu: float) -> dict[str, object]:
        return {"name": name, "kind": kind, "docs": 1000, "seconds": 1000 / docs_per_s,
                "docs_per_s": docs_per_s, "mb_per_s": 1.0, "client_cpu_s_per_100k": cpu,
                "client_peak_rss_mb": 100.0, "load_before": [0.5, 0.5, 0.5], "ok": True}

    rows = [r("ceiling", "ceiling", 1000, 1), r("migrate", "migrate", 900, 20),
            r("tools -j1", "mongotools", 600, 10), r("tools -j4", "mongotools", 800, 40)]
    add_ratios(rows)
    assert rows[1]["vs_ceiling"] == 0.9
    assert rows[1]["vs_mongotools"] == 1.12  # against the faster mongo-tools run
    assert rows[1]["cpu_vs_mongotools"] == 0.5
    assert "0.90" in table(1000, rows)


def test_client_limit_ratios_are_printed() -> None:
    def r(name: str, kind: str, docs_per_s: float, **extra: object) -> dict[str, object]:
        return {"name": name, "kind": kind, "docs": 1000, "seconds": 1000 / docs_per_s,
                "docs_per_s": docs_per_s, "mb_per_s": 1.0, "client_cpu_s_per_100k": 1.0,
                "client_peak_rss_mb": None, "load_before": [0.5, 0.5, 0.5], "ok": True,
                **extra}

    rows = [r("bare copy", "bare-copy", 1000),
            r("dataworks migrate (default strategy)", "migrate", 950),
            r("dataworks migrate (volvo strategy)", "migrate", 300),
            r(f"dataworks migrate ({IN_PROCESS_VOLVO})", "migrate", 200),
            r("stage, 1 worker", "transform-stage", 100, workers=1),
            r("stage, 2 workers", "transform-stage", 180, workers=2)]
    add_ratios(rows)
    assert rows[1]["vs_bare_copy"] == 0.95
    assert rows[2]["vs_in_process"] == 1.5 and "vs_in_process" not in rows[3]
    assert rows[5]["vs_one_worker"] == 1.8
    printed = table(1000, rows)
    assert "dataworks migrate (default strategy): 0.95 x bare copy" in printed
    assert "dataworks migrate (volvo strategy): 0.30 x bare copy, 1.50 x --transform-workers 0" \
        in printed
    assert "stage, 2 workers: 1.80 x one worker" in printed


def test_summarize_profile(tmp_path: Path) -> None:
    raw = tmp_path / "p.txt"
    raw.write_text(
        "<module> (a.py:1);_find_and_load (<frozen>:2) 30\n"
        "write_loop (engine.py:3);insert_many (collection.py:4);_write (x.py:5) 50\n"
        "read (reader.py:6);decode_all (bson.py:7) 20\n"
    )
    summary = summarize_profile(raw)
    assert summary["samples"] == 100
    assert summary["areas"]["startup: imports"] == 30.0
    assert summary["areas"]["insert_many: encode, send, await reply"] == 50.0
    assert summary["self_top"][0] == ("_write (x.py)", 50, 50.0)


def test_the_source_jvm_gets_the_ceilings_warm_up_before_generation() -> None:
    """The generate row is held to the ceiling, whose insert runs on a JVM its sweep warmed:
    the source JVM gets the same sweep first (mongo-java-server), FerretDB nothing."""
    import argparse

    args = argparse.Namespace(sweep_docs=20_000, seed=42, batch_size=1000,
                              ceiling_concurrency="1,2,4,8")
    argv = source_warm_up("mongojava", "mongodb://127.0.0.1:1/", args)
    assert argv is not None and argv[1:3] == ["-m", "bench.ceiling"]
    flags = dict(zip(argv[3::2], argv[4::2]))
    assert flags == {"--uri": "mongodb://127.0.0.1:1/", "--db": "bench", "--total": "20000",
                     "--seed": "42", "--batch-size": "1000", "--concurrency": "1,2,4,8",
                     "--sweep-docs": "20000"}
    assert source_warm_up("ferretdb", "mongodb://127.0.0.1:1/", args) is None
