"""Issue 3, proofs 5 and 6: what a broker acknowledged survives a clean
restart and a kill -9."""

from __future__ import annotations

import time

from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource, ResourceType

from clients import (
    ADMIN_TIMEOUT_S,
    ConfluentClient,
    confluent_admin,
    confluent_partition_count,
    confluent_watermarks,
)
from util import Rec, assert_all_partitions_equal, by_partition, make_records, unique_topic


def _describe(bootstrap: str, topic: str) -> dict[str, str]:
    admin = confluent_admin(bootstrap)
    res = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([res], request_timeout=ADMIN_TIMEOUT_S)[res].result(timeout=ADMIN_TIMEOUT_S)
    return {k: e.value for k, e in entries.items()}


def _read_all(bootstrap: str, topic: str, partitions: int) -> dict[int, list[Rec]]:
    client = ConfluentClient()
    out = {}
    for p in range(partitions):
        low, high = confluent_watermarks(bootstrap, topic, p)
        assert low == 0, f"{topic}[{p}] log start moved to {low}"
        out[p] = client.consume_partition(bootstrap, topic, p, high)
    return out


def test_topics_configs_and_records_survive_clean_restart(broker):
    client = ConfluentClient()
    # Small segments so the restart has to reopen several segment files per
    # partition, not just one.
    topics = {
        unique_topic("durable-a"): (3, {"retention.ms": "86400000", "segment.bytes": "1048576"}),
        unique_topic("durable-b"): (1, {"retention.ms": "3600000", "cleanup.policy": "delete"}),
    }
    sent = {}
    for i, (t, (parts, cfg)) in enumerate(topics.items()):
        client.create_topic(broker.bootstrap, t, parts, cfg)
        recs = make_records(6000 if parts == 3 else 500, parts, seed=100 + i, value_bytes=1000)
        client.produce(broker.bootstrap, t, recs, "none" if i == 0 else "zstd")
        sent[t] = recs

    broker.restart()  # SIGTERM, exit 0 asserted, start on the same data dir

    md = confluent_admin(broker.bootstrap).list_topics(timeout=ADMIN_TIMEOUT_S)
    for t, (parts, cfg) in topics.items():
        assert t in md.topics, f"topic {t} lost across restart"
        assert confluent_partition_count(broker.bootstrap, t) == parts
        described = _describe(broker.bootstrap, t)
        for k, v in cfg.items():
            assert described.get(k) == v, f"{t}: config {k} is {described.get(k)!r} after restart, was {v!r}"
        read = _read_all(broker.bootstrap, t, parts)
        assert_all_partitions_equal(sent[t], read, parts)

    # The log continues where it left off: the next offset is the old high watermark.
    t = next(iter(topics))
    expected_next = len(by_partition(sent[t])[0])
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "message.timeout.ms": 30000})
    offsets = []
    p.produce(t, b"after-restart", key=b"k", partition=0, on_delivery=lambda e, m: offsets.append((e, m.offset())))
    assert p.flush(30) == 0
    assert offsets == [(None, expected_next)]


def test_acknowledged_records_survive_kill_9_during_produce(broker, topic_name):
    partitions = 3
    ConfluentClient().create_topic(broker.bootstrap, topic_name, partitions)
    records = make_records(40_000, partitions, seed=9)
    acked: dict[tuple[int, int], Rec] = {}
    failed = []

    def on_delivery(err, msg, rec):
        if err is None:
            acked[(msg.partition(), msg.offset())] = rec
        else:
            failed.append(err)

    p = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 5000,
            "socket.timeout.ms": 3000,
            "reconnect.backoff.max.ms": 500,
        }
    )
    killed_after = None
    deadline = time.monotonic() + 60
    for i, r in enumerate(records):
        while True:
            try:
                p.produce(topic_name, value=r.value, key=r.key, partition=r.partition,
                          timestamp=r.timestamp_ms, headers=list(r.headers),
                          on_delivery=lambda err, msg, rec=r: on_delivery(err, msg, rec))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
        # Kill mid-stream, with requests in flight and more queued behind them.
        if killed_after is None and len(acked) >= 5000:
            broker.kill9()
            killed_after = i
        if killed_after is not None and i >= killed_after + 2000:
            break
        assert time.monotonic() < deadline, f"only {len(acked)} acks in 60s; broker too slow to reach the kill point"
    assert killed_after is not None, f"produced everything with only {len(acked)} acks; never killed"
    # Everything still queued fails (message.timeout.ms) since the broker is down.
    p.flush(20)
    p.purge()
    p.flush(5)
    del p
    assert acked, "no record was acknowledged before the kill"
    # Proof the kill landed mid-stream: some records were in flight or queued.
    assert failed, "every record was acknowledged; the kill did not interrupt produce"

    broker.start()  # same data dir, same ports

    for part in range(partitions):
        low, high = confluent_watermarks(broker.bootstrap, topic_name, part)
        acked_here = sorted(o for (pp, o) in acked if pp == part)
        assert low == 0
        assert high > (acked_here[-1] if acked_here else -1), (
            f"partition {part}: high watermark {high} after restart, but offset {acked_here[-1]} was acknowledged"
        )
        got = ConfluentClient().consume_partition(broker.bootstrap, topic_name, part, high)
        for off in acked_here:
            want = acked[(part, off)]
            have = got[off]
            assert (have.key, have.value, have.headers, have.timestamp_ms) == (
                want.key, want.value, want.headers, want.timestamp_ms
            ), f"partition {part} offset {off}: acknowledged record differs after kill -9"
        # Whatever survived beyond the acks must still be records we sent, in order.
        sent_here = [r for r in records if r.partition == part]
        assert [r.key for r in got] == [r.key for r in sent_here[: len(got)]], (
            f"partition {part}: log after kill -9 is not a prefix of what was sent"
        )
