"""Log compaction (issue 17) with real clients: many updates to few keys
produced with confluent-kafka, tombstones with kcat `-Z`, the background
cleaner run by the broker, then read back from the beginning: exactly the
latest value per key, at the offset it was written at; tombstones kept for
`delete.retention.ms`, then gone."""

from __future__ import annotations

import re
import subprocess
import time

from confluent_kafka import Consumer, Producer

from clients import confluent_create_topic, confluent_produce_keyed
from http_client import Http
from util import wait_until

# The cleaner's sleep when no log is dirty (Kafka's log.cleaner.backoff.ms).
CLEANER_ARGS = ["--set", "log.cleaner_backoff_ms=100"]
# Small segments roll often, so most of the log is sealed and cleanable.
TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.bytes": "4096",
    "min.cleanable.dirty.ratio": "0.01",
}
# Generous bound for the cleaner to reach a log (it polls every 100 ms).
CLEAN_TIMEOUT_S = 30.0


def produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes | None]]) -> dict[bytes, int]:
    """Produces `items` in order to partition 0; returns each key's last offset."""
    last = confluent_produce_keyed(bootstrap, topic, items, partition=0)
    return {key: offset for key, (_, offset, _) in last.items()}


def read_all(bootstrap: str, topic: str) -> list[tuple[int, bytes, bytes | None]]:
    """(offset, key, value) of every record of partition 0, from the start."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.subscribe([topic])
    out = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == -191:  # _PARTITION_EOF
                    return out
                raise AssertionError(msg.error())
            out.append((msg.offset(), msg.key(), msg.value()))
        raise AssertionError(f"no end of partition within 30 s; read {len(out)}")
    finally:
        consumer.close()


def cleaner_runs(http: Http) -> int:
    status, _, body = http.raw("GET", "/metrics")
    assert status == 200
    m = re.search(rb"^sluice_log_cleaner_runs_total (\d+)", body, re.M)
    return int(m.group(1)) if m else 0


def topic_bytes(http: Http, topic: str) -> int:
    return sum(p["size_bytes"] for p in http.get(f"/v1/topics/{topic}")["partitions"])


def test_the_cleaner_keeps_exactly_the_latest_value_per_key_at_its_offset(broker_factory, topic_name):
    broker = broker_factory.new(extra_args=CLEANER_ARGS)
    http = Http(broker)
    confluent_create_topic(broker.bootstrap, topic_name, 1, TOPIC_CONFIG)
    keys = [f"user-{i}".encode() for i in range(10)]
    updates = [(keys[i % 10], f"v{i}-".encode() + b"x" * 100) for i in range(1000)]
    last = produce(broker.bootstrap, topic_name, updates)
    # A filler key written after the updates, so the segments holding them
    # are sealed behind the active one.
    produce(broker.bootstrap, topic_name, [(b"filler", b"f" * 100)] * 60)
    full = topic_bytes(http, topic_name)

    wait_until(lambda: topic_bytes(http, topic_name) < full // 3, CLEAN_TIMEOUT_S,
               "the cleaner to compact the topic")
    assert cleaner_runs(http) > 0
    records = read_all(broker.bootstrap, topic_name)
    got = {k: (o, v) for o, k, v in records if k != b"filler"}
    # One record per key: the latest, at the offset it was written at.
    assert len([r for r in records if r[1] != b"filler"]) == len(keys)
    for i, key in enumerate(keys):
        latest = max(j for j in range(1000) if j % 10 == i)
        assert got[key] == (last[key], f"v{latest}-".encode() + b"x" * 100)
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)


def test_kcat_tombstones_stay_for_delete_retention_then_go(broker_factory, topic_name):
    broker = broker_factory.new(extra_args=CLEANER_ARGS)
    http = Http(broker)
    confluent_create_topic(broker.bootstrap, topic_name, 1, {**TOPIC_CONFIG, "delete.retention.ms": "3000"})
    produce(broker.bootstrap, topic_name, [(f"k{i % 4}".encode(), b"v" * 200) for i in range(200)])
    # kcat -Z: an empty value is a null value (a tombstone) for k0 and k1.
    res = subprocess.run(
        ["kcat", "-P", "-b", broker.bootstrap, "-t", topic_name, "-p", "0", "-K:", "-Z"],
        input=b"k0:\nk1:\n", capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    produce(broker.bootstrap, topic_name, [(b"filler", b"f" * 200)] * 40)

    def compacted_with_tombstones():
        records = read_all(broker.bootstrap, topic_name)
        live = [r for r in records if r[1] in (b"k0", b"k1", b"k2", b"k3")]
        return live if len(live) == 4 else None

    live = wait_until(compacted_with_tombstones, CLEAN_TIMEOUT_S, "the first clean")
    assert {k: v for _, k, v in live} == {b"k0": None, b"k1": None, b"k2": b"v" * 200, b"k3": b"v" * 200}
    # delete.retention.ms later, a clean (more dirty data makes one due)
    # removes the tombstones; k2 and k3 keep their values.
    time.sleep(3.5)
    produce(broker.bootstrap, topic_name, [(b"filler", b"g" * 200)] * 40)

    def tombstones_gone():
        records = read_all(broker.bootstrap, topic_name)
        keys = {k: v for _, k, v in records if k != b"filler"}
        return keys if b"k0" not in keys and b"k1" not in keys else None

    keys = wait_until(tombstones_gone, CLEAN_TIMEOUT_S, "the tombstones to go")
    assert keys == {b"k2": b"v" * 200, b"k3": b"v" * 200}
