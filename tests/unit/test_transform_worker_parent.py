"""A transform worker leaves when the migration that started it is gone, even when it was
still starting up at that moment (it must watch the pid its parent gave it, not whatever
process adopted it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

WORKER = textwrap.dedent("""
    import sys, time
    from dataworks.migrations.transform_worker import init_worker
    init_worker(None, None, int(sys.argv[1]))
    time.sleep(30)
""")


def test_a_worker_whose_parent_is_already_gone_exits():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer is this worker's parent
    worker = subprocess.run([sys.executable, "-c", WORKER, str(gone.pid)], timeout=20,
                            capture_output=True, check=False)
    assert worker.returncode == 1 and not worker.stderr, worker.stderr
