"""Producer batch headers are checked, not trusted (Kafka's LogValidator).

Raw frames, so the exact header fields and error codes are visible:
- a batch whose header says maxTimestamp = -1 (some real clients send that)
  is stored with its true maximum, so ListOffsets by timestamp finds it,
  produces do not roll a segment each, and retention keeps it;
- a header claiming more records than the body holds is INVALID_RECORD;
- record timestamps outside the topic's window are INVALID_TIMESTAMP, with
  per-record errors (Produce v8);
- zstd below Produce v7 is UNSUPPORTED_COMPRESSION_TYPE;
- more than one batch for a partition is INVALID_RECORD and appends nothing
  (Kafka's ProduceRequest.validateRecords);
- a request below the advertised minimum version, or above the advertised
  maximum, gets UNSUPPORTED_VERSION.
"""

from __future__ import annotations

import struct
import time

import pytest
import zstandard

import test_wire_semantics as ws
from http_client import Http, assert_error
from test_metrics import scrape, value
from util import build_record_batch, crc32c, i8, i16, i32, i64, kbytes, kstring, now_ms, uvarint, wait_until

NONE = 0
INVALID_TIMESTAMP = 32
UNSUPPORTED_VERSION = 35
UNSUPPORTED_COMPRESSION_TYPE = 76
INVALID_RECORD = 87

OFF_ATTRIBUTES = 21
OFF_LAST_OFFSET_DELTA = 23
OFF_MAX_TIMESTAMP = 35
OFF_RECORD_COUNT = 57
HEADER_BYTES = 61

# How many retention passes the long-running case waits for: with the bug
# one pass was enough to delete acknowledged data; three leave no doubt.
RETENTION_PASSES = 3


def reseal(batch: bytearray) -> bytes:
    """Recomputes the CRC after a header edit, as a (buggy) client would send it."""
    batch[17:21] = struct.pack(">I", crc32c(bytes(batch[OFF_ATTRIBUTES:])))
    return bytes(batch)


def lying_batch(n: int, base_ts: int) -> bytes:
    """n records stamped base_ts + i, whose header claims maxTimestamp = -1."""
    b = bytearray(ws.batch_of(n, ts=base_ts))
    b[OFF_MAX_TIMESTAMP : OFF_MAX_TIMESTAMP + 8] = i64(-1)
    return reseal(b)


def zstd_batch(n: int) -> bytes:
    """A valid zstd batch: the uncompressed body, compressed, attributes bit 4."""
    plain = bytearray(ws.batch_of(n))
    body = zstandard.ZstdCompressor().compress(bytes(plain[HEADER_BYTES:]))
    b = plain[:HEADER_BYTES] + body
    b[8:12] = i32(len(b) - 12)
    b[OFF_ATTRIBUTES : OFF_ATTRIBUTES + 2] = i16(4)
    return reseal(b)


def produce_request(topic: str, batch: bytes, acks: int = -1) -> bytes:
    """Produce v3..v8 share this request layout."""
    return kstring(None) + i16(acks) + i32(10_000) + i32(1) + kstring(topic) + i32(1) + i32(0) + kbytes(batch)


def produce_at(c: ws.Conn, version: int, topic: str, batch: bytes) -> dict:
    """Produce `batch` to partition 0 at `version` (3..8) and parse the answer."""
    r = c.call(0, version, produce_request(topic, batch))
    assert r.i32() == 1 and r.string() == topic
    assert r.i32() == 1 and r.i32() == 0
    out = {"error_code": r.i16(), "base_offset": r.i64(), "log_append_time": r.i64()}
    if version >= 5:
        out["log_start_offset"] = r.i64()
    if version >= 8:
        out["record_errors"] = [(r.i32(), r.string()) for _ in range(r.i32())]
        out["error_message"] = r.string()
    r.i32()  # throttle_time_ms
    r.done()
    return out


def stored_batches(c: ws.Conn, topic: str) -> list[bytes]:
    """Every stored batch of partition 0 (CRCs checked by batches_in)."""
    records = ws.fetch(c, [(topic, 0, 0, 50 * 1024 * 1024)])[(topic, 0)]["records"]
    return [records[pos : pos + size] for pos, size in _positions(records)]


def _positions(records: bytes) -> list[tuple[int, int]]:
    out, pos = [], 0
    for _base, size in ws.batches_in(records):
        out.append((pos, size))
        pos += size
    return out


def segment_files(broker, topic: str) -> list[str]:
    return sorted(p.name for p in (broker.data_dir / f"{topic}-0").glob("*.log"))


@pytest.fixture
def conn(broker):
    c = ws.Conn(broker.kafka_port)
    yield c
    c.close()


def test_lying_max_timestamp_is_corrected_and_list_offsets_by_timestamp_finds_records(broker, conn, topic_name):
    ws.create_topic(broker, topic_name)
    base = now_ms() - 60_000
    assert ws.produce(conn, topic_name, 0, lying_batch(3, base))[0] == NONE

    # Stored with the true maximum and a CRC that matches it.
    [stored] = stored_batches(conn, topic_name)
    assert struct.unpack(">q", stored[OFF_MAX_TIMESTAMP : OFF_MAX_TIMESTAMP + 8])[0] == base + 2

    # The first offset whose timestamp is at or after the target.
    assert ws.list_offsets_v7(conn, topic_name, 0, base + 1) == (NONE, base + 1, 1)
    assert ws.list_offsets_v7(conn, topic_name, 0, base) == (NONE, base, 0)
    # Max timestamp (-3) names the true maximum.
    assert ws.list_offsets_v7(conn, topic_name, 0, -3) == (NONE, base + 2, 2)


def test_lying_batches_do_not_roll_a_segment_per_produce(broker, conn, topic_name):
    ws.create_topic(broker, topic_name)
    base = now_ms() - 1000
    for i in range(5):
        assert ws.produce(conn, topic_name, 0, lying_batch(2, base + 10 * i)) == (NONE, 2 * i, -1)
    assert segment_files(broker, topic_name) == ["00000000000000000000.log"]


def test_long_running_broker_keeps_every_record_of_lying_batches(broker_factory, topic_name):
    broker = broker_factory.new(extra_args=["--set", "log.retention_check_interval_ms=1000"])
    http = Http(broker)
    http.wait_ready()
    ws.create_topic(broker, topic_name)
    c = ws.Conn(broker.kafka_port)
    try:
        batches, per_batch = 6, 3
        base = now_ms() - 5_000
        for i in range(batches):
            err, base_offset, _ = ws.produce(c, topic_name, 0, lying_batch(per_batch, base + 100 * i))
            assert (err, base_offset) == (NONE, i * per_batch)

        # Wait for several retention passes to run after the last produce.
        start = value(scrape(http), "sluice_log_retention_checks_total")
        wait_until(
            lambda: value(scrape(http), "sluice_log_retention_checks_total") >= start + RETENTION_PASSES,
            timeout_s=30,
            what=f"{RETENTION_PASSES} retention checks",
        )

        parts = ws.fetch(c, [(topic_name, 0, 0, 50 * 1024 * 1024)])
        got = parts[(topic_name, 0)]
        assert got["error_code"] == NONE
        assert got["log_start_offset"] == 0, "retention deleted acknowledged data"
        offsets = [base_offset for base_offset, _ in ws.batches_in(got["records"])]
        assert offsets == [i * per_batch for i in range(batches)]
        assert got["high_watermark"] == batches * per_batch
    finally:
        c.close()


def test_a_header_claiming_records_the_body_lacks_is_invalid_record(broker, conn, topic_name):
    ws.create_topic(broker, topic_name)
    b = bytearray(ws.batch_of(1))
    # recordCount and lastOffsetDelta agree with each other, not with the body.
    b[OFF_LAST_OFFSET_DELTA : OFF_LAST_OFFSET_DELTA + 4] = i32(2**31 - 2)
    b[OFF_RECORD_COUNT : OFF_RECORD_COUNT + 4] = i32(2**31 - 1)
    err, base_offset, _ = ws.produce(conn, topic_name, 0, reseal(b))
    assert (err, base_offset) == (INVALID_RECORD, -1)
    # Nothing was appended: the next good batch lands at offset 0.
    assert ws.produce(conn, topic_name, 0, ws.batch_of(1)) == (NONE, 0, -1)


def test_offset_deltas_that_do_not_run_from_zero_are_invalid_record(broker, conn, topic_name):
    ws.create_topic(broker, topic_name)
    recs = [(b"k", b"v", [])]
    b = bytearray(build_record_batch(recs, base_ts_ms=now_ms()))
    # The single record's offsetDelta varint (zigzag 0) becomes 3 (zigzag 6).
    # Layout after the length varint: attributes, timestampDelta, offsetDelta.
    assert b[HEADER_BYTES + 3] == 0
    b[HEADER_BYTES + 3] = 6
    assert ws.produce(conn, topic_name, 0, reseal(b))[0] == INVALID_RECORD


def test_record_timestamps_outside_the_window_are_invalid_timestamp_per_record(broker, conn, topic_name):
    ws.create_topic(broker, topic_name, config={"message.timestamp.before.max.ms": "3600000"})
    now = now_ms()
    two_hours = 2 * 3_600_000
    # Record 1 is two hours in the future (default after.max.ms is 1 hour),
    # record 2 two hours in the past (the topic allows one).
    batch = ws.batch_of(3, ts=now, deltas=[0, two_hours, -two_hours])
    got = produce_at(conn, 8, topic_name, batch)
    assert got["error_code"] == INVALID_TIMESTAMP
    assert [index for index, _ in got["record_errors"]] == [1, 2]
    assert got["error_message"]
    assert ws.produce(conn, topic_name, 0, ws.batch_of(1)) == (NONE, 0, -1)


@pytest.mark.parametrize("version", [3, 4, 5, 6])
def test_zstd_below_produce_v7_is_unsupported_compression_type(broker, conn, topic_name, version):
    ws.create_topic(broker, topic_name)
    got = produce_at(conn, version, topic_name, zstd_batch(2))
    assert (got["error_code"], got["base_offset"]) == (UNSUPPORTED_COMPRESSION_TYPE, -1)
    # The same batch at v7 is fine and lands at offset 0.
    got = produce_at(conn, 7, topic_name, zstd_batch(2))
    assert (got["error_code"], got["base_offset"]) == (NONE, 0)


def test_fetch_below_the_advertised_minimum_is_unsupported_version(broker, conn, topic_name):
    ws.create_topic(broker, topic_name)
    assert ws.produce(conn, topic_name, 0, ws.batch_of(2))[0] == NONE
    # Fetch v2: replica, max_wait, min_bytes, [topic [partition offset max_bytes]].
    body = i32(-1) + i32(0) + i32(1) + i32(1) + kstring(topic_name) + i32(1) + i32(0) + i64(0) + i32(1 << 20)
    r = conn.call(1, 2, body)
    r.i32()  # throttle_time_ms
    assert r.i32() == 1 and r.string() == topic_name
    assert r.i32() == 1 and r.i32() == 0
    err, _hw = r.i16(), r.i64()
    records = r.bytes_()
    r.done()
    assert err == UNSUPPORTED_VERSION
    assert records == b"", "v2-format batches must not be served to a Fetch v2"
    # The connection stays usable at a supported version.
    assert ws.fetch(conn, [(topic_name, 0, 0, 1 << 20)])[(topic_name, 0)]["error_code"] == NONE


def test_two_batches_for_one_partition_are_invalid_record_and_nothing_is_appended(broker, conn, topic_name):
    ws.create_topic(broker, topic_name)
    assert produce_at(conn, 8, topic_name, ws.batch_of(2))["error_code"] == NONE
    assert ws.list_offsets_v7(conn, topic_name, 0, -1) == (NONE, -1, 2)

    got = produce_at(conn, 8, topic_name, ws.batch_of(3) + ws.batch_of(4))
    assert (got["error_code"], got["base_offset"]) == (INVALID_RECORD, -1)
    assert got["error_message"] == (
        "Produce requests with version 8 are only allowed to contain exactly one record batch per partition"
    )
    # Nothing of either batch was appended: latest offset and high
    # watermark are unchanged, and the next good batch lands right after.
    assert ws.list_offsets_v7(conn, topic_name, 0, -1) == (NONE, -1, 2)
    assert ws.fetch(conn, [(topic_name, 0, 0, 1 << 20)])[(topic_name, 0)]["high_watermark"] == 2
    assert produce_at(conn, 8, topic_name, ws.batch_of(1))["base_offset"] == 2


def test_list_offsets_above_the_advertised_maximum_is_unsupported_version(broker, conn, topic_name):
    # ListOffsets v10 decodes (the codec follows the spec) but we advertise
    # up to v8; Kafka would close the connection, we answer with an error.
    ws.create_topic(broker, topic_name)
    assert ws.produce(conn, topic_name, 0, ws.batch_of(2))[0] == NONE
    topic = topic_name.encode()
    body = (
        i32(-1)  # replica_id
        + i8(0)  # isolation_level
        + uvarint(2) + uvarint(len(topic) + 1) + topic  # topics: [name
        + uvarint(2) + i32(0) + i32(-1) + i64(-1) + uvarint(0)  # [partition, epoch, latest]]
        + uvarint(0)  # topic tags
        + i32(5_000)  # timeout_ms (v10+)
        + uvarint(0)  # request tags
    )
    r = conn.call(2, 10, body, flexible=True)
    r.i32()  # throttle_time_ms
    assert r.compact_len() == 1 and r.compact_string() == topic_name
    assert r.compact_len() == 1 and r.i32() == 0
    err, _ts, offset, _epoch = r.i16(), r.i64(), r.i64(), r.i32()
    r.skip_tags()
    r.skip_tags()
    r.skip_tags()
    r.done()
    assert (err, offset) == (UNSUPPORTED_VERSION, -1)
    # The connection stays usable at an advertised version.
    assert ws.list_offsets_v7(conn, topic_name, 0, -1) == (NONE, -1, 2)


def test_http_produce_obeys_the_same_timestamp_and_key_rules(broker, topic_name):
    http = Http(broker)
    http.wait_ready()
    http.create_topic(topic_name, 1)
    future = now_ms() + 2 * 3_600_000
    got = http.call("POST", f"/v1/topics/{topic_name}/records",
                    {"records": [{"value": "late", "partition": 0, "timestamp_ms": future}]})
    assert_error(got, 400, "INVALID_TIMESTAMP")

    compacted = topic_name + "-compacted"
    http.create_topic(compacted, 1, {"cleanup.policy": "compact"})
    got = http.call("POST", f"/v1/topics/{compacted}/records", {"records": [{"value": "no key", "partition": 0}]})
    assert_error(got, 400, "INVALID_RECORD")
    assert http.produce(compacted, [{"key": "k", "value": "v", "partition": 0}])[0]["offset"] == 0
