"""Does reading a change stream on mongo-java-server slow down as its oplog grows?

    .venv/bin/python -m bench.live_stream_cost

One mongo-java-server with its oplog. For 2,000 and then 20,000 loaded documents (the
oplog keeps every earlier entry too): 1,000 updates, then the seconds a change stream opened
at their start takes to deliver the 1,000 events (batch size 500, as `dataworks migrate
--live` asks), without and with `fullDocument: updateLookup`. No DataWorks code involved:
this separates the server's cost from the replay's (bench.live_lag).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bson import Timestamp
from pymongo import MongoClient

from dataworks.testing.mongojava import MongoJavaServer

EVENTS = 1000


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dw-stream-cost-") as tmp:
        server = MongoJavaServer(Path(tmp) / "source", oplog=True, heap="1g").start()
        try:
            with MongoClient(server.uri) as client:
                coll = client["bench"]["orders"]
                for count in (2000, 20000):
                    coll.drop()
                    for at in range(0, count, 5000):
                        coll.insert_many([{"_id": i, "v": 0}
                                          for i in range(at, min(at + 5000, count))])
                    for lookup in ("default", "updateLookup"):
                        time.sleep(1.1)  # operation times have 1-second resolution
                        since = Timestamp(int(time.time()), 0)
                        for i in range(EVENTS):
                            coll.update_one({"_id": i}, {"$inc": {"v": 1}})
                        started = time.monotonic()
                        with coll.watch(start_at_operation_time=since, full_document=lookup,
                                        batch_size=500, max_await_time_ms=200) as stream:
                            got = 0
                            while got < EVENTS:
                                got += stream.try_next() is not None
                        print(f"{count:,} documents loaded, fullDocument {lookup}: "
                              f"{EVENTS:,} events read in {time.monotonic() - started:.2f} s",
                              flush=True)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
