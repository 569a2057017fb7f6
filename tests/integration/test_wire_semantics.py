"""Issue 3: Produce / Fetch / ListOffsets edge semantics, checked on the wire.

Most cases speak raw frames (non-flexible Produce v3, Fetch v5, Metadata v4,
DeleteRecords v1, and flexible ListOffsets v7) so the exact error codes and
fields the broker sends are visible; real clients (librdkafka) cover the cases
where their behaviour is the point (acks=0, LogAppendTime with CRC checks).

Timing assertions are deliberately generous: a long poll must answer within
half of its max wait once data arrives, on a loaded 2-core CI box.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from clients import ADMIN_TIMEOUT_S, confluent_create_topic, confluent_watermarks
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
    kstring,
    kbytes,
    now_ms,
    produce_v3_request,
    recv_response_or_close,
    request_header_v1,
    request_header_v2,
    uvarint,
    wait_until,
)

# Kafka error codes used below.
NONE = 0
OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
MESSAGE_TOO_LARGE = 10

TIMESTAMP_LOG_APPEND_TIME = 2  # confluent_kafka.TIMESTAMP_LOG_APPEND_TIME


# --------------------------------------------------------------------------
# Raw protocol helpers
# --------------------------------------------------------------------------


class Wire(Reader):
    """Reader plus the pieces the flexible versions need."""

    def i8(self) -> int:
        return struct.unpack(">b", self.take(1))[0]

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def compact_string(self) -> str | None:
        n = self.uvarint() - 1
        return None if n < 0 else self.take(n).decode()

    def compact_len(self) -> int:
        return self.uvarint() - 1

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self.take(self.uvarint())

    def bytes_(self) -> bytes:
        n = self.i32()
        return b"" if n < 0 else self.take(n)

    def done(self) -> None:
        assert self.pos == len(self.data), f"{len(self.data) - self.pos} unread trailing bytes"


class Conn:
    """One raw connection; `call` sends a request and returns its body reader."""

    def __init__(self, port: int):
        self.sock = connect(port, timeout_s=10.0)
        self.next_id = 1000

    def send(self, api_key: int, version: int, body: bytes, *, flexible: bool = False) -> int:
        cid = self.next_id
        self.next_id += 1
        header = (request_header_v2 if flexible else request_header_v1)(api_key, version, cid)
        self.sock.sendall(frame(header + body))
        return cid

    def recv(self, cid: int, *, flexible: bool = False, timeout_s: float = 15.0) -> Wire:
        data = recv_response_or_close(self.sock, timeout_s)
        assert data is not None, "broker closed the connection instead of answering"
        r = Wire(data)
        got = r.i32()
        assert got == cid, f"response correlation id {got}, expected {cid}"
        if flexible:
            r.skip_tags()
        return r

    def call(self, api_key: int, version: int, body: bytes, *, flexible: bool = False) -> Wire:
        return self.recv(self.send(api_key, version, body, flexible=flexible), flexible=flexible)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def conn(broker):
    c = Conn(broker.kafka_port)
    yield c
    c.close()


def produce(c: Conn, topic: str, partition: int, batch: bytes, acks: int = -1) -> tuple[int, int, int]:
    """Produce v3 (one batch) -> (error_code, base_offset, log_append_time_ms)."""
    body = (
        kstring(None) + i16(acks) + i32(10_000)
        + i32(1) + kstring(topic) + i32(1) + i32(partition) + kbytes(batch)
    )
    r = c.call(0, 3, body)
    assert r.i32() == 1 and r.string() == topic
    assert r.i32() == 1 and r.i32() == partition
    err, base_offset, log_append_time = r.i16(), r.i64(), r.i64()
    r.i32()  # throttle_time_ms
    r.done()
    return err, base_offset, log_append_time


def batch_of(n: int, value_bytes: int = 10, *, ts: int | None = None, deltas: list[int] | None = None) -> bytes:
    recs = [(b"k%d" % i, bytes([65 + i % 26]) * value_bytes, []) for i in range(n)]
    return build_record_batch(recs, base_ts_ms=now_ms() if ts is None else ts, ts_deltas=deltas)


def fetch_request_v5(
    parts: list[tuple[str, int, int, int]], *, max_wait_ms: int = 0, min_bytes: int = 1,
    max_bytes: int = 50 * 1024 * 1024,
) -> bytes:
    """Fetch v5 body; parts = [(topic, partition, fetch_offset, partition_max_bytes)]."""
    topics: dict[str, list[tuple[int, int, int]]] = {}
    for t, p, off, pmax in parts:
        topics.setdefault(t, []).append((p, off, pmax))
    body = i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(0) + i32(len(topics))
    for t, ps in topics.items():
        body += kstring(t) + i32(len(ps))
        for p, off, pmax in ps:
            body += i32(p) + i64(off) + i64(-1) + i32(pmax)  # log_start_offset -1: consumer
    return body


def parse_fetch_v5(r: Wire) -> dict[tuple[str, int], dict]:
    r.i32()  # throttle_time_ms
    out = {}
    for _ in range(r.i32()):
        topic = r.string()
        for _ in range(r.i32()):
            p = r.i32()
            d = {
                "error_code": r.i16(),
                "high_watermark": r.i64(),
                "last_stable_offset": r.i64(),
                "log_start_offset": r.i64(),
            }
            n_aborted = r.i32()
            for _ in range(max(n_aborted, 0)):
                r.i64(), r.i64()
            d["records"] = r.bytes_()
            out[(topic, p)] = d
    r.done()
    return out


def fetch(c: Conn, parts, **kw) -> dict[tuple[str, int], dict]:
    return parse_fetch_v5(c.call(1, 5, fetch_request_v5(parts, **kw)))


def batches_in(records: bytes) -> list[tuple[int, int]]:
    """Walks whole batches in a Fetch `records` blob -> [(base_offset, total_size)].
    Each batch's CRC-32C is checked on the way (the broker must serve it intact)."""
    out, pos = [], 0
    while pos + 12 <= len(records):
        base_offset, batch_length = struct.unpack(">qi", records[pos : pos + 12])
        total = 12 + batch_length
        assert pos + total <= len(records), "partial batch in a Fetch response"
        crc = struct.unpack(">I", records[pos + 17 : pos + 21])[0]
        assert crc == crc32c(records[pos + 21 : pos + total]), f"bad CRC in batch at offset {base_offset}"
        out.append((base_offset, total))
        pos += total
    assert pos == len(records), "trailing bytes after the last whole batch"
    return out


def create_topic(broker, name: str, partitions: int = 1, config: dict | None = None) -> None:
    confluent_create_topic(broker.bootstrap, name, partitions, config)


# --------------------------------------------------------------------------
# Produce
# --------------------------------------------------------------------------


def test_acks_zero_produce_gets_no_response_but_data_lands(broker, conn, topic_name):
    create_topic(broker, topic_name)
    conn.sock.sendall(produce_v3_request(7, topic_name, 0, batch_of(3), acks=0))
    # A pipelined acks=-1 produce on the same connection: the first response
    # on the wire must be its answer, proving the acks=0 request got none.
    err, base_offset, _ = produce(conn, topic_name, 0, batch_of(2))
    assert err == NONE
    assert base_offset == 3, "the acks=0 batch must have been appended first"

    # librdkafka with acks=0 as well: delivery succeeds without a response.
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": 0, "message.timeout.ms": 20000})
    for i in range(5):
        p.produce(topic_name, value=b"zero-%d" % i, partition=0)
    assert p.flush(20) == 0

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "wire-acks0",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic_name, 0, 0)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 10:
            assert time.monotonic() < deadline, f"read {len(got)}/10 records"
            m = c.poll(1.0)
            if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
                continue
            if m.error():
                raise KafkaException(m.error())
            got.append(m.value())
        assert got[5:] == [b"zero-%d" % i for i in range(5)]
    finally:
        c.close()


def test_batch_over_topic_max_message_bytes_is_refused_and_not_written(broker, conn, topic_name):
    create_topic(broker, topic_name, config={"max.message.bytes": "1024"})
    big = batch_of(4, value_bytes=400)
    assert len(big) > 1024
    err, base_offset, _ = produce(conn, topic_name, 0, big)
    assert err == MESSAGE_TOO_LARGE
    assert base_offset == -1
    assert confluent_watermarks(broker.bootstrap, topic_name, 0) == (0, 0)

    # A batch within the limit still goes in, at offset 0.
    small = batch_of(2, value_bytes=100)
    assert len(small) <= 1024
    err, base_offset, _ = produce(conn, topic_name, 0, small)
    assert (err, base_offset) == (NONE, 0)


def test_log_append_time_topic_stamps_broker_time_with_valid_crc(broker, conn, topic_name):
    create_topic(broker, topic_name, config={"message.timestamp.type": "LogAppendTime"})
    old_ts = now_ms() - 3_600_000

    # Raw produce: the response carries log_append_time_ms.
    before = now_ms()
    err, base_offset, log_append_time = produce(conn, topic_name, 0, batch_of(3, ts=old_ts))
    after = now_ms()
    assert (err, base_offset) == (NONE, 0)
    assert before - 1000 <= log_append_time <= after + 1000, (before, log_append_time, after)

    # librdkafka: its delivery report reads the same field.
    reports = []
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "message.timeout.ms": 20000})
    p.produce(topic_name, value=b"late", partition=0, timestamp=old_ts,
              on_delivery=lambda err, msg: reports.append((err, msg.timestamp())))
    assert p.flush(20) == 0
    assert reports and reports[0][0] is None, reports
    ts_type, ts = reports[0][1]
    assert ts_type == TIMESTAMP_LOG_APPEND_TIME
    assert abs(ts - now_ms()) < 30_000

    # Consumed records carry broker time, and librdkafka verifies the CRC of
    # the rewritten batch.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "wire-lat",
                  "enable.auto.commit": False, "check.crcs": True, "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic_name, 0, 0)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 4:
            assert time.monotonic() < deadline, f"read {len(got)}/4 records"
            m = c.poll(1.0)
            if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
                continue
            if m.error():
                raise KafkaException(m.error())
            got.append(m.timestamp())
    finally:
        c.close()
    for ts_type, ts in got:
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME
        assert abs(ts - now_ms()) < 60_000, f"timestamp {ts} is not broker time (producer sent {old_ts})"
    assert got[0][1] == log_append_time

    # And on the wire: the stored batch's CRC is valid after the rewrite, and
    # the timestamp-type bit (attributes bit 3) is set.
    data = fetch(conn, [(topic_name, 0, 0, 1 << 20)])[(topic_name, 0)]
    assert data["error_code"] == NONE
    batches = batches_in(data["records"])  # checks every CRC
    first = data["records"]
    attributes = struct.unpack(">h", first[21:23])[0]
    assert attributes & 0x08, "LogAppendTime bit not set in the stored batch"
    max_timestamp = struct.unpack(">q", first[35:43])[0]
    assert max_timestamp == log_append_time
    assert len(batches) == 2


def test_produce_to_unknown_topic_with_auto_create_off_fails_per_partition(broker_factory, topic_name):
    b = broker_factory.new(extra_args=["--set", "topics.auto_create=false"])
    c = Conn(b.kafka_port)
    try:
        body = kstring(None) + i16(-1) + i32(10_000) + i32(1) + kstring(topic_name) + i32(2)
        body += i32(0) + kbytes(batch_of(1)) + i32(1) + kbytes(batch_of(1))
        r = c.call(0, 3, body)
        assert r.i32() == 1 and r.string() == topic_name
        results = []
        for _ in range(r.i32()):
            results.append((r.i32(), r.i16(), r.i64()))
            r.i64()  # log_append_time
        r.i32()
        r.done()
        assert results == [(0, UNKNOWN_TOPIC_OR_PARTITION, -1), (1, UNKNOWN_TOPIC_OR_PARTITION, -1)]

        # Metadata asking to auto-create is refused too, and creates nothing.
        topics = metadata_v4(c, [topic_name], allow_auto_create=True)
        assert topics[topic_name][0] == UNKNOWN_TOPIC_OR_PARTITION
        assert metadata_v4(c, None, allow_auto_create=False).get(topic_name) is None
    finally:
        c.close()


def metadata_v4(c: Conn, topics: list[str] | None, *, allow_auto_create: bool) -> dict[str, tuple[int, list[int]]]:
    """Metadata v4 -> {topic: (error_code, [partition indexes])}."""
    body = (i32(-1) if topics is None else i32(len(topics)) + b"".join(kstring(t) for t in topics))
    body += i8(1 if allow_auto_create else 0)
    r = c.call(3, 4, body)
    r.i32()  # throttle
    for _ in range(r.i32()):
        r.i32(), r.string(), r.i32(), r.string()
    r.string()  # cluster_id
    r.i32()  # controller_id
    out = {}
    for _ in range(r.i32()):
        err, name, _internal = r.i16(), r.string(), r.i8()
        parts = []
        for _ in range(r.i32()):
            r.i16()
            parts.append(r.i32())
            r.i32()
            for _ in range(r.i32()):
                r.i32()
            for _ in range(r.i32()):
                r.i32()
        out[name] = (err, sorted(parts))
    r.done()
    return out


def test_metadata_auto_creates_topic_with_configured_partition_count(broker_factory, topic_name):
    b = broker_factory.new(extra_args=["--set", "topics.auto_create=true", "--set", "topics.num_partitions=3"])
    c = Conn(b.kafka_port)
    try:
        # Without allow_auto_topic_creation the topic is not created.
        assert metadata_v4(c, [topic_name], allow_auto_create=False)[topic_name][0] == UNKNOWN_TOPIC_OR_PARTITION
        first = metadata_v4(c, [topic_name], allow_auto_create=True)[topic_name]
        # Kafka answers LEADER_NOT_AVAILABLE while the topic is being created.
        assert first[0] in (NONE, LEADER_NOT_AVAILABLE), first

        def ready():
            err, parts = metadata_v4(c, [topic_name], allow_auto_create=False)[topic_name]
            return err == NONE and parts

        assert wait_until(ready, 10, "auto-created topic to appear") == [0, 1, 2]
        err, base_offset, _ = produce(c, topic_name, 2, batch_of(1))
        assert (err, base_offset) == (NONE, 0)
    finally:
        c.close()


# --------------------------------------------------------------------------
# Fetch
# --------------------------------------------------------------------------


def test_fetch_long_poll_answers_as_soon_as_min_bytes_arrive(broker, topic_name):
    create_topic(broker, topic_name)
    fetcher, producer = Conn(broker.kafka_port), Conn(broker.kafka_port)
    try:
        max_wait_ms = 10_000
        min_bytes = 2000
        cid = fetcher.send(1, 5, fetch_request_v5([(topic_name, 0, 0, 1 << 20)],
                                                   max_wait_ms=max_wait_ms, min_bytes=min_bytes))
        # A small batch is below min_bytes: the fetch must keep waiting.
        assert produce(producer, topic_name, 0, batch_of(1))[0] == NONE
        fetcher.sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            fetcher.sock.recv(1, socket.MSG_PEEK)
        # Crossing min_bytes answers the fetch long before max_wait.
        started = time.monotonic()
        assert produce(producer, topic_name, 0, batch_of(5, value_bytes=600))[0] == NONE
        r = fetcher.recv(cid, timeout_s=max_wait_ms / 1000 + 5)
        elapsed = time.monotonic() - started
        assert elapsed < max_wait_ms / 1000 / 2, f"long poll answered after {elapsed:.2f}s"
        data = parse_fetch_v5(r)[(topic_name, 0)]
        assert data["error_code"] == NONE
        assert len(data["records"]) >= min_bytes
        assert [o for o, _ in batches_in(data["records"])] == [0, 1]

        # With nothing arriving, the wait ends at max_wait (bounded, not early).
        started = time.monotonic()
        got = fetch(fetcher, [(topic_name, 0, 6, 1 << 20)], max_wait_ms=1000, min_bytes=1)
        elapsed = time.monotonic() - started
        assert 0.8 <= elapsed < 6, f"empty long poll took {elapsed:.2f}s for max_wait 1s"
        assert got[(topic_name, 0)]["records"] == b""
    finally:
        fetcher.close()
        producer.close()


def test_fetch_beyond_log_end_is_offset_out_of_range(broker, conn, topic_name):
    create_topic(broker, topic_name)
    assert produce(conn, topic_name, 0, batch_of(3))[0] == NONE
    # Fetching exactly at the log end is fine (nothing yet); past it is not.
    at_end = fetch(conn, [(topic_name, 0, 3, 1 << 20)])[(topic_name, 0)]
    assert (at_end["error_code"], at_end["records"], at_end["high_watermark"]) == (NONE, b"", 3)
    past = fetch(conn, [(topic_name, 0, 10, 1 << 20)], max_wait_ms=5000)[(topic_name, 0)]
    assert past["error_code"] == OFFSET_OUT_OF_RANGE
    assert past["records"] == b""

    # librdkafka with auto.offset.reset=error surfaces the same error.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "wire-oor",
                  "enable.auto.commit": False, "auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic_name, 0, 10)])
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "librdkafka never reported offset out of range"
            m = c.poll(1.0)
            if m is not None and m.error():
                assert m.error().code() == KafkaError._AUTO_OFFSET_RESET, m.error()
                assert "out of range" in m.error().str().lower(), m.error().str()
                break
            assert m is None, "a record was delivered from beyond the log end"
    finally:
        c.close()


def delete_records_v1(c: Conn, topic: str, partition: int, offset: int) -> tuple[int, int]:
    body = i32(1) + kstring(topic) + i32(1) + i32(partition) + i64(offset) + i32(10_000)
    r = c.call(21, 1, body)
    r.i32()
    assert r.i32() == 1 and r.string() == topic
    assert r.i32() == 1 and r.i32() == partition
    low_watermark, err = r.i64(), r.i16()
    r.done()
    return err, low_watermark


def test_fetch_below_log_start_after_delete_records_is_offset_out_of_range(broker, conn, topic_name):
    create_topic(broker, topic_name)
    for _ in range(5):
        assert produce(conn, topic_name, 0, batch_of(2))[0] == NONE
    assert delete_records_v1(conn, topic_name, 0, 5) == (NONE, 5)

    below = fetch(conn, [(topic_name, 0, 2, 1 << 20)])[(topic_name, 0)]
    assert below["error_code"] == OFFSET_OUT_OF_RANGE
    assert below["log_start_offset"] == 5
    assert below["records"] == b""

    # From the log start: the batch holding offset 5 (offsets 4-5) comes back
    # whole, and log_start_offset is reported.
    at_start = fetch(conn, [(topic_name, 0, 5, 1 << 20)])[(topic_name, 0)]
    assert at_start["error_code"] == NONE
    assert at_start["log_start_offset"] == 5
    assert at_start["high_watermark"] == 10
    assert [o for o, _ in batches_in(at_start["records"])] == [4, 6, 8]


def test_fetch_honours_partition_and_request_max_bytes_but_returns_first_batch(broker, conn, topic_name):
    create_topic(broker, topic_name, partitions=2)
    for p in (0, 1):
        for _ in range(4):
            assert produce(conn, topic_name, p, batch_of(1, value_bytes=1000))[0] == NONE
    one = len(batch_of(1, value_bytes=1000))

    def offsets(resp, p):
        d = resp[(topic_name, p)]
        assert d["error_code"] == NONE
        return [o for o, _ in batches_in(d["records"])]

    # partition_max_bytes below one batch: KIP-74 still returns the first batch.
    r = fetch(conn, [(topic_name, 0, 0, 10)])
    assert offsets(r, 0) == [0]
    # partition_max_bytes room for two and a half batches -> two whole batches.
    r = fetch(conn, [(topic_name, 0, 0, int(one * 2.5))])
    assert offsets(r, 0) == [0, 1]
    # Request max_bytes below one batch: the first batch of the first
    # partition comes back, the second partition gets nothing (no error).
    r = fetch(conn, [(topic_name, 0, 0, 1 << 20), (topic_name, 1, 0, 1 << 20)], max_bytes=10)
    assert offsets(r, 0) == [0]
    assert offsets(r, 1) == []
    # Request max_bytes spanning partitions: partition 0 fills three batches'
    # worth, partition 1 gets what is left (one batch), never more than max.
    r = fetch(conn, [(topic_name, 0, 0, int(one * 3.5)), (topic_name, 1, 0, 1 << 20)],
              max_bytes=int(one * 4.5))
    assert offsets(r, 0) == [0, 1, 2]
    assert offsets(r, 1) == [0]
    # A later partition whose first batch exceeds its own partition_max_bytes
    # gets nothing: only the response's very first batch may break a limit.
    r = fetch(conn, [(topic_name, 0, 0, 1 << 20), (topic_name, 1, 0, 10)])
    assert offsets(r, 0) == [0, 1, 2, 3]
    assert offsets(r, 1) == []

    # librdkafka with tiny limits still reads everything, one batch at a time.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "wire-kip74", "enable.auto.commit": False,
                  "fetch.max.bytes": 1024, "message.max.bytes": 1000, "max.partition.fetch.bytes": 100, "enable.partition.eof": True,
                  "fetch.wait.max.ms": 100})
    try:
        c.assign([TopicPartition(topic_name, 0, 0)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 4:
            assert time.monotonic() < deadline, f"read {len(got)}/4 records with small fetch limits"
            m = c.poll(1.0)
            if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
                continue
            if m.error():
                raise KafkaException(m.error())
            got.append(m.offset())
        assert got == [0, 1, 2, 3]
    finally:
        c.close()


# --------------------------------------------------------------------------
# ListOffsets
# --------------------------------------------------------------------------


def list_offsets_v7(c: Conn, topic: str, partition: int, timestamp: int) -> tuple[int, int, int]:
    """Flexible ListOffsets v7 -> (error_code, timestamp, offset)."""
    body = (
        i32(-1)  # replica_id
        + i8(0)  # isolation_level
        + uvarint(2)  # topics: compact array of 1
        + uvarint(len(topic.encode()) + 1) + topic.encode()
        + uvarint(2)  # partitions: compact array of 1
        + i32(partition) + i32(-1) + i64(timestamp) + uvarint(0)
        + uvarint(0)  # topic tags
        + uvarint(0)  # request tags
    )
    r = c.call(2, 7, body, flexible=True)
    r.i32()  # throttle
    assert r.compact_len() == 1 and r.compact_string() == topic
    assert r.compact_len() == 1 and r.i32() == partition
    err, ts, offset, _epoch = r.i16(), r.i64(), r.i64(), r.i32()
    r.skip_tags()
    r.skip_tags()
    r.skip_tags()
    r.done()
    return err, ts, offset


def test_list_offsets_max_timestamp_returns_offset_of_record_with_largest_timestamp(broker, conn, topic_name):
    create_topic(broker, topic_name)
    base = now_ms() - 600_000
    # Batch 1: offsets 0-3, the largest timestamp sits in the middle (offset 1).
    assert produce(conn, topic_name, 0, batch_of(4, ts=base, deltas=[0, 500, 100, 200]))[0] == NONE
    # Batch 2: offsets 4-5, all older than that maximum.
    assert produce(conn, topic_name, 0, batch_of(2, ts=base, deltas=[300, 400]))[0] == NONE
    assert list_offsets_v7(conn, topic_name, 0, -3) == (NONE, base + 500, 1)

    # A newer maximum in a later batch, not at the batch's last offset.
    assert produce(conn, topic_name, 0, batch_of(3, ts=base, deltas=[900, 1000, 950]))[0] == NONE
    assert list_offsets_v7(conn, topic_name, 0, -3) == (NONE, base + 1000, 7)
    # Earliest / latest alongside, for contrast.
    assert list_offsets_v7(conn, topic_name, 0, -2)[2] == 0
    assert list_offsets_v7(conn, topic_name, 0, -1)[2] == 9


def test_list_offsets_max_timestamp_on_empty_partition_has_no_offset(broker, conn, topic_name):
    create_topic(broker, topic_name)
    assert list_offsets_v7(conn, topic_name, 0, -3) == (NONE, -1, -1)


# --------------------------------------------------------------------------
# APIs the broker decodes but does not serve
# --------------------------------------------------------------------------

UNSUPPORTED_VERSION = 35
UNSUPPORTED_SASL_MECHANISM = 33


SECURITY_DISABLED = 54


def test_unserved_apis_get_error_responses_and_the_connection_stays_open(broker, conn, topic_name):
    # DescribeDelegationToken v1 (not served): a top-level error, no tokens.
    r = conn.call(41, 1, i32(-1))
    assert r.i16() == UNSUPPORTED_VERSION
    assert r.i32() == 0
    r.i32()  # throttle
    r.done()

    # The ACL APIs are served; without an authorizer (the default) they
    # answer SECURITY_DISABLED, as Kafka does. DescribeAcls v1: a top-level
    # error, no resources.
    body = i8(1) + kstring(None) + i8(1) + kstring(None) + kstring(None) + i8(1) + i8(1)
    r = conn.call(29, 1, body)
    r.i32()  # throttle
    assert r.i16() == SECURITY_DISABLED
    assert r.string()  # error_message says no authorizer is configured
    assert r.i32() == 0
    r.done()

    # CreateAcls v1: one result per requested creation.
    creation = i8(2) + kstring(topic_name) + i8(3) + kstring("User:alice") + kstring("*") + i8(3) + i8(3)
    r = conn.call(30, 1, i32(2) + creation + creation)
    r.i32()
    n = r.i32()
    results = []
    for _ in range(n):
        results.append(r.i16())
        r.string()
    r.done()
    assert results == [SECURITY_DISABLED, SECURITY_DISABLED]

    # SaslHandshake v1: no mechanisms on offer.
    r = conn.call(17, 1, kstring("PLAIN"))
    assert r.i16() == UNSUPPORTED_SASL_MECHANISM
    assert r.i32() == 0
    r.done()

    # The same connection still serves real requests.
    create_topic(broker, topic_name)
    assert produce(conn, topic_name, 0, batch_of(1))[0] == NONE
