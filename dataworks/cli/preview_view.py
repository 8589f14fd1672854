"""Show a `MigrationPreview`: before and after side by side, differences highlighted."""

from __future__ import annotations

from typing import Any

from bson import json_util
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dataworks.migrations.preview import MigrationPreview, PreviewItem

STYLES = {"same": "dim", "changed": "bold yellow", "added": "bold green",
          "removed": "bold red strike"}
MARKS = {"same": " ", "changed": "~", "added": "+", "removed": "-"}


def value_text(value: Any) -> str:
    if isinstance(value, str):
        return value if len(value) <= 60 else value[:57] + "..."
    text = json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS,
                           ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def item_view(number: int, item: PreviewItem, *, full: bool = False) -> Panel:
    title = f"document {number}: {item.outcome} (_id {value_text(item.before.get('_id'))})"
    if item.outcome == "dropped":
        body: Any = Group(_table(item, None), Text("transform returned None: not written",
                                                    style="bold red"))
        return Panel(body, title=title, title_align="left", border_style="red")
    if item.outcome == "unchanged" and not full:
        return Panel(Text("the strategy left it as it was", style="dim"), title=title,
                     title_align="left", border_style="dim")
    tables = [_table(item, i, full=full) for i in range(len(item.after))]
    style = {"unchanged": "dim", "changed": "yellow", "split": "cyan"}[item.outcome]
    return Panel(Group(*tables), title=title, title_align="left", border_style=style)


def _table(item: PreviewItem, index: int | None, *, full: bool = True) -> Table:
    heading = "after" if index is None or len(item.after) == 1 else \
        f"after ({index + 1} of {len(item.after)})"
    table = Table(show_header=True, header_style="bold", expand=False, box=None,
                  padding=(0, 1))
    table.add_column("", width=1)
    table.add_column("field", style="cyan", no_wrap=True)
    table.add_column("before", overflow="fold")
    table.add_column(heading, overflow="fold")
    if index is None:
        from dataworks.migrations.preview import flatten

        for path, value in flatten(item.before).items():
            table.add_row("-", path, Text(value_text(value), style=STYLES["removed"]), "")
        return table
    hidden = 0
    for change in item.changes(index):
        if change.kind == "same" and not full:
            hidden += 1
            continue
        style = STYLES[change.kind]
        before = "" if change.kind == "added" else value_text(change.before)
        after = "" if change.kind == "removed" else value_text(change.after)
        table.add_row(MARKS[change.kind], Text(change.path, style=None if change.kind == "same"
                                                else style),
                      Text(before, style="dim" if change.kind == "same" else
                           ("bold red" if change.kind in ("changed", "removed") else "")),
                      Text(after, style=style))
    if hidden:
        table.add_row("", Text(f"{hidden} unchanged field{'s' if hidden != 1 else ''} "
                               "(--full shows them)", style="dim"), "", "")
    return table


def render_preview(preview: MigrationPreview, console: Console | None = None, *,
                   full: bool = False) -> None:
    """Only what the strategy changed, added and removed; `full`: every field."""
    console = console or Console(soft_wrap=False)
    console.print(f"preview of {len(preview.items)} document(s) from {preview.source} "
                  f"with strategy {preview.strategy} [dim](nothing written)[/]")
    if not preview.transforms:
        console.print("[dim]this strategy does not transform: documents are copied "
                      "unchanged as raw BSON[/]")
    for number, item in enumerate(preview.items, 1):
        console.print(item_view(number, item, full=full))
    counts = preview.counts()
    console.print(", ".join(f"{n} {k}" for k, n in counts.items()))


def show_preview(settings: Any, count: int | None, strategy: str | None, *,
                 as_json: bool, full: bool = False) -> None:
    """What `migrate --preview N [--json]` runs instead of the migration."""
    import asyncio

    from dataworks.errors import UserError
    from dataworks.migrations.preview import preview_migration

    if count is None:
        raise UserError("--json and --full apply to --preview N only")

    result = asyncio.run(preview_migration(settings, count, strategy=strategy))
    if as_json:
        print(result.to_json())
    else:
        render_preview(result, full=full)
