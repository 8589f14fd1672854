"""Under the `dataworks` console script (pip's shim: `from dataworks.cli import main`), spawned
generation workers do not run the shim again, so they do not import the CLI (issue 19: each
worker spent ~0.4 CPU-s importing it; `python -m dataworks` never did)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SHIM = """import sys
from dataworks.cli import main
if __name__ == '__main__':
    sys.argv[0] = sys.argv[0].removesuffix('.exe')
    sys.exit(main())
"""

GENERATOR = """import os
import sys

from dataworks import BaseDataGenerator


class WhoImportedWhat(BaseDataGenerator):
    def generate_document(self, document_id=None):
        with open(os.environ["PROBE_OUT"], "a") as out:
            out.write(f"{os.getpid()} {'dataworks.cli' in sys.modules}\\n")
        return {"n": document_id}
"""


def test_workers_under_the_console_script_do_not_import_the_cli(tmp_path: Path) -> None:
    shim = tmp_path / "dataworks"
    shim.write_text(SHIM)
    generator = tmp_path / "who_generator.py"
    generator.write_text(GENERATOR)
    probe = tmp_path / "probe.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROBE_OUT": str(probe)}
    proc = subprocess.Popen(
        [sys.executable, str(shim), "generate", "--source", str(generator), "--total", "4",
         "--batch-size", "2", "--generation-workers", "2", "--dry-run", "--quiet",
         "--uri", "mongodb://127.0.0.1:1/", "--db", "t", "--collection", "t"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    seen = [line.split() for line in probe.read_text().splitlines()]
    assert [str(proc.pid), "True"] in seen  # the main process probed the generator
    workers = [loaded for pid, loaded in seen if int(pid) != proc.pid]
    assert workers and set(workers) == {"False"}, seen
