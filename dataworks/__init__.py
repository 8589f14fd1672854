"""DataWorks: generate test data into, and migrate large collections between, MongoDB-API
databases, exactly resumable, with strategy and generator plugins loaded by path.

The public names (pinned by tests/unit/test_public_api.py):

    settings      Settings, load_settings
    commands      migrate(settings, strategy=...) -> MigrationReport
                  generate(settings, source, total=...) -> GenerationReport
                  preview_migration(settings, count, strategy=...) -> MigrationPreview
                  preview_generation(source, count, seed) -> list of extended-JSON lines
    plugins       BaseMigrationStrategy, StrategyContext, DefaultStrategy, BaseDataGenerator
    engines       MigrationEngine (with MigrationOptions)
    monitoring    RunMetrics (counters), MetricsCollector (rates, series, export),
                  PerformanceMonitor (CPU, memory)
    errors        DataWorksError and its subclasses (see dataworks.errors)

Test helpers for plugin authors live in `dataworks.testing` (run_strategy, StrategyContract,
GeneratorContract, and pytest fixtures for a real server).
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

# Each public name and the module it comes from. They are imported on first use (PEP 562):
# a strategy or generator file's `from dataworks import BaseMigrationStrategy` in a worker
# process then loads that class's module, not the whole CLI (pydantic settings, the engines,
# rich): ~0.4 s of start-up and ~30 MB less per transform or generation worker.
_SOURCES: dict[str, tuple[str, str]] = {
    "Settings": ("dataworks.config.settings", "Settings"),
    "load_settings": ("dataworks.config.settings", "load_settings"),
    "CheckpointError": ("dataworks.errors", "CheckpointError"),
    "DataWorksError": ("dataworks.errors", "DataWorksError"),
    "Interrupted": ("dataworks.errors", "Interrupted"),
    "PluginError": ("dataworks.errors", "PluginError"),
    "RunFailed": ("dataworks.errors", "RunFailed"),
    "SettingsError": ("dataworks.errors", "SettingsError"),
    "TemplateError": ("dataworks.errors", "TemplateError"),
    "UserError": ("dataworks.errors", "UserError"),
    "migrate": ("dataworks.commands", "migrate"),
    "BaseDataGenerator": ("dataworks.generators.base", "BaseDataGenerator"),
    "GenerationReport": ("dataworks.generators.run", "GenerationReport"),
    "generate": ("dataworks.generators.run", "generate"),
    "preview_generation": ("dataworks.generators.run", "preview"),
    "MigrationEngine": ("dataworks.migrations.engine", "MigrationEngine"),
    "MigrationOptions": ("dataworks.migrations.engine", "MigrationOptions"),
    "MigrationPreview": ("dataworks.migrations.preview", "MigrationPreview"),
    "preview_migration": ("dataworks.migrations.preview", "preview_migration"),
    "MigrationReport": ("dataworks.migrations.report", "MigrationReport"),
    "BaseMigrationStrategy": ("dataworks.migrations.strategy", "BaseMigrationStrategy"),
    "DefaultStrategy": ("dataworks.migrations.strategy", "DefaultStrategy"),
    "StrategyContext": ("dataworks.migrations.strategy", "StrategyContext"),
    "MetricsCollector": ("dataworks.monitoring.collector", "MetricsCollector"),
    "RunMetrics": ("dataworks.monitoring.metrics", "RunMetrics"),
    "PerformanceMonitor": ("dataworks.monitoring.performance", "PerformanceMonitor"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _SOURCES[name]
    except KeyError:
        raise AttributeError(f"module 'dataworks' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # the next lookup is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))


if TYPE_CHECKING:  # type checkers and IDEs see the names as plain imports
    from dataworks.commands import migrate
    from dataworks.config.settings import Settings, load_settings
    from dataworks.errors import (
        CheckpointError,
        DataWorksError,
        Interrupted,
        PluginError,
        RunFailed,
        SettingsError,
        TemplateError,
        UserError,
    )
    from dataworks.generators.base import BaseDataGenerator
    from dataworks.generators.run import GenerationReport, generate
    from dataworks.generators.run import preview as preview_generation
    from dataworks.migrations.engine import MigrationEngine, MigrationOptions
    from dataworks.migrations.preview import MigrationPreview, preview_migration
    from dataworks.migrations.report import MigrationReport
    from dataworks.migrations.strategy import (
        BaseMigrationStrategy,
        DefaultStrategy,
        StrategyContext,
    )
    from dataworks.monitoring.collector import MetricsCollector
    from dataworks.monitoring.metrics import RunMetrics
    from dataworks.monitoring.performance import PerformanceMonitor

__all__ = [
    "BaseDataGenerator",
    "BaseMigrationStrategy",
    "CheckpointError",
    "DataWorksError",
    "DefaultStrategy",
    "GenerationReport",
    "Interrupted",
    "MetricsCollector",
    "MigrationEngine",
    "MigrationOptions",
    "MigrationPreview",
    "MigrationReport",
    "PerformanceMonitor",
    "PluginError",
    "RunFailed",
    "RunMetrics",
    "Settings",
    "SettingsError",
    "StrategyContext",
    "TemplateError",
    "UserError",
    "__version__",
    "generate",
    "load_settings",
    "migrate",
    "preview_generation",
    "preview_migration",
]
