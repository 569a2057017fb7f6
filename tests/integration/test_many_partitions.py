"""Many partitions under a low file-descriptor limit.

A broker used to hold four files open per segment, so 2,000 partitions
needed 8,000 descriptors: under a 1,024 limit it could neither create them
nor restart on them ("Too many open files"). Segment files now come from a
bounded cache (`log.max_open_files`, by default half of RLIMIT_NOFILE).
Not timed: docs/benchmarks.md has the 10,000-partition figures.
"""

from __future__ import annotations

import os
import shutil
import time

from confluent_kafka import Producer, TopicPartition

from clients import confluent_consumer, confluent_create_topic
from harness import Broker
from util import unique_topic

PARTITIONS = 2_000
# The limit the broker runs under, soft and hard, so it cannot raise it.
NOFILE_LIMIT = 1024
# librdkafka delivery and consume deadlines for 2,000 partitions on a loaded box.
DELIVERY_TIMEOUT_S = 120.0
CONSUME_TIMEOUT_S = 120.0


class LimitedBroker(Broker):
    """A broker started under `prlimit --nofile=N:N` (prlimit execs the
    broker, so the pid is the broker's)."""

    def command(self) -> list[str]:
        return [shutil.which("prlimit") or "prlimit", f"--nofile={NOFILE_LIMIT}:{NOFILE_LIMIT}", *super().command()]


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def produce_one_per_partition(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": 100_000})
    failures: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            failures.append(f"{msg.partition()}: {err}")

    for p in range(PARTITIONS):
        producer.produce(topic, value=f"v{p}".encode(), partition=p, on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(DELIVERY_TIMEOUT_S)
    assert remaining == 0, f"{remaining} records undelivered"
    assert not failures, failures[:10]


def consume_all(bootstrap: str, topic: str) -> dict[int, bytes]:
    consumer = confluent_consumer(bootstrap, **{"enable.partition.eof": False})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        seen: dict[int, bytes] = {}
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while len(seen) < PARTITIONS and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=1.0):
                assert msg.error() is None, msg.error()
                seen[msg.partition()] = msg.value()
        return seen
    finally:
        consumer.close()


def test_two_thousand_partitions_under_a_1024_descriptor_limit(tmp_path):
    broker = LimitedBroker(tmp_path / "limited", name="limited")
    try:
        broker.start()
        topic = unique_topic("wide")
        confluent_create_topic(broker.bootstrap, topic, PARTITIONS)
        produce_one_per_partition(broker.bootstrap, topic)
        assert open_fds(broker.pid) < NOFILE_LIMIT

        broker.restart()
        assert "Too many open files" not in broker.log_text()
        seen = consume_all(broker.bootstrap, topic)
        assert len(seen) == PARTITIONS, f"only {len(seen)} partitions read back"
        assert all(seen[p] == f"v{p}".encode() for p in range(PARTITIONS))
        assert open_fds(broker.pid) < NOFILE_LIMIT

        # A crash (no clean shutdown) must also come back under the limit.
        broker.kill9()
        broker.start()
        seen = consume_all(broker.bootstrap, topic)
        assert len(seen) == PARTITIONS
    finally:
        if broker.alive():
            broker.stop(check=False)
