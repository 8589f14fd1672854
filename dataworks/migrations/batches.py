"""The unit of work between reader and insert workers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Batch:
    partition: int  # Partition.index
    seq: int  # 0-based position of this batch within its partition, in _id order
    last_id: Any  # _id of the last *source* document of the batch
    source_count: int  # source documents read (before transform)
    documents: list[Any]  # RawBSONDocument (pass-through) or dicts (transformed)
    nbytes: int  # source BSON bytes, for MB/s
