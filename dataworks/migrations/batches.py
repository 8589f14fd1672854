"""The unit of work between reader and insert workers."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Awaitable
from typing import Any


@dataclass(slots=True)
class Batch:
    partition: int  # Partition.index
    seq: int  # 0-based position of this batch within its partition, in reading order
    # Where a resumed run starts once this batch is acknowledged: the `_id` of its last
    # source document, or the natural-order position after it (natural.py).
    mark: Any
    source_count: int  # source documents read (before transform)
    documents: list[Any]  # RawBSONDocument (pass-through) or dicts (transformed)
    nbytes: int  # source BSON bytes, for MB/s
    # Set when worker processes transform the batch (transform_pool.py): `documents` is
    # empty and this gives them with their origins (below); the insert worker awaits it.
    pending: Awaitable[tuple[list[Any], list[Any]]] | None = None
    # The source `_id` each document came from, when a transform made them (a split gives
    # several documents one origin); None when each document is its source document.
    origins: list[Any] | None = None
