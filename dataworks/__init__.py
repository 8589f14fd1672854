"""DataWorks: generate test data into, and migrate large collections between, MongoDB-API
databases, exactly resumable, with strategy and generator plugins loaded by path."""

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
from dataworks.generators.base import BaseDataGenerator
from dataworks.migrations.strategy import BaseMigrationStrategy, StrategyContext

__all__ = [
    "BaseDataGenerator",
    "BaseMigrationStrategy",
    "CheckpointError",
    "DataWorksError",
    "Interrupted",
    "PluginError",
    "RunFailed",
    "Settings",
    "SettingsError",
    "StrategyContext",
    "TemplateError",
    "UserError",
    "__version__",
    "load_settings",
]
