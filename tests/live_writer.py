"""The application during a live-migration test: inserts, updates, replaces and deletes on
the source for a while, at a steady rate, then exits (`python -m tests.live_writer`).

    python -m tests.live_writer URI DB COLLECTION[,COLLECTION...] SECONDS OPS_PER_S [SEED]

With several collections (comma-separated), each operation picks one of them at random.

Documents have integer `_id`s; it touches ids 0..(2 x the seeded count), so it updates and
deletes copied documents and inserts new ones. Prints the number of operations done.

Every document has the same fields in the same order (`n v pad tags updates`, as `seed`
writes them): mongo-java-server's replace keeps the replaced document's field order for the
fields both have and appends the others (MongoDB takes the new document's order), so a
target that reached the same content by another path could otherwise differ in order only.
"""

from __future__ import annotations

import random
import sys
import time

from pymongo import MongoClient


def main(argv: list[str]) -> int:
    uri, db, coll, seconds, rate = argv[:5]
    rng = random.Random(int(argv[5]) if len(argv) > 5 else 7)
    with MongoClient(uri) as client:
        collections = [client[db][name] for name in coll.split(",")]
        tops = [max(c.estimated_document_count(), 10) * 2 for c in collections]
        done, end, step = 0, time.monotonic() + float(seconds), 1.0 / float(rate)
        next_at = time.monotonic()
        while time.monotonic() < end:
            which = rng.randrange(len(collections)) if len(collections) > 1 else 0
            collection = collections[which]
            i = rng.randrange(tops[which])
            kind = rng.random()
            if kind < 0.3:
                collection.replace_one({"_id": i}, {"n": i, "v": rng.random(), "pad": "i",
                                                    "tags": ["ins"], "updates": 0}, upsert=True)
            elif kind < 0.6:
                collection.update_one({"_id": i}, {"$set": {"v": rng.random()},
                                                   "$inc": {"updates": 1}})
            elif kind < 0.8:
                collection.replace_one({"_id": i}, {"n": i, "v": rng.random(), "pad": "r",
                                                    "tags": ["a", rng.random()], "updates": 0})
            else:
                collection.delete_one({"_id": i})
            done += 1
            next_at += step
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        print(done)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
