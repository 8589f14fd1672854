"""A transform worker decodes, transforms and encodes a batch `CHUNK` documents at a time
(issue 19: a whole 1,000-document volvo batch as dicts is ~11 MB of each worker's RSS), and
what it sends back is exactly what transforming the whole batch at once gives: the same
bytes, drops, splits, counts and source `_id`s."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import bson
import pytest

from dataworks.core.clients import Endpoint
from dataworks.migrations import transform_worker
from dataworks.migrations.reader import apply_transform, encode_transformed
from dataworks.migrations.transform_worker import CHUNK, WorkerPlan, _Worker, chunks
from dataworks.monitoring.metrics import RunMetrics
from dataworks.plugins import PluginRef

STRATEGY = textwrap.dedent("""
    from dataworks import BaseMigrationStrategy

    class Strategy(BaseMigrationStrategy):
        def transform(self, doc):
            n = doc["n"]
            if n % 7 == 3:
                return None  # dropped
            if n % 11 == 5:  # split in two, new _ids
                return [{"_id": f"{n}-a", "n": n}, {"_id": f"{n}-b", "n": n}]
            doc["seen"] = True
            return doc
""")


def _docs(count: int) -> list[dict[str, Any]]:
    return [{"_id": i, "n": i, "pad": "x" * (i % 50)} for i in range(count)]


def _worker(tmp_path: Path) -> _Worker:
    path = tmp_path / "strategy.py"
    path.write_text(STRATEGY)
    source = Endpoint("mongodb://127.0.0.1:1/", "db", "c")  # never connected
    return _Worker(WorkerPlan(PluginRef(str(path), "Strategy"), source, "db.c", "db.out", 10))


def test_chunks_split_a_blob_at_document_boundaries() -> None:
    docs = _docs(2 * CHUNK + 7)
    blob = b"".join(bson.encode(d) for d in docs)
    parts = list(chunks(blob, CHUNK))
    assert [len(bson.decode_all(p)) for p in parts] == [CHUNK, CHUNK, 7]
    assert b"".join(parts) == blob
    assert list(chunks(b"", CHUNK)) == []


@pytest.mark.parametrize("count", [1, CHUNK, 3 * CHUNK + 41])
def test_a_worker_batch_is_decoded_chunk_by_chunk_with_the_same_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    docs = _docs(count)
    blob = b"".join(bson.encode(d) for d in docs)

    # The whole batch at once, as the in-process path does it.
    metrics = RunMetrics()
    worker = _worker(tmp_path)
    whole_origins: list[Any] = []
    out = asyncio.run(apply_transform(worker.transform, bson.decode_all(blob), metrics,
                                      whole_origins))
    whole = b"".join(d.raw for d in encode_transformed(out))

    decoded: list[int] = []
    real = transform_worker.bson.decode_all

    def counting(data: bytes, *args: Any, **kwargs: Any) -> list[Any]:
        result = real(data, *args, **kwargs)
        decoded.append(len(result))
        return result

    monkeypatch.setattr(transform_worker.bson, "decode_all", counting)
    result = worker.run(blob)
    worker.loop.close()

    assert max(decoded) <= CHUNK  # never a whole batch of dicts at once
    assert sum(decoded) == count
    assert result.blob == whole
    assert result.count == len(bson.decode_all(whole))
    assert (result.transformed, result.dropped) == (metrics.transformed, metrics.dropped)
    # Splits give new _ids: the source _id of every output document goes back.
    assert result.origins == (whole_origins if count > 5 else None)
