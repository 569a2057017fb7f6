"""Exactly-once consume-transform-produce worker, run as its own process so
test_transactions.py can kill -9 it mid-stream.

usage: eos_worker.py BOOTSTRAP SRC DST GROUP TXN_ID TOTAL [PACE_S]

Consumes SRC (read_committed, group GROUP), writes "out-<value>" to DST in
transactions that also commit the consumed offsets, and exits 0 once the
group's committed offsets cover TOTAL input records. PACE_S (default 0)
pauses inside every transaction, between its writes and its commit, so a
run that is to be killed lasts long enough to be killed mid-transaction."""

from __future__ import annotations

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

DEADLINE_S = 100.0
BATCH = 25


def main() -> int:
    bootstrap, src, dst, group, txn_id, total = sys.argv[1:7]
    total = int(total)
    pace_s = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "fetch.wait.max.ms": 100,
        # A killed predecessor leaves a dead member behind; the group drops
        # it after this long (the broker's minimum), not the 45 s default.
        "session.timeout.ms": 6000,
    })
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "linger.ms": 5,
    })
    producer.init_transactions(30)
    consumer.subscribe([src])
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        msgs = consumer.consume(BATCH, 0.5)
        msgs = [m for m in msgs if not m.error()]
        if msgs:
            producer.begin_transaction()
            for m in msgs:
                producer.produce(dst, value=b"out-" + m.value(), partition=m.partition())
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30)
            time.sleep(pace_s)
            producer.commit_transaction(30)
        try:
            committed = consumer.committed(
                [TopicPartition(src, p) for p in range(3)], timeout=10)
        except KafkaException as e:
            # Transient (e.g. the coordinator connection was being set up);
            # the overall deadline still bounds the run.
            print(f"committed() failed, retrying: {e}", file=sys.stderr)
            continue
        done = sum(max(tp.offset, 0) for tp in committed)
        if done >= total:
            consumer.close()
            return 0
    print("worker ran out of time", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
