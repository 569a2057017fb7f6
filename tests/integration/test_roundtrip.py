"""Issue 3, proof 2: every real client, every compression codec, byte-exact.

10,000 keyed records with ordered, repeated headers and explicit timestamps go
to explicit partitions of a 3-partition topic and come back from offset 0 of
each partition; key, value, headers (as an ordered list), timestamp and order
are compared for every record.
"""

from __future__ import annotations

import zlib

import pytest

from clients import CLIENTS, COMPRESSIONS, KcatClient, confluent_watermarks
from util import assert_all_partitions_equal, by_partition, make_records

RECORDS = 10_000
PARTITIONS = 3


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("client_name", list(CLIENTS))
def test_keyed_records_with_headers_round_trip_byte_exact(broker, topic_name, client_name, compression):
    client = CLIENTS[client_name]
    is_kcat = isinstance(client, KcatClient)
    records = make_records(
        RECORDS, PARTITIONS, seed=zlib.crc32(f"{client_name}/{compression}".encode()), printable=is_kcat
    )

    client.create_topic(broker.bootstrap, topic_name, PARTITIONS)
    window = client.produce(broker.bootstrap, topic_name, records, compression)

    expected = by_partition(records)
    read = {}
    for p in range(PARTITIONS):
        read[p] = client.consume_partition(broker.bootstrap, topic_name, p, len(expected[p]))
        # Nothing beyond what we sent: the high watermark is exactly the count.
        low, high = confluent_watermarks(broker.bootstrap, topic_name, p)
        assert (low, high) == (0, len(expected[p])), f"partition {p} watermarks"

    assert_all_partitions_equal(records, read, PARTITIONS, check_timestamps=not is_kcat)
    if is_kcat:
        start_ms, end_ms = window
        for p, recs in read.items():
            ts = [r.timestamp_ms for r in recs]
            assert all(start_ms <= t <= end_ms for t in ts), (
                f"partition {p}: CreateTime outside the produce window [{start_ms}, {end_ms}]: "
                f"{[t for t in ts if not start_ms <= t <= end_ms][:5]}"
            )
            assert ts == sorted(ts), f"partition {p}: CreateTime went backwards"


def test_idempotent_producer_gets_a_producer_id_and_round_trips(broker, topic_name):
    """Java 3.x and kafka-python 3.x enable idempotence by default, so an
    unmodified producer starts with InitProducerId; here librdkafka is asked
    for the same explicitly, with a transport-level view of the result."""
    from confluent_kafka import Producer

    client = CLIENTS["confluent-kafka"]
    client.create_topic(broker.bootstrap, topic_name, 1)
    records = make_records(500, 1, seed=22)
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                  "message.timeout.ms": 15000, "linger.ms": 5})
    acked, errors = [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.append(msg.offset())

    try:
        for r in records:
            p.produce(topic_name, value=r.value, key=r.key, partition=0, timestamp=r.timestamp_ms,
                      headers=list(r.headers), on_delivery=on_delivery)
        remaining = p.flush(30)
    except Exception as e:  # librdkafka raises its fatal idempotence error from produce()
        cause = e.__context__ or e
        pytest.fail(f"idempotent producer failed: {cause}")
    finally:
        p.purge()
    assert remaining == 0
    assert not errors, f"idempotent produce failed: {errors[:3]}"
    assert acked == list(range(len(records)))
    read = client.consume_partition(broker.bootstrap, topic_name, 0, len(records))
    assert_all_partitions_equal(records, {0: read}, 1)
