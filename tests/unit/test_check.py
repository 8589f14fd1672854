"""`dataworks check`: every problem at once, each at the right file:line, exit 0 / 2."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataworks.checking import check_file, kind_of
from dataworks.cli import app
from dataworks.errors import PluginError
from dataworks.migrations.loading import load_strategy

HEADER = "from dataworks import BaseMigrationStrategy, BaseDataGenerator\n"


def write(tmp_path: Path, body: str, name: str = "plugin.py") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body).lstrip("\n"))
    return path


def found(path: Path, kind: str | None = None) -> list[tuple[int, str]]:
    return [(p.line, p.kind) for p in check_file(str(path), kind).problems]  # type: ignore[arg-type]


# Each case: file body (line 1 is HEADER), and the (line, kind) problems `check` must report.
CASES = {
    "syntax error": ("""
        class A(BaseMigrationStrategy):
            def transform(self, doc)
                return doc
        """, [(3, "syntax")]),
    "import error": ("""
        import json
        from not_a_module_xyz import thing
        class A(BaseMigrationStrategy):
            pass
        """, [(3, "import")]),
    "error while running the module": ("""
        LIMIT = 10
        RATE = LIMIT / 0
        """, [(3, "import")]),
    "no class": ("""
        def transform(doc):
            return doc
        """, [(1, "no-class")]),
    "several classes": ("""
        class A(BaseMigrationStrategy):
            pass


        class B(BaseMigrationStrategy):
            pass
        """, [(6, "several-classes")]),
    "wrong signature": ("""
        class A(BaseMigrationStrategy):
            def transform(self, doc, extra):
                return doc
        """, [(3, "signature")]),
    "sync where async is required": ("""
        class A(BaseMigrationStrategy):
            def on_finish(self, summary):
                pass
        """, [(3, "not-async")]),
    "async where the engine does not await": ("""
        class A(BaseMigrationStrategy):
            async def build_query(self):
                return {}
        """, [(3, "not-sync")]),
    "misspelled hook": ("""
        class A(BaseMigrationStrategy):
            def transfrom(self, doc):
                return doc
        """, [(3, "misspelled-hook")]),
    "yield in a hook": ("""
        class A(BaseMigrationStrategy):
            def transform(self, doc):
                yield doc
        """, [(3, "yield")]),
    "hook that is not a method": ("""
        class A(BaseMigrationStrategy):
            build_query = {"a": 1}
        """, [(2, "not-a-method")]),
    "constructor the engine cannot call": ("""
        class A(BaseMigrationStrategy):
            def __init__(self, context, table):
                super().__init__(context)
        """, [(3, "constructor")]),
    "generator: misspelled and async hooks": ("""
        class G(BaseDataGenerator):
            def generate_documnet(self, document_id=None):
                return {}

            async def generate_batch(self, start, count):
                return []
        """, [(3, "misspelled-hook"), (6, "not-sync")]),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_kind_of_mistake_is_reported_at_its_line(case: str, tmp_path: Path) -> None:
    body, expected = CASES[case]
    assert found(write(tmp_path, body)) == expected


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, """
        class A(BaseMigrationStrategy):
            def on_start(self):
                pass

            async def projection(self):
                return None

            def transform(self, doc, extra):
                return doc

            def on_finsh(self, summary):
                pass
        """)
    assert found(path) == [(3, "not-async"), (6, "not-sync"), (9, "signature"),
                           (12, "misspelled-hook")]


def test_hook_mistakes_are_still_found_when_the_import_fails(tmp_path: Path) -> None:
    """The syntax tree is checked when the module cannot run, so one `check` shows both."""
    path = write(tmp_path, """
        import not_a_module_xyz


        class A(BaseMigrationStrategy):
            def on_start(self):
                pass

            def transform(self, doc, extra):
                return doc


        class B(BaseMigrationStrategy):
            async def build_query(self):
                return {}
        """)
    assert found(path) == [(2, "import"), (6, "not-async"), (9, "signature"),
                           (13, "several-classes"), (14, "not-sync")]


def test_a_class_name_picks_one_of_several(tmp_path: Path) -> None:
    path = write(tmp_path, """
        class A(BaseMigrationStrategy):
            pass


        class B(BaseMigrationStrategy):
            def on_start(self):
                pass
        """)
    assert found(Path(f"{path}:A")) == []
    assert found(Path(f"{path}:B")) == [(7, "not-async")]
    result = check_file(f"{path}:Missing")
    assert [(p.kind, p.message) for p in result.problems] == [("no-class",
                                                               "no class named Missing")]


def test_a_good_file_has_no_problems_and_its_kind_is_known(tmp_path: Path) -> None:
    strategy = write(tmp_path, """
        class A(BaseMigrationStrategy):
            async def on_start(self):
                pass

            async def transform(self, doc):
                return doc
        """, "s.py")
    generator = write(tmp_path, """
        class G(BaseDataGenerator):
            def generate_document(self, document_id=None):
                return {"n": document_id}
        """, "g.py")
    s, g = check_file(str(strategy)), check_file(str(generator))
    assert (s.ok, kind_of(s), s.class_name) == (True, "strategy", "A")
    assert (g.ok, kind_of(g), g.class_name) == (True, "generator", "G")
    assert check_file(str(generator), "strategy").kinds() == {"no-class"}


def test_check_sees_an_edited_file_again(tmp_path: Path) -> None:
    """Loaded modules are cached for the engines; `check` must read the file as it is now."""
    path = write(tmp_path, "class A(BaseMigrationStrategy):\n    def on_start(self): pass\n")
    assert found(path) == [(3, "not-async")]
    path.write_text(HEADER + "class A(BaseMigrationStrategy):\n    async def on_start(self): pass\n")
    assert found(path) == []


def test_the_engine_loader_refuses_what_check_reports(tmp_path: Path) -> None:
    path = write(tmp_path, "class A(BaseMigrationStrategy):\n    async def projection(self): pass\n")
    with pytest.raises(PluginError, match=r"plugin\.py:3: A\.projection must be a plain `def`"):
        load_strategy(str(path))


def test_json_template_problems_carry_their_line(tmp_path: Path) -> None:
    bad = tmp_path / "t.json"
    bad.write_text('{\n  "a": 1,\n  "b": \n}\n')
    (problem,) = check_file(str(bad)).problems
    assert problem.line == 4 and "invalid JSON" in problem.message
    unknown = tmp_path / "u.json"
    unknown.write_text('{"n": "{{ integer }}"}')
    (problem,) = check_file(str(unknown)).problems
    assert "unknown placeholder" in problem.message
    good = tmp_path / "ok.json"
    good.write_text('{"n": "{{ int(1, 5) }}"}')
    assert check_file(str(good)).ok


def test_cli_prints_file_line_problems_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, """
        class A(BaseMigrationStrategy):
            def on_start(self):
                pass

            def transfrom(self, doc):
                return doc
        """)
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{path}:3: A.on_start must be declared `async def`")
    assert lines[1].startswith(f"{path}:6: A.transfrom is not a hook")
    assert "did you mean `transform`" in lines[1]


def test_cli_exits_0_for_a_good_file_and_speaks_json(tmp_path: Path) -> None:
    path = write(tmp_path, "class A(BaseMigrationStrategy):\n    pass\n")
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {path}: strategy A")
    bad = write(tmp_path, "class A(BaseMigrationStrategy):\n    def on_start(self): pass\n",
                "bad.py")
    result = CliRunner().invoke(app, ["check", str(bad), "--json"])
    assert result.exit_code == 2
    payload = json.loads(result.stdout)
    assert payload["ok"] is False and payload["kind"] == "strategy"
    assert payload["problems"] == [{"line": 3, "kind": "not-async",
                                    "message": "A.on_start must be declared `async def`"}]


def test_cli_reports_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["check", str(tmp_path / "nope.py")])
    assert result.exit_code == 2
    assert "nope.py:1: plugin file does not exist" in result.stdout


def test_check_calls_the_generator_once_and_catches_a_non_document(tmp_path):
    """What `generate` would refuse before writing, `check` reports at the hook's line."""
    path = write(tmp_path, """
        class NotDoc(BaseDataGenerator):
            def generate_document(self, document_id=None):
                return ["not", "a", "document"]
    """)
    problems = check_file(str(path)).problems
    assert [(p.line, p.kind) for p in problems] == [(3, "runtime")]
    assert "NotDoc.generate_document returned list" in problems[0].message
    assert "expected a dict" in problems[0].message
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 2


def test_check_reports_where_building_the_first_document_raised(tmp_path):
    path = write(tmp_path, """
        class Raises(BaseDataGenerator):
            def generate_document(self, document_id=None):
                return {"x": 1 / 0}
    """)
    problems = check_file(str(path)).problems
    assert [(p.line, p.kind) for p in problems] == [(4, "runtime")]
    assert "ZeroDivisionError" in problems[0].message
