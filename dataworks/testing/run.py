"""Run a strategy over given documents, the way the migration engine does, without a server.

    from dataworks.testing import run_strategy
    out = run_strategy("user_defined/strategies/my_strategy.py", [{"_id": 1, "a": 2}])

Same semantics as a migration: each document makes a round trip through BSON first (so the
strategy sees what it would see from the server: lists not tuples, UTC datetimes without
tzinfo, ...), `transform` may be `def` or `async def`, None drops the document, a list or
tuple splits it, anything else is written as it is. A strategy that does not override
`transform` copies documents unchanged. What this does not do: `build_query` and
`projection` are applied by the server, so test those with a real server (the `mongo_uri`
fixture, or `dataworks migrate --preview`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import bson

from dataworks.migrations.loading import load_strategy
from dataworks.migrations.reader import apply_transform
from dataworks.migrations.strategy import BaseMigrationStrategy, StrategyContext
from dataworks.monitoring.metrics import RunMetrics

StrategyLike = str | Path | type[BaseMigrationStrategy] | BaseMigrationStrategy


def strategy_class(strategy: StrategyLike) -> type[BaseMigrationStrategy]:
    """A class, an instance's class, or the class a `PATH[:ClassName]` file defines."""
    if isinstance(strategy, BaseMigrationStrategy):
        return type(strategy)
    if inspect.isclass(strategy):
        if not issubclass(strategy, BaseMigrationStrategy):
            raise TypeError(f"{strategy.__name__} is not a BaseMigrationStrategy subclass")
        return strategy
    cls, _ = load_strategy(str(strategy))
    return cls


def make_strategy(strategy: StrategyLike, *, source: Any = None,
                  options: dict[str, Any] | None = None) -> BaseMigrationStrategy:
    """An instance with a test context (`source` is None unless you pass a collection)."""
    if isinstance(strategy, BaseMigrationStrategy):
        return strategy
    cls = strategy_class(strategy)
    context = StrategyContext(source=source, source_namespace="test.source",
                              target_namespace="test.target", batch_size=1000,
                              options=dict(options or {}))
    return cls(context)


def as_from_server(doc: Mapping[str, Any]) -> dict[str, Any]:
    """`doc` as the engine would hand it to `transform`: encoded to BSON and decoded again."""
    return bson.decode(bson.encode(doc))


async def arun_strategy(strategy: StrategyLike, docs: Iterable[Mapping[str, Any]], *,
                        metrics: RunMetrics | None = None, on_start: bool = False,
                        source: Any = None) -> list[Any]:
    """`run_strategy` for async tests (inside a running event loop)."""
    instance = make_strategy(strategy, source=source)
    if on_start:
        await instance.on_start()
    decoded = [as_from_server(d) for d in docs]
    if not type(instance).transforms():
        return decoded
    return await apply_transform(instance.transform, decoded, metrics or RunMetrics())


def run_strategy(strategy: StrategyLike, docs: Iterable[Mapping[str, Any]], *,
                 metrics: RunMetrics | None = None, on_start: bool = False,
                 source: Any = None) -> list[Any]:
    """The documents the engine would write for `docs` (drops removed, splits flattened).

    `strategy` is a class, an instance or a `PATH[:ClassName]`. Pass `metrics` to read the
    engine's counts (`transformed`, `dropped`); `on_start=True` runs `on_start` first.
    From an async test, use `await arun_strategy(...)`.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun_strategy(strategy, docs, metrics=metrics, on_start=on_start,
                                         source=source))
    raise RuntimeError("run_strategy() was called inside an event loop; "
                       "use `await arun_strategy(...)` in async tests")
