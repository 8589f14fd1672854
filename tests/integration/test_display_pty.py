"""The live display in a real terminal: tmux, 100 columns, the screen captured as a person
would see it.

`generate` and then `migrate` run in one pane. Each must leave one progress line that shows
its count, documents/s and ETA, and the log lines printed while the display was live (a
warning from the generator mid-run, the verification result) must sit whole above it, not
be cut into by the bar. tmux is required: without it the test fails, it does not skip.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from pymongo import MongoClient

COLUMNS, ROWS = 100, 70
LOGGING_GENERATOR = '''\
import logging

from dataworks import BaseDataGenerator

log = logging.getLogger("dataworks.user")


class Logging(BaseDataGenerator):
    def generate_document(self, document_id=None):
        if document_id == 1500:
            log.warning("halfway there: document %d", document_id)
        return {"n": document_id, "pad": "x" * 200}
'''
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (INFO|WARNING) \S")
BAR = "━"


def _tmux(socket: Path, *args: str) -> str:
    return subprocess.run(["tmux", "-S", str(socket), *args], capture_output=True, text=True,
                          check=True, timeout=30).stdout


@pytest.fixture
def tmux_socket(tmp_path):
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed for the terminal display test (apt-get install tmux)",
                    pytrace=False)
    socket = tmp_path / f"tmux-{uuid.uuid4().hex[:8]}.sock"
    yield socket
    subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, check=False)


def test_generate_and_migrate_fit_100_columns_with_logs_above(mongo_uri, target_uri,
                                                              unique_db_name, tmp_path,
                                                              tmux_socket):
    (tmp_path / "logging_gen.py").write_text(LOGGING_GENERATOR)
    root = Path(__file__).resolve().parents[2]
    dw = f"PYTHONPATH={shlex.quote(str(root))} {shlex.quote(sys.executable)} -m dataworks"
    generate = (f"{dw} generate --source logging_gen.py --total 3000 --batch-size 250 "
                f"--generation-workers 0 --target-uri {mongo_uri} --target-db {unique_db_name} "
                f"--target-collection orders")
    migrate = (f"{dw} migrate --source-uri {mongo_uri} --source-db {unique_db_name} "
               f"--source-collection orders --target-uri {target_uri} "
               f"--target-db {unique_db_name} --verify hash")
    script = tmp_path / "run.sh"
    script.write_text(f"cd {shlex.quote(str(tmp_path))}\n{generate}\n{migrate}\n"
                      "echo FINISHED $?\nsleep 600\n")
    env_unset = " ".join(f"-u {k}" for k in os.environ if k.startswith(("MIG_", "GEN_")))
    _tmux(tmux_socket, "new-session", "-d", "-x", str(COLUMNS), "-y", str(ROWS), "-s", "dw",
          f"env {env_unset} TERM=xterm-256color bash {shlex.quote(str(script))}")
    deadline = time.monotonic() + 400
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux(tmux_socket, "capture-pane", "-p", "-t", "dw")
        if "FINISHED" in screen:
            break
        time.sleep(1)
    assert "FINISHED 0" in screen, screen
    lines = screen.splitlines()
    assert all(len(line) <= COLUMNS for line in lines)

    bars = [line for line in lines if BAR in line]
    gen_bars = [line for line in bars if "3,000/3,000" in line and line.startswith("generate")]
    mig_bars = [line for line in bars if "3,000/3,000" in line and line.startswith("migrate")]
    assert len(gen_bars) == 1 and len(mig_bars) == 1, screen
    for bar in (gen_bars[0], mig_bars[0]):
        assert "ETA 0:00:00" in bar, bar  # count and ETA share the bar's line
        at = lines.index(bar)
        display = bar + " " + lines[at + 1]  # at 100 columns the rates wrap to a second line
        assert re.search(r"\d[\d,]* docs/s", display), display

    # Log lines printed while the display was live: whole, one per line, no bar in them.
    for needle in ("halfway there: document 1500", "verify --mode hash: EQUAL"):
        found = [line for line in lines if needle in line]
        assert len(found) == 1, f"{needle!r} not on the screen once:\n{screen}"
        assert LOG_LINE.match(found[0]) and BAR not in found[0], found[0]
    # The verification had its own phase, and its own row in the summary.
    assert re.search(r"verifying \(hash\) +│ [\d.,]+ s", screen), screen
    assert re.search(r"total duration +│ [\d.,]+ s", screen), screen
    logged = next(i for i, line in enumerate(lines) if "halfway there" in line)
    assert logged < lines.index(gen_bars[0]), "the log line belongs above the display"
    with MongoClient(target_uri) as client:
        assert client[unique_db_name]["orders"].count_documents({}) == 3000
        client.drop_database(unique_db_name)
    with MongoClient(mongo_uri) as client:
        client.drop_database(unique_db_name)
