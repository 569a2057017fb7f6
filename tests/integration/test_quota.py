"""Client quotas (KIP-13, KIP-546) with real clients: a producer and a
consumer with a byte-rate quota on their client id are held to about that
rate and told to back off (throttle_time_ms), while a client without a
quota on the same broker keeps its throughput.

Quotas are set with AlterClientQuotas and read back with
DescribeClientQuotas in raw frames (neither confluent-kafka nor
kafka-python exposes these APIs). The broker measures over 11 windows of
200 ms instead of Kafka's 1 s so a test of a few seconds sees the steady
state; the meaning of the quota is the same. Only ratios are asserted
(the machine is shared): the quota'd client against its quota with a
tolerance for the first window's burst, and against the free client."""

from __future__ import annotations

import struct
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from clients import confluent_create_topic
from test_wire_semantics import Conn, Wire
from util import i8, i32, kstring

ALTER_CLIENT_QUOTAS = 49
DESCRIBE_CLIENT_QUOTAS = 48
NONE = 0
INVALID_REQUEST = 42

WINDOW_SIZE_MS = 200
WINDOW_NUM = 11
# The rate is averaged over at least (WINDOW_NUM - 1) windows, so a client
# may send that much more than the quota before the first throttle.
SPAN_S = (WINDOW_NUM - 1) * WINDOW_SIZE_MS / 1000

PRODUCE_QUOTA = 200_000  # bytes/s for client id "slow"
FETCH_QUOTA = 200_000  # bytes/s for client id "slowc"
RUN_S = 8.0  # how long the two producers (consumers) run side by side
VALUE = b"x" * 1000
# The free client must do at least this many times what the quota'd one does.
MIN_SPEEDUP = 4.0


def _f64(v: float) -> bytes:
    return struct.pack(">d", v)


def alter_quota(conn: Conn, entity: list[tuple[str, str | None]], ops: list[tuple[str, float | None]],
                validate_only: bool = False) -> list[tuple[int, str | None]]:
    """AlterClientQuotas v0 for one entity; [(error_code, message)]."""
    body = i32(1) + i32(len(entity))
    for t, n in entity:
        body += kstring(t) + kstring(n)
    body += i32(len(ops))
    for key, value in ops:
        body += kstring(key) + _f64(value or 0.0) + i8(1 if value is None else 0)
    body += i8(1 if validate_only else 0)
    r: Wire = conn.call(ALTER_CLIENT_QUOTAS, 0, body)
    r.i32()  # throttle_time_ms
    out = []
    for _ in range(r.i32()):
        code, message = r.i16(), r.string()
        for _ in range(r.i32()):
            r.string(), r.string()
        out.append((code, message))
    r.done()
    return out


def describe_quotas(conn: Conn) -> dict[tuple, dict[str, float]]:
    """DescribeClientQuotas v0 with an empty, non-strict filter: every
    entity, as {((type, name), ...): {key: value}}."""
    r: Wire = conn.call(DESCRIBE_CLIENT_QUOTAS, 0, i32(0) + i8(0))
    r.i32()  # throttle_time_ms
    code, message = r.i16(), r.string()
    assert code == NONE, message
    out = {}
    for _ in range(max(r.i32(), 0)):
        entity = tuple((r.string(), r.string()) for _ in range(r.i32()))
        values = {}
        for _ in range(r.i32()):
            key = r.string()
            values[key] = struct.unpack(">d", r.take(8))[0]
        out[entity] = values
    r.done()
    return out


@pytest.fixture
def quota_broker(broker_factory):
    return broker_factory.new(extra_args=[
        "--set", f"quota.window_size_ms={WINDOW_SIZE_MS}",
        "--set", f"quota.window_num={WINDOW_NUM}",
    ])


@pytest.fixture
def admin_conn(quota_broker):
    c = Conn(quota_broker.kafka_port)
    yield c
    c.close()


def _flood(bootstrap: str, topic: str, client_id: str, stop_at: float, out: dict) -> None:
    """Produces VALUE records as fast as the producer allows until
    `stop_at`; counts the bytes acknowledged before then and the largest
    throttle the broker reported."""
    throttles = []
    delivered = [0]

    def on_delivery(err, msg):
        if err is None and time.monotonic() <= stop_at:
            delivered[0] += len(msg.value())

    p = Producer({
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "linger.ms": 5,
        "batch.size": 64 * 1024,
        # A bounded queue: the quota'd producer backs up here, not in memory.
        "queue.buffering.max.kbytes": 2048,
        "throttle_cb": lambda ev: throttles.append(ev.throttle_time),
    })
    while time.monotonic() < stop_at:
        try:
            p.produce(topic, VALUE, on_delivery=on_delivery)
            p.poll(0)
        except BufferError:
            p.poll(0.05)
    p.poll(0)
    p.purge()
    p.flush(10)
    out["bytes"] = delivered[0]
    out["max_throttle_s"] = max(throttles, default=0.0)


def _run_producers(bootstrap: str, topic: str) -> tuple[dict, dict]:
    slow, fast = {}, {}
    stop_at = time.monotonic() + RUN_S
    threads = [threading.Thread(target=_flood, args=(bootstrap, topic, cid, stop_at, out))
               for cid, out in (("slow", slow), ("fast", fast))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=RUN_S + 60)
        assert not t.is_alive(), "a producer did not stop"
    return slow, fast


def test_a_producer_over_its_byte_rate_is_held_to_it_while_another_is_not(quota_broker, admin_conn, topic_name):
    confluent_create_topic(quota_broker.bootstrap, topic_name, partitions=1)
    assert alter_quota(admin_conn, [("client-id", "slow")], [("producer_byte_rate", PRODUCE_QUOTA)]) == [(NONE, None)]
    assert describe_quotas(admin_conn) == {(("client-id", "slow"),): {"producer_byte_rate": PRODUCE_QUOTA}}

    slow, fast = _run_producers(quota_broker.bootstrap, topic_name)
    slow_rate = slow["bytes"] / RUN_S
    fast_rate = fast["bytes"] / RUN_S
    print(f"slow {slow_rate:.0f} B/s (throttle up to {slow['max_throttle_s']}), fast {fast_rate:.0f} B/s")
    # Held to the quota: the first span's burst is allowed, then the quota.
    allowed = PRODUCE_QUOTA * (RUN_S + SPAN_S) / RUN_S * 1.25
    assert slow_rate <= allowed, f"slow producer at {slow_rate:.0f} B/s, quota {PRODUCE_QUOTA}"
    assert slow_rate > 0, "the throttled producer still makes progress"
    assert slow["max_throttle_s"] > 0, "the broker told the slow producer to back off"
    assert fast["max_throttle_s"] == 0, "the producer without a quota was throttled"
    assert fast_rate >= MIN_SPEEDUP * slow_rate, \
        f"fast producer {fast_rate:.0f} B/s is not {MIN_SPEEDUP}x the slow one's {slow_rate:.0f} B/s"

    # The throttle is exported per entity.
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{quota_broker.http_port}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    throttled = [line for line in metrics.splitlines()
                 if line.startswith("sluice_client_quota_throttle_time_ms_total{") and 'client_id="slow"' in line]
    assert throttled and float(throttled[0].split()[-1]) > 0, metrics[-2000:]

    # Removing the quota lifts the throttle: "slow" now keeps pace with "fast".
    assert alter_quota(admin_conn, [("client-id", "slow")], [("producer_byte_rate", None)]) == [(NONE, None)]
    assert describe_quotas(admin_conn) == {}
    slow, fast = _run_producers(quota_broker.bootstrap, topic_name)
    print(f"unthrottled: slow {slow['bytes'] / RUN_S:.0f} B/s, fast {fast['bytes'] / RUN_S:.0f} B/s")
    assert slow["max_throttle_s"] == 0
    assert slow["bytes"] > allowed * RUN_S, "without its quota the producer passes the old bound"


def _drain(bootstrap: str, topic: str, client_id: str, stop_at: float, out: dict) -> None:
    """Reads `topic` from the start until `stop_at` or the end; counts
    value bytes and the throttles reported (librdkafka's stats)."""
    throttles = []

    def on_stats(raw: str) -> None:
        import json

        for b in json.loads(raw).get("brokers", {}).values():
            throttles.append(b.get("throttle", {}).get("max", 0))

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "group.id": f"g-{client_id}",
        "enable.auto.commit": False,
        "statistics.interval.ms": 500,
        "stats_cb": on_stats,
    })
    c.assign([TopicPartition(topic, 0, 0)])
    got = 0
    while time.monotonic() < stop_at:
        msg = c.poll(0.1)
        if msg is not None and msg.error() is None:
            got += len(msg.value())
    c.poll(0.6)  # one more stats callback
    c.close()
    out["bytes"] = got
    out["max_throttle_ms"] = max(throttles, default=0)


def test_a_consumer_over_its_byte_rate_is_held_to_it_while_another_is_not(quota_broker, admin_conn, topic_name):
    confluent_create_topic(quota_broker.bootstrap, topic_name, partitions=1)
    # Enough data that the free consumer is still reading when it stops.
    total = 12 * 1024 * 1024
    p = Producer({"bootstrap.servers": quota_broker.bootstrap, "linger.ms": 5, "batch.size": 64 * 1024})
    for _ in range(total // len(VALUE)):
        while True:
            try:
                p.produce(topic_name, VALUE)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0

    assert alter_quota(admin_conn, [("client-id", "slowc")], [("consumer_byte_rate", FETCH_QUOTA)]) == [(NONE, None)]
    slow, fast = {}, {}
    run_s = 5.0
    stop_at = time.monotonic() + run_s
    threads = [threading.Thread(target=_drain, args=(quota_broker.bootstrap, topic_name, cid, stop_at, out))
               for cid, out in (("slowc", slow), ("fastc", fast))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=run_s + 60)
        assert not t.is_alive(), "a consumer did not stop"
    print(f"slow consumer {slow}, fast consumer {fast}")
    allowed = FETCH_QUOTA * (run_s + SPAN_S) * 1.25
    assert 0 < slow["bytes"] <= allowed, f"slow consumer read {slow['bytes']} B in {run_s}s, quota {FETCH_QUOTA} B/s"
    assert slow["max_throttle_ms"] > 0, "the broker told the slow consumer to back off"
    assert fast["bytes"] >= MIN_SPEEDUP * slow["bytes"], f"fast consumer read {fast['bytes']} B"


def test_bad_quota_alterations_are_refused_and_validate_only_commits_nothing(admin_conn):
    [(code, message)] = alter_quota(admin_conn, [("client-id", "c")], [("producer_byte_rate", 1.5)])
    assert code == INVALID_REQUEST and "Long" in message
    [(code, _)] = alter_quota(admin_conn, [("group", "g")], [("producer_byte_rate", 100)])
    assert code == INVALID_REQUEST
    [(code, _)] = alter_quota(admin_conn, [("user", None)], [("consumer_byte_rate", 100)], validate_only=True)
    assert code == NONE
    assert describe_quotas(admin_conn) == {}
    assert alter_quota(admin_conn, [("user", None)], [("consumer_byte_rate", 100)]) == [(NONE, None)]
    assert describe_quotas(admin_conn) == {(("user", None),): {"consumer_byte_rate": 100.0}}


def test_sluice_quota_cli_sets_lists_and_deletes_through_the_kafka_apis(quota_broker, admin_conn):
    import json
    import subprocess

    from harness import sluice_bin

    def sluice(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([str(sluice_bin()), "quota", *args, "--bootstrap-server", quota_broker.bootstrap],
                             capture_output=True, timeout=60)
        assert (res.returncode == 0) == ok, f"sluice quota {' '.join(args)}: {res.stderr.decode(errors='replace')}"
        return res

    sluice("set", "--entity-type", "clients", "--entity-name", "app",
           "--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2097152")
    sluice("set", "--entity-type", "users", "--entity-name", "alice", "--entity-type", "clients",
           "--entity-default", "--add-config", "request_percentage=12.5")
    # What the CLI set is what the Kafka API describes.
    assert describe_quotas(admin_conn) == {
        (("client-id", "app"),): {"producer_byte_rate": 1048576.0, "consumer_byte_rate": 2097152.0},
        (("client-id", None), ("user", "alice")): {"request_percentage": 12.5},
    }
    listed = json.loads(sluice("list", "--json").stdout)
    assert {"entity": {"client-id": "app"},
            "quotas": {"producer_byte_rate": 1048576.0, "consumer_byte_rate": 2097152.0}} in listed
    only_alice = json.loads(sluice("list", "--entity-type", "users", "--entity-name", "alice", "--json").stdout)
    assert only_alice == [{"entity": {"client-id": None, "user": "alice"}, "quotas": {"request_percentage": 12.5}}]
    # The broker's validation error reaches the user.
    bad = sluice("set", "--entity-type", "clients", "--entity-name", "app",
                 "--add-config", "producer_byte_rate=1.5", ok=False)
    assert "Long" in bad.stderr.decode()

    sluice("delete", "--entity-type", "clients", "--entity-name", "app", "--delete-config", "consumer_byte_rate")
    sluice("delete", "--entity-type", "users", "--entity-name", "alice", "--entity-type", "clients", "--entity-default")
    assert describe_quotas(admin_conn) == {(("client-id", "app"),): {"producer_byte_rate": 1048576.0}}


# -- controller mutations (KIP-599) ------------------------------------------

THROTTLING_QUOTA_EXCEEDED = 89
# With quota.window_num × quota.window_size_ms = 11 × 200 ms, a bucket of
# controller_mutation_rate=1 holds 2.2 partitions: three one-partition
# topics pass (the third goes over), the rest of a burst is refused.
MUTATION_RATE = 1
BURST_TOPICS = 10


def test_kafka_python_creating_topics_over_its_mutation_rate_gets_throttling_quota_exceeded(
        quota_broker, admin_conn, topic_name):
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import ThrottlingQuotaExceededError

    assert alter_quota(admin_conn, [("client-id", "slowpy")],
                       [("controller_mutation_rate", MUTATION_RATE)]) == [(NONE, None)]

    def burst(client_id: str, raise_errors: bool = False) -> dict[str, int]:
        admin = KafkaAdminClient(bootstrap_servers=quota_broker.bootstrap, client_id=client_id)
        try:
            names = [f"{topic_name}-{client_id}-{i}" for i in range(BURST_TOPICS)]
            # One request: the refusal does not depend on how fast this runs.
            result = admin.create_topics([NewTopic(n, 1, 1) for n in names], raise_errors=raise_errors)
            return {t["name"]: t["error_code"] for t in result["topics"]}
        finally:
            admin.close()

    codes = burst("slowpy")
    created = [n for n, c in codes.items() if c == NONE]
    refused = [n for n, c in codes.items() if c == THROTTLING_QUOTA_EXCEEDED]
    # CreateTopics v6+ is strict: the bucket's worth passes, the rest is
    # refused with THROTTLING_QUOTA_EXCEEDED and not created.
    assert 1 <= len(created) <= 4, codes
    assert len(created) + len(refused) == BURST_TOPICS, codes
    with pytest.raises(ThrottlingQuotaExceededError):
        burst("slowpy", raise_errors=True)
    # A client without the quota creates all of its burst.
    assert set(burst("freepy").values()) == {NONE}
    assert describe_quotas(admin_conn)[(("client-id", "slowpy"),)] == {
        "controller_mutation_rate": float(MUTATION_RATE)}


def test_confluent_admin_over_its_mutation_rate_is_throttled_while_another_is_not(
        quota_broker, admin_conn, topic_name):
    import subprocess

    from confluent_kafka.admin import AdminClient, NewTopic
    from harness import sluice_bin

    # Set with Sluice's CLI this time (the Kafka API underneath).
    res = subprocess.run([str(sluice_bin()), "quota", "set", "--entity-type", "clients", "--entity-name", "slowc",
                          "--add-config", f"controller_mutation_rate={MUTATION_RATE}",
                          "--bootstrap-server", quota_broker.bootstrap], capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr

    def burst(client_id: str) -> list[int]:
        """Creates BURST_TOPICS in one request; the throttle times reported
        (confluent-kafka's ThrottleEvent.throttle_time is in seconds)."""
        throttles: list[int] = []
        admin = AdminClient({"bootstrap.servers": quota_broker.bootstrap, "client.id": client_id,
                             "throttle_cb": lambda e: throttles.append(e.throttle_time)})
        names = [f"{topic_name}-{client_id}-{i}" for i in range(BURST_TOPICS)]
        futures = admin.create_topics([NewTopic(n, num_partitions=1, replication_factor=1) for n in names],
                                      request_timeout=30)
        # librdkafka asks with CreateTopics v4, before KIP-599's strict
        # versions: every topic is created, and the client is throttled.
        for f in futures.values():
            f.result(30)
        admin.poll(0.5)  # serves throttle_cb
        return [t for t in throttles if t > 0]

    slow = burst("slowc")
    # 10 partitions against a bucket of 2.2 at 1/s: about 7.8 s.
    assert slow and max(slow) >= 5.0, slow
    assert burst("freec") == [], "a client without a quota is not throttled"


# -- connection creation (KIP-612) -------------------------------------------

API_VERSIONS = 18
CONNECTION_RATE = 5  # connections/s from 127.0.0.1
CONNECTIONS = 40


def test_connections_over_the_ips_creation_rate_are_closed_unserved_while_existing_ones_work(
        quota_broker, admin_conn):
    from util import connect, frame, recv_response_or_close, request_header_v1

    existing = Conn(quota_broker.kafka_port)
    assert alter_quota(admin_conn, [("ip", "127.0.0.1")],
                       [("connection_creation_rate", CONNECTION_RATE)]) == [(NONE, None)]
    # Open them all as fast as possible, then see which were served. The
    # rate is averaged over 10 windows of 200 ms, so about 10 pass at once.
    socks = []
    for i in range(CONNECTIONS):
        s = connect(quota_broker.kafka_port, timeout_s=10.0)
        try:
            s.sendall(frame(request_header_v1(API_VERSIONS, 0, i)))
        except (ConnectionResetError, BrokenPipeError):
            pass
        socks.append(s)
    served = refused = 0
    started = time.monotonic()
    for s in socks:
        try:
            answer = recv_response_or_close(s, timeout_s=10.0)
        except OSError:
            answer = None
        if answer is None:
            refused += 1
        else:
            served += 1
        s.close()
    # A refused connection is held at most one window (200 ms) and closed.
    assert time.monotonic() - started < 10.0
    assert refused >= 1, f"{served} served, none refused"
    assert served >= CONNECTION_RATE, f"only {served} served"
    # Connections made before keep working while 127.0.0.1 is throttled.
    assert describe_quotas(existing)[(("ip", "127.0.0.1"),)] == {"connection_creation_rate": float(CONNECTION_RATE)}
    existing.close()
    # Without the quota, connections are served again.
    assert alter_quota(admin_conn, [("ip", "127.0.0.1")], [("connection_creation_rate", None)]) == [(NONE, None)]
    again = Conn(quota_broker.kafka_port)
    assert describe_quotas(again) == {}
    again.close()
