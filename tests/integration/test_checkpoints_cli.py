"""`dataworks checkpoints` against a real migration's saved state (sync test: the CLI runs
its own event loop)."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from dataworks import commands
from dataworks.errors import UserError
from dataworks.cli import app
from tests.integration.test_migrate import settings_for
from tests.migration_helpers import load

runner = CliRunner()


def test_list_show_delete_target_checkpoints(source_uri, target_uri, unique_db_name,
                                                   tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", [{"_id": i} for i in range(300)])
    settings = settings_for(source_uri, target_uri, src, unique_db_name)
    report = asyncio.run(commands.migrate(settings, run_dir=tmp_path, verify="none"))

    listed = runner.invoke(app, ["checkpoints", "list", "--target-uri", target_uri])
    assert listed.exit_code == 0, listed.output
    assert report.run_id in listed.output and "300 / 300" in listed.output

    shown = runner.invoke(app, ["checkpoints", "show", report.run_id, "--target-uri", target_uri])
    assert shown.exit_code == 0 and '"finished": true' in shown.output

    deleted = runner.invoke(app, ["checkpoints", "delete", report.run_id,
                                  "--target-uri", target_uri])
    assert deleted.exit_code == 0
    # State gone: the target's 300 documents are no longer known as this run's copy.
    with pytest.raises(UserError, match="already holds 300 documents and no checkpoint"):
        asyncio.run(commands.migrate(settings, run_dir=tmp_path, verify="none"))
    again = asyncio.run(commands.migrate(settings, run_dir=tmp_path, verify="none", merge=True))
    assert again.status == "completed"  # merged: every document found already present
    assert again.already_present == 300 and again.written == 0

    missing = runner.invoke(app, ["checkpoints", "delete", "no-such-run", "--target-uri",
                                  target_uri])
    assert missing.exit_code == 2
