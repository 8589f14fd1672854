"""`--strategy-map` files: first match wins, skip, options, refusals (pure logic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataworks.errors import UserError
from dataworks.migrations.strategy_map import read_strategy_map

STRATEGY = "from dataworks import BaseMigrationStrategy\nclass S(BaseMigrationStrategy):\n    pass\n"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "strategies").mkdir(exist_ok=True)
    (tmp_path / "strategies" / "s.py").write_text(STRATEGY)
    path = tmp_path / "map.toml"
    path.write_text(text)
    return path


def test_first_match_wins_skip_and_options(tmp_path: Path) -> None:
    rules = read_strategy_map(write(tmp_path, """
[[namespace]]
match = "volvo.service_orders"
strategy = "strategies/s.py:S"
verify = "hash"
batch_size = 200
[[namespace]]
match = "volvo.*_archive"
skip = true
[[namespace]]
match = "volvo.*"
"""))
    first = rules.rule_for("volvo.service_orders")
    assert first is not None and first.verify == "hash" and first.batch_size == 200
    assert first.strategy == f"{tmp_path / 'strategies' / 's.py'}:S"  # relative to the map
    archive = rules.rule_for("volvo.orders_archive")
    assert archive is not None and archive.skip
    rest = rules.rule_for("volvo.parts")
    assert rest is not None and rest.strategy is None and not rest.skip
    assert rules.rule_for("sales.leads") is None
    assert rules.strategy_files() == [first.strategy]


@pytest.mark.parametrize("text, message", [
    ('[[namespace]]\nmatch = "a.b"\nstrategy = "missing.py"\n',
     r"#1: strategy file missing\.py does not exist"),
    ('[[namespace]]\nmatch = "a.b"\nstratgy = "s.py"\n', r"unknown key stratgy"),
    ('[[namespace]]\nmatch = "ab"\n', r"'match' must be a 'db\.collection' pattern"),
    ('[[namespace]]\nmatch = "a.b"\nverify = "maybe"\n', r"verify = 'maybe'"),
    ('[[namespace]]\nmatch = "a.b"\nbatch_size = 0\n', r"batch_size must be a positive"),
    ('[[namespace]]\nmatch = "a.b"\nskip = "yes"\n', r"'skip' must be true or false"),
    ('match = "a.b"\n', r"unknown key match"),
    ('[[namespace]\n', r"not valid TOML"),
])
def test_refusals(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as caught:
        read_strategy_map(write(tmp_path, text))
    assert caught.value.exit_code == 2


def test_missing_map(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"strategy map .*nope\.toml does not exist"):
        read_strategy_map(tmp_path / "nope.toml")
