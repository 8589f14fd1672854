"""The public surface is pinned: adding or removing a name is a deliberate, reviewed change."""

from __future__ import annotations

import inspect
from pathlib import Path

import dataworks
import dataworks.testing

PUBLIC = [
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

TESTING = [
    "GeneratorContract",
    "StrategyContract",
    "arun_strategy",
    "as_from_server",
    "id_key",
    "make_strategy",
    "run_strategy",
    "sample_from_generator",
]


def test_all_is_pinned() -> None:
    assert sorted(dataworks.__all__) == PUBLIC


def test_every_public_name_exists() -> None:
    for name in dataworks.__all__:
        assert getattr(dataworks, name) is not None, name
    for name in dataworks.testing.__all__:
        assert getattr(dataworks.testing, name) is not None, name


def test_testing_kit_names_are_pinned() -> None:
    assert dataworks.testing.__all__ == TESTING


def test_commands_are_async_functions() -> None:
    for name in ("migrate", "generate", "preview_migration"):
        assert inspect.iscoroutinefunction(getattr(dataworks, name)), name
    assert not inspect.iscoroutinefunction(dataworks.preview_generation)


def test_errors_form_one_hierarchy_with_exit_codes() -> None:
    assert issubclass(dataworks.PluginError, dataworks.UserError)
    assert issubclass(dataworks.UserError, dataworks.DataWorksError)
    assert (dataworks.UserError.exit_code, dataworks.RunFailed.exit_code,
            dataworks.Interrupted.exit_code) == (2, 1, 130)


def test_the_package_ships_type_information_and_templates() -> None:
    root = Path(dataworks.__file__).parent
    assert (root / "py.typed").is_file()
    assert {p.name for p in (root / "templates").glob("*.tmpl")} >= {"strategy.py.tmpl",
                                                                       "generator.py.tmpl"}


def test_the_original_frameworks_names_exist() -> None:
    """Names the original framework documented; `DataGenerationEngine` is replaced by
    `dataworks.generate` (see CUSTOM_STRATEGIES_GUIDE.md, "From Python")."""
    for name in ("MigrationEngine", "BaseMigrationStrategy", "BaseDataGenerator",
                 "MetricsCollector", "PerformanceMonitor"):
        assert inspect.isclass(getattr(dataworks, name)), name
    collector = dataworks.MetricsCollector(dataworks.RunMetrics(), log_events=False)
    assert isinstance(collector.performance, dataworks.PerformanceMonitor)
