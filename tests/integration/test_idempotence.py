"""Idempotent producers (issue 5): retried batches never duplicate, gaps are
refused, and the dedup state survives a broker kill -9.

The wire-level test speaks Produce v3 by hand so it can send the exact
retry a client would; the client test uses librdkafka with
`enable.idempotence=true` and kills the broker under it."""

from __future__ import annotations

import struct
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from clients import confluent_create_topic
from util import (crc32c, connect, i8, i16, i32, i64, parse_produce_v3_response, produce_v3_request,
                  recv_response_or_close, varint, wait_until)

OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47


def idempotent_batch(producer_id: int, epoch: int, base_sequence: int, values: list[bytes]) -> bytes:
    """An uncompressed magic-2 batch carrying a producer id, epoch and base sequence."""
    body = bytearray()
    for i, v in enumerate(values):
        r = i8(0) + varint(i) + varint(i) + varint(-1) + varint(len(v)) + v + varint(0)
        body += varint(len(r)) + r
    n = len(values)
    ts = int(time.time() * 1000)
    after_crc = (i16(0) + i32(n - 1) + i64(ts) + i64(ts + n - 1) + i64(producer_id) + i16(epoch)
                 + i32(base_sequence) + i32(n) + bytes(body))
    return (i64(0) + i32(4 + 1 + 4 + len(after_crc)) + i32(-1) + i8(2)
            + struct.pack(">I", crc32c(after_crc)) + after_crc)


def produce(port: int, topic: str, batch: bytes, correlation_id: int) -> tuple[int, int]:
    """-> (error_code, base_offset) for partition 0."""
    s = connect(port)
    try:
        s.sendall(produce_v3_request(correlation_id, topic, 0, batch))
        resp = recv_response_or_close(s)
        assert resp is not None, "broker closed the connection"
        [(_, _, err, base)] = parse_produce_v3_response(resp[4:])
        return err, base
    finally:
        s.close()


def test_retried_batch_returns_its_original_offset_and_gaps_are_refused(broker, topic_name):
    confluent_create_topic(broker.bootstrap, topic_name, 1)
    port = broker.kafka_port
    pid = 4242
    first = idempotent_batch(pid, 0, 0, [b"a", b"b", b"c"])
    assert produce(port, topic_name, first, 1) == (0, 0)
    assert produce(port, topic_name, idempotent_batch(pid, 0, 3, [b"d"]), 2) == (0, 3)
    # The client's retry of the first batch: success, original offset, not appended again.
    assert produce(port, topic_name, first, 3) == (0, 0)
    # A gap (sequence 4 was never sent).
    err, _ = produce(port, topic_name, idempotent_batch(pid, 0, 5, [b"x"]), 4)
    assert err == OUT_OF_ORDER_SEQUENCE_NUMBER
    # A newer epoch fences the old one.
    assert produce(port, topic_name, idempotent_batch(pid, 1, 0, [b"e"]), 5) == (0, 4)
    err, _ = produce(port, topic_name, idempotent_batch(pid, 0, 4, [b"y"]), 6)
    assert err == INVALID_PRODUCER_EPOCH

    # The dedup state survives kill -9: rebuilt from the snapshot and the log tail.
    broker.kill9()
    broker.restart()
    assert produce(port, topic_name, idempotent_batch(pid, 1, 0, [b"e"]), 7) == (0, 4)
    err, _ = produce(port, topic_name, idempotent_batch(pid, 1, 7, [b"z"]), 8)
    assert err == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert produce(port, topic_name, idempotent_batch(pid, 1, 1, [b"f"]), 9) == (0, 5)


def read_partitions(bootstrap: str, topic: str, partitions: int, expected: int, timeout_s: float = 60) -> dict[int, list[bytes]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "idem-reader", "enable.auto.commit": False,
                  "enable.partition.eof": True, "fetch.wait.max.ms": 100})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
        eof: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(eof) < partitions or sum(map(len, out.values())) < expected:
            assert time.monotonic() < deadline, f"read {sum(map(len, out.values()))}/{expected}"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise KafkaException(m.error())
            eof.discard(m.partition())
            out[m.partition()].append(m.value())
        return out
    finally:
        c.close()


def test_idempotent_producer_across_broker_kill_has_no_duplicates_or_gaps(broker, topic_name):
    """librdkafka retries whatever was in flight when the broker died; the
    batches that had already reached the log must be recognised as
    duplicates after the restart."""
    partitions, per_partition = 3, 1500
    confluent_create_topic(broker.bootstrap, topic_name, partitions)
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                  "linger.ms": 2, "batch.num.messages": 50, "message.timeout.ms": 60000,
                  "retry.backoff.ms": 50, "reconnect.backoff.max.ms": 200})
    errors: list = []
    acked = [0]

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[0] += 1

    killed = False
    try:
        for i in range(per_partition):
            for part in range(partitions):
                p.produce(topic_name, value=f"{part}:{i:06d}".encode(), partition=part, on_delivery=on_delivery)
            p.poll(0)
            if i % 20 == 0:
                # Pace the producer so batches are always in flight.
                p.poll(0.005)
            if not killed and i == per_partition // 3:
                # Kill once half of what was queued so far is acked: the
                # rest is in flight or queued, and will be retried.
                half = partitions * (i + 1) // 2
                wait_until(lambda: p.poll(0.01) is not None and acked[0] >= half, 60,
                           "half of the queued records to be acked")
                broker.kill9()
                broker.restart()
                killed = True
        assert killed, "the broker was never killed"
        assert p.flush(90) == 0
    finally:
        p.purge()
    assert not errors, errors[:3]
    got = read_partitions(broker.bootstrap, topic_name, partitions, partitions * per_partition)
    for part in range(partitions):
        want = [f"{part}:{i:06d}".encode() for i in range(per_partition)]
        assert got[part] == want, (
            f"partition {part}: {len(got[part])} records, {len(set(got[part]))} distinct, want {per_partition}")
