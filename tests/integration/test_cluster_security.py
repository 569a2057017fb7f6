"""A secured three-node cluster: the controller (Raft) listener speaks mutual
TLS, the brokers replicate over an SSL listener with client certificates and
the authorizer on (each broker's certificate principal is a super user), and
encryption at rest covers the Raft store as well as the segments.

Proof points: a replicated topic (RF=3) takes acks=all writes from
confluent-kafka and serves them back, every replica stays in sync; a client
whose certificate maps to an ordinary principal cannot fetch as a replica
(Kafka's CLUSTER_ACTION check) even with READ on the topic; a raw TCP client,
a TLS client without a certificate, one with a stranger CA's certificate and
one whose certificate maps to a principal that is no super user are each
refused by the controller listener while the cluster keeps working;
the Raft store files hold neither the topic name nor a record."""

from __future__ import annotations

import json
import os
import socket
import ssl
import struct
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from harness import sluice_bin
from clients import confluent_consume
from test_tls import ListenerBroker, Pki
from util import Reader, free_port, frame, i8, i32, i64, kstring, request_header_v1, wait_until

# Client-side bound on one produce, consume or admin call on loopback.
CLIENT_TIMEOUT_S = 60.0
# Bound on a refused peer's attempt: the controller listener closes it at
# the end of a failed handshake, or at once for bytes that are not TLS.
REFUSED_TIMEOUT_S = 10.0
RECORDS = 20
TOPIC_AUTHORIZATION_FAILED = 29
NONE = 0
KEY = "44" * 32
# What must never appear in the Raft store in the clear.
TOPIC = "secret-topic-cafe"
CANARY = b"RAFT-CANARY-b0a7"
# Certificates' subjects are `CN=<name>`; principals are the bare name.
MAPPING_RULES = "RULE:^CN=([^,]*).*$/$1/,DEFAULT"
IDS = (1, 2, 3)


class Cluster:
    def __init__(self, tmp_path: Path):
        self.pki = Pki(tmp_path / "pki")
        for i in IDS:
            self.pki.issue(f"broker{i}")
        self.pki.issue("admin", "--client")
        self.key_file = tmp_path / "keys"
        self.key_file.write_text(f"1:{KEY}\n")
        os.chmod(self.key_file, 0o600)
        self.kafka = {i: free_port() for i in IDS}
        self.controller = {i: free_port() for i in IDS}
        voters = ",".join(f"{i}@127.0.0.1:{self.controller[i]}" for i in IDS)
        self.nodes: list[ListenerBroker] = []
        for i in IDS:
            config = (
                f'listeners = ["SSL://127.0.0.1:{self.kafka[i]}"]\n'
                'inter_broker_listener_name = "SSL"\n'
                f'controller_listener = "127.0.0.1:{self.controller[i]}"\n'
                'controller_security_protocol = "SSL"\n'
                'super_users = ["User:broker1", "User:broker2", "User:broker3", "User:admin"]\n'
                f'[cluster]\nvoters = "{voters}"\nsnapshot_entries = 10\n'
                "[authorizer]\nenabled = true\n"
                f'[encryption]\nenabled = true\nkey_file = "{self.key_file}"\nactive_key_id = 1\n'
                "[tls]\n"
                f'cert_file = "{self.pki.cert(f"broker{i}")}"\n'
                f'key_file = "{self.pki.key(f"broker{i}")}"\n'
                f'client_ca_file = "{self.pki.ca}"\n'
                f'principal_mapping_rules = "{MAPPING_RULES}"\n'
            )
            node = ListenerBroker(tmp_path / f"node{i}", config, self.kafka[i])
            node.command = (lambda n=node, i=i: [
                str(n.bin), "serve", "--config", str(n.config_path),
                "--data-dir", str(n.data_dir),
                "--http-listener", f"127.0.0.1:{n.http_port}", "--node-id", str(i),
                "--schema-registry-listener", "",
            ])
            self.nodes.append(node)

    def conf(self, identity: str = "admin") -> dict:
        return {
            "bootstrap.servers": ",".join(f"127.0.0.1:{self.kafka[i]}" for i in IDS),
            "security.protocol": "SSL",
            "ssl.ca.location": self.pki.ca,
            "ssl.certificate.location": self.pki.cert(identity),
            "ssl.key.location": self.pki.key(identity),
        }

    def stop(self) -> None:
        for node in self.nodes:
            if node.alive():
                node.stop(check=False)
            node._close_log()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        for node in c.nodes:
            node.start()
        yield c
    finally:
        c.stop()


def create_topic(admin: AdminClient, topic: str) -> None:
    # A just-elected controller places replicas only on brokers it has
    # heard from: retry until all three have registered.
    def created() -> bool:
        future = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)])[topic]
        try:
            future.result(timeout=CLIENT_TIMEOUT_S)
        except KafkaException as e:
            error = e.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return True
            # Too few brokers heard from yet, or no leader elected yet.
            if error.code() in (KafkaError.INVALID_REPLICATION_FACTOR, KafkaError.NOT_CONTROLLER) \
                    or error.retriable():
                return False
            raise
        return True

    wait_until(created, CLIENT_TIMEOUT_S, "a topic replicated on all three brokers", interval_s=0.5)


def produce(conf: dict, topic: str, values: list[bytes]) -> None:
    p = Producer({**conf, "acks": "all"})
    failures = []
    for v in values:
        p.produce(topic, value=v, on_delivery=lambda err, _m: err and failures.append(err))
    assert p.flush(CLIENT_TIMEOUT_S) == 0, "undelivered records"
    assert not failures, failures


def consume(conf: dict, topic: str, want: int) -> list[bytes]:
    return confluent_consume(conf, topic, want, CLIENT_TIMEOUT_S, group=f"g-{topic}-{want}")


def partition_state(admin: AdminClient, topic: str) -> tuple[int, list[int]]:
    p = admin.list_topics(topic, timeout=CLIENT_TIMEOUT_S).topics[topic].partitions[0]
    return p.leader, sorted(p.isrs)


def tls_socket(cluster: Cluster, port: int, identity: str | None, ca: str | None = None) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=ca or cluster.pki.ca)
    if identity:
        ctx.load_cert_chain(cluster.pki.cert(identity), cluster.pki.key(identity))
    raw = socket.create_connection(("127.0.0.1", port), timeout=REFUSED_TIMEOUT_S)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def fetch_v5(sock: ssl.SSLSocket, topic: str, replica_id: int) -> int:
    """One Fetch v5 of partition 0 from offset 0 as `replica_id`; its error code."""
    body = (
        i32(replica_id) + i32(0) + i32(1) + i32(1 << 20) + i8(0) + i32(1)
        + kstring(topic) + i32(1) + i32(0) + i64(0) + i64(-1) + i32(1 << 20)
    )
    sock.sendall(frame(request_header_v1(1, 5, 7) + body))
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    r = Reader(recv_exact(sock, size))
    assert r.i32() == 7
    r.i32()  # throttle_time_ms
    assert r.i32() == 1 and r.string() == topic
    assert r.i32() == 1 and r.i32() == 0
    return r.i16()


def recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, "connection closed"
        out += chunk
    return out


# A well-formed controller request: `length u32 | version u16 | postcard
# message`, the message `Request::Status` (variant 7, no fields). A member
# gets its answer; anyone else must not.
STATUS_REQUEST = struct.pack(">IH", 3, 2) + bytes([7])


def answered(connect) -> bool:
    """True if the controller listener answers a status request sent over
    the connection `connect` opens; False if it refuses the connection (a
    failed handshake, or a close without a byte of answer)."""
    try:
        sock = connect()
    except (ssl.SSLError, ConnectionError, OSError):
        return False
    try:
        sock.sendall(STATUS_REQUEST)
        # A response frame opens with its length and the protocol version;
        # a refusal is a close, or a TLS alert record (0x15...) to a
        # client that did not speak TLS.
        head = b""
        while len(head) < 6:
            chunk = sock.recv(6 - len(head))
            if not chunk:
                return False
            head += chunk
        return head[4:6] == struct.pack(">H", 2)
    except (ssl.SSLError, ConnectionError, OSError):
        return False
    finally:
        sock.close()


def test_a_cluster_with_mtls_controllers_ssl_replication_and_encryption_works_and_refuses_strangers(cluster):
    admin = AdminClient(cluster.conf())
    create_topic(admin, TOPIC)
    values = [CANARY + b"-%d" % i for i in range(RECORDS)]
    produce(cluster.conf(), TOPIC, values)
    assert sorted(consume(cluster.conf(), TOPIC, RECORDS)) == sorted(values)
    # Followers fetch over SSL as their certificates' super-user principals.
    wait_until(lambda: partition_state(admin, TOPIC)[1] == [1, 2, 3], CLIENT_TIMEOUT_S, "every replica in sync")

    # carol may read the topic as a consumer, but not fetch as a replica.
    cluster.pki.issue("carol", "--client")
    binding = AclBinding(ResourceType.TOPIC, TOPIC, ResourcePatternType.LITERAL, "User:carol", "*",
                         AclOperation.READ, AclPermissionType.ALLOW)
    admin.create_acls([binding])[binding].result(timeout=CLIENT_TIMEOUT_S)
    leader, _ = partition_state(admin, TOPIC)
    follower = next(i for i in IDS if i != leader)

    def consumer_fetch_allowed() -> bool:
        with tls_socket(cluster, cluster.kafka[leader], "carol") as s:
            return fetch_v5(s, TOPIC, -1) == NONE

    wait_until(consumer_fetch_allowed, CLIENT_TIMEOUT_S, "carol's READ to reach the leader")
    with tls_socket(cluster, cluster.kafka[leader], "carol") as s:
        assert fetch_v5(s, TOPIC, follower) == TOPIC_AUTHORIZATION_FAILED

    # Strangers at the controller listener cost only their connection.
    port = cluster.controller[1]
    attempts = {
        "raw TCP": lambda: socket.create_connection(("127.0.0.1", port), timeout=REFUSED_TIMEOUT_S),
        "TLS without a certificate": lambda: tls_socket(cluster, port, None),
        "a stranger CA's certificate": lambda: tls_socket(cluster, port, "mallory"),
        "a cluster client certificate but not trusting the node": lambda: tls_socket(
            cluster, port, "carol", ca=cluster.pki.stranger_ca),
        # The cluster's CA signed it, but User:carol is no super user: with
        # the authorizer on, only super users are cluster members.
        "a cluster CA certificate of an ordinary principal": lambda: tls_socket(cluster, port, "carol"),
    }
    for what, attempt in attempts.items():
        assert not answered(attempt), f"{what} was answered by the controller listener"
    # The same request with a cluster certificate is answered: the refusals
    # above are the transport's, not a malformed request's.
    assert answered(lambda: tls_socket(cluster, port, "broker2"))
    assert "controller listener refused a peer" in cluster.nodes[0].log_text()
    more = [CANARY + b"-after-%d" % i for i in range(RECORDS)]
    produce(cluster.conf(), TOPIC, more)
    assert len(consume(cluster.conf(), TOPIC, 2 * RECORDS)) == 2 * RECORDS
    assert partition_state(admin, TOPIC)[1] == [1, 2, 3]

    # The CLI reaches the controller listener with a node's certificate
    # (`--config`), and without one it is refused like any stranger.
    cli = [str(sluice_bin()), "cluster", "--controller", f"127.0.0.1:{port}", "status", "--json"]
    with_cert = subprocess.run([*cli, "--config", str(cluster.nodes[0].config_path)],
                               capture_output=True, timeout=CLIENT_TIMEOUT_S)
    assert with_cert.returncode == 0, with_cert.stderr.decode(errors="replace")
    assert json.loads(with_cert.stdout)["leader"] in IDS
    without = subprocess.run(cli, capture_output=True, timeout=CLIENT_TIMEOUT_S)
    assert without.returncode != 0, without.stdout

    # Enough metadata changes for every node to take a Raft snapshot.
    for i in range(12):
        create_topic(admin, f"{TOPIC}-{i}")
    cluster.stop()
    for node in cluster.nodes:
        raft = node.data_dir / "__raft"
        files = {p.name: p.read_bytes() for p in raft.iterdir() if p.is_file()}
        assert files.get("raft.log"), f"no raft log in {raft}"
        assert files.get("snapshot"), f"no raft snapshot in {raft}"
        for name, data in files.items():
            assert TOPIC.encode() not in data, f"topic name in the clear in {raft / name}"
            assert CANARY not in data, f"a record in the clear in {raft / name}"
