"""`dataworks config show`: effective settings, where each came from, passwords masked."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from dataworks.cli.common import CommonOptions, command_options, output_console
from dataworks.config.settings import describe_settings

config_app = typer.Typer(help="Inspect settings.", no_args_is_help=True)


@config_app.command("show")
@command_options
def show(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    *,
    common: CommonOptions,
) -> None:
    """Print the effective settings and where each value came from."""
    settings = common.settings()
    rows = describe_settings(settings, env_file=common.env_file, overrides={"profile": common.profile})
    if as_json:
        typer.echo(json.dumps({r.name: {"value": r.value, "source": r.origin} for r in rows}, indent=2))
        return
    table = Table(title=f"dataworks settings (profile {settings.profile})")
    table.add_column("setting")
    table.add_column("value")
    table.add_column("source")
    for row in rows:
        table.add_row(row.name, "" if row.value is None else str(row.value), row.origin)
    output_console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
