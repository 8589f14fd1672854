"""The Cosmos DB stand-in's arithmetic and message codec (pure logic, no server)."""

from __future__ import annotations

import bson
import pytest

from dataworks.testing.cosmos import throttle_text
from dataworks.testing.cosmos_cost import CostModel, RequestUnitBudget
from dataworks.testing.wire import MORE_TO_COME, OpMsg, OpQuery, OpReply


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cost_model_reads_per_kb_with_a_minimum_and_writes_rounded_up_to_a_kb():
    cost = CostModel()
    assert cost.read(100) == 1.0  # per-request minimum
    assert cost.read(10 * 1024) == 10.0
    assert cost.write([200]) == 5.5  # under 1 KB costs 1 KB
    assert cost.write([2048, 512]) == 16.5
    assert CostModel(write_ru_per_kb=6.0, read_minimum_ru=2.5).read(0) == 2.5


def test_budget_admits_while_above_zero_overdraws_and_refills_at_its_rate():
    clock = Clock()
    budget = RequestUnitBudget(100, clock=clock)
    assert budget.admits() and budget.retry_after_ms() == 0
    budget.charge(150)  # a read may overdraw: its charge is known only afterwards
    assert not budget.admits()
    assert budget.retry_after_ms() == 501  # 50 RU short at 100 RU/s, plus 1 ms
    clock.now += 0.6
    assert budget.admits() and budget.available() == pytest.approx(10)
    clock.now += 60
    assert budget.available() == 100  # never more than one second of throughput


def test_budget_unlimited_zero_and_changed_at_run_time():
    clock = Clock()
    budget = RequestUnitBudget(None, clock=clock)
    budget.charge(1e9)
    assert budget.admits() and not budget.limited
    budget.set(0)
    clock.now += 10
    assert not budget.admits() and budget.retry_after_ms() == 1000
    budget.set(20)
    assert budget.available() == 20
    with pytest.raises(ValueError):
        budget.set(-1)


def test_throttle_messages_carry_retry_after_only_in_that_form():
    assert "RetryAfterMs=42," in throttle_text("retry_after", 42)
    assert "no changes were made" in throttle_text("retry_after", 42)
    assert "RetryAfterMs" not in throttle_text("request_rate_is_large", 42)
    assert throttle_text("insert_error", 42) == "Error=16500, Details='Insert error.'"
    with pytest.raises(ValueError):
        throttle_text("other", 1)


def test_op_msg_round_trip_keeps_document_sequences_raw():
    docs = [bson.encode({"_id": i}) for i in range(3)]
    msg = OpMsg(MORE_TO_COME, bson.encode({"insert": "c", "$db": "d"}), {"documents": docs})
    parsed = OpMsg.parse(msg.encode())
    assert parsed.command == "insert" and parsed.flags == MORE_TO_COME
    assert parsed.sequences == {"documents": docs}
    parsed.sequences["documents"] = docs[:1]
    assert OpMsg.parse(parsed.encode()).sequences["documents"] == docs[:1]


def test_op_query_and_op_reply_round_trip():
    query = OpQuery(0, "admin.$cmd", 0, -1, {"isMaster": 1, "compression": ["zlib"]}, b"")
    again = OpQuery.parse(query.encode())
    assert again.collection == "admin.$cmd" and again.query == query.query
    reply = OpReply(8, 0, 0, [{"ok": 1.0, "setName": "globaldb"}])
    assert OpReply.parse(reply.encode()).documents == reply.documents
