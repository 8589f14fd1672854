"""glibc's malloc, told not to keep batch-sized buffers in the heap (issue 19).

A migration allocates and frees buffers of a batch's size all the time (a 1,000-document
volvo page is ~1.7 MB: server replies, insert messages, the blobs sent to and from transform
workers). glibc serves an allocation above its mmap threshold (128 KB at start) with its own
mmap, returned to the system when freed; but each such free *raises* the threshold to the
freed size (up to 32 MB), so after the first batch every later batch buffer comes from the
heap, among small long-lived objects, and the heap keeps the high-water mark of all of them.
A fixed threshold (setting it turns the raising off) keeps them out of the heap: the main
process of `dataworks migrate` with the volvo strategy and 2 transform workers peaked at
153-158 MB without it and 131-135 MB with it, all its processes 254-258 vs 227-234 MB
(100,000 documents, mongo-java-server pair). It is not free: every such buffer is a fresh
mapping whose pages fault in again (volvo with workers: ~690k instead of ~400k minor faults,
~0.5 more system CPU-s per 100,000 documents, total CPU unchanged within the noise; the
pass-through copy: 210k instead of 40k faults, +0.3-0.6 CPU-s on ~2.5, for 15 MB of its
125-140). So only runs with transform workers set it (TransformPool, init_worker).

Not glibc (musl, macOS) or MALLOC_MMAP_THRESHOLD_ set by the user: nothing is changed.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept fixed

_done: bool | None = None


def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at 128 KB in this process; whether it was set (once)."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)  # this process's own symbols: its C library
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: others number mallopt's
        mallopt = libc.mallopt  # parameters differently
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return _done
