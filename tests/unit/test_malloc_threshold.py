"""Batch-sized buffers stay out of glibc's heap in the processes of a migration with transform
workers (issue 19, dataworks/core/malloc.py): once glibc has freed one mmapped ~2 MB buffer it
would serve the next ones from the heap (its mmap threshold rises), where they keep the RSS
high."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")

# mmapped chunks (mallinfo2().hblks) while a first and then a second 2 MB buffer is alive.
PROBE = textwrap.dedent("""
    import ctypes, os, sys

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "function":
        from dataworks.core.malloc import fix_mmap_threshold
        print(fix_mmap_threshold())
    elif sys.argv[1] == "worker":
        from dataworks.migrations.transform_worker import init_worker
        init_worker(None, None, os.getppid())
        print(True)
    first = bytearray(2_000_000)
    mapped = libc.mallinfo2().hblks
    del first
    second = bytearray(2_000_000)
    print(mapped, libc.mallinfo2().hblks)
""")


def _probe(mode: str, env: dict[str, str] | None = None) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True, timeout=60, env=env)
    return out.stdout.split()


def test_without_it_glibc_serves_the_second_buffer_from_the_heap() -> None:
    first, second = map(int, _probe("none"))
    assert second == first - 1  # what the fixed threshold prevents


@pytest.mark.parametrize("mode", ["function", "worker"])
def test_a_second_batch_sized_buffer_is_mmapped_again(mode: str) -> None:
    done, first, second = _probe(mode)
    assert done == "True"
    assert second == first  # mmapped like the first: returned to the system when freed


def test_a_users_malloc_setting_is_left_alone() -> None:
    import os

    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "4194304"}
    done, first, second = _probe("function", env)
    assert done == "False"
    assert (first, second) == ("0", "0")  # the user's 4 MB threshold: 2 MB from the heap


class _Called(Exception):
    pass


def test_a_transform_pool_fixes_it_in_the_main_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from dataworks.core.clients import Endpoint
    from dataworks.migrations import transform_pool
    from dataworks.migrations.loading import load_strategy
    from dataworks.monitoring.metrics import RunMetrics

    def called() -> bool:
        raise _Called

    monkeypatch.setattr(transform_pool, "fix_mmap_threshold", called)
    volvo = Path(__file__).resolve().parents[2] / "user_defined/strategies/volvo_strategy.py"
    strategy_cls, _ = load_strategy(str(volvo))
    with pytest.raises(_Called):
        transform_pool.TransformPool.for_run(
            strategy_cls, 2, source=Endpoint("mongodb://127.0.0.1:1/", "db", "c"),
            target_namespace="db.out", batch_size=10, metrics=RunMetrics())
