from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from dataworks import __version__
from dataworks.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "config" in result.output


def test_config_show_masks_password_and_names_source(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIG_TARGET_DB_CONNECTION_STRING", "mongodb://admin:hunter2@db.example:27017/")
    result = runner.invoke(app, ["config", "show", "--profile", "data-migration", "--json"])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert "mongodb://****@db.example:27017/" in result.output and "admin" not in result.output
    assert "profile data-migration" in result.output


def test_unknown_profile_is_one_line_exit_2(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "dataworks.cli", "config", "show", "--profile", "prod"],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unknown profile 'prod'" in result.stderr
    assert "Traceback" not in result.stderr
