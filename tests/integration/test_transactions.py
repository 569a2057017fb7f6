"""Transactions with real clients (issue 5): commit/abort across partitions,
read_committed vs read_uncommitted, zombie fencing, a broker killed mid-
transaction, and an exactly-once consume-transform-produce pipeline whose
worker process is killed and restarted.

Every wait has a deadline; nothing sleeps for readiness."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from clients import confluent_create_topic
from util import wait_until

HERE = Path(__file__).resolve().parent
TXN_TIMEOUT_S = 30.0


def txn_producer(bootstrap: str, txn_id: str, **extra) -> Producer:
    conf = {
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "linger.ms": 5,
        "message.timeout.ms": 20000,
        "socket.timeout.ms": 10000,
    }
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(TXN_TIMEOUT_S)
    return p


def read_to_end(bootstrap: str, topic: str, partitions: int, isolation: str,
                timeout_s: float = 30.0) -> dict[int, list[bytes]]:
    """Every value in each partition up to its end (the LSO for
    read_committed), in order, found by reading until every partition hit EOF."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "txn-reader",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": isolation,
        "fetch.wait.max.ms": 100,
    })
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
        at_eof: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(at_eof) < partitions:
            assert time.monotonic() < deadline, f"{isolation} read did not reach the end: {at_eof}"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_eof.add(m.partition())
                    continue
                raise KafkaException(m.error())
            at_eof.discard(m.partition())
            out[m.partition()].append(m.value())
        return out
    finally:
        c.close()


def produce_sync(p: Producer, topic: str, partition: int, value: bytes) -> None:
    errors = []
    p.produce(topic, value=value, partition=partition,
              on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(20) == 0
    assert not errors, errors


def test_read_committed_sees_exactly_the_committed_transactions(broker, topic_name):
    confluent_create_topic(broker.bootstrap, topic_name, 3)
    p = txn_producer(broker.bootstrap, f"{topic_name}-tx")
    committed: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    everything: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    for t in range(6):
        p.begin_transaction()
        for part in range(3):
            for i in range(10):
                v = f"t{t}-p{part}-{i}".encode()
                p.produce(topic_name, value=v, partition=part)
                everything[part].append(v)
        if t % 2 == 0:
            p.commit_transaction(TXN_TIMEOUT_S)
            for part in range(3):
                committed[part].extend(everything[part][-10:])
        else:
            # Flush first so the aborted records are really in the log.
            assert p.flush(20) == 0
            p.abort_transaction(TXN_TIMEOUT_S)
    assert read_to_end(broker.bootstrap, topic_name, 3, "read_committed") == committed
    assert read_to_end(broker.bootstrap, topic_name, 3, "read_uncommitted") == everything


def test_read_committed_stops_at_an_open_transaction(broker, topic_name):
    """The LSO holds read_committed consumers at the first open transaction,
    even when later non-transactional records are already in the log."""
    confluent_create_topic(broker.bootstrap, topic_name, 1)
    plain = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    produce_sync(plain, topic_name, 0, b"before")
    p = txn_producer(broker.bootstrap, f"{topic_name}-tx")
    p.begin_transaction()
    p.produce(topic_name, value=b"in-txn", partition=0)
    assert p.flush(20) == 0
    produce_sync(plain, topic_name, 0, b"after")
    assert read_to_end(broker.bootstrap, topic_name, 1, "read_committed") == {0: [b"before"]}
    assert read_to_end(broker.bootstrap, topic_name, 1, "read_uncommitted") == {
        0: [b"before", b"in-txn", b"after"]}
    p.commit_transaction(TXN_TIMEOUT_S)
    assert read_to_end(broker.bootstrap, topic_name, 1, "read_committed") == {
        0: [b"before", b"in-txn", b"after"]}


def test_offset_fetch_require_stable_waits_for_pending_transactional_offsets(broker, topic_name):
    """KIP-447: while a transaction holds offsets for a group, OffsetFetch
    with require_stable (librdkafka sends it for read_committed consumers)
    answers UNSTABLE_OFFSET_COMMIT, which the client retries until its
    timeout; read_uncommitted sees the last stable commit at once. After
    the commit both see the transaction's offset."""
    confluent_create_topic(broker.bootstrap, topic_name, 1)
    group = f"{topic_name}-g"

    def committed(isolation: str, timeout_s: float) -> int:
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                      "enable.auto.commit": False, "isolation.level": isolation})
        try:
            [tp] = c.committed([TopicPartition(topic_name, 0)], timeout=timeout_s)
            assert tp.error is None, tp.error
            return tp.offset
        finally:
            c.close()

    meta_source = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    p = txn_producer(broker.bootstrap, f"{topic_name}-tx")
    p.begin_transaction()
    p.produce(topic_name, value=b"x", partition=0)
    p.send_offsets_to_transaction([TopicPartition(topic_name, 0, 42)],
                                  meta_source.consumer_group_metadata(), TXN_TIMEOUT_S)
    meta_source.close()
    # No offset was ever committed: read_uncommitted gets "none" (-1001).
    assert committed("read_uncommitted", 10) == -1001
    with pytest.raises(KafkaException) as e:
        committed("read_committed", 3)
    assert e.value.args[0].code() == KafkaError._TIMED_OUT, e.value
    p.commit_transaction(TXN_TIMEOUT_S)
    assert committed("read_committed", 10) == 42
    assert committed("read_uncommitted", 10) == 42


def test_second_producer_with_same_transactional_id_fences_the_first(broker, topic_name):
    confluent_create_topic(broker.bootstrap, topic_name, 1)
    txn_id = f"{topic_name}-tx"
    first = txn_producer(broker.bootstrap, txn_id)
    first.begin_transaction()
    first.produce(topic_name, value=b"zombie", partition=0)
    assert first.flush(20) == 0

    second = txn_producer(broker.bootstrap, txn_id)
    # The zombie's open transaction was aborted by the new instance's init.
    with pytest.raises(KafkaException) as fenced:
        first.commit_transaction(TXN_TIMEOUT_S)
    err = fenced.value.args[0]
    assert err.fatal(), f"fencing must be fatal, got {err}"
    # Its later writes are rejected too.
    with pytest.raises(KafkaException):
        first.begin_transaction()

    second.begin_transaction()
    second.produce(topic_name, value=b"live", partition=0)
    second.commit_transaction(TXN_TIMEOUT_S)
    assert read_to_end(broker.bootstrap, topic_name, 1, "read_committed") == {0: [b"live"]}
    assert read_to_end(broker.bootstrap, topic_name, 1, "read_uncommitted") == {0: [b"zombie", b"live"]}


def test_broker_killed_mid_transaction_never_leaves_it_hanging(broker, topic_name):
    """kill -9 with a transaction open: after restart the coordinator
    reloads it from __transaction_state and aborts it when it times out, so
    read_committed consumers move past it."""
    confluent_create_topic(broker.bootstrap, topic_name, 2)
    p = txn_producer(broker.bootstrap, f"{topic_name}-tx",
                     **{"transaction.timeout.ms": 4000, "socket.timeout.ms": 4000,
                        "message.timeout.ms": 4000})
    p.begin_transaction()
    for part in range(2):
        p.produce(topic_name, value=f"open-{part}".encode(), partition=part)
    assert p.flush(20) == 0
    broker.kill9()
    broker.restart()
    # Abandon the producer: its transaction must still end.
    del p
    plain = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for part in range(2):
        produce_sync(plain, topic_name, part, f"later-{part}".encode())
    # Until the coordinator aborts it (after the 4 s timeout), the open
    # transaction holds the LSO back; then exactly the later records show.
    want = {0: [b"later-0"], 1: [b"later-1"]}
    seen = {}

    def progressed() -> bool:
        nonlocal seen
        seen = read_to_end(broker.bootstrap, topic_name, 2, "read_committed")
        return seen == want or any(seen.values())

    wait_until(progressed, 40, "read_committed consumers to move past the abandoned transaction")
    assert seen == want
    assert read_to_end(broker.bootstrap, topic_name, 2, "read_uncommitted") == {
        0: [b"open-0", b"later-0"], 1: [b"open-1", b"later-1"]}


def test_committed_transaction_survives_broker_kill(broker, topic_name):
    confluent_create_topic(broker.bootstrap, topic_name, 1)
    p = txn_producer(broker.bootstrap, f"{topic_name}-tx")
    p.begin_transaction()
    p.produce(topic_name, value=b"kept", partition=0)
    p.commit_transaction(TXN_TIMEOUT_S)
    p.begin_transaction()
    p.produce(topic_name, value=b"dropped", partition=0)
    assert p.flush(20) == 0
    p.abort_transaction(TXN_TIMEOUT_S)
    broker.kill9()
    broker.restart()
    # The aborted-transaction index is rebuilt from the log.
    assert read_to_end(broker.bootstrap, topic_name, 1, "read_committed") == {0: [b"kept"]}
    # The transactional id survives too: a new instance bumps its epoch.
    p2 = txn_producer(broker.bootstrap, f"{topic_name}-tx")
    p2.begin_transaction()
    p2.produce(topic_name, value=b"again", partition=0)
    p2.commit_transaction(TXN_TIMEOUT_S)
    assert read_to_end(broker.bootstrap, topic_name, 1, "read_committed") == {0: [b"kept", b"again"]}


def run_worker(
    bootstrap: str, src: str, dst: str, group: str, txn_id: str, total: int, pace_s: float = 0.0
) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HERE / "eos_worker.py"), bootstrap, src, dst, group, txn_id, str(total), str(pace_s)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_exactly_once_pipeline_survives_worker_kill(broker, topic_name):
    src, dst = f"{topic_name}-in", f"{topic_name}-out"
    total = 600
    confluent_create_topic(broker.bootstrap, src, 3)
    confluent_create_topic(broker.bootstrap, dst, 3)
    plain = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "enable.idempotence": True})
    for i in range(total):
        plain.produce(src, value=f"{i}".encode(), partition=i % 3)
    assert plain.flush(30) == 0
    group, txn_id = f"{topic_name}-g", f"{topic_name}-tx"

    # First run: paced (0.2 s inside each of its ~24 transactions) so it is
    # still running, most likely mid-transaction, when it is killed at a
    # random point after its first commit.
    worker = run_worker(broker.bootstrap, src, dst, group, txn_id, total, pace_s=0.2)
    rng = random.Random(os.getpid())
    try:
        wait_until(lambda: worker.poll() is not None
                   or sum(map(len, read_to_end(broker.bootstrap, dst, 3, "read_committed").values())) > 0,
                   60, "worker to commit a first transaction")
        assert worker.poll() is None, "worker finished before it could be killed"
        time.sleep(rng.uniform(0.0, 0.5))  # a random point mid-stream, not a readiness wait
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        # Second run finishes the job.
        worker = run_worker(broker.bootstrap, src, dst, group, txn_id, total)
        output, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0, output
    finally:
        if worker.poll() is None:
            worker.kill()
    out = read_to_end(broker.bootstrap, dst, 3, "read_committed")
    values = sorted(int(v.decode().removeprefix("out-")) for vs in out.values() for v in vs)
    assert values == list(range(total)), (
        f"{len(values)} outputs; duplicates: {sorted({v for v in values if values.count(v) > 1})[:10]}")
