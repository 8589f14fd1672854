"""`dataworks new strategy|generator PATH`: a working, commented file; never an overwrite."""

from __future__ import annotations

from pathlib import Path

from bson import json_util
import pytest
from typer.testing import CliRunner

from dataworks.checking import check_file
from dataworks.cli import app
from dataworks.errors import UserError
from dataworks.generators.run import preview
from dataworks.scaffold import class_name_for, new_plugin
from dataworks.testing import run_strategy


@pytest.mark.parametrize(("stem", "kind", "expected"), [
    ("orders_cleanup", "strategy", "OrdersCleanupStrategy"),
    ("volvo-orders", "generator", "VolvoOrdersGenerator"),
    ("2024_fix", "strategy", "My2024FixStrategy"),
    ("MyStrategy", "strategy", "MyStrategy"),
])
def test_class_name_comes_from_the_file_name(stem: str, kind: str, expected: str) -> None:
    assert class_name_for(Path(f"{stem}.py"), kind) == expected  # type: ignore[arg-type]


def test_new_strategy_writes_a_file_that_loads_checks_and_copies(tmp_path: Path) -> None:
    made = new_plugin("strategy", tmp_path / "sub" / "orders_cleanup.py")
    assert made.path.is_file() and made.ref.class_name == "OrdersCleanupStrategy"
    text = made.path.read_text()
    for hook in ("async def on_start", "def build_query", "def projection", "def transform",
                 "async def on_finish"):
        assert hook in text
    assert '{"status": {"$ne": "DELETED"}}' in text  # `$$` in the template renders as `$`
    assert check_file(str(made.path)).ok
    docs = [{"_id": 1, "a": {"b": [1, 2]}}, {"_id": "x"}]
    assert run_strategy(made.path, docs) == docs


def test_new_generator_writes_a_reproducible_generator(tmp_path: Path) -> None:
    made = new_plugin("generator", tmp_path / "shop")  # .py is added
    assert made.path.name == "shop.py" and made.ref.class_name == "ShopGenerator"
    assert check_file(str(made.path)).ok
    first, again = preview(str(made.path), 3, seed=5), preview(str(made.path), 3, seed=5)
    assert first == again and len(first) == 3
    assert preview(str(made.path), 3, seed=6) != first
    assert '"orderNumber": "SO-000000002"' in first[2]


def test_new_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "mine.py"
    path.write_text("# my work\n")
    with pytest.raises(UserError, match="already exists; refusing to overwrite"):
        new_plugin("strategy", path)
    assert path.read_text() == "# my work\n"


def test_new_refuses_other_suffixes_and_bad_class_names(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="must end in .py"):
        new_plugin("strategy", tmp_path / "x.txt")
    with pytest.raises(UserError, match="not a valid Python class name"):
        new_plugin("strategy", tmp_path / "x.py", class_name="class")
    assert not (tmp_path / "x.py").exists()


def test_cli_new_then_check(tmp_path: Path) -> None:
    path = tmp_path / "archive_old.py"
    runner = CliRunner()
    result = runner.invoke(app, ["new", "strategy", str(path), "--class-name", "Archive"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"created {path} (strategy Archive); it loads.")
    assert f"dataworks migrate --strategy {path} --preview 5" in result.output
    assert runner.invoke(app, ["check", str(path)]).exit_code == 0

    again = runner.invoke(app, ["new", "strategy", str(path)])
    assert again.exit_code == 2
    assert "already exists" in again.output

    gen = tmp_path / "gen.py"
    result = runner.invoke(app, ["new", "generator", str(gen)])
    assert result.exit_code == 0, result.output
    out = runner.invoke(app, ["generate", "--source", str(gen), "--preview", "2", "--seed", "1"])
    assert out.exit_code == 0, out.output
    docs = [json_util.loads(line) for line in out.stdout.splitlines()]
    assert [d["orderNumber"] for d in docs] == ["SO-000000000", "SO-000000001"]
