"""Shared test configuration. Server fixtures come from `dataworks.testing.plugin`
(registered as a pytest11 entry point, so plugin authors get the same ones)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)
