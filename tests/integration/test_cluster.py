"""A Sluice cluster: three (or more) real `sluice serve` processes on
127.0.0.1 sharing one metadata quorum, driven by kcat, confluent-kafka and
kafka-python through any node.

What each test shows:
- every node lists every broker and the same partition leaders, and
  clients produce and consume through any bootstrap node;
- kill -9 of the active controller: a new one is elected and metadata
  changes work again within 5 s, and the killed node catches up;
- kill -9 of nodes during topic creation and deletion never makes the
  nodes' metadata images diverge;
- a single node with data grows into a three-node cluster (the upgrade
  path), a learner is promoted to voter, and a node is removed;
- the schema registry takes writes on every node (a node that does not
  lead `_schemas` forwards them to the one that does) and every node
  serves every schema.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic

from clients import ConfluentClient, KafkaPythonClient, confluent_admin
from harness import Broker, sluice_bin
from http_client import Http
from util import assert_all_partitions_equal, by_partition, free_port, make_records, unique_topic, wait_until

# A new controller must take over and commit within this long (issue 12).
FAILOVER_S = 5.0
# Generous bound for a node to register, catch up and be unfenced.
SETTLE_S = 30.0


class Node(Broker):
    """One cluster member: a broker with a node id, a controller listener
    and the voter list."""

    def __init__(self, workdir: Path, node_id: int, voters: str, controller_port: int):
        super().__init__(workdir, name=f"node{node_id}")
        self.node_id = node_id
        self.voters = voters
        self.controller_port = controller_port

    @property
    def controller(self) -> str:
        return f"127.0.0.1:{self.controller_port}"

    def command(self) -> list[str]:
        return [
            str(self.bin), "serve",
            "--data-dir", str(self.data_dir),
            "--kafka-listener", f"127.0.0.1:{self.kafka_port}",
            "--http-listener", f"127.0.0.1:{self.http_port}",
            "--schema-registry-listener", f"127.0.0.1:{self.registry_port}",
            "--node-id", str(self.node_id),
            "--set", f"controller_listener={self.controller}",
            "--set", f"cluster.voters={self.voters}",
            *self.extra_args,
        ]

    def status(self) -> dict | None:
        """/v1/cluster, or None while the node does not answer."""
        try:
            status, body = Http(self).call("GET", "/v1/cluster")
        except OSError:
            return None
        return body if status == 200 else None


class Cluster:
    def __init__(self, tmp_path: Path, voters: int = 3):
        ports = {i: free_port() for i in range(1, voters + 1)}
        self.voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in ports.items())
        self.tmp_path = tmp_path
        self.nodes = {i: Node(tmp_path / f"node{i}", i, self.voters, p) for i, p in ports.items()}

    def add_learner(self, node_id: int) -> Node:
        node = Node(self.tmp_path / f"node{node_id}", node_id, self.voters, free_port())
        self.nodes[node_id] = node
        return node.start()

    def start(self) -> "Cluster":
        for n in self.nodes.values():
            n.start()
        self.wait_brokers(set(self.nodes))
        return self

    def alive(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.alive()]

    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.alive())

    def wait_brokers(self, ids: set[int], timeout_s: float = SETTLE_S) -> None:
        """Every live node lists exactly `ids` as unfenced brokers."""

        def settled():
            for n in self.alive():
                s = n.status()
                if s is None:
                    return False
                live = {b["node_id"] for b in s["brokers"] if not b["fenced"]}
                if live != ids:
                    return False
            return True

        wait_until(settled, timeout_s, f"every node to list brokers {sorted(ids)}", interval_s=0.2)

    def leader(self, timeout_s: float = SETTLE_S) -> Node:
        def find():
            for n in self.alive():
                s = n.status()
                if s and s["quorum"] and s["quorum"]["state"] == "leader":
                    return n
            return None

        return wait_until(find, timeout_s, "a quorum leader", interval_s=0.1)

    def images(self) -> dict[int, tuple[int, str] | None]:
        out = {}
        for i, n in self.nodes.items():
            if n.alive():
                s = n.status()
                out[i] = (s["metadata"]["next_offset"], s["metadata"]["digest"]) if s else None
        return out

    def wait_images_agree(self, timeout_s: float = SETTLE_S) -> tuple[int, str]:
        last = {}

        def agree():
            nonlocal last
            last = self.images()
            values = set(last.values())
            return len(values) == 1 and None not in values and values.pop()

        try:
            return wait_until(agree, timeout_s, "every node's metadata image to agree", interval_s=0.2)
        except AssertionError as e:
            raise AssertionError(f"{e}: {last}") from None

    def stop(self) -> None:
        for n in self.nodes.values():
            if n.alive():
                n.stop(check=False)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path).start()
    yield c
    c.stop()


def assert_reads_back(client, bootstrap: str, topic: str, records, partitions: int) -> None:
    """Every partition read through `bootstrap` holds exactly `records`."""
    expected = by_partition(records)
    read = {
        p: client.consume_partition(bootstrap, topic, p, len(expected.get(p, [])))
        for p in range(partitions)
    }
    assert_all_partitions_equal(records, read, partitions)


def kcat_metadata(bootstrap: str, topic: str) -> dict:
    out = subprocess.run(
        ["kcat", "-b", bootstrap, "-L", "-J", "-t", topic, "-m", "10"],
        capture_output=True, check=True, timeout=30,
    )
    return json.loads(out.stdout)


def create_topic_with_retry(bootstrap: str, name: str, partitions: int, timeout_s: float) -> float:
    """Creates a topic, retrying as an admin client does while no controller
    answers; returns the seconds it took."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout_s:
        admin = confluent_admin(bootstrap)
        fs = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=5, request_timeout=5)
        try:
            fs[name].result(timeout=6)
            return time.monotonic() - start
        except KafkaException as e:
            last = e
            if e.args[0].name() == "TOPIC_ALREADY_EXISTS":
                return time.monotonic() - start
            time.sleep(0.1)
    raise AssertionError(f"could not create {name} within {timeout_s}s: {last}")


def test_every_node_serves_the_same_cluster_to_every_client(cluster):
    topic = unique_topic("cluster")
    nodes = list(cluster.nodes.values())
    ConfluentClient().create_topic(nodes[0].bootstrap, topic, 6)
    cluster.wait_images_agree()

    # kcat -L against each node: three brokers, the same leaders.
    views = []
    for n in nodes:
        md = kcat_metadata(n.bootstrap, topic)
        brokers = sorted(b["id"] for b in md["brokers"])
        assert brokers == [1, 2, 3], f"node {n.node_id} lists brokers {brokers}"
        [t] = md["topics"]
        leaders = {p["partition"]: p["leader"] for p in t["partitions"]}
        views.append(leaders)
    assert views[0] == views[1] == views[2], views
    assert len(views[0]) == 6
    assert set(views[0].values()) == {1, 2, 3}, f"leaders are not spread: {views[0]}"
    ids = {s["cluster_id"] for s in (n.status() for n in nodes)}
    assert len(ids) == 1, f"nodes report different cluster ids: {ids}"

    # The HTTP API: every node shows the quorum, and only a partition's
    # leader takes writes.
    for n in nodes:
        q = n.status()["quorum"]
        assert {m["id"]: m["role"] for m in q["nodes"]} == {1: "voter", 2: "voter", 3: "voter"}, q
        assert q["leader"] in (1, 2, 3) and q["term"] >= 1, q
    leader_of_0 = views[0][0]
    on_leader = Http(cluster.nodes[leader_of_0])
    [written] = on_leader.produce(topic, [{"value": "x", "partition": 0}])
    assert (written["partition"], written["offset"]) == (0, 0), written
    elsewhere = Http(next(n for n in nodes if n.node_id != leader_of_0))
    status, err = elsewhere.call("POST", f"/v1/topics/{topic}/records", {"records": [{"value": "y", "partition": 0}]})
    assert status == 503, (status, err)
    assert f"led by broker {leader_of_0}" in err["message"], err
    # Topic administration over HTTP works on a node that is not the
    # active controller: it is done by the controller and shows on all.
    not_controller = next(n for n in nodes if n.node_id != cluster.leader().node_id)
    http = Http(not_controller)
    admin_topic = unique_topic("http-admin")
    http.create_topic(admin_topic, 2)
    assert http.ok("POST", f"/v1/topics/{admin_topic}/partitions", {"count": 4})
    http.ok("PATCH", f"/v1/topics/{admin_topic}/configs", {"set": {"retention.ms": "3600000"}})
    cluster.wait_images_agree()
    for n in nodes:
        described = Http(n).get(f"/v1/topics/{admin_topic}")
        assert len(described["partitions"]) == 4, (n.node_id, described)
    assert http.call("DELETE", f"/v1/topics/{admin_topic}") == (204, None)
    cluster.wait_images_agree()
    for n in nodes:
        assert Http(n).call("GET", f"/v1/topics/{admin_topic}")[0] == 404

    # A fresh topic for the read-back (partition 0 above has an extra record).
    topic = unique_topic("cluster-rt")
    ConfluentClient().create_topic(nodes[0].bootstrap, topic, 6)

    # Produce through one node, consume through another, with two clients.
    records = make_records(300, 6, seed=12)
    ConfluentClient().produce(nodes[1].bootstrap, topic, records, "lz4")
    assert_reads_back(KafkaPythonClient(), nodes[2].bootstrap, topic, records, 6)
    more = make_records(120, 6, seed=13)
    topic2 = unique_topic("cluster-kp")
    KafkaPythonClient().create_topic(nodes[2].bootstrap, topic2, 6)
    KafkaPythonClient().produce(nodes[2].bootstrap, topic2, more, "gzip")
    assert_reads_back(ConfluentClient(), nodes[0].bootstrap, topic2, more, 6)


def test_killing_the_controller_elects_another_and_the_node_rejoins(cluster):
    warm = unique_topic("warm")
    create_topic_with_retry(cluster.bootstrap(), warm, 3, SETTLE_S)
    leader = cluster.leader()
    survivors = [n for n in cluster.nodes.values() if n is not leader]
    leader.kill9()
    # Metadata changes work again through the survivors within 5 s.
    took = create_topic_with_retry(
        ",".join(n.bootstrap for n in survivors), unique_topic("after"), 3, 20.0
    )
    assert took < FAILOVER_S, f"a new controller took {took:.2f}s to accept a change"
    new_leader = cluster.leader()
    assert new_leader is not leader
    # The killed node comes back, catches up and is a broker again.
    leader.start()
    cluster.wait_images_agree()
    cluster.wait_brokers({1, 2, 3})


def test_kill_nine_during_topic_churn_never_diverges_the_images(cluster):
    rng = random.Random(7)
    stop = threading.Event()
    created: list[str] = []
    errors: list[str] = []

    def churn():
        while not stop.is_set():
            admin = confluent_admin(cluster.bootstrap())
            name = unique_topic("churn")
            try:
                admin.create_topics([NewTopic(name, 2, 1)], operation_timeout=3, request_timeout=3)[name].result(timeout=5)
                created.append(name)
            except KafkaException as e:
                errors.append(str(e))
            if created and rng.random() < 0.5:
                victim = created.pop(rng.randrange(len(created)))
                try:
                    admin.delete_topics([victim], operation_timeout=3, request_timeout=3)[victim].result(timeout=5)
                except KafkaException as e:
                    errors.append(str(e))

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    try:
        for round_ in range(4):
            victim = cluster.nodes[rng.choice(sorted(cluster.nodes))]
            time.sleep(rng.uniform(0.3, 1.0))
            victim.kill9()
            time.sleep(rng.uniform(0.3, 1.0))
            victim.start()
    finally:
        stop.set()
        worker.join(timeout=60)
    next_offset, digest = cluster.wait_images_agree()
    assert next_offset > 0 and digest
    # The churn made progress through the kills.
    assert created or errors, "the churn thread never ran"


def sluice_cli(*args: str) -> str:
    out = subprocess.run([str(sluice_bin()), *args], capture_output=True, timeout=60)
    assert out.returncode == 0, f"sluice {' '.join(args)}: {out.stderr.decode()}"
    return out.stdout.decode()


def test_a_single_node_grows_to_three_and_a_node_is_removed(tmp_path):
    # A single node, as `sluice serve` runs it, with data.
    single = Broker(tmp_path / "node1", name="node1").start()
    topic = unique_topic("grow")
    records = make_records(200, 3, seed=21)
    ConfluentClient().create_topic(single.bootstrap, topic, 3)
    ConfluentClient().produce(single.bootstrap, topic, records, "none")
    single.stop()

    # The same data dir restarts as the only voter of a quorum...
    controller_port = free_port()
    voters = f"1@127.0.0.1:{controller_port}"
    node1 = Node(tmp_path / "node1", 1, voters, controller_port)
    node1.kafka_port, node1.http_port = single.kafka_port, single.http_port
    node1.start()
    # ...keeps its topic and records...
    assert_reads_back(ConfluentClient(), node1.bootstrap, topic, records, 3)
    # ...and two new nodes join as brokers (learners).
    cluster = Cluster.__new__(Cluster)
    cluster.voters, cluster.tmp_path, cluster.nodes = voters, tmp_path, {1: node1}
    try:
        cluster.add_learner(2)
        cluster.add_learner(3)
        cluster.wait_brokers({1, 2, 3})
        cluster.wait_images_agree()
        roles = {n["id"]: n["role"] for n in node1.status()["quorum"]["nodes"]}
        assert roles == {1: "voter", 2: "learner", 3: "learner"}, roles

        # The records are still readable through a new node.
        assert_reads_back(KafkaPythonClient(), cluster.nodes[2].bootstrap, topic, records, 3)
        # New topics spread over all three.
        spread = unique_topic("spread")
        ConfluentClient().create_topic(cluster.nodes[3].bootstrap, spread, 3)
        md = kcat_metadata(cluster.nodes[2].bootstrap, spread)
        assert {p["leader"] for p in md["topics"][0]["partitions"]} == {1, 2, 3}

        # Promote both learners: three voters.
        sluice_cli("cluster", "--controller", node1.controller, "add-node", "2")
        sluice_cli("cluster", "--controller", node1.controller, "add-node", "3")
        status = json.loads(sluice_cli("cluster", "--controller", node1.controller, "status", "--json"))
        roles = {n["id"]: n["role"] for n in status["nodes"]}
        assert roles == {1: "voter", 2: "voter", 3: "voter"}, status

        # Remove node 3: stopped, then taken out of the quorum and the brokers.
        cluster.nodes[3].stop()
        sluice_cli("cluster", "--controller", node1.controller, "remove-node", "3")
        status = json.loads(sluice_cli("cluster", "--controller", cluster.nodes[2].controller, "status", "--json"))
        assert {n["id"] for n in status["nodes"]} == {1, 2}, status
        del cluster.nodes[3]
        cluster.wait_brokers({1, 2})
        cluster.wait_images_agree()
    finally:
        cluster.stop()


def test_a_silent_broker_is_fenced_and_comes_back_once_caught_up(cluster):
    topic = unique_topic("fence")
    ConfluentClient().create_topic(cluster.nodes[1].bootstrap, topic, 3)
    cluster.wait_images_agree()
    leader = cluster.leader()
    victim = next(n for n in cluster.nodes.values() if n is not leader)
    others = [n for n in cluster.nodes.values() if n is not victim]
    before = {p["partition"]: p["leader"] for p in kcat_metadata(others[0].bootstrap, topic)["topics"][0]["partitions"]}
    led = sorted(p for p, l in before.items() if l == victim.node_id)
    assert led, f"node {victim.node_id} leads nothing of {before}"
    victim.kill9()
    # After broker.session_timeout_ms (9 s) it is fenced: no longer listed,
    # and its partitions (one replica each) have no leader.
    cluster.wait_brokers({n.node_id for n in others}, timeout_s=30)
    md = kcat_metadata(others[0].bootstrap, topic)
    after = {p["partition"]: p for p in md["topics"][0]["partitions"]}
    for p in led:
        assert after[p]["leader"] == -1, after[p]
    # It restarts, registers again, is unfenced once caught up and leads
    # its partitions again (a new leader epoch).
    victim.start()
    cluster.wait_brokers({1, 2, 3}, timeout_s=30)
    md = kcat_metadata(victim.bootstrap, topic)
    back = {p["partition"]: p["leader"] for p in md["topics"][0]["partitions"]}
    assert back == before, (back, before)


def test_malformed_controller_traffic_costs_only_its_connection(cluster):
    import socket
    import struct

    node = cluster.nodes[2]
    hostile = [
        struct.pack(">I", 0xFFFFFFF0),                     # a length far over the bound
        struct.pack(">IH", 6, 9) + b"\x00" * 4,           # an unknown protocol version
        struct.pack(">IH", 8, 1) + b"\xff" * 6,           # a message that does not decode
        b"\x00\x00",                                      # a frame cut short, then silence
    ]
    for payload in hostile:
        with socket.create_connection(("127.0.0.1", node.controller_port), timeout=5) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10)
            assert s.recv(1024) == b"", "the node answered a malformed frame instead of closing"
    assert node.alive()
    # The quorum still works through that node.
    create_topic_with_retry(node.bootstrap, unique_topic("after-garbage"), 1, 10.0)
    cluster.wait_images_agree()


def register_through_each(clients: dict) -> dict[str, int]:
    """Registers a distinct record schema through each of `clients` (label ->
    SchemaRegistryClient), retrying while `_schemas` gets its leader;
    returns subject -> id."""
    from confluent_kafka.schema_registry import Schema

    ids = {}
    for i, (label, client) in enumerate(clients.items()):
        subject = f"via{i}-value"
        record = json.dumps({"type": "record", "name": f"R{i}", "fields": [{"name": "x", "type": "int"}]})

        def registered(client=client, subject=subject, record=record, label=label):
            try:
                ids[subject] = client.register_schema(subject, Schema(record, "AVRO"))
                return True
            except Exception as e:  # the cluster may still be electing _schemas' leader
                print(f"register via {label}: {e}")
                return False

        wait_until(registered, SETTLE_S, f"a register through {label}")
    return ids


def test_the_schema_registry_takes_writes_on_any_node_and_every_node_serves_them(cluster):
    from confluent_kafka.schema_registry import SchemaRegistryClient

    nodes = list(cluster.nodes.values())
    urls = [f"http://127.0.0.1:{n.registry_port}" for n in nodes]
    ids = register_through_each({url: SchemaRegistryClient({"url": url}) for url in urls})
    # One writer assigned the ids: distinct, 1..3.
    assert sorted(ids.values()) == [1, 2, 3], ids
    for url in urls:
        def serves_all(url=url):
            client = SchemaRegistryClient({"url": url})
            return sorted(client.get_subjects()) == sorted(ids) and all(
                client.get_latest_version(s).schema_id == i for s, i in ids.items())
        wait_until(serves_all, SETTLE_S, f"{url} to serve every subject")


def test_nodes_without_a_schemas_replica_forward_registry_reads_and_writes(tmp_path):
    """With `_schemas` on one node only (replication factor 1), the other
    nodes host no replica: they forward every registry request, reads
    included, to its leader, on the registry listener and on the console's
    /v1/registry route alike."""
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    c = Cluster(tmp_path)
    for n in c.nodes.values():
        n.extra_args += ["--set", "groups.offsets_topic_replication_factor=1"]
    c.start()
    try:
        first = next(iter(c.nodes.values()))
        record = json.dumps({"type": "record", "name": "Solo", "fields": [{"name": "x", "type": "int"}]})

        def registered():
            try:
                return SchemaRegistryClient({"url": f"http://127.0.0.1:{first.registry_port}"}).register_schema(
                    "solo-value", Schema(record, "AVRO"))
            except Exception as e:  # the cluster may still be electing _schemas' leader
                print(f"register: {e}")
                return None

        schema_id = wait_until(registered, SETTLE_S, "a register")
        placement = Http(first).get("/v1/topics/_schemas")["partitions"][0]
        assert len(placement["replicas"]) == 1, placement
        outsiders = [n for n in c.nodes.values() if n.node_id not in placement["replicas"]]
        assert len(outsiders) == 2
        for n in outsiders:
            client = SchemaRegistryClient({"url": f"http://127.0.0.1:{n.registry_port}"})
            assert client.get_subjects() == ["solo-value"]
            assert client.get_schema(schema_id).schema_str == record
            v2 = json.dumps({"type": "record", "name": "Solo", "fields": [
                {"name": "x", "type": "int"}, {"name": f"n{n.node_id}", "type": "int", "default": 0}]})
            client.register_schema("solo-value", Schema(v2, "AVRO"))
            status, body = Http(n).call("GET", "/v1/registry/subjects/solo-value/versions")
            assert status == 200, body
        assert Http(first).ok("GET", "/v1/registry/subjects/solo-value/versions") == [1, 2, 3]
    finally:
        c.stop()


def test_registry_requests_are_forwarded_to_a_leader_behind_http_tls(tmp_path):
    """With `http_tls` on, every node's registry listener speaks HTTPS; a
    node that does not lead `_schemas-0` forwards writes to the leader over
    TLS, trusting `tls.ca_file`, so a register through any node works."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from test_tls import Pki

    pki = Pki(tmp_path / "pki")
    c = Cluster(tmp_path)
    for n in c.nodes.values():
        pki.issue(f"node{n.node_id}")
        n.extra_args += [
            "--set", "http_tls=true",
            "--set", f"tls.cert_file={pki.cert(f'node{n.node_id}')}",
            "--set", f"tls.key_file={pki.key(f'node{n.node_id}')}",
            "--set", f"tls.ca_file={pki.ca}",
        ]
    for n in c.nodes.values():
        n.start()
    try:
        def client(n):
            return SchemaRegistryClient({"url": f"https://127.0.0.1:{n.registry_port}",
                                         "ssl.ca.location": pki.ca})

        ids = register_through_each({f"node {n.node_id}": client(n) for n in c.nodes.values()})
        assert sorted(ids.values()) == [1, 2, 3], ids
        for n in c.nodes.values():
            wait_until(lambda n=n: sorted(client(n).get_subjects()) == sorted(ids), SETTLE_S,
                       f"node {n.node_id} to serve every subject")
    finally:
        c.stop()
