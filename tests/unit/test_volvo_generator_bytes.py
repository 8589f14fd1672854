"""The volvo generator's output is pinned byte for byte: its hot loop may be rewritten for speed,
never its documents. The digests are those of commit ed70cb8 (before the struct-packed loop):
sha256 of every batch blob (with the engine's `_id`s) of a run, in batch order."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dataworks.generators.source import resolve_source
from dataworks.generators.worker import BatchMaker, BatchPlan

VOLVO = str(Path(__file__).resolve().parents[2] / "user_defined/generators/volvo_generator.py")


@pytest.mark.parametrize(("seed", "total", "batch_size", "digest"), [
    (42, 20_000, 1_000, "f7d88ec3429f87ac8115f5585876523b0b8578f3ddd5302fac7d185d3a6dab7f"),
    (7, 5_003, 250, "197d2ba0cac3ac201538c95bc1ef06f8038cf38f16050e7d28966acf251e101f"),
])
def test_volvo_documents_are_those_of_the_pinned_seed(seed: int, total: int, batch_size: int,
                                                      digest: str) -> None:
    maker = BatchMaker(BatchPlan(resolve_source(VOLVO), seed, total, batch_size))
    sha = hashlib.sha256()
    for index in range(-(-total // batch_size)):
        sha.update(maker.make(index).blob)
    assert sha.hexdigest() == digest
