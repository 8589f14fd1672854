"""The Cosmos DB stand-in's request-unit arithmetic: what a request costs, what is left.

Cost model (`CostModel`, every figure configurable; defaults follow Microsoft's rules of
thumb, not measured Cosmos charges):

- reads (`find`, `getMore`, `aggregate`, `count`, `distinct`, ...): `read_ru_per_kb` (1.0)
  per KB of the reply, at least `read_minimum_ru` (1.0) per request;
- writes (`insert`, `update`, `delete`, `findAndModify`): `write_ru_per_kb` (5.5) per KB of
  each document or statement written, each rounded up to 1 KB (a 200-byte insert costs 5.5);
- any other metered command (`createIndexes`, `drop`, `listCollections`, ...): `other_ru`
  (1.0) each.

Charges are rounded to 2 decimals, the way `getLastRequestStatistics` shows them.

Budget (`RequestUnitBudget`): N RU/s provisioned, a bucket of one second (N RU) refilled at
N RU/s. A request is admitted while the bucket is above zero and may overdraw it (a read's
charge is only known from its reply); the requests after it are throttled until the
bucket refills, and `retry_after_ms` is the time that takes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

KB = 1024


@dataclass(frozen=True)
class CostModel:
    read_ru_per_kb: float = 1.0
    read_minimum_ru: float = 1.0
    write_ru_per_kb: float = 5.5
    other_ru: float = 1.0

    def read(self, reply_bytes: int) -> float:
        return round(max(self.read_minimum_ru, self.read_ru_per_kb * reply_bytes / KB), 2)

    def write_one(self, size: int) -> float:
        return self.write_ru_per_kb * max(size, KB) / KB

    def write(self, sizes: Iterable[int]) -> float:
        return round(sum(self.write_one(size) for size in sizes), 2)


class RequestUnitBudget:
    """Provisioned throughput: `ru_per_s` None means unlimited (metered, never throttled)."""

    def __init__(self, ru_per_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.set(ru_per_s)

    def set(self, ru_per_s: float | None) -> None:
        """A new provisioned rate takes effect now, with a full one-second bucket."""
        if ru_per_s is not None and ru_per_s < 0:
            raise ValueError("a budget is at least 0 RU/s")
        self.ru_per_s = ru_per_s
        self._level = float(ru_per_s or 0.0)
        self._at = self._clock()

    @property
    def limited(self) -> bool:
        return self.ru_per_s is not None

    def available(self) -> float:
        if self.ru_per_s is None:
            return math.inf
        now = self._clock()
        self._level = min(self.ru_per_s, self._level + (now - self._at) * self.ru_per_s)
        self._at = now
        return self._level

    def admits(self) -> bool:
        return self.available() > 0

    def charge(self, ru: float) -> None:
        if self.ru_per_s is not None:
            self.available()
            self._level -= ru

    def retry_after_ms(self) -> int:
        """Milliseconds until the bucket is above zero again (1 s when the rate is 0)."""
        level = self.available()
        if self.ru_per_s is None or level > 0:
            return 0
        if self.ru_per_s == 0:
            return 1000
        return max(1, math.ceil((-level / self.ru_per_s) * 1000) + 1)
