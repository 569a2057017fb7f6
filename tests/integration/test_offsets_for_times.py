"""Issue 3, proof 4: ListOffsets by timestamp, from both Python clients.

Kafka semantics: the answer is the first offset whose timestamp is >= the
target. A target past the last record has no answer: confluent-kafka reports
offset -1 (OFFSET_END), kafka-python None. Records go in several batches (and
one compressed batch) so a broker that answers with a batch's base offset, or
compares against only the batch's max timestamp, gets it wrong.
"""

from __future__ import annotations

from confluent_kafka import Producer, TopicPartition

from clients import ADMIN_TIMEOUT_S, ConfluentClient, confluent_consumer
from util import Rec, now_ms

RECORDS = 200
STEP_MS = 10  # record i has timestamp base + STEP_MS * i


def _produce_timed_records(broker, topic: str) -> tuple[int, list[Rec]]:
    ConfluentClient().create_topic(broker.bootstrap, topic, 1)
    base = now_ms() - 3_600_000
    recs = [Rec(0, b"k%d" % i, b"v%d" % i, (), base + STEP_MS * i) for i in range(RECORDS)]
    # Four produce calls -> at least four batches; one of them compressed.
    for chunk, codec in zip(range(0, RECORDS, RECORDS // 4), ["none", "lz4", "none", "gzip"]):
        part = recs[chunk : chunk + RECORDS // 4]
        _produce_chunk(broker.bootstrap, topic, part, codec)
    return base, recs


def _produce_chunk(bootstrap: str, topic: str, part: list[Rec], codec: str) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 50, "acks": "all",
                  "message.timeout.ms": 30000})
    errors = []
    for r in part:
        p.produce(topic, value=r.value, key=r.key, partition=0, timestamp=r.timestamp_ms,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0
    assert not errors, errors[:5]


def _targets(base: int) -> list[tuple[int, int | None]]:
    """(target timestamp, expected offset or None for 'no such record')."""
    last = base + STEP_MS * (RECORDS - 1)
    return [
        (base - 60_000, 0),  # before everything -> first record
        (base, 0),
        (base + 1, 1),  # between records 0 and 1 -> record 1
        (base + STEP_MS * 37, 37),  # exact hit inside a batch
        (base + STEP_MS * 37 - 3, 37),
        (base + STEP_MS * 50, 50),  # first record of the 3rd produce call
        (base + STEP_MS * 49 + 1, 50),
        (base + STEP_MS * 120 + 5, 121),  # inside the compressed batch region
        (last, RECORDS - 1),
        (last + 1, None),  # past the end
    ]


def test_confluent_offsets_for_times_returns_first_offset_at_or_after_timestamp(broker, topic_name):
    base, recs = _produce_timed_records(broker, topic_name)
    c = confluent_consumer(broker.bootstrap)
    try:
        for target, expected in _targets(base):
            [tp] = c.offsets_for_times([TopicPartition(topic_name, 0, target)], timeout=ADMIN_TIMEOUT_S)
            assert tp.error is None, tp.error
            want = -1 if expected is None else expected  # -1 == OFFSET_END
            assert tp.offset == want, f"target ts {target} (base+{target - base}): offset {tp.offset}, want {want}"
    finally:
        c.close()


def test_kafka_python_offsets_for_times_returns_first_offset_at_or_after_timestamp(broker, topic_name):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    base, recs = _produce_timed_records(broker, topic_name)
    tp = KTP(topic_name, 0)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      request_timeout_ms=15000)
    try:
        for target, expected in _targets(base):
            got = c.offsets_for_times({tp: target}, timeout_ms=15000)[tp]
            if expected is None:
                assert got is None, f"target ts past the end: got {got}, want None"
            else:
                assert got is not None, f"target ts {target} (base+{target - base}): got None, want {expected}"
                assert got.offset == expected, f"target ts base+{target - base}: offset {got.offset}, want {expected}"
                assert got.timestamp == recs[expected].timestamp_ms, "returned timestamp is not the record's"
    finally:
        c.close()
