"""`__consumer_offsets` and `__transaction_state` hold Kafka's own record
formats, so tools that read those topics directly (lag monitors) understand
them.

The records are read raw with a plain consumer and decoded here by a small
parser written from Kafka's message specs (OffsetCommitKey/Value,
GroupMetadataKey/Value, ConsumerGroupMetadataKey/Value, TransactionLogKey/
Value), independent of the broker's Rust code. A Kafka-format reader skips
tagged fields it does not know, so this one does too.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from clients import confluent_consumer, confluent_create_topic
from harness import sluice_bin

OFFSETS_PARTITIONS = 4
TXN_PARTITIONS = 50  # Kafka's transaction.state.log.num.partitions
ARGS = [
    "--set", f"groups.offsets_topic_num_partitions={OFFSETS_PARTITIONS}",
    "--set", "groups.group_initial_rebalance_delay_ms=0",
]
DEADLINE_S = 30.0


# --------------------------------------------------------------------------
# A reader for Kafka's coordinator records, from the message specs
# --------------------------------------------------------------------------


class Reader:
    """Kafka's primitive types over one key or value."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        assert n >= 0 and self.pos + n <= len(self.data), f"truncated at {self.pos} (+{n}) of {len(self.data)}"
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self, fmt: str) -> int:
        return struct.unpack(">" + fmt, self.take(struct.calcsize(fmt)))[0]

    def i8(self) -> int:
        return self.int("b")

    def i16(self) -> int:
        return self.int("h")

    def i32(self) -> int:
        return self.int("i")

    def i64(self) -> int:
        return self.int("q")

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value
            shift += 7

    def string(self, flexible: bool, nullable: bool = False) -> str | None:
        n = self.uvarint() - 1 if flexible else self.i16()
        if n < 0:
            assert nullable, "null in a non-nullable string"
            return None
        return self.take(n).decode("utf-8")

    def bytes_(self, flexible: bool) -> bytes:
        n = self.uvarint() - 1 if flexible else self.i32()
        assert n >= 0
        return self.take(n)

    def array_len(self, flexible: bool, nullable: bool = False) -> int | None:
        n = self.uvarint() - 1 if flexible else self.i32()
        if n < 0:
            assert nullable, "null in a non-nullable array"
            return None
        return n

    def tagged_fields(self) -> dict[int, bytes]:
        fields = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            fields[tag] = self.take(self.uvarint())
        return fields

    def end(self) -> None:
        assert self.pos == len(self.data), f"{len(self.data) - self.pos} bytes left over"


def parse_offsets_key(key: bytes) -> tuple[str, dict]:
    r = Reader(key)
    record_type = r.i16()
    if record_type in (0, 1):  # OffsetCommitKey
        out = {"group": r.string(False), "topic": r.string(False), "partition": r.i32()}
        r.end()
        return "offset", out
    if record_type in (2, 3):  # GroupMetadataKey, ConsumerGroupMetadataKey
        out = {"group": r.string(False)}
        r.end()
        return ("group" if record_type == 2 else "consumer_group"), out
    raise AssertionError(f"unexpected record type {record_type}")


def parse_offset_commit_value(value: bytes) -> dict:
    r = Reader(value)
    version = r.i16()
    assert 0 <= version <= 4, version
    flexible = version >= 4
    out = {"version": version, "offset": r.i64()}
    out["leader_epoch"] = r.i32() if version >= 3 else -1
    out["metadata"] = r.string(flexible)
    out["commit_timestamp"] = r.i64()
    if version == 1:
        out["expire_timestamp"] = r.i64()
    if flexible:
        r.tagged_fields()
    r.end()
    return out


def parse_group_metadata_value(value: bytes) -> dict:
    r = Reader(value)
    version = r.i16()
    assert 0 <= version <= 4, version
    flexible = version >= 4
    out = {
        "version": version,
        "protocol_type": r.string(flexible),
        "generation": r.i32(),
        "protocol": r.string(flexible, nullable=True),
        "leader": r.string(flexible, nullable=True),
    }
    out["current_state_timestamp"] = r.i64() if version >= 2 else -1
    members = []
    for _ in range(r.array_len(flexible)):
        m = {"member_id": r.string(flexible)}
        m["group_instance_id"] = r.string(flexible, nullable=True) if version >= 3 else None
        m["client_id"] = r.string(flexible)
        m["client_host"] = r.string(flexible)
        m["rebalance_timeout"] = r.i32() if version >= 1 else None
        m["session_timeout"] = r.i32()
        m["subscription"] = r.bytes_(flexible)
        m["assignment"] = r.bytes_(flexible)
        if flexible:
            r.tagged_fields()
        members.append(m)
    out["members"] = members
    if flexible:
        r.tagged_fields()
    r.end()
    return out


def parse_consumer_group_metadata_value(value: bytes) -> dict:
    r = Reader(value)
    version = r.i16()
    assert version == 0, version
    out = {"epoch": r.i32(), "tags": r.tagged_fields()}
    r.end()
    return out


def parse_consumer_protocol_assignment(data: bytes) -> dict[str, list[int]]:
    """The classic consumer's assignment bytes (ConsumerProtocolAssignment)."""
    r = Reader(data)
    version = r.i16()
    assert version >= 0
    topics = {}
    for _ in range(r.array_len(False)):
        topic = r.string(False)
        topics[topic] = [r.i32() for _ in range(r.array_len(False))]
    return topics


def parse_transaction_log_key(key: bytes) -> str:
    r = Reader(key)
    assert r.i16() == 0
    out = r.string(False)
    r.end()
    return out


def parse_transaction_log_value(value: bytes) -> dict:
    r = Reader(value)
    version = r.i16()
    assert version in (0, 1), version
    flexible = version >= 1
    out = {
        "version": version,
        "producer_id": r.i64(),
        "producer_epoch": r.i16(),
        "timeout_ms": r.i32(),
        "status": r.i8(),
    }
    partitions = []
    n = r.array_len(flexible, nullable=True)
    for _ in range(n or 0):
        topic = r.string(flexible)
        for _ in range(r.array_len(flexible)):
            partitions.append((topic, r.i32()))
        if flexible:
            r.tagged_fields()
    out["partitions"] = partitions
    out["partitions_null"] = n is None
    out["last_update_timestamp"] = r.i64()
    out["start_timestamp"] = r.i64()
    if flexible:
        out["tags"] = r.tagged_fields()
    r.end()
    return out


def java_string_hash(s: str) -> int:
    h = 0
    for unit in struct.unpack(f">{len(s.encode('utf-16-be')) // 2}H", s.encode("utf-16-be")):
        h = (31 * h + unit) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def kafka_partition_for(key: str, partitions: int) -> int:
    """Kafka's `Utils.abs(key.hashCode) % partitions` (abs maps MIN_VALUE to 0),
    which places group ids and transactional ids alike."""
    h = java_string_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def offsets_partition_for(group: str) -> int:
    return kafka_partition_for(group, OFFSETS_PARTITIONS)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def read_raw(bootstrap: str, topic: str, partitions: list[int]) -> list[tuple[int, bytes, bytes | None]]:
    """Every record of `partitions`, as (partition, key, value) in log order."""
    c = confluent_consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, p, 0) for p in partitions])
        out = []
        at_eof: set[int] = set()
        deadline = time.monotonic() + DEADLINE_S
        while len(at_eof) < len(partitions):
            assert time.monotonic() < deadline, f"reading {topic} did not reach the end: {at_eof}"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                assert m.error().code() == -191, m.error()  # _PARTITION_EOF
                at_eof.add(m.partition())
                continue
            out.append((m.partition(), m.key(), m.value()))
        return out
    finally:
        c.close()


def join(bootstrap: str, topic: str, group: str, **extra) -> Consumer:
    """A subscribed consumer, returned once it owns at least one partition."""
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if extra.get("group.protocol") != "consumer":
        # Classic only: a KIP-848 member's session timeout is the broker's.
        conf["session.timeout.ms"] = 10000
    conf.update(extra)
    c = Consumer(conf)
    c.subscribe([topic])
    deadline = time.monotonic() + DEADLINE_S
    while not c.assignment():
        assert time.monotonic() < deadline, f"{group} got no assignment"
        c.poll(0.2)
    return c


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_consumer_offsets_records_are_kafkas_offset_commit_and_group_metadata(broker_factory, topic_name):
    broker = broker_factory.new(extra_args=ARGS)
    confluent_create_topic(broker.bootstrap, topic_name, 2)
    classic_group = f"{topic_name}-classic"
    kip848_group = f"{topic_name}-kip848"

    classic = join(broker.bootstrap, topic_name, classic_group)
    try:
        classic.commit(offsets=[TopicPartition(topic_name, 0, 3, metadata="meta-0", leader_epoch=0),
                                TopicPartition(topic_name, 1, 5)], asynchronous=False)
    finally:
        classic.close()
    kip848 = join(broker.bootstrap, topic_name, kip848_group, **{"group.protocol": "consumer"})
    try:
        kip848.commit(offsets=[TopicPartition(topic_name, 0, 7)], asynchronous=False)
    finally:
        kip848.close()

    offsets: dict[tuple[str, str, int], dict | None] = {}
    classic_values, kip848_values = [], []
    for partition, key, value in read_raw(broker.bootstrap, "__consumer_offsets", list(range(OFFSETS_PARTITIONS))):
        kind, k = parse_offsets_key(key)
        assert partition == offsets_partition_for(k["group"]), (k, partition)
        if kind == "offset":
            parsed = parse_offset_commit_value(value) if value is not None else None
            offsets[(k["group"], k["topic"], k["partition"])] = parsed
        elif kind == "group" and k["group"] == classic_group and value is not None:
            classic_values.append(parse_group_metadata_value(value))
        elif kind == "consumer_group" and k["group"] == kip848_group and value is not None:
            kip848_values.append(parse_consumer_group_metadata_value(value))

    first = offsets[(classic_group, topic_name, 0)]
    assert first is not None
    # Version 3, what Kafka 3.x and 4.x write.
    assert first["version"] == 3
    assert (first["offset"], first["leader_epoch"]) == (3, 0)
    # The metadata is stored verbatim. confluent-kafka-python sends the C
    # string with its NUL terminator and reads OffsetFetch's answer up to the
    # NUL, so the record holds one more byte than the client shows.
    fetcher = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": classic_group})
    try:
        [tp] = fetcher.committed([TopicPartition(topic_name, 0)], timeout=DEADLINE_S)
    finally:
        fetcher.close()
    assert first["metadata"] == tp.metadata + "\0" and tp.metadata == "meta-0"
    assert abs(first["commit_timestamp"] - time.time() * 1000) < 120_000
    assert offsets[(classic_group, topic_name, 1)]["offset"] == 5
    assert offsets[(kip848_group, topic_name, 0)]["offset"] == 7

    # The classic group's Stable record names its member and the partitions
    # the leader assigned it; the consumer's leave wrote a later one.
    assert classic_values, "no GroupMetadata record for the classic group"
    stable = [v for v in classic_values if v["members"]]
    assert stable, classic_values
    v = stable[-1]
    assert v["version"] == 3 and v["protocol_type"] == "consumer" and v["generation"] >= 1
    assert v["leader"] == v["members"][0]["member_id"]
    assigned = parse_consumer_protocol_assignment(v["members"][0]["assignment"])
    assert sorted(assigned[topic_name]) == [0, 1]
    assert v["members"][0]["session_timeout"] == 10000

    assert kip848_values, "no ConsumerGroupMetadata record for the KIP-848 group"
    assert kip848_values[-1]["epoch"] >= 1


def test_transaction_state_records_are_kafkas_transaction_log(broker_factory, topic_name):
    broker = broker_factory.new(extra_args=ARGS)
    confluent_create_topic(broker.bootstrap, topic_name, 1)
    txn_id = f"{topic_name}-tx"
    group = f"{topic_name}-g"
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id,
                         "transaction.timeout.ms": 45000})
    producer.init_transactions(DEADLINE_S)
    meta_source = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    producer.begin_transaction()
    producer.produce(topic_name, value=b"x", partition=0)
    producer.send_offsets_to_transaction([TopicPartition(topic_name, 0, 42)],
                                         meta_source.consumer_group_metadata(), DEADLINE_S)
    producer.commit_transaction(DEADLINE_S)
    meta_source.close()

    partition = kafka_partition_for(txn_id, TXN_PARTITIONS)
    states = []
    for _, key, value in read_raw(broker.bootstrap, "__transaction_state", [partition]):
        if parse_transaction_log_key(key) != txn_id:
            continue
        states.append(parse_transaction_log_value(value))
    # Kafka's TransactionState ids: Empty 0, Ongoing 1, PrepareCommit 2, CompleteCommit 4.
    statuses = [s["status"] for s in states]
    assert statuses[0] == 0 and statuses[-2:] == [2, 4], statuses
    assert all(s["version"] == 1 and s["timeout_ms"] == 45000 for s in states)
    assert len({(s["producer_id"], s["producer_epoch"]) for s in states}) == 1
    assert states[0]["partitions_null"], "Empty is written with null partitions, as Kafka does"
    prepare = states[-2]
    # AddOffsetsToTxn adds the group's __consumer_offsets partition, as
    # Kafka's coordinator does: the commit marker goes there too.
    assert sorted(prepare["partitions"]) == sorted(
        [(topic_name, 0), ("__consumer_offsets", offsets_partition_for(group))])
    assert prepare["start_timestamp"] > 0
    assert prepare["last_update_timestamp"] >= prepare["start_timestamp"]
    # Sluice's own fields ride in tagged fields a Kafka reader skips.
    assert all(tag >= 10_000 for s in states for tag in s["tags"])

    # The transaction's offset reached __consumer_offsets in Kafka's format.
    records = read_raw(broker.bootstrap, "__consumer_offsets", [offsets_partition_for(group)])
    committed = [parse_offset_commit_value(v) for k, v in
                 ((parse_offsets_key(k), v) for _, k, v in records)
                 if k[0] == "offset" and k[1] == {"group": group, "topic": topic_name, "partition": 0}]
    assert [c["offset"] for c in committed] == [42]


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets as OffsetFetch answers them (-1001: none)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=DEADLINE_S)
        assert all(tp.error is None for tp in tps), tps
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def test_a_transactional_id_with_a_negative_hash_lives_where_kafka_puts_it(broker_factory):
    """"my-txn".hashCode() is -1061187895: Kafka's Utils.abs places it in
    partition 45 of 50; masking the sign bit (what Sluice once did) gives 3."""
    txn_id = "my-txn"
    assert java_string_hash(txn_id) == -1061187895
    assert kafka_partition_for(txn_id, TXN_PARTITIONS) == 45
    broker = broker_factory.new(extra_args=ARGS)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id})
    producer.init_transactions(DEADLINE_S)
    placed = {p for p, key, _ in read_raw(broker.bootstrap, "__transaction_state", [3, 45])
              if parse_transaction_log_key(key) == txn_id}
    assert placed == {45}


@pytest.mark.skipif(not os.environ.get("SLUICE_UPGRADE_FROM_BIN"),
                    reason="set SLUICE_UPGRADE_FROM_BIN to a sluice binary that writes the JSON records")
def test_data_dir_with_json_records_upgrades_without_losing_an_offset(broker_factory, topic_name):
    """Offsets, a deleted group's tombstones and a committed transaction
    written by an older broker (JSON records) are all there after the new
    broker starts on the same data directory; its own writes then win."""
    broker = broker_factory.new(extra_args=ARGS, start=False)
    broker.bin = Path(os.environ["SLUICE_UPGRADE_FROM_BIN"])
    broker.start()
    confluent_create_topic(broker.bootstrap, topic_name, 2)
    kept, gone, txn_group = f"{topic_name}-kept", f"{topic_name}-gone", f"{topic_name}-txg"
    for group in (kept, gone):
        c = join(broker.bootstrap, topic_name, group)
        try:
            c.commit(offsets=[TopicPartition(topic_name, 0, 3), TopicPartition(topic_name, 1, 5)],
                     asynchronous=False)
        finally:
            c.close()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.delete_consumer_groups([gone], request_timeout=DEADLINE_S)[gone].result(timeout=DEADLINE_S)
    kip848 = join(broker.bootstrap, topic_name, f"{kept}-848", **{"group.protocol": "consumer"})
    try:
        kip848.commit(offsets=[TopicPartition(topic_name, 0, 7)], asynchronous=False)
    finally:
        kip848.close()
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": f"{topic_name}-tx"})
    producer.init_transactions(DEADLINE_S)
    meta_source = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": txn_group})
    producer.begin_transaction()
    producer.produce(topic_name, value=b"x", partition=0)
    producer.send_offsets_to_transaction([TopicPartition(topic_name, 0, 42)],
                                         meta_source.consumer_group_metadata(), DEADLINE_S)
    producer.commit_transaction(DEADLINE_S)
    meta_source.close()
    before = {g: committed_offsets(broker.bootstrap, g, topic_name, 2)
              for g in (kept, gone, f"{kept}-848", txn_group)}
    assert before[kept] == {0: 3, 1: 5} and before[gone] == {0: -1001, 1: -1001}
    broker.stop()

    broker.bin = sluice_bin()
    broker.start()
    after = {g: committed_offsets(broker.bootstrap, g, topic_name, 2) for g in before}
    assert after == before
    # The same transactional id initialises and commits again.
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": f"{topic_name}-tx"})
    producer.init_transactions(DEADLINE_S)
    producer.begin_transaction()
    producer.produce(topic_name, value=b"y", partition=0)
    producer.commit_transaction(DEADLINE_S)
    # A new commit over an old JSON one wins, also after a restart.
    c = join(broker.bootstrap, topic_name, kept)
    try:
        c.commit(offsets=[TopicPartition(topic_name, 0, 9)], asynchronous=False)
    finally:
        c.close()
    broker.restart()
    assert committed_offsets(broker.bootstrap, kept, topic_name, 2) == {0: 9, 1: 5}
