"""`dataworks check PATH`: every problem in a strategy or generator file, with file:line."""

# No `from __future__ import annotations`: typer reads these annotations at runtime.

import json
from enum import Enum
from typing import Annotated

import typer

from dataworks.checking import check_file, kind_of
from dataworks.cli.common import CommonOptions, command_options, err_console
from dataworks.errors import UserError
from dataworks.migrations.strategy_map import read_strategy_map


class CheckKind(str, Enum):
    auto = "auto"
    strategy = "strategy"
    generator = "generator"


@command_options
def check(
    path: Annotated[str | None, typer.Argument(help="Strategy or generator file: PATH or "
                                               "PATH:ClassName (or a .json template).")] = None,
    kind: Annotated[CheckKind, typer.Option(
        "--kind", help="What the file must be (default: decided by its classes).")
    ] = CheckKind.auto,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")
                           ] = False,
    strategy_map: Annotated[str | None, typer.Option(
        "--strategy-map", help="Check the map and every strategy file it names.")] = None,
    *,
    common: CommonOptions,
) -> None:
    """Load a plugin file as the engines do and report every problem; exit 2 if any."""
    if strategy_map is not None:
        if path is not None:
            raise UserError("give a file or --strategy-map, not both")
        _check_map(strategy_map, common)
        return
    if path is None:
        raise UserError("nothing to check", hint="dataworks check PATH, or --strategy-map FILE")
    result = check_file(path, None if kind is CheckKind.auto else kind.value)  # type: ignore[arg-type]
    found = kind_of(result)
    if json_output:
        typer.echo(json.dumps({
            "path": result.path, "ok": result.ok, "kind": found,
            "class": result.class_name,
            "problems": [{"line": p.line, "kind": p.kind, "message": p.message}
                         for p in result.problems],
        }, indent=2))
    elif result.ok:
        what = f"{found} {result.class_name}" if result.class_name else found or "file"
        typer.echo(f"ok: {result.path}: {what} loads and its hooks match")
    else:
        for problem in result.problems:
            typer.echo(str(problem))
        if not common.quiet:
            count = len(result.problems)
            err_console.print(f"{count} problem{'s' if count != 1 else ''} in {result.path}",
                              markup=False)
    if not result.ok:
        raise typer.Exit(2)


def _check_map(path: str, common: CommonOptions) -> None:
    """The map itself (keys, patterns, files that exist), then each strategy it names."""
    rules = read_strategy_map(path, require_files=False)  # its own problems: exit 2
    failed = 0
    for spec in rules.strategy_files():
        result = check_file(spec, "strategy")
        if result.ok:
            typer.echo(f"ok: {result.path}: strategy {result.class_name} loads and its hooks "
                       "match")
            continue
        failed += 1
        for problem in result.problems:
            typer.echo(str(problem))
    skipped = sum(r.skip for r in rules.rules)
    if not common.quiet:
        err_console.print(f"{path}: {len(rules.rules)} entries, {len(rules.strategy_files())} "
                          f"strategy files, {skipped} skipped namespace patterns"
                          + (f"; {failed} with problems" if failed else ""), markup=False)
    if failed:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
