"""Consumer groups and committed offsets (issue 4), driven by real clients.

Members run as separate processes (group_worker.py) so one can be SIGKILLed
like a crashed consumer. Ownership is checked from the members' own
assignment callbacks: a partition may pass to a new owner only after its
previous owner revoked it or died.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from util import connect, frame, i16, i32, i64, kstring, recv_response_or_close, request_header_v1, wait_until

HERE = Path(__file__).parent
PARTITIONS = 6
RECORDS = 30_000
SESSION_MS = 6_000  # Kafka's minimum session timeout, to keep the suite fast
# Detecting a dead member takes the session timeout; the rebalance after it
# completes as soon as the survivors rejoin (one heartbeat interval, 0.5 s).
TAKEOVER_MARGIN_S = 5.0

GROUP_ARGS = [
    "--set", "groups.group_initial_rebalance_delay_ms=200",
    "--set", "groups.offsets_topic_num_partitions=8",
    "--set", f"groups.consumer_session_timeout_ms={SESSION_MS}",
    "--set", "groups.consumer_heartbeat_interval_ms=500",
]


class Worker:
    """One group_worker.py process and the events it reported."""

    def __init__(self, client: str, bootstrap: str, topic: str, group: str, *, instance: str | None = None,
                 session_ms: int = SESSION_MS, name: str = "w"):
        self.name = name
        cmd = [sys.executable, str(HERE / "group_worker.py"), client, bootstrap, topic, group,
               "--session-ms", str(session_ms)]
        if instance:
            cmd += ["--instance", instance]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events: list[dict] = []
        self.lock = threading.Lock()
        self.killed_at: float | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append(ev)

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.events)

    def owned(self) -> set[int]:
        owned: set[int] = set()
        for ev in self.snapshot():
            if ev["ev"] == "assign":
                owned |= set(ev["parts"])
            elif ev["ev"] == "revoke":
                owned -= set(ev["parts"])
        return owned

    def consumed(self) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for ev in self.snapshot():
            if ev["ev"] == "recs":
                for p, offs in ev["parts"].items():
                    out.setdefault(int(p), set()).update(offs)
        return out

    def has(self, kind: str) -> bool:
        return any(ev["ev"] == kind for ev in self.snapshot())

    def kill(self) -> None:
        self.killed_at = time.time()
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError(f"{self.name} did not stop within 30s of SIGTERM")
        self.reader.join(timeout=10)


@pytest.fixture
def workers():
    started: list[Worker] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(timeout=10)


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)


def produce(bootstrap: str, topic: str, count: int, start: int = 0) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        p.produce(topic, value=str(i).encode(), partition=i % PARTITIONS)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0, "producer could not deliver everything"


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def ownership_intervals(ws: list[Worker], end: float) -> dict[int, list[tuple[float, float, str]]]:
    """Per partition, (start, end, worker) ownership intervals from callbacks.
    A killed worker owns its partitions until the moment it was killed."""
    out: dict[int, list[tuple[float, float, str]]] = {}
    for w in ws:
        since: dict[int, float] = {}
        for ev in w.snapshot():
            if ev["ev"] == "assign":
                for p in ev["parts"]:
                    since.setdefault(p, ev["t"])
            elif ev["ev"] == "revoke":
                for p in ev["parts"]:
                    if p in since:
                        out.setdefault(p, []).append((since.pop(p), ev["t"], w.name))
        stop = w.killed_at or end
        for p, t in since.items():
            out.setdefault(p, []).append((t, stop, w.name))
    return out


def assert_single_owner(ws: list[Worker]) -> None:
    for p, intervals in ownership_intervals(ws, time.time()).items():
        intervals.sort()
        for (s1, e1, w1), (s2, e2, w2) in zip(intervals, intervals[1:]):
            assert w1 == w2 or s2 >= e1, (
                f"partition {p} owned by {w1} [{s1:.3f}, {e1:.3f}] and {w2} [{s2:.3f}, {e2:.3f}] at once"
            )


@pytest.mark.parametrize("client", ["classic", "consumer", "kafka-python"])
def test_group_shares_partitions_and_survives_a_killed_member(broker_factory, workers, topic_name, client):
    broker = broker_factory.new(extra_args=GROUP_ARGS)
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    group = f"g-{client}-{topic_name}"
    for i in range(3):
        workers.append(Worker(client, broker.bootstrap, topic_name, group, name=f"w{i}"))
    producer = threading.Thread(target=produce, args=(broker.bootstrap, topic_name, RECORDS))
    producer.start()

    wait_until(lambda: sum(len(w.owned()) for w in workers) == PARTITIONS
               and all(w.owned() for w in workers), 60, "3 members to share the 6 partitions")
    victim = workers[0]
    lost = victim.owned()
    victim.kill()
    survivors = workers[1:]
    wait_until(lambda: lost <= survivors[0].owned() | survivors[1].owned(), SESSION_MS / 1000 + 30,
               f"survivors to take over {sorted(lost)}")
    takeover_at = max(
        ev["t"] for w in survivors for ev in w.snapshot() if ev["ev"] == "assign" and set(ev["parts"]) & lost
    )
    took = takeover_at - victim.killed_at
    assert took <= SESSION_MS / 1000 + TAKEOVER_MARGIN_S, f"takeover took {took:.1f}s"
    producer.join(timeout=120)
    assert not producer.is_alive()

    def everything_consumed() -> bool:
        seen: dict[int, set[int]] = {}
        for w in workers:
            for p, offs in w.consumed().items():
                seen.setdefault(p, set()).update(offs)
        return all(len(seen.get(p, ())) == RECORDS // PARTITIONS for p in range(PARTITIONS))

    wait_until(everything_consumed, 120, "every record to be consumed at least once")
    for w in survivors:
        w.stop()
    assert_single_owner(workers)
    assert committed(broker.bootstrap, group, topic_name) == {p: RECORDS // PARTITIONS for p in range(PARTITIONS)}


def test_committed_offsets_survive_a_broker_restart(broker_factory, workers, topic_name):
    broker = broker_factory.new(extra_args=GROUP_ARGS)
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    group = f"g-restart-{topic_name}"
    produce(broker.bootstrap, topic_name, 600)
    first = Worker("classic", broker.bootstrap, topic_name, group, name="first")
    workers.append(first)
    wait_until(lambda: sum(len(o) for o in first.consumed().values()) == 600, 60, "first 600 records")
    first.stop()
    assert committed(broker.bootstrap, group, topic_name) == {p: 100 for p in range(PARTITIONS)}

    broker.restart()
    assert committed(broker.bootstrap, group, topic_name) == {p: 100 for p in range(PARTITIONS)}
    produce(broker.bootstrap, topic_name, 300, start=600)
    second = Worker("classic", broker.bootstrap, topic_name, group, name="second")
    workers.append(second)
    wait_until(lambda: sum(len(o) for o in second.consumed().values()) >= 300, 60, "the 300 new records")
    second.stop()
    consumed = second.consumed()
    assert all(min(offs) >= 100 for offs in consumed.values()), "records before the committed offset came again"
    assert {p: sorted(offs) for p, offs in consumed.items()} == {p: list(range(100, 150)) for p in range(PARTITIONS)}


def test_static_member_restart_gets_its_partitions_back_without_rebalance(broker_factory, workers, topic_name):
    broker = broker_factory.new(extra_args=GROUP_ARGS)
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    group = f"g-static-{topic_name}"
    session_ms = 20_000  # long enough to restart a process within it
    a = Worker("classic", broker.bootstrap, topic_name, group, instance="a", session_ms=session_ms, name="a")
    b = Worker("classic", broker.bootstrap, topic_name, group, instance="b", session_ms=session_ms, name="b")
    workers.extend([a, b])
    wait_until(lambda: len(a.owned()) + len(b.owned()) == PARTITIONS and a.owned() and b.owned(), 60,
               "both static members to be assigned")
    a_parts = a.owned()
    b_events = len(b.snapshot())
    a.kill()
    a2 = Worker("classic", broker.bootstrap, topic_name, group, instance="a", session_ms=session_ms, name="a2")
    workers.append(a2)
    wait_until(lambda: a2.owned(), session_ms / 1000, "the restarted static member's assignment")
    assert a2.owned() == a_parts
    # It consumes, so the group is stable; the other member never rebalanced.
    produce(broker.bootstrap, topic_name, 60)
    wait_until(lambda: a2.consumed() and b.consumed(), 30, "both members to consume")
    assert [ev for ev in b.snapshot() if ev["ev"] in ("assign", "revoke")] == \
        [ev for ev in b.snapshot()[:b_events] if ev["ev"] in ("assign", "revoke")]
    assert len([ev for ev in b.snapshot() if ev["ev"] == "assign"]) == 1


def test_kip848_static_member_restart_gets_its_partitions_back_without_rebalance(broker_factory, workers,
                                                                                  topic_name):
    # The KIP-848 session is the broker's; long enough to restart a process.
    session_ms = 20_000
    broker = broker_factory.new(extra_args=GROUP_ARGS + ["--set", f"groups.consumer_session_timeout_ms={session_ms}"])
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    group = f"g-static848-{topic_name}"
    a = Worker("consumer", broker.bootstrap, topic_name, group, instance="a", name="a")
    b = Worker("consumer", broker.bootstrap, topic_name, group, instance="b", name="b")
    workers.extend([a, b])
    wait_until(lambda: a.owned() and b.owned() and len(a.owned()) + len(b.owned()) == PARTITIONS
               and not (a.owned() & b.owned()), 60, "both static members to be assigned")
    a_parts = a.owned()
    b_events = len(b.snapshot())
    # A clean close of a static member is a temporary leave (epoch -2).
    a.stop()
    assert a.has("closed")
    # Stay away for several of b's heartbeats (0.5 s apart): were the leave
    # a full one, b would be handed a's partitions in this time. Nothing
    # observable happens when the broker does the right thing, so this is a
    # fixed pause by design, not a wait for readiness.
    time.sleep(3.0)
    a2 = Worker("consumer", broker.bootstrap, topic_name, group, instance="a", name="a2")
    workers.append(a2)
    wait_until(lambda: a2.owned(), session_ms / 1000, "the restarted static member's assignment")
    assert a2.owned() == a_parts
    produce(broker.bootstrap, topic_name, 60)
    wait_until(lambda: a2.consumed() and b.consumed(), 30, "both members to consume")
    assert set(a2.consumed()) <= a_parts and not (set(b.consumed()) & a_parts)
    # b's ownership never changed: no revoke, no new assignment.
    assert [ev for ev in b.snapshot() if ev["ev"] in ("assign", "revoke")] == \
        [ev for ev in b.snapshot()[:b_events] if ev["ev"] in ("assign", "revoke")]


# ---- offset retention ---------------------------------------------------------

RETENTION_MS = 4_000
RETENTION_CHECK_MS = 200
OFFSET_INVALID = -1001  # librdkafka's "no committed offset"


def list_group_ids(bootstrap: str) -> set[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    result = admin.list_consumer_groups().result(timeout=30)
    return {g.group_id for g in result.valid}


def test_offsets_of_an_empty_group_expire_and_stay_expired_after_a_crash(broker_factory, workers, topic_name):
    retention_args = ["--set", f"groups.offsets_retention_ms={RETENTION_MS}"]
    broker = broker_factory.new(extra_args=GROUP_ARGS + retention_args + [
        "--set", f"groups.offsets_retention_check_interval_ms={RETENTION_CHECK_MS}"])
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    produce(broker.bootstrap, topic_name, 60)
    idle, active = f"g-idle-{topic_name}", f"g-active-{topic_name}"

    # The active group: a member that stays; once it has consumed everything
    # it commits nothing new, so its commits age past the retention.
    member = Worker("classic", broker.bootstrap, topic_name, active, name="active")
    workers.append(member)

    # The idle group: consume, commit, leave. Its offsets are there while the
    # member is in the group.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": idle, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": SESSION_MS})
    c.subscribe([topic_name])
    seen = 0
    deadline = time.time() + 60
    while seen < 60 and time.time() < deadline:
        seen += sum(1 for m in c.consume(100, 0.5) if not m.error())
    assert seen == 60, f"idle group consumed {seen} of 60 records"
    c.commit(asynchronous=False)
    assert committed(broker.bootstrap, idle, topic_name) == {p: 10 for p in range(PARTITIONS)}
    assert idle in list_group_ids(broker.bootstrap)
    left_at = time.time()
    c.close()  # LeaveGroup: the group is empty from here on

    wait_until(lambda: sum(len(o) for o in member.consumed().values()) == 60, 60, "the active member's 60 records")
    wait_until(lambda: committed(broker.bootstrap, active, topic_name) == {p: 10 for p in range(PARTITIONS)}, 30,
               "the active member's commits")
    active_done_at = time.time()

    # Expiry: the offsets go, then the empty group itself.
    wait_until(lambda: committed(broker.bootstrap, idle, topic_name) == {p: OFFSET_INVALID for p in range(PARTITIONS)},
               RETENTION_MS / 1000 + 20, "the idle group's offsets to expire")
    expired_at = time.time()
    assert expired_at - left_at >= RETENTION_MS / 1000, \
        f"offsets expired {expired_at - left_at:.2f}s after the group became empty, before the retention"
    wait_until(lambda: idle not in list_group_ids(broker.bootstrap), 20, "the expired group to leave ListGroups")

    # A group with a live member keeps offsets older than the retention. No
    # event marks "did not expire", so wait until its commits are a retention
    # plus a few checks old, then look.
    still = active_done_at + (RETENTION_MS + 5 * RETENTION_CHECK_MS) / 1000 - time.time()
    if still > 0:
        time.sleep(still)
    assert member.proc.poll() is None, "the active member died"
    assert committed(broker.bootstrap, active, topic_name) == {p: 10 for p in range(PARTITIONS)}
    assert active in list_group_ids(broker.bootstrap)

    # Crash and restart with the expiration task far away: only the
    # tombstones written at expiry can keep the idle group's offsets gone.
    member.kill()
    broker.kill9()
    broker.extra_args = GROUP_ARGS + retention_args + ["--set", "groups.offsets_retention_check_interval_ms=600000"]
    broker.start()
    assert committed(broker.bootstrap, idle, topic_name) == {p: OFFSET_INVALID for p in range(PARTITIONS)}
    assert idle not in list_group_ids(broker.bootstrap)
    assert committed(broker.bootstrap, active, topic_name) == {p: 10 for p in range(PARTITIONS)}


# ---- hostile input: raw requests --------------------------------------------

_correlation = iter(range(1, 1 << 30))


def call(port: int, api_key: int, version: int, body: bytes) -> bytes:
    """Sends one non-flexible request and returns the response body."""
    corr = next(_correlation)
    with connect(port) as s:
        s.sendall(frame(request_header_v1(api_key, version, corr) + body))
        resp = recv_response_or_close(s)
    assert resp is not None, "broker closed the connection"
    assert struct.unpack(">i", resp[:4])[0] == corr
    return resp[4:]


def offset_commit_v2(group: str, generation: int, member: str, topic: str, offset: int, metadata: str) -> bytes:
    return (kstring(group) + i32(generation) + kstring(member) + i64(-1)
            + i32(1) + kstring(topic) + i32(1) + i32(0) + i64(offset) + kstring(metadata))


def commit_error(resp: bytes) -> int:
    # topics[1]: name, partitions[1]: partition_index, error_code
    (name_len,) = struct.unpack(">h", resp[4:6])
    at = 6 + name_len + 4 + 4
    return struct.unpack(">h", resp[at:at + 2])[0]


def test_hostile_group_requests_get_kafka_errors_and_change_nothing(broker_factory, workers, topic_name):
    broker = broker_factory.new(extra_args=GROUP_ARGS)
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    group = f"g-hostile-{topic_name}"
    produce(broker.bootstrap, topic_name, 60)
    w = Worker("classic", broker.bootstrap, topic_name, group, name="member")
    workers.append(w)
    wait_until(lambda: sum(len(o) for o in w.consumed().values()) == 60, 60, "the member to consume")
    wait_until(lambda: committed(broker.bootstrap, group, topic_name)[0] == 10, 30, "auto-commit")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    def describe():
        d = admin.describe_consumer_groups([group])[group].result(timeout=30)
        return str(d.state), sorted(m.member_id for m in d.members)

    before = describe()
    assert before[0].endswith("STABLE") and len(before[1]) == 1, before
    member_id = before[1][0]
    port = broker.kafka_port

    # OffsetCommit (8) v2 from the real member with a generation that does not exist.
    resp = call(port, 8, 2, offset_commit_v2(group, 9999, member_id, topic_name, 0, ""))
    assert commit_error(resp) == 22  # ILLEGAL_GENERATION
    # From a member that does not exist.
    resp = call(port, 8, 2, offset_commit_v2(group, 1, "intruder", topic_name, 0, ""))
    assert commit_error(resp) == 25  # UNKNOWN_MEMBER_ID
    # With a metadata string over offset.metadata.max.bytes (4096), outside the group protocol.
    resp = call(port, 8, 2, offset_commit_v2(f"{group}-other", -1, "", topic_name, 5, "x" * 5000))
    assert commit_error(resp) == 12  # OFFSET_METADATA_TOO_LARGE
    # Heartbeat (12) v0 from an unknown member.
    resp = call(port, 12, 0, kstring(group) + i32(1) + kstring("intruder"))
    assert struct.unpack(">h", resp[:2])[0] == 25  # UNKNOWN_MEMBER_ID
    # JoinGroup (11) v1 with no protocols.
    resp = call(port, 11, 1, kstring(group) + i32(SESSION_MS) + i32(SESSION_MS) + kstring("")
                + kstring("consumer") + i32(0))
    assert struct.unpack(">h", resp[:2])[0] == 23  # INCONSISTENT_GROUP_PROTOCOL

    assert describe() == before
    assert committed(broker.bootstrap, group, topic_name) == {p: 10 for p in range(PARTITIONS)}
    assert committed(broker.bootstrap, f"{group}-other", topic_name)[0] < 0
