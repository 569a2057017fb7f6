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
from harness import sluice_bin
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

    def compacted():
        # A finished clean (the metric counts it at the end) that left one
        # record per updated key. The cleaner may start while the filler
        # is produced, so no size taken now is a baseline.
        if cleaner_runs(http) == 0:
            return None
        records = read_all(broker.bootstrap, topic_name)
        return records if len([r for r in records if r[1] != b"filler"]) == len(keys) else None

    records = wait_until(compacted, CLEAN_TIMEOUT_S, "the cleaner to compact the topic", interval_s=0.5)
    got = {k: (o, v) for o, k, v in records if k != b"filler"}
    # One record per key: the latest, at the offset it was written at.
    assert len([r for r in records if r[1] != b"filler"]) == len(keys)
    for i, key in enumerate(keys):
        latest = max(j for j in range(1000) if j % 10 == i)
        assert got[key] == (last[key], f"v{latest}-".encode() + b"x" * 100)
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    assert_cleaner_reported(broker, http, topic_name)


def assert_cleaner_reported(broker, http: Http, topic: str) -> None:
    """A cleaned partition reports its dirty ratio and last clean over HTTP,
    in /metrics and in `sluice topic describe`; a topic that is not
    compacted has no dirty ratio."""
    part = http.get(f"/v1/topics/{topic}")["partitions"][0]
    assert 0.0 <= part["dirty_ratio"] <= 1.0, part
    assert part["last_clean_ms"] is not None and part["last_clean_ms"] <= time.time() * 1000
    _, _, body = http.raw("GET", "/metrics")
    labels = f'{{topic="{topic}",partition="0"}}'
    ratio = re.search(rf"^sluice_log_cleaner_dirty_ratio{re.escape(labels)} (\S+)$".encode(), body, re.M)
    assert ratio and 0.0 <= float(ratio.group(1)) <= 1.0, body[-2000:]
    since = re.search(rf"^sluice_log_cleaner_seconds_since_last_clean{re.escape(labels)} (\d+)$".encode(),
                      body, re.M)
    assert since and int(since.group(1)) < 600
    out = subprocess.run(
        [str(sluice_bin()), "topic", "describe", topic, "--bootstrap-server", broker.bootstrap,
         "--http-server", f"127.0.0.1:{broker.http_port}"],
        capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.decode().splitlines()[-2:]
    assert header.split()[-1] == "DIRTY", out.stdout
    assert row.split()[-1].endswith("%"), out.stdout
    plain = f"{topic}-plain"
    confluent_create_topic(broker.bootstrap, plain, 1, {})
    assert http.get(f"/v1/topics/{plain}")["partitions"][0]["dirty_ratio"] is None


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


# Kill -9 rounds during cleaning: each kills the broker while a clean has
# staged files on disk (a `.cleaned` segment being written or a `.swap`
# commit record being applied).
KILL_ROUNDS = 6
# Bound on waiting for a clean to start staging after a restart.
STAGING_TIMEOUT_S = 60.0


def staged_files(partition_dir) -> list[str]:
    try:
        names = [p.name for p in partition_dir.iterdir()]
    except FileNotFoundError:
        return []
    return [n for n in names if n.endswith(".cleaned") or n.endswith(".swap")]


def test_kill_9_during_cleaning_repeatedly_loses_no_latest_value(broker_factory, topic_name):
    """A kill -9 at any point of a clean leaves the old segments or the new
    ones: after each of several kills that land while a clean is staging or
    installing, and after a final clean, reading the partition from the
    start gives every key's latest value at the offset it was written at,
    and nothing that was not written."""
    import random

    # A 1 MiB dedupe buffer (~16,000 keys) and 2,000 keys: every clean maps
    # the whole dirty part; small segments make a clean many swaps long.
    broker = broker_factory.new(extra_args=CLEANER_ARGS + ["--set", "log.cleaner_dedupe_buffer_bytes=1048576"])
    http = Http(broker)
    confluent_create_topic(broker.bootstrap, topic_name, 1,
                           {**TOPIC_CONFIG, "segment.bytes": "65536"})
    partition_dir = broker.data_dir / f"{topic_name}-0"
    rng = random.Random(17)
    written: dict[int, tuple[bytes, bytes]] = {}
    round_no = [0]

    def produce_round(count: int) -> None:
        round_no[0] += 1
        # Small batches, so each 64 KiB segment holds several of them.
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5,
                             "batch.size": 16384, "enable.idempotence": True})
        errors = []

        def report(err, msg):
            if err:
                errors.append(err)
            else:
                written[msg.offset()] = (msg.key(), msg.value())

        for i in range(count):
            key = f"key-{rng.randrange(2000)}".encode()
            value = f"r{round_no[0]}-{i}-".encode() + b"v" * 200
            producer.produce(topic_name, key=key, value=value, partition=0, on_delivery=report)
            producer.poll(0)
        assert producer.flush(60) == 0
        assert not errors, errors

    def check_read_back() -> list[tuple[int, bytes, bytes | None]]:
        records = read_all(broker.bootstrap, topic_name)
        offsets = [o for o, _, _ in records]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
        for offset, key, value in records:
            assert written.get(offset) == (key, value), f"offset {offset} was not written as read"
        latest: dict[bytes, int] = {}
        for offset, (key, _) in written.items():
            latest[key] = max(latest.get(key, -1), offset)
        read_latest: dict[bytes, int] = {}
        for offset, key, _ in records:
            read_latest[key] = max(read_latest.get(key, -1), offset)
        missing = {k: o for k, o in latest.items() if read_latest.get(k) != o}
        assert not missing, f"{len(missing)} keys lost their latest value, e.g. {list(missing.items())[:3]}"
        return records

    kills_mid_clean = 0
    for _ in range(KILL_ROUNDS):
        produce_round(6000)
        seen = wait_until(lambda: staged_files(partition_dir), STAGING_TIMEOUT_S,
                          "the cleaner to stage a segment", interval_s=0.002)
        # Somewhere inside the clean: at once, or after a few more swaps.
        time.sleep(rng.choice([0, 0, 0.005, 0.02, 0.05, 0.15]))
        at_kill = staged_files(partition_dir)
        broker.kill9()
        assert seen
        if at_kill:
            kills_mid_clean += 1
        broker.start()
        check_read_back()
    assert kills_mid_clean >= KILL_ROUNDS // 2, f"only {kills_mid_clean} kills landed mid-clean"
    # After the last restart the cleaner finishes a clean (counted from 0
    # in the new process) and leaves no staged file behind.
    full = topic_bytes(http, topic_name)
    wait_until(lambda: cleaner_runs(http) > 0 and not staged_files(partition_dir),
               CLEAN_TIMEOUT_S * 2, "a clean to finish after the last restart")
    assert topic_bytes(http, topic_name) <= full
    records = check_read_back()
    # The cleaned part holds at most one record per key.
    assert len(records) < len(written)
