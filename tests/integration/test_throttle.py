"""Replication throttles (Kafka's replication quotas, KIP-73) with real
processes: a replica catching up 30 MiB is held to the throttled rate, set
the way `kafka-reassign-partitions --throttle` sets it (topic configs
`leader/follower.replication.throttled.replicas`, dynamic broker configs
`leader/follower.replication.throttled.rate` through
IncrementalAlterConfigs on BROKER resources), and completes once the
throttle is removed.

The replica to catch up is made the simplest honest way: a topic with
replicas [1, 2] whose node 2 is stopped while node 1 takes the data, then
started again. (Three nodes: the metadata quorum keeps a majority while
node 2 is down.) Timing is asserted as a lower bound only."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)

import faults
from faults import Cluster, HarnessError, wait_for

TOPIC = "throttled"
RECORD_BYTES = 1024
RECORDS = 30 * 1024  # 30 MiB of values
RATE = 1024 * 1024  # bytes/s, both directions
# Kafka's quota measures over at least 10 s of an 11 s window, so after a
# quiet spell up to a whole window's worth may pass at full speed.
BURST_BYTES = 11 * RATE
# A fetch checked while within the quota may carry up to one partition's
# worth past it (replica.fetch_max_bytes, 1 MiB by default).
OVERSHOOT_BYTES = 1024 * 1024
# Time allowed for anything not throttled (admin changes, the produce).
STEP_TIMEOUT_S = 60.0
# The throttled catch-up of ~30 MiB at 1 MiB/s takes ~20 s; ample bound.
CATCH_UP_TIMEOUT_S = 120.0


@pytest.fixture
def cluster(tmp_path):
    # No balancer: node 2's replica must stay where it is while it is down.
    c = Cluster(tmp_path / "cluster", size=3, settings={"balancer.enabled": "false"})
    print(f"cluster work dir (node logs): {c.workdir}")
    try:
        yield c.start()
    finally:
        c.stop()


def _admin(cluster: Cluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": cluster.bootstrap([n.node_id for n in cluster.alive()]),
                        "socket.timeout.ms": 10000})


def _incremental(admin: AdminClient, resources: list[ConfigResource]) -> None:
    # One call per resource: librdkafka sends a BROKER resource to that
    # broker and allows one per call.
    for resource in resources:
        for fut in admin.incremental_alter_configs([resource], request_timeout=15).values():
            fut.result(timeout=STEP_TIMEOUT_S)


def _rate(broker: int, name: str, op: AlterConfigOpType) -> ConfigResource:
    value = str(RATE) if op == AlterConfigOpType.SET else None
    return ConfigResource(ResourceType.BROKER, str(broker), incremental_configs=[
        ConfigEntry(name, value, incremental_operation=op)])


def _described(admin: AdminClient, broker: int, name: str) -> ConfigEntry:
    res = ConfigResource(ResourceType.BROKER, str(broker))
    configs = admin.describe_configs([res], request_timeout=15)[res].result(timeout=STEP_TIMEOUT_S)
    return configs[name]


def _fill(bootstrap: str, topic: str) -> None:
    """Writes RECORDS values of RECORD_BYTES to partition 0 of `topic`."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1",
                         "linger.ms": 20, "batch.size": 1_000_000})
    value = b"x" * RECORD_BYTES
    for _ in range(RECORDS):
        while True:
            try:
                producer.produce(topic, value=value, partition=0)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(STEP_TIMEOUT_S)
    assert left == 0, f"{left} records not delivered"


def _replica_end(cluster: Cluster, node: int, topic: str = TOPIC) -> int:
    """Node's own replica's log end offset of partition 0 (-1: not known)."""
    d = cluster.nodes[node].describe(topic)
    if not d:
        return -1
    return next((p["log_end_offset"] for p in d["partitions"] if p["partition"] == 0), -1)


def _isr(cluster: Cluster) -> list[int]:
    try:
        return cluster.partition(TOPIC, 0, via=[1])["isr"]
    except HarnessError:
        return []


def test_a_throttled_replica_catches_up_at_the_rate_then_completes_unthrottled(cluster):
    try:
        _scenario(cluster)
    except HarnessError as e:
        raise AssertionError(f"{e}\n{cluster.log_tails()}") from None


def _scenario(cluster: Cluster) -> None:
    cluster.create_topic(TOPIC, 1, 2, {"min.insync.replicas": "1"}, assignment=[[1, 2]])
    cluster.wait_isr(TOPIC, size=2)
    admin = _admin(cluster)

    # The throttle, as kafka-reassign-partitions --throttle sets it: the
    # leader-side replica (0:1) and the follower being filled (0:2), and
    # each broker's rate.
    _incremental(admin, [
        ConfigResource(ResourceType.TOPIC, TOPIC, incremental_configs=[
            ConfigEntry("leader.replication.throttled.replicas", "0:1",
                        incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("follower.replication.throttled.replicas", "0:2",
                        incremental_operation=AlterConfigOpType.SET)]),
        _rate(1, "leader.replication.throttled.rate", AlterConfigOpType.SET),
        _rate(2, "follower.replication.throttled.rate", AlterConfigOpType.SET),
    ])
    for broker, name in [(1, "leader.replication.throttled.rate"), (2, "follower.replication.throttled.rate")]:
        entry = _described(admin, broker, name)
        assert entry.value == str(RATE), (broker, name, entry)
        assert ConfigSource(entry.source) == ConfigSource.DYNAMIC_BROKER_CONFIG, (broker, name, entry)
    unset = _described(admin, 1, "follower.replication.throttled.rate")
    assert unset.value == str(2**63 - 1) and unset.is_default, unset

    # Node 2 goes away; node 1 takes 30 MiB alone.
    code = cluster.terminate(2)
    assert code == 0, f"node 2 exited {code}"
    wait_for(lambda: _isr(cluster) == [1], STEP_TIMEOUT_S, "node 2 to leave the ISR")
    _fill(cluster.bootstrap([1, 3]), TOPIC)
    leader_end = _replica_end(cluster, 1)
    assert leader_end >= RECORDS, leader_end

    # Node 2 comes back and catches up under the throttle. Its progress is
    # timed from the first offset it is seen to hold to three quarters of
    # the leader's end.
    cluster.restart(2)
    start_end = wait_for(lambda: (e := _replica_end(cluster, 2)) > 0 and e, STEP_TIMEOUT_S,
                         "node 2 to start copying")
    started = time.monotonic()
    target = leader_end * 3 // 4
    reached = wait_for(lambda: (e := _replica_end(cluster, 2)) >= target and e, CATCH_UP_TIMEOUT_S,
                       "node 2 to copy three quarters of the partition")
    elapsed = time.monotonic() - started
    moved_bytes = (reached - start_end) * RECORD_BYTES
    # A lower bound only. The copy began just before `started` (replication
    # and the HTTP API start together, when the node is unfenced), so what
    # it already held is in the quota's window: of the burst only the rest
    # was left. What moved since, less that and one fetch's overshoot, went
    # at the rate at most; halved for slack.
    burst_left = max(0, BURST_BYTES - start_end * RECORD_BYTES)
    lower_bound_s = 0.5 * (moved_bytes - burst_left - OVERSHOOT_BYTES) / RATE
    print(f"copied {moved_bytes / 2**20:.1f} MiB in {elapsed:.1f}s (throttled at {RATE / 2**20:.0f} MiB/s; "
          f"lower bound {lower_bound_s:.1f}s)")
    assert lower_bound_s > 2, "the scenario moves too little to show a throttle"
    assert elapsed >= lower_bound_s, f"{moved_bytes} bytes in {elapsed:.1f}s: not throttled"
    assert 2 not in _isr(cluster), "not caught up yet, so not in the ISR"

    # Without the throttle it completes and joins the ISR.
    _incremental(admin, [
        _rate(1, "leader.replication.throttled.rate", AlterConfigOpType.DELETE),
        _rate(2, "follower.replication.throttled.rate", AlterConfigOpType.DELETE),
    ])
    assert _described(admin, 1, "leader.replication.throttled.rate").is_default
    wait_for(lambda: 2 in _isr(cluster), CATCH_UP_TIMEOUT_S, "node 2 to join the ISR")
    assert _replica_end(cluster, 2) >= leader_end


MOVED_TOPIC = "moved"


def test_a_reassignments_new_replica_is_throttled_without_throttled_replica_lists(cluster):
    """Sluice's addition to KIP-73: a replica a reassignment adds counts as
    throttled on both sides without the topic's throttled-replica lists, so
    setting the brokers' rates is enough to pace a move (the balancer's
    too). The move is Kafka's AlterPartitionReassignments, from
    kafka-python's admin client; it is listed while in flight, the balance
    status reports what it still has to copy, and it completes once the
    rates are removed."""
    try:
        _moved(cluster)
    except HarnessError as e:
        raise AssertionError(f"{e}\n{cluster.log_tails()}") from None


def _moved(cluster: Cluster) -> None:
    from kafka.admin import KafkaAdminClient
    from kafka.structs import TopicPartition as KafkaTopicPartition

    cluster.create_topic(MOVED_TOPIC, 1, 1, {"min.insync.replicas": "1"}, assignment=[[1]])
    cluster.wait_isr(MOVED_TOPIC, size=1)
    admin = _admin(cluster)
    _fill(cluster.bootstrap(), MOVED_TOPIC)
    _incremental(admin, [_rate(1, "leader.replication.throttled.rate", AlterConfigOpType.SET),
                         _rate(2, "follower.replication.throttled.rate", AlterConfigOpType.SET)])

    def end_on(node: int) -> int:
        return _replica_end(cluster, node, MOVED_TOPIC)

    leader_end = end_on(1)
    assert leader_end >= RECORDS, leader_end
    tp = KafkaTopicPartition(MOVED_TOPIC, 0)
    kadmin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(), request_timeout_ms=30_000)
    try:
        assert kadmin.alter_partition_reassignments({tp: [1, 2]}) == {tp: None}
        # Listed from the answering node's metadata, which may trail the
        # node that took the change by a moment.
        expected = {tp: {"replicas": [1, 2], "adding_replicas": [2], "removing_replicas": []}}
        wait_for(lambda: kadmin.list_partition_reassignments({MOVED_TOPIC: [0]}) == expected,
                 STEP_TIMEOUT_S, "the move to be listed", 0.2)
    finally:
        kadmin.close()
    start_end = wait_for(lambda: (e := end_on(2)) > 0 and e, STEP_TIMEOUT_S, "node 2 to start copying")
    started = time.monotonic()
    target = leader_end * 3 // 4

    # Meanwhile the balance status reports what is left to copy.
    def reported():
        st = cluster.balance()
        moves = [m for m in (st or {}).get("moves", []) if m["topic"] == MOVED_TOPIC]
        return moves and moves[0]["bytes_left"] and moves[0]
    move = wait_for(reported, STEP_TIMEOUT_S, "the balance status to report the move's bytes left", 0.2)
    assert 0 < move["bytes_left"] <= move["bytes_total"], move

    reached = wait_for(lambda: (e := end_on(2)) >= target and e, CATCH_UP_TIMEOUT_S,
                       "node 2 to copy three quarters of the partition")
    elapsed = time.monotonic() - started
    moved_bytes = (reached - start_end) * RECORD_BYTES
    # The same lower bound as above: what moved, less the unused burst and
    # one fetch's overshoot, at the rate at most; halved for slack.
    burst_left = max(0, BURST_BYTES - start_end * RECORD_BYTES)
    lower_bound_s = 0.5 * (moved_bytes - burst_left - OVERSHOOT_BYTES) / RATE
    print(f"reassignment copied {moved_bytes / 2**20:.1f} MiB in {elapsed:.1f}s (lower bound {lower_bound_s:.1f}s)")
    assert lower_bound_s > 2, "the scenario moves too little to show a throttle"
    assert elapsed >= lower_bound_s, f"{moved_bytes} bytes in {elapsed:.1f}s: the move was not throttled"

    _incremental(admin, [_rate(1, "leader.replication.throttled.rate", AlterConfigOpType.DELETE),
                         _rate(2, "follower.replication.throttled.rate", AlterConfigOpType.DELETE)])
    wait_for(lambda: cluster.partition(MOVED_TOPIC, 0, via=[1])["replicas"] == [1, 2]
             and not (cluster.balance() or {}).get("moves"),
             CATCH_UP_TIMEOUT_S, "the move to complete")
    assert end_on(2) >= leader_end
