"""Pure logic of error classification, retry budgets and adaptive concurrency."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    CursorNotFound,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from dataworks.core.errors import (
    Classified,
    ErrorKind,
    classify,
    fatal_error,
    retry_after_seconds,
    split_bulk_error,
)
from dataworks.core.retry import RetryPolicy, with_retries
from dataworks.core.throttle import AdaptiveLimiter
from dataworks.errors import RunFailed, SettingsError

COSMOS = ("Error=16500, RetryAfterMs=8, Details='Response status code does not indicate "
          "success: TooManyRequests (429); Substatus: 3200; Reason: (Request rate is large.)'")


@pytest.mark.parametrize(("exc", "kind"), [
    (AutoReconnect("connection reset"), ErrorKind.TRANSIENT),
    (NetworkTimeout("timed out"), ErrorKind.TRANSIENT),
    (NotPrimaryError("not primary"), ErrorKind.TRANSIENT),
    (ServerSelectionTimeoutError("no servers"), ErrorKind.TRANSIENT),
    (ExecutionTimeout("exceeded time limit", code=50), ErrorKind.THROTTLED),
    (OperationFailure("Request timed out. Retries due to rate limiting: True.", code=50),
     ErrorKind.THROTTLED),
    (CursorNotFound("cursor id 1 not found", code=43), ErrorKind.TRANSIENT),
    (OperationFailure("pool cleared", code=91), ErrorKind.TRANSIENT),
    (OperationFailure("x", code=1, details={"errorLabels": ["RetryableWriteError"]}),
     ErrorKind.TRANSIENT),
    (OperationFailure(COSMOS, code=16500), ErrorKind.THROTTLED),
    (OperationFailure("TooManyRequests", code=429), ErrorKind.THROTTLED),
    (OperationFailure("Message: {\"Errors\":[\"Request rate is large\"]}", code=None),
     ErrorKind.THROTTLED),
    (DuplicateKeyError("E11000", code=11000), ErrorKind.DUPLICATE),
    (OperationFailure("Document failed validation", code=121), ErrorKind.REJECTED),
    (OperationFailure("not authorized", code=13), ErrorKind.FATAL),
    (OperationFailure("auth failed", code=18), ErrorKind.FATAL),
    (OperationFailure("ns not found", code=26), ErrorKind.FATAL),
    (ValueError("a bug"), ErrorKind.FATAL),
])
def test_classify(exc, kind):
    assert classify(exc).kind is kind


def test_retry_after_is_read_from_cosmos_messages_or_absent():
    assert retry_after_seconds(COSMOS) == pytest.approx(0.008)
    assert classify(OperationFailure(COSMOS, code=16500)).retry_after_s == pytest.approx(0.008)
    assert retry_after_seconds("Error=16500, Details='Insert error.'") is None


def _bulk(errors, inserted):
    return BulkWriteError({"writeErrors": errors, "nInserted": inserted})


def test_split_bulk_error_sorts_documents_and_a_whole_bulk_error_classifies():
    exc = _bulk([{"index": 1, "code": 11000, "errmsg": "dup"},
                 {"index": 2, "code": 16500, "errmsg": COSMOS},
                 {"index": 4, "code": 121, "errmsg": "validation"}], inserted=2)
    out = split_bulk_error(exc, 5)
    assert (out.written, out.duplicates, out.retry) == (2, [1], [2])
    assert [i for i, _ in out.rejected] == [4] and out.throttled
    assert out.retry_after_s == pytest.approx(0.008) and out.fatal is None
    assert classify(exc).kind is ErrorKind.REJECTED
    assert classify(_bulk([{"index": 0, "code": 16500, "errmsg": COSMOS}], 0)).retryable
    assert classify(_bulk([{"index": 0, "code": 13, "errmsg": "no"}], 0)).kind is ErrorKind.FATAL


def test_written_is_never_more_than_the_documents_no_error_names():
    # mongo-java-server answers n=3 for a batch of 3 whose 3 documents all were duplicates.
    exc = _bulk([{"index": i, "code": 11000, "errmsg": "dup"} for i in range(3)], inserted=3)
    out = split_bulk_error(exc, 3)
    assert (out.written, out.duplicates) == (0, [0, 1, 2])
    partly = _bulk([{"index": 0, "code": 11000, "errmsg": "dup"}], inserted=4)
    assert split_bulk_error(partly, 4).written == 3


def test_fatal_errors_become_one_line_user_errors():
    err = fatal_error(Classified(ErrorKind.FATAL, 18, "Authentication failed.\nSee docs"),
                      side="target", setting="MIG_TARGET_DB_CONNECTION_STRING")
    assert isinstance(err, SettingsError) and "\n" not in str(err)
    assert "MIG_TARGET_DB_CONNECTION_STRING" in str(err)
    err = fatal_error(Classified(ErrorKind.FATAL, 13, "not authorized"), side="source",
                      setting="S")
    assert isinstance(err, SettingsError) and "roles" in str(err)
    assert isinstance(fatal_error(Classified(ErrorKind.FATAL, 999, "boom"), side="t",
                                  setting="S"), RunFailed)


def test_budget_counts_transient_failures_but_only_time_for_throttling():
    now = [0.0]
    budget = RetryPolicy(max_attempts=3, max_seconds=60).budget("x")
    budget.clock = lambda: now[0]
    budget.since = 0.0
    throttled = Classified(ErrorKind.THROTTLED, 16500, COSMOS, 0.5)
    transient = Classified(ErrorKind.TRANSIENT, None, "reset")
    for _ in range(50):  # throttling alone never exhausts the attempts
        assert budget.next_delay(throttled) >= 0.5
    budget.next_delay(transient)
    budget.next_delay(transient)
    with pytest.raises(RunFailed, match="FRAMEWORK_RETRY_MAX_ATTEMPTS"):
        budget.next_delay(transient)
    budget.progressed()  # progress starts the count again
    budget.next_delay(transient)
    now[0] = 61.0
    with pytest.raises(RunFailed, match="still failing"):
        budget.next_delay(throttled)


async def test_with_retries_resets_its_budget_on_progress():
    done = [0]
    calls = [0]

    async def flaky():
        calls[0] += 1
        if calls[0] < 10:
            done[0] += 1  # some work got through before each failure
            raise AutoReconnect("reset")
        return "ok"

    policy = RetryPolicy(max_attempts=2, base_delay_s=0.001, max_delay_s=0.001)
    assert await with_retries(flaky, policy, what="read", progress=lambda: done[0]) == "ok"
    calls[0] = 0
    with pytest.raises(RunFailed):
        await with_retries(flaky, policy, what="read")


def test_limiter_halves_once_per_round_and_recovers_one_by_one():
    now = [0.0]
    limiter = AdaptiveLimiter(8, recovery_s=5.0, clock=lambda: now[0])
    stale = [asyncio.run(limiter.acquire()) for _ in range(4)]
    limiter.throttled(stale[0])
    assert limiter.limit == 4
    for permit in stale[1:]:  # in flight before we slowed down: no further halving
        limiter.throttled(permit)
    assert limiter.limit == 4
    for _ in stale:
        limiter.release()
    fresh = asyncio.run(limiter.acquire())
    limiter.throttled(fresh)
    limiter.release()
    assert limiter.limit == 2
    for _ in range(2):
        limiter.throttled(asyncio.run(limiter.acquire()))
        limiter.release()
    assert limiter.limit == 1 and limiter.lowest == 1  # never below the minimum
    now[0] = 4.9
    limiter.succeeded()
    assert limiter.limit == 1  # not quiet long enough
    for step in range(1, 8):
        now[0] = 5.0 * step + 5.0
        limiter.succeeded()
    assert limiter.limit == 8 and limiter.increases == 7


async def test_limiter_caps_concurrency_and_wakes_waiters():
    from dataworks.monitoring.metrics import RunMetrics

    metrics = RunMetrics()
    limiter = AdaptiveLimiter(4, recovery_s=1000, metrics=metrics)
    permit = await limiter.acquire()
    limiter.throttled(permit)
    limiter.release()
    assert metrics.concurrency == 2
    running = peak = 0

    async def work():
        nonlocal running, peak
        async with limiter.permit():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.wait_for(asyncio.gather(*(work() for _ in range(20))), 10)
    assert peak == 2 and limiter.in_use == 0


def test_a_write_concern_error_resends_the_whole_batch_as_not_yet_proven():
    concern = [{"code": 64, "errmsg": "waiting for replication timed out"}]
    exc = BulkWriteError({"writeErrors": [{"index": 1, "code": 11000, "errmsg": "dup"}],
                          "writeConcernErrors": concern, "nInserted": 3})
    out = split_bulk_error(exc, 4)
    # Applied on the primary but maybe rolled back: nothing counts as written yet; the
    # re-send answers duplicates for what survived.
    assert (out.written, out.duplicates, out.retry) == (0, [1], [0, 2, 3])
    assert out.write_concern == "waiting for replication timed out" and out.fatal is None
    only_concern = BulkWriteError({"writeErrors": [], "writeConcernErrors": concern,
                                   "nInserted": 2})
    assert split_bulk_error(only_concern, 2).retry == [0, 1]
    assert classify(only_concern).retryable
    # Without a write-concern error nothing changes.
    assert split_bulk_error(_bulk([], 2), 2).written == 2


def test_read_pacer_shrinks_cursors_and_batch_when_throttled_and_grows_back_when_quiet():
    from dataworks.core.throttle import ReadPacer
    from dataworks.monitoring.metrics import RunMetrics

    now = [0.0]
    metrics = RunMetrics()
    pacer = ReadPacer(4, 1000, recovery_s=5.0, metrics=metrics, min_batch=100,
                      clock=lambda: now[0])
    assert (metrics.read_concurrency, metrics.read_batch_size) == (4, 1000)

    async def storm() -> None:
        permits = [await pacer.limiter.acquire() for _ in range(4)]
        for permit in permits:  # four answers to requests already in flight: one decrease
            pacer.throttled(permit)
            pacer.limiter.release()

    asyncio.run(storm())
    assert (metrics.read_concurrency, metrics.read_batch_size) == (2, 500)
    assert metrics.throttled == metrics.source_throttled == 4
    for _ in range(3):  # each new throttled request halves again, down to the floors
        async def once() -> None:
            async with pacer.permit() as permit:
                pacer.throttled(permit)
        asyncio.run(once())
    assert (metrics.read_concurrency, metrics.read_batch_size) == (1, 100)
    pacer.succeeded()  # not quiet long enough
    assert metrics.read_batch_size == 100
    for expected in ((2, 200), (3, 400), (4, 800), (4, 1000), (4, 1000)):
        now[0] += 5.0
        pacer.succeeded()
        assert (metrics.read_concurrency, metrics.read_batch_size) == expected
