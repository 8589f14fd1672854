"""Load user plugin files (strategies, generators) by path and check them.

Rules (shared by `migrate`, `generate`, `check` and worker processes):
- `PATH` or `PATH:ClassName`; the file is loaded in isolation under a unique module name
  (`dataworks_user_<stem>_<hash8>`), registered in `sys.modules` *before* it runs so
  dataclasses and pickling work, and removed again if loading fails. `sys.path` is not touched.
- Exactly one subclass of the expected base class must be defined in the file, unless a
  class name is given.
- Every problem becomes a `PluginError` whose message starts with `file:line:`.

`load_plugin` stops at the first file that cannot be used (what engines need); `collect_problems`
keeps going and returns every problem it can find as `Problem`s (what `dataworks check`
shows). When the file cannot be imported, the classes are still checked from the syntax tree,
so one run of `check` shows the import error *and* the hook mistakes below it.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from collections.abc import Sequence
from typing import Any, Literal, TypeVar

from dataworks.errors import PluginError

T = TypeVar("T")


@dataclass(frozen=True)
class PluginRef:
    """What a worker process needs to load the same class again."""

    path: str
    class_name: str

    def __str__(self) -> str:
        return f"{self.path}:{self.class_name}"


def split_spec(spec: str) -> tuple[Path, str | None]:
    """`path/to/file.py:ClassName` -> (path, "ClassName"); the class part is optional."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail.isidentifier() and head:
        return Path(head), tail
    return Path(spec), None


def module_name_for(path: Path) -> str:
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"dataworks_user_{stem}_{digest}"


def load_module(path: Path, *, kind: str = "plugin", fresh: bool = False) -> ModuleType:
    """Execute a user file as a fresh module; errors point at the user's line.

    A file already loaded in this process is reused (engines load it once), unless `fresh`
    asks to run the file again (`dataworks check` after an edit)."""
    path = path.expanduser()
    if not path.is_file():
        raise PluginError(
            f"{path}: {kind} file does not exist",
            hint="check the path; it is relative to the current directory",
        )
    if path.suffix != ".py":
        raise PluginError(f"{path}: a {kind} file must be a .py file")
    resolved = path.resolve()
    name = module_name_for(resolved)
    if name in sys.modules:
        if not fresh:
            return sys.modules[name]
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:  # pragma: no cover - only for odd file systems
        raise PluginError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        line = exc.lineno or 0
        raise PluginError(f"{path}:{line}: syntax error: {exc.msg}") from None
    except BaseException as exc:  # noqa: BLE001 - any failure of user code at import time
        del sys.modules[name]
        line = _user_line(exc, resolved)
        raise PluginError(
            f"{path}:{line}: {type(exc).__name__} while loading the {kind} file: {exc}"
        ) from exc
    return module


def _user_line(exc: BaseException, path: Path) -> int:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() == path:
            return frame.lineno or 0
    return 0


def find_class(module: ModuleType, base: type[T], class_name: str | None, path: Path) -> type[T]:
    """The one subclass of `base` defined in `module` (or the one named)."""
    kind = base.__name__
    if class_name is not None:
        cls = getattr(module, class_name, None)
        if cls is None:
            raise PluginError(f"{path}: no class named {class_name}")
        if not (inspect.isclass(cls) and issubclass(cls, base)):
            raise PluginError(f"{path}:{_line_of(cls)}: {class_name} is not a subclass of {kind}")
        return cls
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, base)
        and obj is not base
        and obj.__module__ == module.__name__
        and not getattr(obj, "__abstract_plugin__", False)
    ]
    if not found:
        raise PluginError(
            f"{path}: no subclass of dataworks.{kind} found",
            hint=f"define `class MyPlugin({kind}):` in the file",
        )
    if len(found) > 1:
        names = ", ".join(sorted(c.__name__ for c in found))
        raise PluginError(
            f"{path}: several subclasses of {kind} ({names})",
            hint=f"name one: {path}:{found[0].__name__}",
        )
    return found[0]


def _line_of(obj: Any) -> int:
    try:
        return inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return 0


ProblemKind = Literal[
    "file", "syntax", "import", "no-class", "several-classes", "not-a-method", "signature",
    "not-async", "not-sync", "yield", "misspelled-hook", "constructor", "runtime",
]


@dataclass(frozen=True)
class Problem:
    """One mistake in a plugin file, at the line to fix."""

    path: str
    line: int
    message: str
    kind: ProblemKind

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def check_hooks(cls: type, base: type) -> list[str]:
    """Problems with overridden hooks: wrong parameters, or sync where async is required.

    The base class lists its hooks in `__hooks__` as {name: must_be_async}; hooks that may be
    either are listed in `__async_allowed__`. Returns messages of the form `file:line: ...`,
    all at once so `dataworks check` can show every problem.
    """
    return [str(p) for p in hook_problems(cls, base)]


def hook_problems(cls: type, base: type, path: str | None = None) -> list[Problem]:
    """`check_hooks` as `Problem`s; `path` is how to name the file (default: its real path)."""
    problems: list[Problem] = []
    path = path or inspect.getsourcefile(cls) or "?"
    name = cls.__name__

    def add(line: int, message: str, kind: ProblemKind) -> None:
        problems.append(Problem(path, line, message, kind))

    for hook, must_be_async in getattr(base, "__hooks__", {}).items():
        override = cls.__dict__.get(hook)
        if override is None:
            continue
        line = _line_of(override)
        if not callable(override):
            add(line or _line_of(cls), f"{name}.{hook} must be a method", "not-a-method")
            continue
        expected = inspect.signature(getattr(base, hook))
        actual = inspect.signature(override)
        if not _compatible(expected, actual):
            add(line, f"{name}.{hook}{actual} does not match the hook's signature "
                f"{hook}{expected}", "signature")
        is_async = inspect.iscoroutinefunction(override) or inspect.isasyncgenfunction(override)
        if must_be_async and not is_async:
            add(line, f"{name}.{hook} must be declared `async def`", "not-async")
        elif not must_be_async and is_async and hook not in _async_allowed(base):
            add(line, f"{name}.{hook} must be a plain `def`: the engine calls it without "
                "`await`", "not-sync")
        if inspect.isgeneratorfunction(override) or inspect.isasyncgenfunction(override):
            add(line, f"{name}.{hook} uses `yield`; return a value (a list for several "
                "documents) instead", "yield")
    for attr, value in cls.__dict__.items():
        hook = _close_hook(attr, base)
        if hook and inspect.isfunction(value):
            add(_line_of(value), _misspelled_message(name, attr, base, hook), "misspelled-hook")
    return problems


def _async_allowed(base: type) -> frozenset[str]:
    """Hooks that may be either `def` or `async def` (the engine awaits what needs it)."""
    return frozenset(getattr(base, "__async_allowed__", ()))


def _close_hook(attr: str, base: type) -> str | None:
    """The hook `attr` looks like a misspelling of, if it is not a name the base knows."""
    if attr.startswith("__") or hasattr(base, attr):
        return None
    close = difflib.get_close_matches(attr, list(getattr(base, "__hooks__", {})), n=1,
                                      cutoff=0.8)
    return close[0] if close else None


def _misspelled_message(cls_name: str, attr: str, base: type, hook: str) -> str:
    return (f"{cls_name}.{attr} is not a hook of {base.__name__}, so it is never called; "
            f"did you mean `{hook}`?")


def _compatible(expected: inspect.Signature, actual: inspect.Signature) -> bool:
    """Can `actual` be called the way the engine calls `expected`?"""
    params = list(actual.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    wanted = [
        p for p in expected.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in positional if p.default is p.empty]
    if len(positional) < len(wanted) or len(required) > len(wanted):
        return False
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    names = {p.name for p in params}
    for p in expected.parameters.values():
        if p.kind is p.KEYWORD_ONLY and p.name not in names and not has_var_kw:
            return False
    return not any(
        p.kind is p.KEYWORD_ONLY and p.default is p.empty and p.name not in expected.parameters
        for p in params
    )


def load_plugin(spec: str | PluginRef, base: type[T], *, kind: str) -> tuple[type[T], PluginRef]:
    """Load, find and check a plugin class; raise one `PluginError` listing every problem."""
    if isinstance(spec, PluginRef):
        path, class_name = Path(spec.path), spec.class_name
    else:
        path, class_name = split_spec(spec)
    module = load_module(path, kind=kind)
    cls = find_class(module, base, class_name, path)
    problems = check_hooks(cls, base)
    if problems:
        raise PluginError("; ".join(problems))
    return cls, PluginRef(str(path.resolve()), cls.__name__)


# -- every problem at once (dataworks check) ------------------------------------------------


@dataclass
class CheckResult:
    """What `collect_problems` found: the class it would load, and every problem."""

    path: str
    base: type | None = None  # the base class the file's plugin subclasses, when known
    class_name: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}


def collect_problems(spec: str, bases: Sequence[type], *, kind: str = "plugin") -> CheckResult:
    """Load `spec` like the engines do and return every problem instead of the first.

    `bases` are the base classes a plugin may subclass (a strategy file, a generator file);
    the file's classes decide which one applies. Problems come in line order.
    """
    result = _collect(spec, bases, kind)
    result.problems.sort(key=lambda p: p.line)
    return result


def _collect(spec: str, bases: Sequence[type], kind: str) -> CheckResult:
    path, class_name = split_spec(spec)
    shown = str(path)
    result = CheckResult(shown)
    try:
        module = load_module(path, kind=kind, fresh=True)
    except PluginError as exc:
        result.problems.append(_problem_from_error(exc, shown))
        if result.problems[0].kind != "file":
            result.problems.extend(_static_problems(path, bases, shown))
        return result

    if class_name is not None:
        named = getattr(module, class_name, None)
        if named is None:
            result.problems.append(Problem(shown, 1, f"no class named {class_name}", "no-class"))
            return result
        bases = [b for b in bases if inspect.isclass(named) and issubclass(named, b)] or \
            list(bases[:1])
    for base in bases:
        if class_name is None and not _subclasses(module, base):
            continue
        result.base = base
        try:
            cls = find_class(module, base, class_name, path)
        except PluginError as exc:
            result.problems.extend(_class_problems(module, base, shown, exc))
            for sub in _subclasses(module, base):  # still check each candidate's hooks
                result.problems.extend(hook_problems(sub, base, shown))
            return result
        result.class_name = cls.__name__
        result.problems.extend(hook_problems(cls, base, shown))
        result.problems.extend(_constructor_problems(cls, base, shown))
        return result
    names = " or ".join(f"dataworks.{b.__name__}" for b in bases)
    what = f"no class named {class_name}" if class_name else f"no subclass of {names} found"
    line = _line_of(getattr(module, class_name)) if class_name and hasattr(module, class_name) \
        else 1
    result.problems.append(Problem(shown, line or 1, what + (
        "" if class_name else f"; define `class MyPlugin({bases[0].__name__}):` in the file"),
        "no-class"))
    return result


def _subclasses(module: ModuleType, base: type) -> list[type]:
    return sorted(
        (obj for obj in vars(module).values()
         if inspect.isclass(obj) and issubclass(obj, base) and obj is not base
         and obj.__module__ == module.__name__
         and not getattr(obj, "__abstract_plugin__", False)),
        key=_line_of,
    )


def _problem_from_error(exc: PluginError, shown: str) -> Problem:
    """A loader error (`path:line: message` or `path: message`) as a `Problem`."""
    text = exc.message
    head, _, rest = text.partition(": ")
    file_part, _, line_part = head.rpartition(":")
    if file_part and line_part.isdigit():
        line, message = int(line_part) or 1, rest
    else:
        line, message = 1, rest or text
    if "does not exist" in message or "must be a .py file" in message \
            or "cannot be loaded" in message:
        kind: ProblemKind = "file"
    elif message.startswith("syntax error"):
        kind = "syntax"
    else:
        kind = "import"
    if exc.hint:
        message = f"{message} ({exc.hint})"
    return Problem(shown, line, message, kind)


def _class_problems(module: ModuleType, base: type, shown: str,
                    exc: PluginError) -> list[Problem]:
    found = _subclasses(module, base)
    if len(found) > 1:
        where = ", ".join(f"{c.__name__} (line {_line_of(c)})" for c in found)
        return [Problem(shown, _line_of(found[1]) or 1,
                        f"several subclasses of {base.__name__}: {where}; keep one, or name "
                        f"it: {shown}:{found[0].__name__}", "several-classes")]
    line_text = exc.message.split(": ", 1)
    line = 1
    head = line_text[0].rpartition(":")[2]
    if head.isdigit():
        line = int(head) or 1
    return [Problem(shown, line, exc.message.split(": ", 1)[-1], "no-class")]


def _constructor_problems(cls: type, base: type, shown: str) -> list[Problem]:
    """The engine builds the plugin the way the base class's `__init__` is called."""
    init = cls.__dict__.get("__init__")
    if init is None or not callable(init):
        return []
    expected = inspect.signature(base.__init__)  # type: ignore[misc]
    try:
        actual = inspect.signature(init)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return []
    if _compatible(expected, actual):
        return []
    return [Problem(shown, _line_of(init), f"{cls.__name__}.__init__{actual} cannot be "
                    f"called as __init__{expected}; accept the same parameters and call "
                    "super().__init__(...)", "constructor")]


# -- when the file cannot be imported: check what the syntax tree shows -----------------------


def _static_problems(path: Path, bases: Sequence[type], shown: str) -> list[Problem]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, OSError, UnicodeDecodeError, ValueError):
        return []
    by_name = {b.__name__: b for b in bases}
    problems: list[Problem] = []
    classes: dict[type, list[ast.ClassDef]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for base_node in node.bases:
            base_name = base_node.attr if isinstance(base_node, ast.Attribute) else \
                getattr(base_node, "id", None)
            if base_name in by_name:
                classes.setdefault(by_name[base_name], []).append(node)
    for base, nodes in classes.items():
        if len(nodes) > 1:
            where = ", ".join(f"{n.name} (line {n.lineno})" for n in nodes)
            problems.append(Problem(shown, nodes[1].lineno, f"several subclasses of "
                                    f"{base.__name__}: {where}", "several-classes"))
        for node in nodes:
            problems.extend(_static_hook_problems(node, base, shown))
    return problems


def _static_hook_problems(node: ast.ClassDef, base: type, shown: str) -> list[Problem]:
    problems: list[Problem] = []
    hooks: dict[str, bool] = getattr(base, "__hooks__", {})
    for item in node.body:
        if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        line = item.decorator_list[0].lineno if item.decorator_list else item.lineno
        is_async = isinstance(item, ast.AsyncFunctionDef)
        if item.name in hooks:
            must_be_async = hooks[item.name]
            expected = inspect.signature(getattr(base, item.name))
            actual = _signature_from_ast(item.args)
            if actual is not None and not _compatible(expected, actual):
                problems.append(Problem(shown, line, f"{node.name}.{item.name}{actual} does not "
                                        f"match the hook's signature {item.name}{expected}",
                                        "signature"))
            if must_be_async and not is_async:
                problems.append(Problem(shown, line, f"{node.name}.{item.name} must be "
                                        "declared `async def`", "not-async"))
            elif not must_be_async and is_async and item.name not in _async_allowed(base):
                problems.append(Problem(shown, line, f"{node.name}.{item.name} must be a plain "
                                        "`def`: the engine calls it without `await`",
                                        "not-sync"))
        else:
            hook = _close_hook(item.name, base)
            if hook:
                problems.append(Problem(shown, line, _misspelled_message(
                    node.name, item.name, base, hook), "misspelled-hook"))
    return problems


def _signature_from_ast(args: ast.arguments) -> inspect.Signature | None:
    P = inspect.Parameter
    params: list[inspect.Parameter] = []
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    try:
        for i, a in enumerate(positional):
            kind = P.POSITIONAL_ONLY if i < len(args.posonlyargs) else P.POSITIONAL_OR_KEYWORD
            params.append(P(a.arg, kind, default=None if i >= first_default else P.empty))
        if args.vararg:
            params.append(P(args.vararg.arg, P.VAR_POSITIONAL))
        for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            params.append(P(a.arg, P.KEYWORD_ONLY, default=P.empty if d is None else None))
        if args.kwarg:
            params.append(P(args.kwarg.arg, P.VAR_KEYWORD))
        return inspect.Signature(params)
    except ValueError:
        return None
