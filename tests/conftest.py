"""Shared test configuration. Server fixtures come from `dataworks.testing.plugin`
(registered as a pytest11 entry point, so plugin authors get the same ones)."""

from __future__ import annotations

import logging

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def dw_caplog(caplog):
    """caplog that also sees `dataworks` records (configure_logging stops their propagation)."""
    logger = logging.getLogger("dataworks")
    attach = not logger.propagate  # else the root handler sees them already
    if attach:
        logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="dataworks")
    yield caplog
    if attach:
        logger.removeHandler(caplog.handler)
