"""The pytest plugin's capability markers: a test runs only where the server can do what it
needs, says why elsewhere, and can never be written so that it skips on every server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataworks.testing.plugin import CAPABILITIES, TestServer

TESTS = '''
import pytest

@pytest.mark.needs("change_streams")
def test_streams():
    pass

@pytest.mark.needs("authenticate")
def test_login():
    pass

def test_plain(test_server):
    assert test_server.name in ("ferretdb", "mongojava")
'''


def run_pytest(tmp_path: Path, source: str, server: str) -> tuple[subprocess.CompletedProcess,
                                                                   list[str]]:
    (tmp_path / "test_caps.py").write_text(source)
    skip_log = tmp_path / f"{server}.skips"
    env = {k: v for k, v in os.environ.items() if k != "DATAWORKS_TEST_MONGO_URI"}
    env.update({"DATAWORKS_TEST_SERVER": server, "DATAWORKS_TEST_SKIP_LOG": str(skip_log),
                "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "test_caps.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    skipped = skip_log.read_text().split() if skip_log.exists() else []
    return result, skipped


@pytest.mark.parametrize(("server", "skipped", "reason"), [
    ("ferretdb", "test_caps.py::test_streams", "ferretdb test server lacks change_streams"),
    ("mongojava", "test_caps.py::test_login", "mongojava test server lacks authenticate"),
])
def test_a_test_runs_where_its_capability_exists_and_says_why_elsewhere(tmp_path, server,
                                                                          skipped, reason):
    result, logged = run_pytest(tmp_path, TESTS, server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed, 1 skipped" in result.stdout
    assert reason in result.stdout
    assert logged == [skipped]  # what scripts/test compares across servers


def test_a_capability_no_server_has_is_a_collection_error(tmp_path):
    source = ('import pytest\n\n@pytest.mark.needs("authenticate", "change_streams")\n'
              'def test_never():\n    pass\n')
    result, _ = run_pytest(tmp_path, source, "mongojava")
    assert result.returncode == 4, result.stdout + result.stderr  # usage error, nothing ran
    assert "would skip everywhere" in result.stderr


def test_an_unknown_capability_is_refused(tmp_path):
    source = 'import pytest\n\n@pytest.mark.needs("teleport")\ndef test_x():\n    pass\n'
    result, _ = run_pytest(tmp_path, source, "ferretdb")
    assert result.returncode == 4
    assert "unknown capability ['teleport']" in result.stderr


def test_server_capabilities_answer_and_reject_typos():
    mongojava = TestServer("mongojava", CAPABILITIES["mongojava"])
    assert mongojava.can("seek_id_ranges") and not mongojava.can("authenticate")
    assert not TestServer("ferretdb", CAPABILITIES["ferretdb"]).can("sample")
    with pytest.raises(ValueError):
        mongojava.can("change_stream")
