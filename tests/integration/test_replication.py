"""Partition replication under faults (issue 13), with real clients.

Every scenario runs three nodes, a topic with replication factor 3 and
`min.insync.replicas=2`, idempotent acks=all producers, and checks the
recorded history with the checker in faults.py:
- kill -9 of a partition leader under load, SLUICE_FAULT_KILLS times (20):
  no acknowledged record lost, no duplicates, next ack within 5 s;
- kill -9 of two nodes at once: nothing sent meanwhile is acknowledged
  while one node is up (a raw producer pinned to the survivor gets only
  errors), and everything acknowledged is there after the restart;
- a network partition (network namespaces) isolating the leader: it
  acknowledges nothing, the majority elects a leader and acks resume, and
  after healing the old leader truncates and every replica holds the same log;
- a rolling restart (SIGTERM) of every node under load: only retriable errors;
- one transaction over partitions led by every node, with its offsets sent
  to a group coordinated elsewhere: commit, abort and offsets everywhere;
- a transactional consume-transform-produce pipeline across kill -9 of its
  coordinators: exactly-once output.

The first tests check the checker itself on synthetic histories: each rule
passes a good history and reports the violation in a bad one.

scripts/soak_replication.py runs the same scenarios for longer.
"""

from __future__ import annotations

import os
import struct
import types
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

import faults
from faults import (
    Ack, Cluster, Commit, DiskRecord, PinnedAttempt, Read, check_absent, check_acked_read_back,
    check_commits_monotonic, check_consumers_agree, check_exactly_once, check_history, check_never_acked,
    check_no_aborted, check_no_duplicates, check_no_phantoms, check_replicas_identical,
    coordinator_partition, java_string_hash, latency_summary, parse_segment, produce_all, read_partitions,
)
from util import build_record_batch

# Kills of the leader-kill scenario: 20 in CI, more in a soak.
KILLS = int(os.environ.get("SLUICE_FAULT_KILLS", "20"))
# Per-test bound (read by conftest's deadline fixture) instead of its 240 s, since 20 kill
# and restart rounds of ~5 s each plus set-up need more on a 2-core box.
SCENARIO_TIMEOUT_S = int(os.environ.get("SLUICE_FAULT_TIMEOUT_S", str(max(300, 15 * KILLS + 120))))


def run_scenario(scenario, cluster: Cluster, **kwargs) -> None:
    """Runs a scenario and fails with its violations, or with the harness
    error (a wait that timed out), and the tail of every node's log."""
    try:
        report = scenario(cluster, **kwargs)
    except faults.HarnessError as e:
        raise AssertionError(f"{e}\n{cluster.log_tails()}") from None
    print(report.summary())
    if report.violations:
        raise AssertionError(f"{report.summary()}\n{cluster.log_tails()}")


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "cluster", settings=faults.FAST_FAILOVER)
    print(f"cluster work dir (node logs): {c.workdir}")
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture
def netns_cluster(tmp_path):
    reason = faults.netns_available()
    if reason:
        pytest.skip(f"network namespaces unavailable: {reason}")
    c = Cluster(tmp_path / "cluster", netns=True, settings=faults.FAST_FAILOVER)
    print(f"cluster work dir (node logs): {c.workdir}; namespaces {c.net.ns(1)}..")
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture
def eos_cluster(tmp_path):
    c = Cluster(tmp_path / "cluster", settings={**faults.FAST_FAILOVER, **faults.EOS_SETTINGS})
    print(f"cluster work dir (node logs): {c.workdir}")
    try:
        yield c.start()
    finally:
        c.stop()


# --------------------------------------------------------------------------
# The checker, on synthetic histories
# --------------------------------------------------------------------------


def ack(p: int, o: int, v: bytes) -> Ack:
    return Ack("p0", "t", p, o, v, 1.0, 2.0)


def read(p: int, o: int, v: bytes, who: str = "r1") -> Read:
    return Read(who, "t", p, o, v)


def test_checker_finds_lost_and_overwritten_acknowledged_records():
    acks = [ack(0, 0, b"a"), ack(0, 1, b"b"), ack(1, 0, b"c")]
    assert check_acked_read_back(acks, [read(0, 0, b"a"), read(0, 1, b"b"), read(1, 0, b"c")]) == []
    lost = check_acked_read_back(acks, [read(0, 0, b"a"), read(1, 0, b"c")])
    assert len(lost) == 1 and lost[0].startswith("lost: b'b'"), lost
    # Read back, but at another offset than acknowledged: the ack lied.
    moved = check_acked_read_back(acks, [read(0, 0, b"a"), read(0, 1, b"x"), read(0, 2, b"b"), read(1, 0, b"c")])
    assert len(moved) == 1 and moved[0].startswith("overwritten: b'b'"), moved


def test_checker_reads_back_a_record_acknowledged_without_an_offset_by_value():
    # librdkafka reports an idempotent batch persisted without its offset
    # when a later batch's success proves it; it must still be read back.
    acks = [ack(0, 0, b"a"), Ack("p0", "t", 0, None, b"b", 1.0, 2.0)]
    assert check_acked_read_back(acks, [read(0, 0, b"a"), read(0, 5, b"b")]) == []
    lost = check_acked_read_back(acks, [read(0, 0, b"a"), read(1, 1, b"b")])
    assert len(lost) == 1 and lost[0].startswith("lost: b'b' acked (offset unknown)"), lost


def test_checker_finds_duplicates_and_phantoms():
    good = [read(0, 0, b"a"), read(0, 1, b"b"), read(1, 0, b"c")]
    assert check_no_duplicates(good) == []
    dup = check_no_duplicates(good + [read(1, 1, b"a")])
    assert len(dup) == 1 and "b'a'" in dup[0] and "('t', 1, 1)" in dup[0], dup
    assert check_no_phantoms(good, {b"a", b"b", b"c"}) == []
    ph = check_no_phantoms(good, {b"a", b"b"})
    assert len(ph) == 1 and "b'c'" in ph[0], ph


def test_checker_finds_consumers_that_disagree():
    same = [read(0, 0, b"a", "r1"), read(0, 0, b"a", "r2"), read(0, 1, b"b", "r1")]
    assert check_consumers_agree(same) == []
    differ = check_consumers_agree(same + [read(0, 1, b"z", "r2")])
    assert len(differ) == 1 and "t-0@1" in differ[0], differ


def test_checker_finds_committed_offsets_going_backwards():
    ok = [Commit("g", "t", 0, 5, 1.0), Commit("g", "t", 1, 2, 1.0), Commit("g", "t", 0, 5, 2.0),
          Commit("g", "t", 0, 9, 3.0)]
    assert check_commits_monotonic(ok) == []
    back = check_commits_monotonic(ok + [Commit("g", "t", 0, 7, 4.0)])
    assert back == ["committed offset of g on t-0 went back from 9 to 7"], back
    # Another group's offsets are separate.
    assert check_commits_monotonic(ok + [Commit("h", "t", 0, 1, 4.0)]) == []


def test_checker_finds_aborted_data_and_inexact_output():
    out = [read(0, 0, b"out-1#1"), read(0, 1, b"out-2#1"), read(0, 3, b"out-3#3")]
    assert check_no_aborted(out, {b"out-3#2"}) == []
    assert len(check_no_aborted(out, {b"out-3#3"})) == 1

    def source(v: bytes):
        return v[4:].rsplit(b"#", 1)[0] if v.startswith(b"out-") else None

    assert check_exactly_once([b"1", b"2", b"3"], out, source) == []
    twice = check_exactly_once([b"1", b"2", b"3"], out + [read(0, 4, b"out-3#4")], source)
    assert twice == ["input b'3' is in the output 2 times"], twice
    missing = check_exactly_once([b"1", b"2", b"3", b"4"], out, source)
    assert missing == ["input b'4' is in the output 0 times"], missing
    stray = check_exactly_once([b"1", b"2", b"3"], out + [read(1, 0, b"junk")], source)
    assert len(stray) == 1 and "comes from no input" in stray[0], stray


def test_checker_finds_acks_from_an_isolated_leader_and_untruncated_tails():
    attempts = [PinnedAttempt(b"x0", 1.0, "acked", 3), PinnedAttempt(b"x1", 5.0, "REQUEST_TIMED_OUT"),
                PinnedAttempt(b"x2", 6.0, "no answer")]
    assert check_never_acked(attempts, after=2.0) == []
    assert len(check_never_acked(attempts + [PinnedAttempt(b"x3", 7.0, "acked", 9)], after=2.0)) == 1
    reads = [read(0, 0, b"a"), read(0, 1, b"b")]
    assert check_absent(reads, {b"x1", b"x2"}, "kept") == []
    assert check_absent(reads + [read(0, 2, b"x2")], {b"x1", b"x2"}, "kept") == ["kept: b'x2' at t-0@2"]


def test_checker_finds_replicas_that_differ():
    log = [DiskRecord(0, 0, b"a", False), DiskRecord(1, 0, b"b", False), DiskRecord(2, 1, None, True)]
    assert check_replicas_identical({1: log, 2: list(log), 3: list(log)}, "t-0") == []
    diverged = log[:1] + [DiskRecord(1, 0, b"old-leader", False)]
    bad = check_replicas_identical({1: log, 2: list(log), 3: diverged}, "t-0")
    assert len(bad) == 1 and "node 3 differs" in bad[0] and "#1" in bad[0], bad
    short = check_replicas_identical({1: log, 2: log[:2]}, "t-0")
    assert len(short) == 1 and "lengths 3 vs 2" in short[0], short


def test_checker_combines_the_rules_over_a_history():
    h = faults.History()
    for k, v in enumerate([b"a", b"b", b"c"]):
        h.attempt(v)
        h.ack(ack(0, k, v))
    h.read(read(0, 0, b"a", "group-member"))
    final = [read(0, k, v, who) for who in ("r1", "r2") for k, v in enumerate([b"a", b"b", b"c"])]
    assert check_history(h, final) == []
    # r2 lost the tail: both the lost ack and the disagreement are reported
    # (r1 still has it, so consumers differ only in length: not a disagreement).
    lossy = [r for r in final if not (r.consumer == "r2" and r.offset == 2)]
    v = check_history(h, lossy)
    assert v == ["[r2] lost: b'c' acked at t-0@2 is not read back"], v
    # The live group member saw another value at offset 0 than the final readers.
    h.read(read(0, 0, b"zz", "group-member"))
    v = check_history(h, final)
    assert len(v) == 1 and v[0].startswith("disagree at t-0@0"), v


def test_latency_summary_reports_the_distribution():
    s = latency_summary([1.0, 2.0, 3.0, None, 0.5])
    assert (s["n"], s["never"], s["min"], s["median"], s["max"]) == (4, 1, 0.5, 1.5, 3.0), s
    assert latency_summary([None]) == {"n": 0, "never": 1}


def test_segment_reader_reads_batches_and_stops_at_a_torn_tail():
    b0 = build_record_batch([(None, b"v0", []), (b"k", b"v1", [("h", b"x")])], base_ts_ms=1000, base_offset=0)
    b1 = build_record_batch([(None, b"v2", [])], base_ts_ms=1000, base_offset=2)
    # Set partitionLeaderEpoch of the second batch, as the log does on append.
    b1 = b1[:12] + struct.pack(">i", 4) + b1[16:]
    recs = parse_segment(b0 + b1)
    assert [(r.offset, r.leader_epoch, r.value) for r in recs] == [(0, -1, b"v0"), (1, -1, b"v1"), (2, 4, b"v2")]
    assert [r.offset for r in parse_segment(b0 + b1[:-3])] == [0, 1]


def test_a_duplicate_is_explained_from_each_nodes_disk_and_log(tmp_path):
    def idempotent(batch: bytes, producer_id: int, epoch: int, seq: int) -> bytes:
        return batch[:43] + struct.pack(">qhi", producer_id, epoch, seq) + batch[57:]

    first = idempotent(build_record_batch([(None, b"p0:7", [])], base_ts_ms=1000, base_offset=5), 42, 0, 7)
    again = idempotent(build_record_batch([(None, b"p0:7", [])], base_ts_ms=1000, base_offset=9), 42, 1, 0)
    nodes = {}
    for node_id in (1, 2):
        data_dir = tmp_path / f"n{node_id}"
        (data_dir / "t-0").mkdir(parents=True)
        log_path = tmp_path / f"n{node_id}.log"
        log_path.write_text("INFO starting\n")
        nodes[node_id] = types.SimpleNamespace(data_dir=data_dir, log_path=log_path)
    (nodes[1].data_dir / "t-0" / "00000000000000000000.log").write_bytes(first + again)
    nodes[2].log_path.write_text("INFO batch refused: producer 42: expected sequence 8, got 3\n")
    cluster = types.SimpleNamespace(nodes=nodes)
    reads = [read(0, 5, b"p0:7"), read(0, 9, b"p0:7"), read(0, 6, b"p1:1")]

    lines = faults.explain_duplicates(cluster, reads)
    assert lines == [
        "duplicate b'p0:7' on node 1: @5 leader_epoch=-1 producer=42/epoch 0 seq=7, "
        "@9 leader_epoch=-1 producer=42/epoch 1 seq=0",
        "duplicate b'p0:7' on node 2: absent",
        "node 2 log: INFO batch refused: producer 42: expected sequence 8, got 3",
    ], lines
    assert faults.explain_duplicates(cluster, reads[:1]) == [], "nothing to explain without a duplicate"


def test_coordinator_partition_is_kafkas():
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -(1 << 31)
    assert coordinator_partition("polygenelubricants", 50) == 0  # Utils.abs(MIN_VALUE) is 0
    assert coordinator_partition("hello", 50) == 99162322 % 50


# --------------------------------------------------------------------------
# Scenarios against a real cluster
# --------------------------------------------------------------------------


def test_killing_the_leader_repeatedly_loses_no_acknowledged_record(cluster):
    run_scenario(faults.run_kill_leader, cluster, kills=KILLS)


def test_two_nodes_down_acknowledge_nothing_and_lose_nothing(cluster):
    run_scenario(faults.run_kill_two, cluster)


@pytest.mark.parametrize("controller_too", [False, True], ids=["leader", "leader-and-controller"])
def test_an_isolated_leader_acknowledges_nothing_and_truncates_after_healing(netns_cluster, controller_too):
    run_scenario(faults.run_isolate_leader, netns_cluster, controller_too=controller_too)


def test_a_rolling_restart_under_load_gives_clients_only_retriable_errors(cluster):
    run_scenario(faults.run_rolling_restart, cluster)


def test_a_follower_behind_the_leaders_log_start_starts_over_there(cluster):
    """A follower that was down while the leader deleted (DeleteRecords)
    everything past the follower's log end cannot fetch from where it is
    (OFFSET_OUT_OF_RANGE): it empties its replica, restarts it at the
    leader's log start, catches up and rejoins the ISR, holding exactly the
    leader's records."""
    tag = uuid.uuid4().hex[:8]
    topic = f"behind-{tag}"
    cluster.create_topic(topic, 1, 3, faults.TOPIC_CONFIGS)
    cluster.wait_isr(topic)
    produce_all(cluster.bootstrap(), topic, [f"early-{k}".encode() for k in range(5)], 1)
    leader = cluster.leader_of(topic, 0)
    follower = next(i for i in cluster.nodes if i != leader)
    cluster.kill9(follower)
    alive = [n.node_id for n in cluster.alive()]
    produce_all(cluster.bootstrap(alive), topic, [f"old-{k}".encode() for k in range(45)], 1)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(alive), "socket.timeout.ms": 10000})
    deleted = admin.delete_records([TopicPartition(topic, 0, 50)], request_timeout=30)
    assert next(iter(deleted.values())).result(timeout=30).low_watermark == 50
    produce_all(cluster.bootstrap(alive), topic, [f"new-{k}".encode() for k in range(10)], 1)

    cluster.restart(follower)
    cluster.wait_isr(topic)
    ends = cluster.wait_replicas_agree(topic)
    assert ends == {0: 60}
    records = [r for r in cluster.replica_log(follower, topic, 0) if not r.control]
    assert [(r.offset, r.value) for r in records] == [(50 + k, f"new-{k}".encode()) for k in range(10)], \
        f"the restarted follower holds {[(r.offset, r.value) for r in records][:12]}"


def test_a_transaction_spans_partitions_led_by_every_node(eos_cluster):
    """One transactional producer writes to partitions led by all three
    nodes and commits its consumer offsets to a group whose coordinator may
    be a fourth party: a commit reaches every partition (read_committed
    reads it all, so every partition's last stable offset moved past its
    marker), an abort reaches every partition (none of it is read), and the
    group's offsets appear only when their transaction commits."""
    cluster = eos_cluster
    tag = uuid.uuid4().hex[:8]
    topic, group, txn_id = f"span-{tag}", f"span-group-{tag}", f"span-txn-{tag}"
    partitions = 6
    cluster.create_topic(topic, partitions, 3, faults.TOPIC_CONFIGS)
    cluster.create_topic(f"{topic}-src", 1, 3, faults.TOPIC_CONFIGS)
    cluster.wait_isr(topic)
    leaders = cluster.leaders(topic)
    assert len(set(leaders.values())) == 3, f"placement should spread leaders over the nodes: {leaders}"

    bootstrap = cluster.bootstrap()
    producer = Producer(faults.producer_conf(bootstrap, **{"transactional.id": txn_id, "message.timeout.ms": 30000}))
    producer.init_transactions(30)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "socket.timeout.ms": 10000})
    try:
        def transaction(label: str, commit: bool, offset: int | None = None) -> None:
            producer.begin_transaction()
            for p in range(partitions):
                producer.produce(topic, value=f"{label}-{p}".encode(), partition=p)
            if offset is not None:
                producer.send_offsets_to_transaction(
                    [TopicPartition(f"{topic}-src", 0, offset)], consumer.consumer_group_metadata(), 30)
            if commit:
                producer.commit_transaction(30)
            else:
                # Sent first: an abort purges what is still queued, and the
                # aborted records must reach every partition's log.
                assert producer.flush(30) == 0
                producer.abort_transaction(30)

        transaction("committed", True)
        transaction("aborted", False, offset=7)
        committed = consumer.committed([TopicPartition(f"{topic}-src", 0)], timeout=10)
        assert committed[0].offset < 0, f"an aborted transaction's offset was committed: {committed}"
        transaction("also-committed", True, offset=11)
        committed = consumer.committed([TopicPartition(f"{topic}-src", 0)], timeout=10)
        assert committed[0].offset == 11, f"the committed transaction's offset is missing: {committed}"
    finally:
        consumer.close()
        producer.flush(10)

    coordinator = cluster.leader_of("__transaction_state", coordinator_partition(txn_id, 50))
    print(f"transaction coordinator: node {coordinator}; partition leaders: {leaders}; group "
          f"coordinator: node {cluster.leader_of('__consumer_offsets', coordinator_partition(group, 3))}")
    assert any(leader != coordinator for leader in leaders.values())

    read = read_partitions(bootstrap, topic, partitions, name="rc", isolation="read_committed")
    values = sorted(r.value for r in read)
    expected = sorted(f"{label}-{p}".encode() for label in ("committed", "also-committed")
                      for p in range(partitions))
    assert values == expected, f"read_committed saw {values}"
    everything = read_partitions(bootstrap, topic, partitions, name="ru")
    assert len(everything) == 3 * partitions, "the aborted records are in the log, marked aborted"


def test_a_transactional_pipeline_is_exactly_once_across_coordinator_failover(eos_cluster):
    run_scenario(faults.run_eos_coordinator_failover, eos_cluster)
