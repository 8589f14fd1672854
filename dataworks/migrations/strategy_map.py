"""`--strategy-map FILE`: which strategy (and options) each collection of a database run gets.

    [[namespace]]
    match = "volvo.service_orders"          # source namespace glob, first match wins
    strategy = "user_defined/strategies/volvo_strategy.py"   # PATH or PATH:ClassName
    verify = "hash"                         # optional: count | hash | sample | none
    batch_size = 500                        # optional
    [[namespace]]
    match = "volvo.*_archive"
    skip = true

A strategy path is taken as given (relative to the current directory, like --strategy), or
else relative to the map's folder. Every file is loaded before anything is written, so a
missing or broken one is exit 2.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataworks.errors import UserError
from dataworks.migrations.finishing import VERIFY_MODES
from dataworks.migrations.namespaces import glob_regex
from dataworks.plugins import split_spec

_KEYS = {"match", "strategy", "skip", "verify", "sample_size", "batch_size"}


@dataclass(frozen=True)
class NamespaceRule:
    match: str
    strategy: str | None = None  # spec as resolved (PATH[:Class]); None = the default copy
    skip: bool = False
    verify: str | None = None
    sample_size: int | None = None
    batch_size: int | None = None

    def matches(self, namespace: str) -> bool:
        return bool(glob_regex(self.match).match(namespace))


@dataclass(frozen=True)
class StrategyMap:
    path: str
    rules: tuple[NamespaceRule, ...]

    def rule_for(self, namespace: str) -> NamespaceRule | None:
        return next((r for r in self.rules if r.matches(namespace)), None)

    def strategy_files(self) -> list[str]:
        return list(dict.fromkeys(r.strategy for r in self.rules if r.strategy))


def read_strategy_map(path: str | Path, *, require_files: bool = True) -> StrategyMap:
    """The map, checked; `require_files=False` (for `dataworks check`) leaves missing strategy
    files for the caller to report with the others."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"strategy map {file} does not exist", hint="check the --strategy-map path")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{file}: not valid TOML ({exc})") from None
    entries = data.get("namespace")
    unknown_top = set(data) - {"namespace"}
    if unknown_top:
        raise UserError(f"{file}: unknown key {', '.join(sorted(unknown_top))}",
                        hint="the map is a list of [[namespace]] tables")
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{file}: no [[namespace]] entries")
    return StrategyMap(str(file), tuple(_rule(file, i, e, require_files)
                                        for i, e in enumerate(entries, 1)))


def _rule(file: Path, number: int, entry: Any, require_files: bool) -> NamespaceRule:
    where = f"{file}: [[namespace]] #{number}"
    if not isinstance(entry, dict):
        raise UserError(f"{where}: not a table")
    unknown = set(entry) - _KEYS
    if unknown:
        raise UserError(f"{where}: unknown key {', '.join(sorted(unknown))}",
                        hint=f"keys: {', '.join(sorted(_KEYS))}")
    match = entry.get("match")
    if not isinstance(match, str) or "." not in match:
        raise UserError(f"{where}: 'match' must be a 'db.collection' pattern")
    skip = entry.get("skip", False)
    if not isinstance(skip, bool):
        raise UserError(f"{where}: 'skip' must be true or false")
    verify = entry.get("verify")
    if verify is not None and verify not in VERIFY_MODES:
        raise UserError(f"{where}: verify = '{verify}' is not one of {', '.join(VERIFY_MODES)}")
    numbers = {}
    for key in ("sample_size", "batch_size"):
        value = entry.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 1):
            raise UserError(f"{where}: {key} must be a positive whole number")
        numbers[key] = value
    strategy = entry.get("strategy")
    if strategy is not None:
        if not isinstance(strategy, str) or not strategy:
            raise UserError(f"{where}: 'strategy' must be a file path")
        strategy = _resolve(file, strategy, where, require_files)
    return NamespaceRule(match=match, strategy=strategy, skip=skip, verify=verify, **numbers)


def _resolve(file: Path, spec: str, where: str, require_files: bool) -> str:
    path, class_name = split_spec(spec)
    if not path.is_file() and not path.is_absolute() and (file.parent / path).is_file():
        path = file.parent / path
    if not path.is_file() and require_files:
        raise UserError(f"{where}: strategy file {path} does not exist",
                        hint="paths are relative to the current directory or to the map file")
    return f"{path}:{class_name}" if class_name else str(path)
