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
from dataworks.commands import migrate
from dataworks.generators.base import BaseDataGenerator
from dataworks.generators.run import GenerationReport, generate
from dataworks.generators.run import preview as preview_generation
from dataworks.migrations.engine import MigrationEngine, MigrationOptions
from dataworks.migrations.preview import MigrationPreview, preview_migration
from dataworks.migrations.report import MigrationReport
from dataworks.migrations.strategy import BaseMigrationStrategy, DefaultStrategy, StrategyContext
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
