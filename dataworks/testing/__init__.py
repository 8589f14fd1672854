"""Test kit for people who write strategies and generators (and for DataWorks itself).

    from dataworks.testing import run_strategy, StrategyContract, GeneratorContract

- `run_strategy(strategy, docs)` / `await arun_strategy(...)`: the documents the engine would
  write for `docs` (drop, split and reshape as in a migration), no server needed.
- `StrategyContract`, `GeneratorContract`: test classes to subclass; they check the rules the
  engines rely on (loads, hooks, deterministic `_id`s, BSON output, seed reproducibility).
- `sample_from_generator(path, count, seed)`: documents a generator makes, as test input.
- pytest fixtures (`mongo_uri`, `source_uri`, `target_uri`, `mongo_client`,
  `unique_db_name`) come from the `dataworks.testing.plugin` pytest plugin, active as soon as
  DataWorks is installed.

Names are imported lazily so that loading the pytest plugin stays cheap and pytest can
rewrite the contract's asserts.
"""

from __future__ import annotations

from typing import Any

_NAMES = {
    "run_strategy": "dataworks.testing.run",
    "arun_strategy": "dataworks.testing.run",
    "make_strategy": "dataworks.testing.run",
    "as_from_server": "dataworks.testing.run",
    "StrategyContract": "dataworks.testing.contract",
    "GeneratorContract": "dataworks.testing.contract",
    "sample_from_generator": "dataworks.testing.contract",
    "id_key": "dataworks.testing.contract",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'dataworks.testing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_NAMES])
