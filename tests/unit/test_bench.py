"""The benchmark's own arithmetic and measurement, without servers."""

from __future__ import annotations

import sys
from pathlib import Path

from bench._common import VOLVO, encoded_batches, raw_documents, run_measured
from bench.run import add_ratios, summarize_profile, table


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
