"""CPU and memory of this process (and its worker processes) with psutil.

Generation builds batches in spawned worker processes, so the process alone under-reports
what a run costs; children are sampled too and reported separately.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class ResourceSample:
    cpu_percent: float  # this process; 100 = one full core
    rss_bytes: int
    children_cpu_percent: float
    children_rss_bytes: int
    threads: int


class PerformanceMonitor:
    """Call `sample()` on a timer; CPU percentages are over the time since the last call."""

    def __init__(self, process: psutil.Process | None = None, *,
                 include_children: bool = True) -> None:
        self.process = process or psutil.Process()
        self.include_children = include_children
        self._children: dict[int, psutil.Process] = {}
        self.samples = 0
        self.peak_rss_bytes = 0
        self.peak_children_rss_bytes = 0
        self.cpu_percent_max = 0.0
        self._cpu_sum = 0.0
        self.process.cpu_percent(None)  # prime: the first reading is always 0.0

    @property
    def cpu_percent_mean(self) -> float:
        return self._cpu_sum / self.samples if self.samples else 0.0

    def sample(self) -> ResourceSample:
        with self.process.oneshot():
            cpu = float(self.process.cpu_percent(None))
            rss = int(self.process.memory_info().rss)
            threads = int(self.process.num_threads())
        child_cpu, child_rss = self._sample_children() if self.include_children else (0.0, 0)
        self.samples += 1
        self._cpu_sum += cpu
        self.cpu_percent_max = max(self.cpu_percent_max, cpu)
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        self.peak_children_rss_bytes = max(self.peak_children_rss_bytes, child_rss)
        return ResourceSample(cpu, rss, child_cpu, child_rss, threads)

    def _sample_children(self) -> tuple[float, int]:
        try:
            current = {c.pid: c for c in self.process.children(recursive=True)}
        except psutil.Error:
            return 0.0, 0
        cpu, rss = 0.0, 0
        for pid, child in current.items():
            known = self._children.get(pid)
            if known is None:  # first sight: prime its CPU counter, count its memory
                self._children[pid] = known = child
                with contextlib.suppress(psutil.Error):
                    known.cpu_percent(None)
                    rss += int(known.memory_info().rss)
                continue
            with contextlib.suppress(psutil.Error):
                cpu += float(known.cpu_percent(None))
                rss += int(known.memory_info().rss)
        for pid in set(self._children) - set(current):
            del self._children[pid]
        return cpu, rss
