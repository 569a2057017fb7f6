"""SASL authentication on a SASL_PLAINTEXT listener (issue 15): SCRAM-SHA-512,
SCRAM-SHA-256 and PLAIN with kcat, confluent-kafka and kafka-python; users
from `[[sasl.bootstrap_users]]` and from AlterUserScramCredentials; refusals
(wrong password, unknown user, requests before authentication, hostile
tokens) that cost only their own connection."""

from __future__ import annotations

import logging
import socket
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    NewTopic,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from clients import confluent_produce_consume
from util import frame, i16, i32, kstring, request_header_v1, unique_topic, wait_until

ADMIN = ("admin", "admin-secret")
ALICE_256 = ("alice", "alice-secret")
TIMEOUT_S = 30
SASL_AUTHENTICATION_FAILED = 58
ILLEGAL_SASL_STATE = 34
UNSUPPORTED_SASL_MECHANISM = 33

# Mechanism -> (user, password) that the bootstrap config makes valid for it.
# PLAIN checks against the SCRAM store, here admin's SCRAM-SHA-512 credential.
LOGINS = {
    "SCRAM-SHA-512": ADMIN,
    "SCRAM-SHA-256": ALICE_256,
    "PLAIN": ADMIN,
}


def sasl_config(tmp_path, extra: str = "") -> str:
    path = tmp_path / "sasl.toml"
    password_file = tmp_path / "alice.pw"
    password_file.write_text(ALICE_256[1] + "\n")
    path.write_text(
        f"""
kafka_security_protocol = "SASL_PLAINTEXT"
{extra}
[sasl]
enabled_mechanisms = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
failed_authentication_delay_ms = 100

[[sasl.bootstrap_users]]
name = "{ADMIN[0]}"
password = "{ADMIN[1]}"
mechanism = "SCRAM-SHA-512"

[[sasl.bootstrap_users]]
name = "{ALICE_256[0]}"
password_file = "{password_file}"
mechanism = "SCRAM-SHA-256"
iterations = 8192
"""
    )
    return str(path)


@pytest.fixture
def sasl_broker(broker_factory, tmp_path):
    return broker_factory.new(extra_args=["--config", sasl_config(tmp_path)])


def confluent_conf(broker, mechanism: str, user: str, password: str) -> dict:
    return {
        "bootstrap.servers": broker.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }


def admin_client(broker, login=ADMIN, mechanism="SCRAM-SHA-512") -> AdminClient:
    return AdminClient(confluent_conf(broker, mechanism, *login))


def create_topic(broker, topic: str) -> None:
    admin = admin_client(broker)  # kept alive until the result arrives
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    futures[topic].result(TIMEOUT_S)


# -- each client, each mechanism ------------------------------------------------


def produce_consume_confluent(broker, topic, mechanism, user, password) -> list[bytes]:
    values = [f"m{i}".encode() for i in range(5)]
    return confluent_produce_consume(confluent_conf(broker, mechanism, user, password), topic, values, TIMEOUT_S)


def produce_consume_kafka_python(broker, topic, mechanism, user, password) -> list[bytes]:
    from kafka import KafkaConsumer, KafkaProducer

    conf = dict(
        bootstrap_servers=broker.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
    )
    p = KafkaProducer(**conf)
    for i in range(5):
        p.send(topic, f"m{i}".encode()).get(TIMEOUT_S)
    p.close()
    c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=TIMEOUT_S * 1000, **conf)
    got = []
    for m in c:
        got.append(m.value)
        if len(got) == 5:
            break
    c.close()
    return got


def kcat(broker, mechanism, user, password, *args, input_bytes: bytes | None = None):
    cmd = [
        "kcat", "-b", broker.bootstrap,
        "-X", "security.protocol=SASL_PLAINTEXT",
        "-X", f"sasl.mechanisms={mechanism}",
        "-X", f"sasl.username={user}",
        "-X", f"sasl.password={password}",
        *args,
    ]
    return subprocess.run(cmd, input=input_bytes, capture_output=True, timeout=TIMEOUT_S)


def produce_consume_kcat(broker, topic, mechanism, user, password) -> list[bytes]:
    lines = b"".join(f"m{i}\n".encode() for i in range(5))
    out = kcat(broker, mechanism, user, password, "-P", "-t", topic, input_bytes=lines)
    assert out.returncode == 0, out.stderr.decode()
    out = kcat(broker, mechanism, user, password, "-C", "-t", topic, "-o", "beginning", "-c", "5", "-e")
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.splitlines()


CLIENTS = {
    "confluent": produce_consume_confluent,
    "kafka-python": produce_consume_kafka_python,
    "kcat": produce_consume_kcat,
}


@pytest.mark.parametrize("mechanism", list(LOGINS))
@pytest.mark.parametrize("client", list(CLIENTS))
def test_each_client_produces_and_consumes_with_each_mechanism(sasl_broker, client, mechanism):
    topic = unique_topic(f"sasl-{client}-{mechanism}")
    create_topic(sasl_broker, topic)
    got = CLIENTS[client](sasl_broker, topic, mechanism, *LOGINS[mechanism])
    assert got == [f"m{i}".encode() for i in range(5)]


# -- refusals ------------------------------------------------------------------


def confluent_login_error(broker, mechanism, user, password) -> KafkaError:
    """The error a confluent-kafka client reports when its login is refused:
    librdkafka reports authentication failures through its error callback."""
    errors: list[KafkaError] = []
    admin = AdminClient({**confluent_conf(broker, mechanism, user, password), "error_cb": errors.append})
    try:
        admin.list_topics(timeout=5)
    except KafkaException:
        pass
    else:
        raise AssertionError(f"{user} logged in with {mechanism}")
    wait_until(
        lambda: admin.poll(0.1) is not None and any(e.code() == KafkaError._AUTHENTICATION for e in errors),
        TIMEOUT_S,
        "an authentication error",
    )
    return next(e for e in errors if e.code() == KafkaError._AUTHENTICATION)


@pytest.mark.parametrize("mechanism", list(LOGINS))
def test_wrong_password_and_unknown_user_are_refused_and_others_keep_working(sasl_broker, mechanism):
    user, password = LOGINS[mechanism]
    for bad_user, bad_password in [(user, password + "x"), ("nobody", password)]:
        err = confluent_login_error(sasl_broker, mechanism, bad_user, bad_password)
        assert err.code() == KafkaError._AUTHENTICATION, err
    assert sasl_broker.alive()
    assert "Authentication failed" in sasl_broker.log_text()
    # The broker still serves a good login.
    assert admin_client(sasl_broker).list_topics(timeout=TIMEOUT_S).brokers


def kafka_python_refusals(caplog) -> list[str]:
    """What kafka-python logged about refused logins: the errors its
    bootstrap gave up a connection for."""
    return [r.getMessage() for r in caplog.records
            if r.name.startswith("kafka") and "SaslAuthenticationFailedError" in r.getMessage()]


@pytest.mark.parametrize("mechanism", list(LOGINS))
def test_kafka_python_reads_the_brokers_authentication_failure(sasl_broker, mechanism, caplog):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaTimeoutError

    caplog.set_level(logging.WARNING, logger="kafka")
    user, password = LOGINS[mechanism]
    # kafka-python 3.0's bootstrap retries every failed connection, an
    # authentication failure included, until bootstrap_timeout_ms: what it
    # raises is the timeout (docs/compatibility.md). Each attempt must have
    # read the broker's SASL_AUTHENTICATION_FAILED and its message, not a
    # bare close.
    with pytest.raises(KafkaTimeoutError):
        KafkaAdminClient(bootstrap_servers=sasl_broker.bootstrap, security_protocol="SASL_PLAINTEXT",
                         sasl_mechanism=mechanism, sasl_plain_username=user,
                         sasl_plain_password=password + "x", bootstrap_timeout_ms=5_000)
    refusals = kafka_python_refusals(caplog)
    assert refusals, [r.getMessage() for r in caplog.records][-10:]
    assert all("Authentication failed" in m for m in refusals), refusals
    assert not any("socket disconnected" in r.getMessage() for r in caplog.records)


def test_kcat_with_a_wrong_password_fails(sasl_broker):
    out = kcat(sasl_broker, "SCRAM-SHA-512", ADMIN[0], "wrong", "-L", "-m", "5")
    assert out.returncode != 0
    assert b"Authentication failed" in out.stderr or b"authentication" in out.stderr.lower(), out.stderr


# -- credentials through the API -------------------------------------------------


def test_a_user_created_through_the_api_can_log_in_and_not_after_deletion(sasl_broker):
    admin = admin_client(sasl_broker)
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096)
    futures = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion("carol", info, b"carol-secret", b"carol-salt-0123456789")]
    )
    futures["carol"].result(TIMEOUT_S)
    carol = AdminClient(confluent_conf(sasl_broker, "SCRAM-SHA-256", "carol", "carol-secret"))
    assert carol.list_topics(timeout=TIMEOUT_S).brokers

    described = admin.describe_user_scram_credentials(["carol", ADMIN[0], ALICE_256[0]])
    infos = {user: f.result(TIMEOUT_S) for user, f in described.items()}
    mechs = {
        user: sorted((i.mechanism, i.iterations) for i in d.scram_credential_infos)
        for user, d in infos.items()
    }
    assert mechs == {
        "carol": [(ScramMechanism.SCRAM_SHA_256, 4096)],
        ADMIN[0]: [(ScramMechanism.SCRAM_SHA_512, 4096)],
        ALICE_256[0]: [(ScramMechanism.SCRAM_SHA_256, 8192)],
    }
    # Describing a missing user fails with RESOURCE_NOT_FOUND.
    missing = admin.describe_user_scram_credentials(["nobody"])
    with pytest.raises(KafkaException) as e:
        missing["nobody"].result(TIMEOUT_S)
    assert e.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND

    # Kafka's checks: too few iterations.
    weak = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion("weak", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b"pw")]
    )
    with pytest.raises(KafkaException) as e:
        weak["weak"].result(TIMEOUT_S)
    assert e.value.args[0].code() == KafkaError.UNACCEPTABLE_CREDENTIAL

    futures = admin.alter_user_scram_credentials(
        [UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256)]
    )
    futures["carol"].result(TIMEOUT_S)
    err = confluent_login_error(sasl_broker, "SCRAM-SHA-256", "carol", "carol-secret")
    assert err.code() == KafkaError._AUTHENTICATION


def test_kafka_python_admin_alters_and_describes_scram_credentials(sasl_broker):
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=sasl_broker.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=ADMIN[0],
        sasl_plain_password=ADMIN[1],
    )
    try:
        described = admin.describe_user_scram_credentials()
    finally:
        admin.close()
    text = repr(described)
    assert ADMIN[0] in text and ALICE_256[0] in text, text


def test_bootstrap_users_survive_a_restart_without_being_rewritten(sasl_broker):
    admin = admin_client(sasl_broker)
    # Change admin's password through the API; the restart must not revert it.
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
    admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(ADMIN[0], info, b"new-admin-secret")]
    )[ADMIN[0]].result(TIMEOUT_S)
    sasl_broker.restart()
    err = confluent_login_error(sasl_broker, "SCRAM-SHA-512", *ADMIN)
    assert err.code() == KafkaError._AUTHENTICATION
    assert admin_client(sasl_broker, (ADMIN[0], "new-admin-secret")).list_topics(timeout=TIMEOUT_S).brokers


# -- re-authentication (KIP-368) ------------------------------------------------


def test_a_long_running_consumer_keeps_working_across_reauthentications(broker_factory, tmp_path):
    reauth_ms = 1500
    broker = broker_factory.new(
        extra_args=["--config", sasl_config(tmp_path), "--set", f"sasl.connections_max_reauth_ms={reauth_ms}"]
    )
    topic = unique_topic("sasl-reauth")
    create_topic(broker, topic)
    conf = confluent_conf(broker, "SCRAM-SHA-512", *ADMIN)
    producer = Producer(conf)
    consumer = Consumer({**conf, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    sent, got = 0, []
    # Several session lifetimes: each connection must re-authenticate a few
    # times, or the broker closes it on its next request after expiry.
    deadline = time.monotonic() + 5 * reauth_ms / 1000
    while time.monotonic() < deadline:
        producer.produce(topic, f"m{sent}".encode())
        sent += 1
        producer.poll(0)
        m = consumer.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m.value())
    assert producer.flush(TIMEOUT_S) == 0
    def caught_up() -> bool:
        m = consumer.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m.value())
        return len(got) >= sent

    wait_until(caught_up, TIMEOUT_S, "the consumer to catch up")
    consumer.close()
    assert got == [f"m{i}".encode() for i in range(sent)]
    log = broker.log_text()
    assert log.count("SASL re-authentication succeeded") >= 3, log[-3000:]
    assert "session expired" not in log


# -- hostile and out-of-order input on raw sockets -------------------------------------


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(10)
    return s


def recv_frame(s: socket.socket) -> bytes | None:
    """One response frame's body, or None when the broker closed the connection."""
    def exactly(n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            try:
                chunk = s.recv(n - len(buf))
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    prefix = exactly(4)
    if prefix is None:
        return None
    return exactly(struct.unpack(">i", prefix)[0])


def handshake(s: socket.socket, mechanism: str, correlation_id: int = 1) -> int:
    s.sendall(frame(request_header_v1(17, 1, correlation_id) + kstring(mechanism)))
    body = recv_frame(s)
    assert body is not None
    assert struct.unpack(">i", body[:4])[0] == correlation_id
    return struct.unpack(">h", body[4:6])[0]


def authenticate(s: socket.socket, token: bytes, correlation_id: int = 2) -> tuple[int, bytes] | None:
    """SaslAuthenticate v1: (error_code, body) or None if the connection closed."""
    s.sendall(frame(request_header_v1(36, 1, correlation_id) + i32(len(token)) + token))
    body = recv_frame(s)
    if body is None:
        return None
    return struct.unpack(">h", body[4:6])[0], body


def assert_closed(s: socket.socket) -> None:
    assert recv_frame(s) is None, "the broker kept the connection open"


def test_a_request_before_authentication_closes_the_connection(sasl_broker):
    with connect(sasl_broker.kafka_port) as s:
        # Metadata v1 with no topics.
        s.sendall(frame(request_header_v1(3, 1, 1) + i32(-1)))
        assert_closed(s)
    # ApiVersions is served before authentication.
    with connect(sasl_broker.kafka_port) as s:
        s.sendall(frame(request_header_v1(18, 0, 9)))
        body = recv_frame(s)
        assert body is not None and struct.unpack(">h", body[4:6])[0] == 0
    assert "before SASL authentication" in sasl_broker.log_text()


def test_out_of_order_and_hostile_sasl_input_costs_only_its_connection(sasl_broker):
    # A token before the handshake: ILLEGAL_SASL_STATE, then close.
    with connect(sasl_broker.kafka_port) as s:
        code, _ = authenticate(s, b"n,,n=admin,r=abc")
        assert code == ILLEGAL_SASL_STATE
        assert_closed(s)
    # An unknown mechanism: UNSUPPORTED_SASL_MECHANISM, then close.
    with connect(sasl_broker.kafka_port) as s:
        assert handshake(s, "GSSAPI") == UNSUPPORTED_SASL_MECHANISM
        assert_closed(s)
    # Garbage SCRAM messages: SASL_AUTHENTICATION_FAILED with a message, then close.
    for garbage in [b"", b"\xff\xfe", b"n,,", b"p=tls,,n=a,r=b", b"n,,n=a", b"n,,n=a=b,r=x", b"x" * 5000]:
        with connect(sasl_broker.kafka_port) as s:
            assert handshake(s, "SCRAM-SHA-512") == 0
            result = authenticate(s, garbage)
            assert result is not None, garbage
            assert result[0] == SASL_AUTHENTICATION_FAILED, garbage
            assert b"Authentication failed" in result[1]
            assert_closed(s)
    # A final message that does not belong to the exchange.
    with connect(sasl_broker.kafka_port) as s:
        assert handshake(s, "SCRAM-SHA-256") == 0
        code, _ = authenticate(s, b"n,,n=alice,r=clientnonce")
        assert code == 0
        code, _ = authenticate(s, b"c=biws,r=othernonce,p=AAAA", correlation_id=3)
        assert code == SASL_AUTHENTICATION_FAILED
        assert_closed(s)
    # A token larger than the pre-authentication frame bound (512 KiB): closed
    # without the broker buffering it.
    with connect(sasl_broker.kafka_port) as s:
        assert handshake(s, "PLAIN") == 0
        big = b"\x00admin\x00" + b"x" * (600 * 1024)
        try:
            s.sendall(frame(request_header_v1(36, 1, 2) + i32(len(big)) + big))
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert_closed(s)
    assert sasl_broker.alive()
    assert admin_client(sasl_broker).list_topics(timeout=TIMEOUT_S).brokers


def test_plaintext_listener_offers_no_mechanism(broker):
    with connect(broker.kafka_port) as s:
        assert handshake(s, "PLAIN") == UNSUPPORTED_SASL_MECHANISM


# -- the sluice CLI ---------------------------------------------------------------


def test_the_cli_authenticates_with_flags_or_a_command_config(sasl_broker, tmp_path):
    from harness import sluice_bin

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(sluice_bin()), *args, "--bootstrap-server", sasl_broker.bootstrap],
            capture_output=True,
            timeout=TIMEOUT_S * 2,
        )

    password_file = tmp_path / "admin.pw"
    password_file.write_text(ADMIN[1] + "\n")
    topic = unique_topic("sasl-cli")
    flags = ["--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", ADMIN[0], "--sasl-password-file", str(password_file)]
    out = cli("topic", "create", topic, "--partitions", "1", *flags)
    assert out.returncode == 0, out.stderr.decode()
    props = tmp_path / "client.properties"
    props.write_text(
        f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username={ADMIN[0]}\nsasl.password={ADMIN[1]}\n"
    )
    out = cli("topic", "list", "--command-config", str(props))
    assert out.returncode == 0, out.stderr.decode()
    assert topic in out.stdout.decode()
    # Without credentials, or with a wrong password, the CLI fails.
    assert cli("topic", "list").returncode != 0
    password_file.write_text("wrong\n")
    out = cli("topic", "list", *flags)
    assert out.returncode != 0
    assert b"SASL" in out.stderr or b"Authentication" in out.stderr, out.stderr
