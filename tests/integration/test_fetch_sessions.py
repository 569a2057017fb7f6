"""Issue 18: incremental fetch sessions (KIP-227).

The raw-wire cases speak Fetch v7 (the first version with sessions) so the
session id, epoch checks and which partitions an incremental response
carries are visible exactly. kafka-python, which opens sessions by default,
shows a real client consuming through them; librdkafka never opens one and
is covered by every other consume test.
"""

from __future__ import annotations

import threading
import time

from test_wire_semantics import Conn, batch_of, create_topic, produce
from http_client import Http, metric
from util import i8, i32, i64, kstring, wait_until

NONE = 0
FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71


def fetch_v7(c: Conn, session_id: int, epoch: int, parts, *, forgotten=(), max_wait_ms: int = 0):
    """Fetch v7; parts = [(topic, partition, fetch_offset)], forgotten = [(topic, partition)].
    Returns (error_code, session_id, {(topic, partition): (error, high_watermark, records)})."""
    topics: dict[str, list[tuple[int, int]]] = {}
    for t, p, off in parts:
        topics.setdefault(t, []).append((p, off))
    body = i32(-1) + i32(max_wait_ms) + i32(1) + i32(50 << 20) + i8(0) + i32(session_id) + i32(epoch)
    body += i32(len(topics))
    for t, ps in topics.items():
        body += kstring(t) + i32(len(ps))
        for p, off in ps:
            body += i32(p) + i64(off) + i64(-1) + i32(1 << 20)
    gone: dict[str, list[int]] = {}
    for t, p in forgotten:
        gone.setdefault(t, []).append(p)
    body += i32(len(gone))
    for t, ps in gone.items():
        body += kstring(t) + i32(len(ps)) + b"".join(i32(p) for p in ps)
    r = c.recv(c.send(1, 7, body), timeout_s=max_wait_ms / 1000 + 15)
    r.i32()  # throttle_time_ms
    error, sid = r.i16(), r.i32()
    out = {}
    for _ in range(r.i32()):
        topic = r.string()
        for _ in range(r.i32()):
            p, err, hw = r.i32(), r.i16(), r.i64()
            r.i64(), r.i64()  # last stable offset, log start offset
            for _ in range(max(r.i32(), 0)):
                r.i64(), r.i64()
            out[(topic, p)] = (err, hw, r.bytes_())
    r.done()
    return error, sid, out


def test_incremental_fetches_answer_only_partitions_with_news(broker, topic_name):
    create_topic(broker, topic_name, 3)
    c = Conn(broker.kafka_port)
    try:
        assert produce(c, topic_name, 0, batch_of(2))[0] == NONE
        every = [(topic_name, p, 0) for p in range(3)]

        # Epoch 0: a full fetch opens the session and answers every partition.
        err, sid, got = fetch_v7(c, 0, 0, every)
        assert err == NONE and sid != 0
        assert set(got) == {(topic_name, p) for p in range(3)}
        assert got[(topic_name, 0)][1] == 2 and got[(topic_name, 0)][2]

        # Epoch 1 moves partition 0 past its records: nothing is new anywhere.
        err, sid1, got = fetch_v7(c, sid, 1, [(topic_name, 0, 2)])
        assert (err, sid1, got) == (NONE, sid, {})

        # Records on partition 2: only it is answered, though epoch 2 lists nothing.
        assert produce(c, topic_name, 2, batch_of(3))[0] == NONE
        err, _, got = fetch_v7(c, sid, 2, [])
        assert err == NONE and set(got) == {(topic_name, 2)}
        assert got[(topic_name, 2)][1] == 3 and got[(topic_name, 2)][2]

        # A long poll on the session wakes for a partition the request never listed.
        def later():
            time.sleep(0.5)
            produce(Conn(broker.kafka_port), topic_name, 1, batch_of(1))

        t = threading.Thread(target=later)
        t.start()
        started = time.monotonic()
        err, _, got = fetch_v7(c, sid, 3, [(topic_name, 2, 3)], max_wait_ms=10_000)
        t.join()
        assert err == NONE and set(got) == {(topic_name, 1)}
        assert time.monotonic() - started < 5.0, "the long poll waited out its max wait"

        # Kafka's errors: a wrong epoch, an unknown id; neither ends the session.
        assert fetch_v7(c, sid, 9, [])[:2] == (INVALID_FETCH_SESSION_EPOCH, 0)
        assert fetch_v7(c, sid % 0x7FFFFFFF + 1, 1, [])[:2] == (FETCH_SESSION_ID_NOT_FOUND, 0)
        # Partition 1 still sits before its record until the client moves it.
        err, _, got = fetch_v7(c, sid, 4, [(topic_name, 1, 1)], forgotten=[(topic_name, 0)])
        assert (err, got) == (NONE, {})

        # Epoch -1 closes it: the answer is sessionless, and the id is gone.
        err, sid2, got = fetch_v7(c, sid, -1, [(topic_name, 0, 0)])
        assert (err, sid2) == (NONE, 0) and set(got) == {(topic_name, 0)}
        assert fetch_v7(c, sid, 5, [])[0] == FETCH_SESSION_ID_NOT_FOUND
    finally:
        c.close()


def test_kafka_python_consumes_through_a_session(broker, topic_name):
    from kafka import KafkaConsumer, TopicPartition

    partitions = 12
    create_topic(broker, topic_name, partitions)
    http = Http(broker)
    http.wait_ready()
    c = Conn(broker.kafka_port)
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        request_timeout_ms=15000,
    )
    try:
        tps = [TopicPartition(topic_name, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        seen: dict[int, list[int]] = {p: [] for p in range(partitions)}
        expected: dict[int, int] = {p: 0 for p in range(partitions)}
        sessions_seen = 0
        # Rounds of writes to a few partitions at a time, so most fetches
        # find most partitions quiet.
        for round_ in range(6):
            for p in (round_ % partitions, (round_ * 5 + 3) % partitions):
                assert produce(c, topic_name, p, batch_of(4))[0] == NONE
                expected[p] += 4

            def caught_up():
                for recs in consumer.poll(timeout_ms=200).values():
                    for m in recs:
                        seen[m.partition].append(m.offset)
                return all(len(seen[p]) >= expected[p] for p in range(partitions))

            wait_until(caught_up, 30, f"round {round_} consumed")
            sessions_seen = max(sessions_seen, metric(http, "sluice_fetch_sessions"))
        for p in range(partitions):
            assert seen[p] == list(range(expected[p])), f"partition {p}: {seen[p]}"
        assert sessions_seen >= 1, "kafka-python never opened a fetch session"
        assert metric(http, "sluice_fetch_session_partitions") >= partitions
    finally:
        consumer.close()
        c.close()
