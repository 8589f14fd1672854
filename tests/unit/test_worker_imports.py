"""Worker processes import only what they use (issue 19): a strategy or generator file's
`from dataworks import ...` must not load the CLI's settings model, the engines or rich,
which cost every transform and generation worker ~0.4 s of start-up and ~15-30 MB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pydantic", "pydantic_settings", "typer", "rich", "dataworks.config.settings",
         "dataworks.migrations.engine", "dataworks.commands")

# What a worker process runs: the worker modules, then the user's file's imports.
WORKER = """
import json, sys
import dataworks.migrations.transform_worker
import dataworks.generators.worker
from dataworks import BaseMigrationStrategy, BaseDataGenerator, PluginError
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def test_a_worker_process_loads_no_cli_settings_or_engines() -> None:
    out = subprocess.run([sys.executable, "-c", WORKER.format(heavy=HEAVY)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_public_names_still_load_on_first_use() -> None:
    import dataworks

    assert dataworks.migrate.__module__ == "dataworks.commands"
    assert dataworks.preview_generation.__name__ == "preview"
    assert "MigrationEngine" in dir(dataworks)
