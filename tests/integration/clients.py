"""One adapter per real Kafka client, all with the same three verbs, so the
round-trip tests are written once and parametrized over clients.

Every call carries a timeout: a broker that stops answering makes the test
fail with a message, never hang.
"""

from __future__ import annotations

import subprocess
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from util import KCAT_HEADERS, Rec, now_ms

ADMIN_TIMEOUT_S = 15.0
PRODUCE_TIMEOUT_S = 90.0
CONSUME_TIMEOUT_S = 60.0
COMPRESSIONS = ["none", "gzip", "snappy", "lz4", "zstd"]


# --------------------------------------------------------------------------
# confluent-kafka (librdkafka)
# --------------------------------------------------------------------------


def confluent_admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def confluent_create_topic(bootstrap: str, name: str, partitions: int, config: dict | None = None) -> None:
    admin = confluent_admin(bootstrap)  # must outlive the future, or it resolves to _DESTROY
    fs = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=10,
        request_timeout=ADMIN_TIMEOUT_S,
    )
    fs[name].result(timeout=ADMIN_TIMEOUT_S)


def confluent_produce_keyed(bootstrap: str, topic: str, items: list[tuple[bytes, bytes | None]],
                           partition: int | None = None) -> dict[bytes, tuple[int, int, bytes | None]]:
    """Produces `items` (key, value; None is a tombstone) in order with an
    idempotent producer, to `partition` or where librdkafka's default
    partitioner puts each key; returns each key's last (partition, offset,
    value)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                         "enable.idempotence": True})
    last: dict[bytes, tuple[int, int, bytes | None]] = {}
    errors = []

    def report(err, msg):
        if err:
            errors.append(err)
        elif msg.key() not in last or last[msg.key()][1] < msg.offset():
            last[msg.key()] = (msg.partition(), msg.offset(), msg.value())

    where = {} if partition is None else {"partition": partition}
    for key, value in items:
        producer.produce(topic, key=key, value=value, on_delivery=report, **where)
        producer.poll(0)
    assert producer.flush(PRODUCE_TIMEOUT_S) == 0
    assert not errors, errors
    return last


def confluent_consumer(bootstrap: str, **extra) -> Consumer:
    conf = {
        "bootstrap.servers": bootstrap,
        # group.id is mandatory in the Python binding; with assign() no group
        # protocol is needed and nothing is committed.
        "group.id": "sluice-it-reader",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "socket.timeout.ms": 10000,
        "fetch.wait.max.ms": 100,
    }
    conf.update(extra)
    return Consumer(conf)


def confluent_produce_consume(conf: dict, topic: str, values: list[bytes], timeout_s: float) -> list[bytes]:
    """Produces `values` to `topic` with acks=all, then consumes the topic
    from the start in a fresh group until as many records came back or
    `timeout_s` passed. `conf` carries the bootstrap servers and any
    security settings, for both clients. Returns the values read."""
    p = Producer({"acks": "all", **conf})
    failures = []
    for v in values:
        p.produce(topic, value=v, on_delivery=lambda err, _m: err and failures.append(err))
    assert p.flush(timeout_s) == 0, "undelivered records"
    assert not failures, failures
    return confluent_consume(conf, topic, len(values), timeout_s)


def confluent_consume(conf: dict, topic: str, want: int, timeout_s: float, group: str | None = None) -> list[bytes]:
    """Consumes `topic` from the start in group `group` (default
    `g-<topic>`) until `want` records came back or `timeout_s` passed;
    returns the values read."""
    c = Consumer({
        "group.id": group or f"g-{topic}", "auto.offset.reset": "earliest", "enable.auto.commit": False, **conf,
    })
    c.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < want and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is None, m.error()
            got.append(m.value())
    finally:
        c.close()
    return got


def confluent_watermarks(bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
    c = confluent_consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=ADMIN_TIMEOUT_S, cached=False)
    finally:
        c.close()


def confluent_partition_count(bootstrap: str, topic: str) -> int | None:
    """Partition count from a full metadata listing (never a per-topic query,
    which could auto-create the topic), or None if the topic does not exist."""
    md = confluent_admin(bootstrap).list_topics(timeout=ADMIN_TIMEOUT_S)
    t = md.topics.get(topic)
    return None if t is None else len(t.partitions)


class ConfluentClient:
    name = "confluent-kafka"

    def create_topic(self, bootstrap: str, name: str, partitions: int, config: dict | None = None) -> None:
        confluent_create_topic(bootstrap, name, partitions, config)

    def produce(self, bootstrap: str, topic: str, records: list[Rec], compression: str) -> None:
        p = Producer(
            {
                "bootstrap.servers": bootstrap,
                "compression.type": compression,
                "linger.ms": 5,
                "acks": "all",
                "message.timeout.ms": 60000,
                "socket.timeout.ms": 10000,
            }
        )
        acked: dict[int, list[int]] = {}
        errors: list[str] = []

        def on_delivery(err, msg):
            if err is not None:
                errors.append(f"{msg.partition()}: {err}")
            else:
                acked.setdefault(msg.partition(), []).append(msg.offset())

        for r in records:
            while True:
                try:
                    p.produce(
                        topic, value=r.value, key=r.key, partition=r.partition,
                        timestamp=r.timestamp_ms, headers=list(r.headers), on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    p.poll(0.1)  # local queue full: serve delivery reports, retry
            p.poll(0)
        remaining = p.flush(PRODUCE_TIMEOUT_S)
        assert remaining == 0, f"{remaining} records still undelivered after {PRODUCE_TIMEOUT_S}s"
        assert not errors, f"delivery failures (first 5): {errors[:5]}"
        _assert_acked_offsets_dense(acked, records)

    def consume_partition(self, bootstrap: str, topic: str, partition: int, count: int) -> list[Rec]:
        c = confluent_consumer(bootstrap)
        out: list[Rec] = []
        try:
            c.assign([TopicPartition(topic, partition, 0)])
            deadline = time.monotonic() + CONSUME_TIMEOUT_S
            while len(out) < count:
                assert time.monotonic() < deadline, (
                    f"read only {len(out)}/{count} records from {topic}[{partition}] in {CONSUME_TIMEOUT_S}s"
                )
                for m in c.consume(num_messages=1000, timeout=1.0):
                    if m.error():
                        if m.error().code() == KafkaError._PARTITION_EOF:
                            continue
                        raise KafkaException(m.error())
                    assert m.offset() == len(out), f"offset {m.offset()} where {len(out)} expected"
                    out.append(_confluent_rec(m))
        finally:
            c.close()
        return out


def _confluent_rec(m) -> Rec:
    _ts_type, ts = m.timestamp()
    return Rec(m.partition(), m.key(), m.value(), tuple(m.headers() or ()), ts)


def _assert_acked_offsets_dense(acked: dict[int, list[int]], records: list[Rec]) -> None:
    """On a fresh topic the n records sent to a partition must be acked at
    offsets 0..n-1, in send order (one producer, ordered per partition)."""
    expected: dict[int, int] = {}
    for r in records:
        expected[r.partition] = expected.get(r.partition, 0) + 1
    for p, n in expected.items():
        got = acked.get(p, [])
        assert got == list(range(n)), (
            f"partition {p}: acked offsets are not 0..{n - 1} in order "
            f"(got {len(got)} acks, first bad: {next((o, i) for i, o in enumerate(got + [None]) if o != i)})"
        )


# --------------------------------------------------------------------------
# kafka-python
# --------------------------------------------------------------------------


class KafkaPythonClient:
    name = "kafka-python"

    def create_topic(self, bootstrap: str, name: str, partitions: int, config: dict | None = None) -> None:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
        try:
            admin.create_topics(
                {name: {"num_partitions": partitions, "replication_factor": 1, "configs": config or {}}},
                timeout_ms=10000,
            )
        finally:
            admin.close()

    def produce(self, bootstrap: str, topic: str, records: list[Rec], compression: str) -> None:
        from kafka import KafkaProducer

        p = KafkaProducer(
            bootstrap_servers=bootstrap,
            compression_type=None if compression == "none" else compression,
            linger_ms=5,
            batch_size=64 * 1024,
            acks="all",
            request_timeout_ms=15000,
            max_block_ms=15000,
        )
        try:
            futures = [
                p.send(topic, value=r.value, key=r.key, headers=list(r.headers),
                       partition=r.partition, timestamp_ms=r.timestamp_ms)
                for r in records
            ]
            p.flush(timeout=PRODUCE_TIMEOUT_S)
            acked: dict[int, list[int]] = {}
            for f in futures:
                md = f.get(timeout=1)  # raises the broker's error if the send failed
                acked.setdefault(md.partition, []).append(md.offset)
        finally:
            p.close(timeout=10)
        _assert_acked_offsets_dense(acked, records)

    def consume_partition(self, bootstrap: str, topic: str, partition: int, count: int) -> list[Rec]:
        from kafka import KafkaConsumer
        from kafka import TopicPartition as KTP

        c = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            request_timeout_ms=15000,
        )
        tp = KTP(topic, partition)
        out: list[Rec] = []
        try:
            c.assign([tp])
            c.seek(tp, 0)
            deadline = time.monotonic() + CONSUME_TIMEOUT_S
            while len(out) < count:
                assert time.monotonic() < deadline, (
                    f"read only {len(out)}/{count} records from {topic}[{partition}] in {CONSUME_TIMEOUT_S}s"
                )
                for recs in c.poll(timeout_ms=1000, max_records=5000).values():
                    for m in recs:
                        assert m.offset == len(out), f"offset {m.offset} where {len(out)} expected"
                        out.append(Rec(m.partition, m.key, m.value, tuple(m.headers), m.timestamp))
        finally:
            c.close()
        return out


# --------------------------------------------------------------------------
# kcat (librdkafka 2.0.2 from Debian: the old-client compatibility check)
# --------------------------------------------------------------------------


class KcatClient:
    """kcat has no admin API (topics are created with confluent-kafka) and
    cannot set per-record timestamps or headers: -H applies to every record,
    and librdkafka stamps CreateTime when kcat reads each line. So for kcat
    the timestamps are checked to lie inside the produce run's wall-clock
    window and to be non-decreasing per partition, and the headers are
    KCAT_HEADERS (still a repeated key, in order)."""

    name = "kcat"
    exact_timestamps = False

    def create_topic(self, bootstrap: str, name: str, partitions: int, config: dict | None = None) -> None:
        confluent_create_topic(bootstrap, name, partitions, config)

    def produce(self, bootstrap: str, topic: str, records: list[Rec], compression: str) -> tuple[int, int]:
        by_p: dict[int, list[Rec]] = {}
        for r in records:
            assert r.headers == KCAT_HEADERS, "kcat records must use KCAT_HEADERS"
            by_p.setdefault(r.partition, []).append(r)
        start = now_ms()
        for p, recs in sorted(by_p.items()):
            stdin = b"".join(r.key + b":" + r.value + b"\n" for r in recs)
            cmd = [
                "kcat", "-P", "-b", bootstrap, "-t", topic, "-p", str(p), "-K:",
                *[a for k, v in KCAT_HEADERS for a in ("-H", f"{k}={v.decode()}")],
                "-X", f"compression.codec={compression}",
                "-X", "linger.ms=5", "-X", "acks=all",
                "-m", "15",
            ]
            res = subprocess.run(cmd, input=stdin, capture_output=True, timeout=PRODUCE_TIMEOUT_S)
            assert res.returncode == 0, f"kcat -P exited {res.returncode}: {res.stderr.decode(errors='replace')[-2000:]}"
            assert b"Delivery failed" not in res.stderr, res.stderr.decode(errors="replace")[-2000:]
        return start, now_ms()

    def consume_partition(self, bootstrap: str, topic: str, partition: int, count: int) -> list[Rec]:
        cmd = [
            "kcat", "-C", "-b", bootstrap, "-t", topic, "-p", str(partition),
            "-o", "beginning", "-e", "-q", "-m", "15",
            "-f", "%o\\t%T\\t%k\\t%s\\t%h\\n",
        ]
        res = subprocess.run(cmd, capture_output=True, timeout=CONSUME_TIMEOUT_S)
        assert res.returncode == 0, f"kcat -C exited {res.returncode}: {res.stderr.decode(errors='replace')[-2000:]}"
        out: list[Rec] = []
        lines = res.stdout.split(b"\n")
        assert lines[-1] == b"", f"kcat output does not end in a newline: {lines[-1][:200]!r}"
        for line in lines[:-1]:
            fields = line.split(b"\t")
            assert len(fields) == 5, f"unparseable kcat line: {line[:300]!r}"
            offset, ts, key, value, headers = fields
            assert int(offset) == len(out), f"offset {int(offset)} where {len(out)} expected"
            out.append(Rec(partition, key, value, _parse_kcat_headers(headers), int(ts)))
        return out


def _parse_kcat_headers(raw: bytes) -> tuple[tuple[str, bytes], ...]:
    # kcat renders headers as "k=v,k=v" in wire order.
    if not raw:
        return ()
    out = []
    for item in raw.split(b","):
        k, _, v = item.partition(b"=")
        out.append((k.decode(), v))
    return tuple(out)


CLIENTS = {c.name: c for c in (KcatClient(), ConfluentClient(), KafkaPythonClient())}
