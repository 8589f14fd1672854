"""Find the strategy class for `--strategy PATH[:ClassName]` (or the default)."""

from __future__ import annotations

from pathlib import Path

from dataworks.migrations.strategy import BaseMigrationStrategy, DefaultStrategy
from dataworks.plugins import load_plugin


def load_strategy(spec: str | None) -> tuple[type[BaseMigrationStrategy], str]:
    """The class and a stable reference to it (file name and class; part of the run id)."""
    if not spec:
        return DefaultStrategy, "default"
    cls, ref = load_plugin(spec, BaseMigrationStrategy, kind="strategy")
    return cls, f"{Path(ref.path).name}:{ref.class_name}"
