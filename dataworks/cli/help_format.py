"""How `--help` shows options: a flag takes no value, so it gets no `<bool>` placeholder.

typer 0.29 prints a type for every option, flags included (`--drop-target <bool>`), which
reads as if the flag wanted an argument. Flags show their name alone.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

_original = TyperOption.display_type_rich


def _display_type_rich(self: TyperOption, ctx: Any) -> str | None:
    if self.is_flag and not self.count:
        return None
    return _original(self, ctx)


def install() -> None:
    TyperOption.display_type_rich = _display_type_rich  # type: ignore[method-assign]
