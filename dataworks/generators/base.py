"""The class users subclass to generate documents.

`generate_document(document_id=None)` is the original framework's hook and is all a
generator needs. For speed a generator may also override `generate_batch(start, count)`,
or `encode_batch(start, count)` to return BSON bytes directly (see
`dataworks.generators.bsonfast` and `user_defined/generators/volvo_generator.py`).
A document without `_id` gets one from the engine, deterministic in (seed, document index),
so a resumed run recognises re-sent documents as already written. A generator that sets its
own `_id` must make it deterministic too, or a resumed run may write a document twice.
Generation runs in worker processes: each worker loads the generator file again from its
path and builds one instance per worker, seeded per batch so that `--seed S` gives the same
documents whatever the worker count. Use `self.random` (a `random.Random`), never the
module-level `random` functions, or the output will not be reproducible.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

import bson


class BaseDataGenerator:
    """Subclass this in a `.py` file and pass it with `dataworks generate --source PATH`."""

    __hooks__: ClassVar[dict[str, bool]] = {
        "generate_document": False,
        "generate_batch": False,
        "encode_batch": False,
    }

    name: ClassVar[str | None] = None

    def __init__(self, seed: int | None = None) -> None:
        self.random = random.Random(seed)

    def reseed(self, seed: int) -> None:
        """Called by the engine before each batch so output does not depend on scheduling."""
        self.random.seed(seed)

    def generate_document(self, document_id: int | None = None) -> dict[str, Any]:
        """Return one document. `document_id` is its 0-based position in the run."""
        raise NotImplementedError

    def generate_batch(self, start: int, count: int) -> list[dict[str, Any]]:
        """Documents `start` .. `start + count - 1`; override to build them faster."""
        return [self.generate_document(start + i) for i in range(count)]

    def encode_batch(self, start: int, count: int) -> list[bytes]:
        """The batch as BSON documents; override to skip building dicts (the fast path)."""
        from dataworks.generators.probe import require_mapping

        encode = bson.encode
        out = []
        for offset, doc in enumerate(self.generate_batch(start, count)):
            require_mapping(self, doc, start + offset)
            out.append(encode(doc))
        return out

    @classmethod
    def display_name(cls) -> str:
        return cls.name or cls.__name__
