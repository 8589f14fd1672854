"""Which collections a database run copies, and where each one goes (pure logic).

    --source-db DB (repeatable) | --all-databases     the databases looked at
    --ns-include / --ns-exclude PATTERN               `db.collection` globs, as mongorestore
    --ns-from PATTERN --ns-to PATTERN                 renames with `$var$` placeholders

Everything here is decided before anything is written: a pattern that matches nothing, a
database that does not exist, or a rename that sends two collections to one target is a
`UserError` (exit 2) naming what exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dataworks.checkpoints.store import META_DB
from dataworks.errors import UserError

# Never migrated by --all-databases: the server's own databases and DataWorks' checkpoints.
SYSTEM_DATABASES = frozenset({"admin", "local", "config", META_DB})
_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\$")
_SHOWN = 20  # names listed in an error before "and N more"


@dataclass(frozen=True)
class Selection:
    """What the command line asked for."""

    source_dbs: tuple[str, ...] = ()
    all_databases: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    rename_from: tuple[str, ...] = ()
    rename_to: tuple[str, ...] = ()
    target_db: str | None = None  # every collection into this database (renames win)


@dataclass(frozen=True)
class NamespacePair:
    source: str  # "db.collection"
    target: str


def glob_regex(pattern: str) -> re.Pattern[str]:
    """mongorestore's namespace glob: `*` is any run of characters (dots included)."""
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def is_system(namespace: str) -> bool:
    return namespace.split(".", 1)[1].startswith("system.")


class Renamer:
    """`--ns-from`/`--ns-to` pairs, first match wins; `$name$` captures in `from` are
    substituted in `to` (mongorestore's syntax). `*` in `from` matches without capturing."""

    def __init__(self, froms: Iterable[str], tos: Iterable[str]) -> None:
        froms, tos = list(froms), list(tos)
        if len(froms) != len(tos):
            raise UserError(
                f"{len(froms)} --ns-from but {len(tos)} --ns-to",
                hint="give them in pairs: --ns-from 'db.$c$' --ns-to 'other.$c$'",
            )
        self.rules: list[tuple[str, re.Pattern[str], str]] = []
        for source, target in zip(froms, tos, strict=True):
            captured = _VAR.findall(source)
            if len(set(captured)) != len(captured):
                raise UserError(f"--ns-from '{source}' uses a $variable$ twice")
            unknown = set(_VAR.findall(target)) - set(captured)
            if unknown:
                raise UserError(
                    f"--ns-to '{target}' uses ${'$, $'.join(sorted(unknown))}$ that "
                    f"--ns-from '{source}' does not define"
                )
            self.rules.append((source, _from_regex(source), target))

    def target_of(self, namespace: str) -> tuple[str, str] | None:
        """(renamed namespace, the --ns-from pattern that matched), or None."""
        for source, regex, target in self.rules:
            found = regex.match(namespace)
            if found:
                return _VAR.sub(lambda m: found.group(m.group(1)), target), source
        return None


def _from_regex(pattern: str) -> re.Pattern[str]:
    out, last = [], 0
    for var in _VAR.finditer(pattern):
        out.append(_glob_part(pattern[last:var.start()]))
        out.append(f"(?P<{var.group(1)}>.*?)")
        last = var.end()
    out.append(_glob_part(pattern[last:]))
    return re.compile("^" + "".join(out) + "$")


def _glob_part(text: str) -> str:
    return ".*".join(re.escape(part) for part in text.split("*"))


def plan_namespaces(selection: Selection,
                    existing: Mapping[str, Iterable[str]]) -> list[NamespacePair]:
    """The (source, target) namespaces to copy, sorted by source; `existing` is every
    database on the source with its collection (and view) names."""
    databases = _databases(selection, existing)
    candidates = sorted(
        f"{db}.{name}" for db in databases for name in existing[db]
        if not name.startswith("system.")
    )
    if not candidates:
        raise UserError(
            f"no collections in {', '.join(databases) or 'the source'}",
            hint=f"databases on the source: {_listing(sorted(existing))}",
        )
    chosen = candidates
    if selection.include:
        includes = [(p, glob_regex(p)) for p in selection.include]
        _refuse_unmatched("--ns-include", includes, candidates)
        chosen = [ns for ns in chosen if any(r.match(ns) for _, r in includes)]
    if selection.exclude:
        excludes = [(p, glob_regex(p)) for p in selection.exclude]
        _refuse_unmatched("--ns-exclude", excludes, candidates)
        chosen = [ns for ns in chosen if not any(r.match(ns) for _, r in excludes)]
    if not chosen:
        raise UserError("the --ns-include/--ns-exclude patterns leave no collection to copy",
                        hint=f"collections: {_listing(candidates)}")

    renamer = Renamer(selection.rename_from, selection.rename_to)
    used_from: set[str] = set()
    mappings = []
    for ns in chosen:
        renamed = renamer.target_of(ns)
        if renamed is not None:
            target, pattern = renamed
            used_from.add(pattern)
        elif selection.target_db:
            target = f"{selection.target_db}.{ns.split('.', 1)[1]}"
        else:
            target = ns
        if "." not in target or target.startswith(".") or target.endswith("."):
            raise UserError(f"{ns} would be renamed to '{target}', not a db.collection name")
        if target.split(".", 1)[0] in SYSTEM_DATABASES:
            raise UserError(f"{ns} would be copied into the reserved database {target}")
        mappings.append(NamespacePair(ns, target))
    unused = [p for p, _, _ in renamer.rules if p not in used_from]
    if unused:
        raise UserError(f"--ns-from '{unused[0]}' matches none of the selected collections",
                        hint=f"selected: {_listing(chosen)}")
    _refuse_collisions(mappings)
    return mappings


def _databases(selection: Selection, existing: Mapping[str, Iterable[str]]) -> list[str]:
    if selection.all_databases or (selection.include and not selection.source_dbs):
        return sorted(db for db in existing if db not in SYSTEM_DATABASES)
    missing = [db for db in selection.source_dbs if db not in existing]
    if missing:
        raise UserError(
            f"source database {', '.join(missing)} does not exist",
            hint=f"databases on the source: {_listing(sorted(existing))}",
        )
    return list(dict.fromkeys(selection.source_dbs))


def _refuse_unmatched(option: str, patterns: list[tuple[str, re.Pattern[str]]],
                      candidates: list[str]) -> None:
    for text, regex in patterns:
        if not any(regex.match(ns) for ns in candidates):
            raise UserError(f"{option} '{text}' matches no collection",
                            hint=f"collections: {_listing(candidates)}")


def _refuse_collisions(mappings: list[NamespacePair]) -> None:
    by_target: dict[str, list[str]] = {}
    for m in mappings:
        by_target.setdefault(m.target, []).append(m.source)
    for target, sources in by_target.items():
        if len(sources) > 1:
            raise UserError(
                f"{' and '.join(sources) if len(sources) < 4 else _listing(sources)} would all "
                f"be copied to {target}",
                hint="change --ns-from/--ns-to (or --target-db) so each target is unique",
            )


def _listing(names: list[str]) -> str:
    if not names:
        return "(none)"
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
