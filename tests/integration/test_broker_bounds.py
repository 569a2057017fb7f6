"""One client cannot starve the broker or stall visibility.

- Produced data becomes durable and visible even when the producer's
  connection goes away before its responses are written.
- Request frames across all connections share one memory budget
  (limits.queued_max_request_bytes): while one connection holds it, another
  waits without being read, and proceeds when the budget is given back.
- A transactional batch for a partition never added to the transaction is
  refused (KIP-890 part 1), so the partition's last stable offset keeps
  moving; transaction.timeout.ms above transactions.max_timeout_ms is refused.
- Internal topics cannot be deleted, grown, have records deleted, or get
  configs that would lose their data.
"""

from __future__ import annotations

import socket
import struct

from clients import confluent_consumer, confluent_create_topic, confluent_watermarks
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from http_client import Http
from util import (
    Reader,
    build_record_batch,
    connect,
    crc32c,
    frame,
    i8,
    i16,
    i32,
    i64,
    kbytes,
    kstring,
    varint,
    now_ms,
    produce_v3_request,
    recv_response_or_close,
    request_header_v1,
    wait_until,
)

VISIBLE_WITHIN_S = 15


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0) instead of an orderly FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_produced_records_become_visible_after_the_producer_vanishes(broker, topic_name):
    """Pipelined produces (acks=1 and acks=all) to many partitions, then the
    socket is closed without reading a single response: a plain close in
    some rounds (the broker's second reply write fails), a reset in others.
    Every appended record must become visible (high watermark equal to the
    log end offset) and fetchable, with no further produce to push the high
    watermark along.

    A reset makes the kernel discard request bytes the broker has not read
    yet, so how many records land is up to the kernel; what is checked is
    that every record that did land becomes visible."""
    partitions = 24
    rounds = 6
    confluent_create_topic(broker.bootstrap, topic_name, partitions)
    ts = now_ms()
    for rnd in range(rounds):
        batch = build_record_batch([(b"k", f"r{rnd}".encode(), [])], base_ts_ms=ts)
        payload = b"".join(
            produce_v3_request(rnd * partitions + p, topic_name, p, batch, acks=1 if p % 2 else -1)
            for p in range(partitions)
        )
        sock = connect(broker.kafka_port)
        sock.sendall(payload)
        if rnd % 2:
            _reset(sock)
        else:
            sock.close()

    http = Http(broker)

    def offsets() -> dict[int, tuple[int, int]]:
        described = http.get(f"/v1/topics/{topic_name}")["partitions"]
        return {p["partition"]: (p["high_watermark"], p["log_end_offset"]) for p in described}

    # The broker may still be reading the last connection's requests; every
    # partition's high watermark must reach its log end offset on its own,
    # and stay there.
    settled: dict[int, tuple[int, int]] = {}

    def all_visible() -> bool:
        nonlocal settled
        now = offsets()
        done = now == settled and all(hw == leo for hw, leo in now.values())
        settled = now
        return done

    try:
        wait_until(all_visible, VISIBLE_WITHIN_S, "every partition's high watermark to reach its log end", interval_s=0.5)
    except AssertionError:
        stuck = {p: o for p, o in offsets().items() if o[0] != o[1]}
        raise AssertionError(f"high watermarks stuck below the log end (hw, leo): {stuck}") from None
    assert len(settled) == partitions
    total = sum(leo for _, leo in settled.values())
    assert total > 0, "no produce request was read at all"
    for p in range(partitions):
        assert confluent_watermarks(broker.bootstrap, topic_name, p)[1] == settled[p][1]

    consumer = confluent_consumer(broker.bootstrap)
    try:
        consumer.assign([TopicPartition(topic_name, p, 0) for p in range(partitions)])
        seen = 0
        eofs: set[int] = set()

        def drained() -> bool:
            nonlocal seen
            msg = consumer.poll(0.5)
            if msg is not None:
                if msg.error() is None:
                    seen += 1
                elif msg.error().code() == KafkaError._PARTITION_EOF:
                    eofs.add(msg.partition())
            return len(eofs) == partitions and seen == total

        wait_until(drained, VISIBLE_WITHIN_S, f"{total} records fetched", interval_s=0)
    finally:
        consumer.close()


REQUEST_BUDGET_BYTES = 2 * 1024 * 1024


def test_a_frame_holding_the_request_budget_holds_back_other_connections(broker_factory):
    """Connection A announces a frame as large as the whole budget and sends
    a few bytes of it. Connection B's small ApiVersions request must not be
    read while A holds the budget, and is answered once A goes away."""
    b = broker_factory.new(
        extra_args=[
            "--set", f"limits.socket_request_max_bytes={REQUEST_BUDGET_BYTES}",
            "--set", f"limits.queued_max_request_bytes={REQUEST_BUDGET_BYTES}",
        ]
    )
    hog = connect(b.kafka_port)
    hog.sendall(i32(REQUEST_BUDGET_BYTES) + b"\x00" * 10)
    http = Http(b)
    http.wait_ready()

    def queued_bytes() -> int:
        _, _, body = http.raw("GET", "/metrics")
        for line in body.decode().splitlines():
            if line.startswith("sluice_kafka_request_queued_bytes "):
                return int(float(line.split()[1]))
        raise AssertionError("no sluice_kafka_request_queued_bytes in /metrics")

    wait_until(lambda: queued_bytes() == REQUEST_BUDGET_BYTES, 10, "A's frame to take the whole budget")
    waiter = connect(b.kafka_port)
    waiter.sendall(frame(request_header_v1(18, 0, 2)))
    waiter.settimeout(1.5)
    try:
        early = waiter.recv(4)
    except socket.timeout:
        early = None
    assert early is None, "B was answered while A held the whole request budget"
    hog.close()
    response = recv_response_or_close(waiter, timeout_s=10)
    assert response is not None and response[:4] == i32(2), "B answered once A released the budget"
    wait_until(lambda: queued_bytes() == 0, 10, "the budget to be given back")
    waiter.close()



def test_a_frame_that_stops_arriving_gives_the_budget_back(broker_factory):
    """A hog announces a frame as large as the whole request budget and then
    stops sending. After limits.request_read_timeout_ms the broker closes
    the hog and returns the bytes, so another connection is served without
    waiting for the hog to leave (or for connections.max.idle.ms)."""
    b = broker_factory.new(
        extra_args=[
            "--set", f"limits.socket_request_max_bytes={REQUEST_BUDGET_BYTES}",
            "--set", f"limits.queued_max_request_bytes={REQUEST_BUDGET_BYTES}",
            "--set", "limits.request_read_timeout_ms=1000",
        ]
    )
    hog = connect(b.kafka_port)
    hog.sendall(i32(REQUEST_BUDGET_BYTES) + b"\x00" * 10)
    waiter = connect(b.kafka_port)
    waiter.sendall(frame(request_header_v1(18, 0, 2)))
    response = recv_response_or_close(waiter, timeout_s=15)
    assert response is not None and response[:4] == i32(2), "B answered once the stalled frame timed out"
    # The broker, not the hog, ended the hog's connection.
    assert recv_response_or_close(hog, timeout_s=10) is None, "the stalled connection was not closed"
    waiter.close()
    hog.close()

INIT_PRODUCER_ID = 22
PRODUCE = 0
INVALID_TXN_STATE = 48
INVALID_TRANSACTION_TIMEOUT = 50


def _init_producer_id_v1(correlation_id: int, transactional_id: str, timeout_ms: int) -> bytes:
    body = kstring(transactional_id) + i32(timeout_ms)
    return frame(request_header_v1(INIT_PRODUCER_ID, 1, correlation_id) + body)


def _transactional_batch(producer_id: int, epoch: int, sequence: int, value: bytes, ts: int) -> bytes:
    """A one-record magic-2 batch with the transactional attribute (bit 4)."""
    record = i8(0) + varint(0) + varint(0) + varint(-1) + varint(len(value)) + value + varint(0)
    after_crc = (
        i16(0x10)  # attributes: transactional, no compression, CreateTime
        + i32(0)  # lastOffsetDelta
        + i64(ts)
        + i64(ts)
        + i64(producer_id)
        + i16(epoch)
        + i32(sequence)
        + i32(1)
        + varint(len(record))
        + record
    )
    return (
        i64(0)
        + i32(4 + 1 + 4 + len(after_crc))
        + i32(-1)
        + i8(2)
        + struct.pack(">I", crc32c(after_crc))
        + after_crc
    )


def _produce_v3(correlation_id: int, transactional_id: str, topic: str, batch: bytes) -> bytes:
    body = (
        kstring(transactional_id)
        + i16(-1)  # acks=all
        + i32(10_000)
        + i32(1)
        + kstring(topic)
        + i32(1)
        + i32(0)
        + kbytes(batch)
    )
    return frame(request_header_v1(PRODUCE, 3, correlation_id) + body)


def _committed_end(bootstrap: str, topic: str) -> int:
    """The read_committed end of partition 0 (ListOffsets LATEST with
    isolation READ_COMMITTED: the last stable offset)."""
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "lso-probe", "isolation.level": "read_committed"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)[1]
    finally:
        c.close()


def test_transactional_produce_without_add_partitions_is_refused_and_lso_moves(broker, topic_name):
    confluent_create_topic(broker.bootstrap, topic_name, 1)
    sock = connect(broker.kafka_port)
    sock.sendall(_init_producer_id_v1(1, "kip890-rogue", 60_000))
    r = Reader(recv_response_or_close(sock) or b"")
    assert r.i32() == 1
    r.i32()  # throttle
    assert r.i16() == 0, "InitProducerId"
    producer_id, epoch = r.i64(), r.i16()

    # Never added with AddPartitionsToTxn: Kafka 3.6+ refuses the batch.
    batch = _transactional_batch(producer_id, epoch, 0, b"rogue", now_ms())
    sock.sendall(_produce_v3(2, "kip890-rogue", topic_name, batch))
    r = Reader(recv_response_or_close(sock) or b"")
    assert r.i32() == 2
    assert r.i32() == 1 and r.string() == topic_name and r.i32() == 1
    partition, error_code = r.i32(), r.i16()
    assert (partition, error_code) == (0, INVALID_TXN_STATE), f"produce answered {error_code}"
    sock.close()

    # Ordinary records after it stay visible to read_committed readers: the
    # last stable offset is not pinned by a transaction nobody will end.
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for i in range(3):
        p.produce(topic_name, value=f"plain-{i}".encode(), partition=0)
    assert p.flush(30) == 0
    wait_until(lambda: _committed_end(broker.bootstrap, topic_name) == 3, 15,
               "the read_committed end (LSO) to reach the 3 plain records")


@pytest.mark.parametrize("max_timeout_ms, asked_ms", [(None, 900_001), (60_000, 120_000)])
def test_transaction_timeout_above_the_broker_max_fails_init_transactions(broker_factory, max_timeout_ms, asked_ms):
    extra = [] if max_timeout_ms is None else ["--set", f"transactions.max_timeout_ms={max_timeout_ms}"]
    b = broker_factory.new(extra_args=extra)
    p = Producer({
        "bootstrap.servers": b.bootstrap,
        "transactional.id": "too-patient",
        "transaction.timeout.ms": asked_ms,
        "message.timeout.ms": 30_000,
        "socket.timeout.ms": 10_000,
    })
    with pytest.raises(KafkaException) as raised:
        p.init_transactions(30)
    err = raised.value.args[0]
    assert err.code() == KafkaError.INVALID_TRANSACTION_TIMEOUT, err


def test_internal_topics_cannot_be_deleted_or_reconfigured_to_lose_data(broker, topic_name):
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions

    from clients import ADMIN_TIMEOUT_S, confluent_admin

    confluent_create_topic(broker.bootstrap, topic_name, 1)
    group = f"{topic_name}-g"
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic_name, 0, 7)], asynchronous=False)
    finally:
        c.close()

    admin = confluent_admin(broker.bootstrap)
    futures = admin.delete_topics(["__consumer_offsets"], operation_timeout=10, request_timeout=ADMIN_TIMEOUT_S)
    with pytest.raises(KafkaException) as raised:
        futures["__consumer_offsets"].result(timeout=ADMIN_TIMEOUT_S)
    assert raised.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, raised.value

    futures = admin.create_partitions([NewPartitions("__consumer_offsets", 60)], request_timeout=ADMIN_TIMEOUT_S)
    with pytest.raises(KafkaException) as raised:
        futures["__consumer_offsets"].result(timeout=ADMIN_TIMEOUT_S)
    assert raised.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, raised.value

    for name, value in [("cleanup.policy", "delete"), ("retention.ms", "60000"), ("retention.bytes", "1024")]:
        resource = ConfigResource(
            ConfigResource.Type.TOPIC,
            "__consumer_offsets",
            incremental_configs=[ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)],
        )
        futures = admin.incremental_alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S)
        with pytest.raises(KafkaException) as raised:
            futures[resource].result(timeout=ADMIN_TIMEOUT_S)
        assert raised.value.args[0].code() == KafkaError.INVALID_CONFIG, (name, raised.value)

    # The HTTP API refuses the same with 403.
    http = Http(broker)
    http.wait_ready()
    status, _, _ = http.raw("DELETE", "/v1/topics/__consumer_offsets")
    assert status == 403, status

    # The group's committed offset survived all of it.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        committed = c.committed([TopicPartition(topic_name, 0)], timeout=ADMIN_TIMEOUT_S)
    finally:
        c.close()
    assert committed[0].offset == 7, committed
