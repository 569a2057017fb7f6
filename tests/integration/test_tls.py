"""TLS listeners with real clients: kcat (Debian's librdkafka), confluent-kafka
and kafka-python produce and consume over SSL, with and without a client
certificate (mTLS); a PLAINTEXT and an SSL listener side by side each
advertise their own endpoint; untrusted certificates on either side, and TLS
garbage, cost only their own connection; replaced certificate files are
served to new connections without a restart.

Certificates come from `sluice tls gen-ca` / `gen-cert` in the test's temp
dir, so nothing outside the repository is needed."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from clients import confluent_produce_consume
from harness import Broker, sluice_bin
from util import free_port, unique_topic, wait_until

# Client-side bound on one produce or consume run against a local broker.
CLIENT_TIMEOUT_S = 60.0
# Bound on a refused client's attempt: it fails its handshake at once.
REFUSED_TIMEOUT_S = 10.0
RECORDS = 20


class Pki:
    """A throwaway CA with a server certificate and client certificates, and
    a second, untrusted CA with its own client certificate."""

    def __init__(self, root: Path):
        self.root = root
        self.ca_dir = root / "ca"
        self.certs = root / "certs"
        self.stranger_dir = root / "stranger"
        sluice("tls", "gen-ca", "--out", str(self.ca_dir))
        sluice("tls", "gen-ca", "--out", str(self.stranger_dir), "--name", "Stranger CA")
        self.issue("localhost")
        self.issue("alice", "--client", "--ou", "eng")
        sluice("tls", "gen-cert", "--ca", str(self.stranger_dir), "--name", "mallory",
               "--out", str(self.certs), "--client")

    def issue(self, name: str, *extra: str, out: Path | None = None) -> None:
        sluice("tls", "gen-cert", "--ca", str(self.ca_dir), "--name", name,
               "--out", str(out or self.certs), *extra)

    @property
    def ca(self) -> str:
        return str(self.ca_dir / "ca.pem")

    @property
    def stranger_ca(self) -> str:
        return str(self.stranger_dir / "ca.pem")

    def cert(self, name: str) -> str:
        return str(self.certs / f"{name}.pem")

    def key(self, name: str) -> str:
        return str(self.certs / f"{name}.key")


def sluice(*args: str) -> str:
    res = subprocess.run([str(sluice_bin()), *args], capture_output=True, timeout=60)
    assert res.returncode == 0, f"sluice {' '.join(args)}: {res.stderr.decode(errors='replace')}"
    return res.stdout.decode()


class ListenerBroker(Broker):
    """A broker configured through a TOML file with named listeners instead
    of the harness's --kafka-listener flag."""

    def __init__(self, workdir: Path, config: str, ready_port: int):
        super().__init__(workdir)
        self.kafka_port = ready_port
        self.config_path = workdir / "sluice.toml"
        self.config_path.write_text(config)

    def command(self) -> list[str]:
        return [
            str(self.bin), "serve",
            "--config", str(self.config_path),
            "--data-dir", str(self.data_dir),
            "--http-listener", f"127.0.0.1:{self.http_port}",
            "--schema-registry-listener", "",
            "--node-id", "1",
        ]


@pytest.fixture
def pki(tmp_path) -> Pki:
    return Pki(tmp_path / "pki")


@pytest.fixture
def start_broker(tmp_path):
    brokers: list[ListenerBroker] = []

    def start(config: str, ready_port: int) -> ListenerBroker:
        b = ListenerBroker(tmp_path / f"broker{len(brokers) + 1}", config, ready_port)
        brokers.append(b)
        return b.start()

    yield start
    for b in brokers:
        if b.alive():
            b.stop(check=False)
        b._close_log()


def tls_toml(pki: Pki, *, mtls: bool = False, reload_ms: int | None = None) -> str:
    lines = ["[tls]", f'cert_file = "{pki.cert("localhost")}"', f'key_file = "{pki.key("localhost")}"']
    if mtls:
        lines.append(f'client_ca_file = "{pki.ca}"')
    if reload_ms is not None:
        lines.append(f"reload_interval_ms = {reload_ms}")
    return "\n".join(lines) + "\n"


def ssl_broker(start_broker, pki: Pki, *, mtls: bool = False, reload_ms: int | None = None):
    port = free_port()
    config = f'listeners = ["SSL://127.0.0.1:{port}"]\n' + tls_toml(pki, mtls=mtls, reload_ms=reload_ms)
    return start_broker(config, port), f"127.0.0.1:{port}"


def confluent_ssl(pki: Pki, client: str | None, ca: str | None = None) -> dict:
    conf = {"security.protocol": "SSL", "ssl.ca.location": ca or pki.ca}
    if client:
        conf["ssl.certificate.location"] = pki.cert(client)
        conf["ssl.key.location"] = pki.key(client)
    return conf


def create_topic(bootstrap: str, topic: str, conf: dict) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, **conf})
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    futures[topic].result(timeout=CLIENT_TIMEOUT_S)


def payloads(topic: str) -> list[bytes]:
    return [f"{topic}-{i}".encode() for i in range(RECORDS)]


def confluent_round_trip(bootstrap: str, topic: str, conf: dict) -> list[bytes]:
    return confluent_produce_consume({"bootstrap.servers": bootstrap, **conf}, topic, payloads(topic), CLIENT_TIMEOUT_S)


def kafka_python_round_trip(bootstrap: str, topic: str, pki: Pki, client: str | None) -> list[bytes]:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    ssl_args = {"security_protocol": "SSL", "ssl_cafile": pki.ca}
    if client:
        ssl_args.update(ssl_certfile=pki.cert(client), ssl_keyfile=pki.key(client))
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **ssl_args)
    for v in payloads(topic):
        p.send(topic, value=v).get(timeout=CLIENT_TIMEOUT_S)
    p.close()
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                      consumer_timeout_ms=int(CLIENT_TIMEOUT_S * 1000), **ssl_args)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got: list[bytes] = []
    for m in c:
        got.append(m.value)
        if len(got) == RECORDS:
            break
    c.close()
    return got


def kcat_ssl_args(pki: Pki, client: str | None, ca: str | None = None) -> list[str]:
    args = ["-X", "security.protocol=ssl", "-X", f"ssl.ca.location={ca or pki.ca}"]
    if client:
        args += ["-X", f"ssl.certificate.location={pki.cert(client)}",
                 "-X", f"ssl.key.location={pki.key(client)}"]
    return args


def kcat_round_trip(bootstrap: str, topic: str, pki: Pki, client: str | None) -> list[bytes]:
    ssl_args = kcat_ssl_args(pki, client)
    stdin = b"".join(v + b"\n" for v in payloads(topic))
    res = subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-p", "0",
                          "-X", "acks=all", *ssl_args],
                         input=stdin, capture_output=True, timeout=CLIENT_TIMEOUT_S)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    res = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-p", "0",
                          "-o", "beginning", "-e", "-q", *ssl_args],
                         capture_output=True, timeout=CLIENT_TIMEOUT_S)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    return res.stdout.split(b"\n")[:-1]


CLIENT_NAMES = ["kcat", "confluent", "kafka-python"]


def round_trip(client: str, bootstrap: str, topic: str, pki: Pki, identity: str | None) -> list[bytes]:
    create_topic(bootstrap, topic, confluent_ssl(pki, identity))
    if client == "kcat":
        return kcat_round_trip(bootstrap, topic, pki, identity)
    if client == "confluent":
        return confluent_round_trip(bootstrap, topic, confluent_ssl(pki, identity))
    return kafka_python_round_trip(bootstrap, topic, pki, identity)


@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_each_client_produces_and_consumes_over_ssl(client, pki, start_broker):
    _, bootstrap = ssl_broker(start_broker, pki)
    topic = unique_topic(f"ssl-{client}")
    assert round_trip(client, bootstrap, topic, pki, None) == payloads(topic)


@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_each_client_produces_and_consumes_over_ssl_with_a_required_client_certificate(
    client, pki, start_broker
):
    _, bootstrap = ssl_broker(start_broker, pki, mtls=True)
    topic = unique_topic(f"mtls-{client}")
    assert round_trip(client, bootstrap, topic, pki, "alice") == payloads(topic)


def metadata_brokers(bootstrap: str, conf: dict) -> list[tuple[int, str, int]]:
    admin = AdminClient({"bootstrap.servers": bootstrap, **conf})
    md = admin.list_topics(timeout=CLIENT_TIMEOUT_S)
    return sorted((b.id, b.host, b.port) for b in md.brokers.values())


def test_a_plaintext_and_an_ssl_listener_each_advertise_their_own_endpoint(pki, start_broker):
    plain, secure = free_port(), free_port()
    advertised_plain, advertised_secure = free_port(), free_port()
    # The advertised ports differ from the bound ones so the test can tell
    # an endpoint from its listener; clients only bootstrap through the
    # bound ports and then read Metadata.
    config = (
        f'listeners = ["CLIENT://127.0.0.1:{plain}", "SECURE://127.0.0.1:{secure}"]\n'
        f'listener_security_protocol_map = ["CLIENT:PLAINTEXT", "SECURE:SSL"]\n'
        f'advertised_listeners = ["CLIENT://127.0.0.1:{advertised_plain}", '
        f'"SECURE://localhost:{advertised_secure}"]\n'
        + tls_toml(pki)
    )
    start_broker(config, plain)
    assert metadata_brokers(f"127.0.0.1:{plain}", {}) == [(1, "127.0.0.1", advertised_plain)]
    assert metadata_brokers(f"127.0.0.1:{secure}", confluent_ssl(pki, None)) == [
        (1, "localhost", advertised_secure)
    ]


def test_both_listeners_serve_the_same_data(pki, start_broker):
    plain, secure = free_port(), free_port()
    config = (
        f'listeners = ["PLAINTEXT://127.0.0.1:{plain}", "SSL://127.0.0.1:{secure}"]\n'
        + tls_toml(pki)
    )
    start_broker(config, plain)
    topic = unique_topic("both")
    create_topic(f"127.0.0.1:{plain}", topic, {})
    p = Producer({"bootstrap.servers": f"127.0.0.1:{plain}", "acks": "all"})
    for v in payloads(topic):
        p.produce(topic, value=v)
    assert p.flush(CLIENT_TIMEOUT_S) == 0
    got = kcat_round_trip_consume_only(f"127.0.0.1:{secure}", topic, pki)
    assert got == payloads(topic)


def kcat_round_trip_consume_only(bootstrap: str, topic: str, pki: Pki) -> list[bytes]:
    res = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-p", "0",
                          "-o", "beginning", "-e", "-q", *kcat_ssl_args(pki, None)],
                         capture_output=True, timeout=CLIENT_TIMEOUT_S)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    return res.stdout.split(b"\n")[:-1]


def refused_list_topics(bootstrap: str, conf: dict) -> str:
    """Runs Metadata with `conf`; returns the client's error, failing if the
    request succeeded."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **conf})
    with pytest.raises(KafkaException) as err:
        admin.list_topics(timeout=REFUSED_TIMEOUT_S)
    return str(err.value)


def test_an_untrusted_client_certificate_is_refused_and_the_broker_stays_up(pki, start_broker):
    broker, bootstrap = ssl_broker(start_broker, pki, mtls=True)
    refused_list_topics(bootstrap, confluent_ssl(pki, "mallory"))
    refused_list_topics(bootstrap, confluent_ssl(pki, None))
    res = subprocess.run(["kcat", "-L", "-b", bootstrap, "-m", "5", *kcat_ssl_args(pki, "mallory")],
                         capture_output=True, timeout=CLIENT_TIMEOUT_S)
    assert res.returncode != 0, "kcat with an untrusted certificate must fail"
    assert broker.alive()
    # A trusted client is served as before.
    assert metadata_brokers(bootstrap, confluent_ssl(pki, "alice"))[0][0] == 1


def test_a_client_that_does_not_trust_the_broker_ca_fails(pki, start_broker):
    broker, bootstrap = ssl_broker(start_broker, pki)
    error = refused_list_topics(bootstrap, confluent_ssl(pki, None, ca=pki.stranger_ca))
    assert "_TRANSPORT" in error or "SSL" in error or "ssl" in error, error
    # Python's ssl module agrees: the chain does not verify.
    ctx = ssl.create_default_context(cafile=pki.stranger_ca)
    host, port = bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=REFUSED_TIMEOUT_S) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="localhost")
    assert broker.alive()


def read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(REFUSED_TIMEOUT_S)
    out = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def test_tls_garbage_costs_only_its_connection(pki, start_broker):
    broker, bootstrap = ssl_broker(start_broker, pki)
    host, port = bootstrap.split(":")
    # An ApiVersions v0 request in the clear, then random bytes.
    api_versions = bytes([0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF])
    for junk in (api_versions, os.urandom(4096), b"\x16\x03\x01\xff\xff" + os.urandom(64)):
        with socket.create_connection((host, int(port)), timeout=REFUSED_TIMEOUT_S) as s:
            try:
                s.sendall(junk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            reply = read_until_closed(s)
            # Whatever comes back is a TLS alert record (type 21), never a
            # Kafka response.
            assert reply == b"" or reply[0] == 21, reply[:32]
    assert broker.alive()
    assert metadata_brokers(bootstrap, confluent_ssl(pki, None))[0][0] == 1


def served_certificate(bootstrap: str, ca: str) -> dict:
    ctx = ssl.create_default_context(cafile=ca)
    host, port = bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=REFUSED_TIMEOUT_S) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert()


def test_replaced_certificate_files_are_served_to_new_connections(pki, start_broker):
    _, bootstrap = ssl_broker(start_broker, pki, reload_ms=100)
    before = served_certificate(bootstrap, pki.ca)
    # A new certificate for the same name, written next to the old files
    # and renamed over them (as a certificate manager does).
    fresh = pki.root / "fresh"
    pki.issue("localhost", out=fresh)
    os.replace(fresh / "localhost.key", pki.key("localhost"))
    os.replace(fresh / "localhost.pem", pki.cert("localhost"))
    wait_until(
        lambda: served_certificate(bootstrap, pki.ca)["serialNumber"] != before["serialNumber"],
        CLIENT_TIMEOUT_S, "the reloaded certificate to be served",
    )
    # Clients keep working with the new certificate.
    topic = unique_topic("reload")
    assert round_trip("confluent", bootstrap, topic, pki, None) == payloads(topic)


def test_a_broken_replacement_keeps_the_previous_certificate(pki, start_broker):
    broker, bootstrap = ssl_broker(start_broker, pki, reload_ms=100)
    before = served_certificate(bootstrap, pki.ca)
    Path(pki.cert("localhost")).write_text("not a certificate\n")
    wait_until(
        lambda: "do not load" in broker.log_tail(200),
        CLIENT_TIMEOUT_S, "the broker to log the refused reload",
    )
    assert served_certificate(bootstrap, pki.ca)["serialNumber"] == before["serialNumber"]
    assert broker.alive()


def test_a_bad_certificate_file_fails_the_start_with_a_clear_error(pki, tmp_path):
    port = free_port()
    bad = tmp_path / "bad.pem"
    bad.write_text("garbage\n")
    config = tmp_path / "sluice.toml"
    config.write_text(
        f'listeners = ["SSL://127.0.0.1:{port}"]\n[tls]\ncert_file = "{bad}"\n'
        f'key_file = "{pki.key("localhost")}"\n'
    )
    res = subprocess.run(
        [str(sluice_bin()), "serve", "--config", str(config), "--data-dir", str(tmp_path / "d"),
         "--http-listener", f"127.0.0.1:{free_port()}"],
        capture_output=True, timeout=60,
    )
    assert res.returncode != 0
    assert "tls.cert_file" in res.stderr.decode(), res.stderr.decode()[-2000:]


def test_http_tls_serves_the_api_over_tls_and_lists_every_listener(pki, start_broker):
    import json
    import urllib.request

    plain, secure = free_port(), free_port()
    config = (
        f'listeners = ["PLAINTEXT://127.0.0.1:{plain}", "SSL://127.0.0.1:{secure}"]\n'
        f'advertised_listeners = ["SSL://localhost:{secure}"]\n'
        "http_tls = true\n" + tls_toml(pki)
    )
    broker = start_broker(config, plain)
    ctx = ssl.create_default_context(cafile=pki.ca)
    url = f"https://localhost:{broker.http_port}/v1/cluster"

    def fetch():
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=REFUSED_TIMEOUT_S) as r:
                return json.loads(r.read())
        except OSError:
            return None

    wait_until(lambda: fetch() is not None, CLIENT_TIMEOUT_S, "the HTTPS API to answer")
    listeners = sorted((l["name"], l["host"], l["port"], l["security_protocol"]) for l in fetch()["listeners"])
    assert listeners == [
        ("PLAINTEXT", "127.0.0.1", plain, "PLAINTEXT"),
        ("SSL", "localhost", secure, "SSL"),
    ]
    # Plain HTTP on the TLS port gets no API answer.
    with socket.create_connection(("127.0.0.1", broker.http_port), timeout=REFUSED_TIMEOUT_S) as s:
        s.sendall(b"GET /v1/cluster HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"HTTP/1.1 200" not in read_until_closed(s)


def test_sluice_status_lists_every_listener(pki, start_broker):
    import json

    plain, secure = free_port(), free_port()
    config = f'listeners = ["PLAINTEXT://127.0.0.1:{plain}", "SSL://127.0.0.1:{secure}"]\n' + tls_toml(pki)
    broker = start_broker(config, plain)
    out = sluice("status", "--bootstrap-server", f"127.0.0.1:{plain}",
                 "--http-server", f"127.0.0.1:{broker.http_port}", "--json")
    assert json.loads(out)["kafka_listeners"] == [
        f"PLAINTEXT://127.0.0.1:{plain} (PLAINTEXT)",
        f"SSL://127.0.0.1:{secure} (SSL)",
    ]


def test_a_cluster_replicates_over_an_ssl_inter_broker_listener_and_names_each_listeners_endpoints(
    pki, tmp_path
):
    """Three nodes whose inter-broker listener is SSL with required client
    certificates: replication and peers connect over TLS with the brokers'
    own certificates (acks=all needs every replica in sync), and Metadata
    through the PLAINTEXT listener names every broker by its PLAINTEXT
    endpoint."""
    ids = (1, 2, 3)
    controller = {i: free_port() for i in ids}
    plain = {i: free_port() for i in ids}
    internal = {i: free_port() for i in ids}
    voters = ",".join(f"{i}@127.0.0.1:{controller[i]}" for i in ids)
    nodes: list[ListenerBroker] = []
    try:
        for i in ids:
            config = (
                f'listeners = ["PLAINTEXT://127.0.0.1:{plain[i]}", "INTERNAL://127.0.0.1:{internal[i]}"]\n'
                'listener_security_protocol_map = ["PLAINTEXT:PLAINTEXT", "INTERNAL:SSL"]\n'
                'inter_broker_listener_name = "INTERNAL"\n'
                f'controller_listener = "127.0.0.1:{controller[i]}"\n'
                f"[cluster]\nvoters = \"{voters}\"\n"
                + tls_toml(pki, mtls=True)
            )
            node = ListenerBroker(tmp_path / f"node{i}", config, plain[i])
            node.command = (lambda n=node, i=i: [
                str(n.bin), "serve", "--config", str(n.config_path),
                "--data-dir", str(n.data_dir),
                "--http-listener", f"127.0.0.1:{n.http_port}", "--node-id", str(i),
                "--schema-registry-listener", "",
            ])
            nodes.append(node)
        for node in nodes:
            node.start()
        bootstrap = f"127.0.0.1:{plain[1]}"
        expected = [(i, "127.0.0.1", plain[i]) for i in ids]

        def all_listed() -> bool:
            try:
                return metadata_brokers(bootstrap, {}) == expected
            except KafkaException:
                return False

        wait_until(all_listed, CLIENT_TIMEOUT_S, "every broker listed at its PLAINTEXT endpoint")
        admin = AdminClient({"bootstrap.servers": bootstrap})

        topic = unique_topic("ssl-replicated")

        # Metadata lists brokers before a controller is elected and before
        # it has heard from each of them, and a just-elected controller
        # places replicas only on brokers it has heard from: the topic can
        # be created once every broker has heartbeated to it.
        def created() -> bool:
            future = admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])[topic]
            try:
                future.result(timeout=CLIENT_TIMEOUT_S)
            except KafkaException as e:
                error = e.args[0]
                if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    return True  # an earlier attempt went through
                # Too few brokers heard from yet, or no controller elected
                # yet. An admin result's error carries no retriable flag, so
                # NOT_CONTROLLER is named.
                not_yet = (KafkaError.INVALID_REPLICATION_FACTOR, KafkaError.NOT_CONTROLLER)
                if error.code() in not_yet or error.retriable():
                    return False
                raise
            return True

        wait_until(created, CLIENT_TIMEOUT_S, "a topic replicated on all three brokers", interval_s=0.5)
        got = confluent_round_trip(bootstrap, topic, {})
        assert sorted(got) == sorted(payloads(topic))
        # Every partition's ISR holds all three replicas: followers fetch
        # over the SSL listener.
        def fully_in_sync() -> bool:
            md = admin.list_topics(topic, timeout=CLIENT_TIMEOUT_S)
            return all(sorted(p.isrs) == [1, 2, 3] for p in md.topics[topic].partitions.values())

        wait_until(fully_in_sync, CLIENT_TIMEOUT_S, "every replica in sync")
    finally:
        for node in nodes:
            if node.alive():
                node.stop(check=False)
            node._close_log()


# -- the sluice CLI as a TLS client ------------------------------------------------


def cli(*args: str, stdin: bytes = b"", env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs the sluice CLI; the caller checks the exit status."""
    return subprocess.run([str(sluice_bin()), *args], input=stdin, capture_output=True,
                          timeout=CLIENT_TIMEOUT_S, env=env)


def cli_tls_args(pki: Pki, client: str | None, ca: str | None = None) -> list[str]:
    args = ["--security-protocol", "SSL", "--tls-ca-file", ca or pki.ca]
    if client:
        args += ["--tls-cert-file", pki.cert(client), "--tls-key-file", pki.key(client)]
    return args


def cli_round_trip(topic: str, conn: list[str], env: dict | None = None) -> list[bytes]:
    """Creates `topic`, produces the payloads and reads them back with the
    CLI, connecting as `conn` says."""
    for args, stdin in [
        (["topic", "create", topic, *conn], b""),
        (["produce", topic, *conn], b"".join(v + b"\n" for v in payloads(topic))),
    ]:
        res = cli(*args, stdin=stdin, env=env)
        assert res.returncode == 0, res.stderr.decode(errors="replace")
    res = cli("consume", topic, "--from-beginning", "-e", "-n", str(RECORDS), *conn, env=env)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    return res.stdout.split(b"\n")[:-1]


def test_the_cli_produces_and_consumes_over_ssl_with_flags(pki, start_broker):
    _, bootstrap = ssl_broker(start_broker, pki)
    topic = unique_topic("cli-ssl")
    # 127.0.0.1 is in the server certificate's IP SANs: the name checked is -b's host.
    assert cli_round_trip(topic, ["-b", bootstrap, *cli_tls_args(pki, None)]) == payloads(topic)
    # kcat reads what the CLI wrote over TLS.
    assert kcat_round_trip_consume_only(bootstrap, topic, pki) == payloads(topic)


def test_the_cli_speaks_mutual_tls_with_a_client_certificate(pki, start_broker):
    _, bootstrap = ssl_broker(start_broker, pki, mtls=True)
    topic = unique_topic("cli-mtls")
    assert cli_round_trip(topic, ["-b", bootstrap, *cli_tls_args(pki, "alice")]) == payloads(topic)
    # Without a certificate the broker refuses, in one line.
    res = cli("topic", "list", "-b", bootstrap, *cli_tls_args(pki, None))
    err = res.stderr.decode(errors="replace")
    assert res.returncode == 1, err
    assert err.count("\n") == 1 and "client certificate" in err, err


def test_the_cli_takes_tls_settings_from_a_properties_file(pki, start_broker, tmp_path):
    _, bootstrap = ssl_broker(start_broker, pki, mtls=True)
    props = tmp_path / "client.properties"
    props.write_text(f"security.protocol=SSL\nssl.ca.location={pki.ca}\n"
                     f"ssl.certificate.location={pki.cert('alice')}\nssl.key.location={pki.key('alice')}\n")
    topic = unique_topic("cli-props")
    assert cli_round_trip(topic, ["-b", bootstrap, "--command-config", str(props)]) == payloads(topic)


def test_a_cli_profile_holds_the_tls_settings(pki, start_broker, tmp_path):
    _, bootstrap = ssl_broker(start_broker, pki, mtls=True)
    env = {k: v for k, v in os.environ.items() if k not in ("SLUICE_BOOTSTRAP", "SLUICE_PROFILE")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    res = cli("profile", "create", "secure", "-b", bootstrap, "--security-protocol", "SSL",
              "--tls-ca-file", pki.ca, "--tls-cert-file", pki.cert("alice"),
              "--tls-key-file", pki.key("alice"), env=env)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    stored = (tmp_path / "config" / "sluice" / "profiles.toml").read_text()
    assert 'security_protocol = "SSL"' in stored and pki.key("alice") in stored, stored
    assert "PRIVATE KEY" not in stored, "a profile stores paths, never key material"
    topic = unique_topic("cli-profile")
    assert cli_round_trip(topic, [], env=env) == payloads(topic)
    # -X overrides one TLS setting of the profile: a stranger's CA is refused.
    res = cli("topic", "list", "-X", f"ssl.ca.location={pki.stranger_ca}", env=env)
    assert res.returncode == 1 and b"certificate not trusted" in res.stderr, res.stderr


def test_the_cli_says_in_one_line_why_a_tls_connection_failed(pki, start_broker):
    plain, secure = free_port(), free_port()
    config = f'listeners = ["PLAINTEXT://127.0.0.1:{plain}", "SSL://127.0.0.1:{secure}"]\n' + tls_toml(pki)
    broker = start_broker(config, plain)
    cases = [
        # A CA that did not sign the broker's certificate.
        ([f"127.0.0.1:{secure}", *cli_tls_args(pki, None, ca=pki.stranger_ca)],
         f"error: 127.0.0.1:{secure}: TLS handshake failed: certificate not trusted (--tls-ca-file?)"),
        # TLS to a plaintext listener.
        ([f"127.0.0.1:{plain}", *cli_tls_args(pki, None)], "--security-protocol"),
        # Plaintext to a TLS listener.
        ([f"127.0.0.1:{secure}"], "--security-protocol"),
    ]
    for args, expected in cases:
        started = time.monotonic()
        res = cli("topic", "list", "-b", *args)
        err = res.stderr.decode(errors="replace")
        assert res.returncode == 1, (args, err)
        assert err.count("\n") == 1 and expected in err, (args, err)
        assert "panicked" not in err
        assert time.monotonic() - started < REFUSED_TIMEOUT_S * 2, (args, "took too long")
    # SSL without a CA file is refused before connecting: no platform roots.
    res = cli("topic", "list", "-b", f"127.0.0.1:{secure}", "--security-protocol", "SSL")
    assert res.returncode == 1 and b"--tls-ca-file" in res.stderr, res.stderr
    assert broker.alive()
