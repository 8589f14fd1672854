"""`--help` of every command, `dataworks examples copy`, and the progress layout by width."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataworks.cli import app
from dataworks.cli.help_examples import EXAMPLES
from dataworks.examples_copy import example_files
from dataworks.monitoring.display import ECHO_ROOM, ProgressView
from dataworks.monitoring.metrics import RunMetrics

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _commands() -> list[list[str]]:
    found = []
    for info in app.registered_commands:
        found.append([info.name])
    for group in app.registered_groups:
        for info in group.typer_instance.registered_commands:
            found.append([group.name, info.name])
    return found


def _help(words: list[str]) -> str:
    result = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("words", _commands(), ids=" ".join)
def test_help_has_no_bool_placeholders_and_ends_with_examples(words):
    text = _help(words)
    assert "<bool>" not in text
    assert "Examples" in text and "dataworks " + " ".join(words) in text.split("Examples")[1]
    assert " ".join(words) in EXAMPLES


@pytest.mark.parametrize(("words", "names"), [
    (["generate"], ["GEN_DB_CONNECTION_STRING", "GEN_DB_NAME", "GEN_DB_COLLECTION"]),
    (["migrate"], ["MIG_SOURCE_DB_CONNECTION_STRING", "MIG_SOURCE_DB_NAME",
                   "MIG_SOURCE_DB_COLLECTION", "MIG_TARGET_DB_CONNECTION_STRING",
                   "MIG_TARGET_DB_NAME", "MIG_TARGET_DB_COLLECTION"]),
    (["verify"], ["MIG_SOURCE_DB_CONNECTION_STRING", "MIG_TARGET_DB_CONNECTION_STRING"]),
    (["indexes", "compare"], ["MIG_SOURCE_DB_CONNECTION_STRING"]),
    (["checkpoints", "list"], ["MIG_TARGET_DB_CONNECTION_STRING"]),
])
def test_connection_flags_name_their_environment_variable(words, names):
    text = _help(words)
    for name in names:
        assert f"(env: {name})" in text


def test_shell_completion_is_on():
    assert "--install-completion" in _help([])


def test_generate_speaks_migrates_language():
    text = _help(["generate"])
    for flag in ("--target-uri", "--target-db", "--target-collection", "--drop-target",
                 "--generation-workers", "--insert-workers", "--force-from-start"):
        assert flag in text
    assert "--insert-workers" in _help(["migrate"])


def test_examples_copy_writes_the_packaged_examples(tmp_path):
    result = runner.invoke(app, ["examples", "copy", str(tmp_path / "ex")])
    assert result.exit_code == 0, result.output
    for name in ("generators/volvo_generator.py", "templates/service_order_template.json",
                 "strategies/volvo_strategy.py", "strategies/open_orders_strategy.py",
                 "strategies/order_lines_strategy.py"):
        written = tmp_path / "ex" / name
        assert written.read_bytes() == (ROOT / "user_defined" / name).read_bytes(), name
    again = runner.invoke(app, ["examples", "copy", str(tmp_path / "ex")])
    assert again.exit_code == 2 and "nothing was copied" in again.output
    missing = runner.invoke(app, ["examples", "copy", str(tmp_path / "no" / "such")])
    assert missing.exit_code == 2 and not (tmp_path / "no").exists()


def test_packaged_examples_match_the_repository_and_ship_in_a_wheel():
    """The package's copy is what `pip install` users get: the same as user_defined/, and
    covered by pyproject's package-data (else a wheel would leave them out)."""
    files = example_files()
    on_disk = {str(p.relative_to(ROOT / "user_defined")) for p in
               (ROOT / "user_defined").rglob("*") if p.suffix in (".py", ".json")}
    assert set(files) == on_disk
    for name, content in files.items():
        assert content == (ROOT / "user_defined" / name).read_bytes(), f"{name} drifted"
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["dataworks"]
    for name in files:
        assert any(fnmatch.fnmatch(f"examples/{name}", p) for p in patterns), name


def _metrics(**counts: int) -> RunMetrics:
    m = RunMetrics(total=50_000)
    m.started_at -= 10
    for key, value in counts.items():
        setattr(m, key, value)
    return m


@pytest.mark.parametrize("width", [200, 140, 120, 100, 90, 80])
def test_count_and_eta_always_on_the_first_line(width):
    m = _metrics(written=12_345, bytes_written=10**7, concurrency=4, retries=3, errors=2,
                 rejected=1, throttled=5)
    lines = [line.plain for line in ProgressView(m, "migrate").lines(width - ECHO_ROOM)]
    assert "12,346/50,000" in lines[0] and "ETA 0:00:" in lines[0]
    assert all(len(line) <= width - ECHO_ROOM for line in lines)
    shown = " ".join(lines)
    assert "docs/s" in shown and "throttled 5" in shown and "errors 2" in shown


def test_memory_goes_first_then_mb_per_second_then_two_lines():
    m = _metrics(written=12_345, bytes_written=10**7, concurrency=4)
    view = ProgressView(m, "migrate")
    wide = [line.plain for line in view.lines(200)]
    assert len(wide) == 1 and "mem " in wide[0] and "MB/s" in wide[0]
    without_mem = next(w for w in range(200, 60, -1)
                       if "mem " not in " ".join(x.plain for x in view.lines(w)))
    one_line = [line.plain for line in view.lines(without_mem)]
    assert len(one_line) == 1 and "MB/s" in one_line[0]
    narrow = [line.plain for line in view.lines(80)]
    assert len(narrow) == 2 and "docs/s" in narrow[1]


def test_a_phase_after_the_copy_gets_its_own_line():
    m = _metrics(written=50_000)
    with m.in_phase("verifying (hash)", total=50_000):
        m.phase_done = 20_000
        lines = [line.plain for line in ProgressView(m, "migrate").lines(100)]
        assert any("verifying (hash)" in x and "20,000/50,000" in x and "ETA" in x
                   for x in lines)
    assert "verifying (hash)" in m.phase_seconds
    assert not any("verifying" in x.plain for x in ProgressView(m, "migrate").lines(100))


def test_completion_completes_commands_and_flags():
    import os
    import subprocess
    import sys

    def complete(words: str, cword: int) -> list[str]:
        env = {**os.environ, "_DATAWORKS_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(cword), "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", "from dataworks.cli import main; main()"],
                             env=env, capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert complete("dataworks gen", 1) == ["generate"]
    assert {"--target-uri", "--target-db", "--target-collection"} <= set(
        complete("dataworks generate --target-", 2))


def test_the_label_shows_whole_or_the_display_takes_two_lines():
    m = _metrics(written=12_345, bytes_written=10**7, concurrency=2)
    label = "generate dwtest_3a62f272825f.orders"
    for width in (98, 120, 200):
        lines = [x.plain for x in ProgressView(m, label).lines(width)]
        assert lines[0].startswith(label + " ") and "ETA" in lines[0], lines
