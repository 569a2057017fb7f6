"""The security issue's end-to-end proof, with every part switched on at once:
a SASL_SSL listener (SCRAM users from `[[sasl.bootstrap_users]]`), an SSL
listener that requires client certificates, the ACL authorizer, and the
HTTP API authenticating against the same users and ACLs.

- kcat, confluent-kafka, kafka-python and kafkajs each produce and consume
  over SASL_SSL with SCRAM-SHA-512, and kafkajs over SSL with a client
  certificate (test_tls.py covers the other three there); wrong passwords
  and unknown users are refused with an authentication error.
- A principal with READ on one topic consumes it, and cannot produce to it,
  read another, delete anything, or join a group it has no ACL for; a
  denied operation changes nothing.
- HTTP basic against the SCRAM users, filtered by the same ACLs.

test_tls.py, test_sasl.py and test_acl.py test each part on its own."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

import kafkajs
from test_tls import RECORDS, ListenerBroker, Pki, payloads, tls_toml
from test_tls import confluent_round_trip as tls_confluent_round_trip
from util import free_port, unique_topic, wait_until

# Bound on one client run against a local broker.
CLIENT_TIMEOUT_S = 60.0
# A refused client fails at its first authentication; librdkafka retries,
# so its error surfaces within a few reconnect backoffs.
REFUSED_TIMEOUT_S = 15.0

ADMIN = ("admin", "admin-secret")
ALICE = ("alice", "alice-secret")
MECHANISM = "SCRAM-SHA-512"
CLIENTS = ["kcat", "confluent", "kafka-python", "kafkajs"]


class Secure:
    """One broker with SASL_SSL and SSL (mTLS) listeners, users admin (a
    super user) and alice, and optionally the authorizer and http_auth."""

    def __init__(self, broker: ListenerBroker, pki: Pki, sasl_port: int, ssl_port: int):
        self.broker = broker
        self.pki = pki
        self.sasl_bootstrap = f"127.0.0.1:{sasl_port}"
        self.ssl_bootstrap = f"127.0.0.1:{ssl_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.broker.http_port}"

    def confluent(self, login=ALICE) -> dict:
        return {
            "bootstrap.servers": self.sasl_bootstrap,
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": self.pki.ca,
            "sasl.mechanism": MECHANISM,
            "sasl.username": login[0],
            "sasl.password": login[1],
        }

    def admin(self, login=ADMIN) -> AdminClient:
        return AdminClient(self.confluent(login))

    def create_topic(self, topic: str) -> None:
        admin = self.admin()  # kept alive until its futures resolve
        futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        futures[topic].result(timeout=CLIENT_TIMEOUT_S)

    def end_offset(self, topic: str) -> int:
        c = Consumer({**self.confluent(ADMIN), "group.id": "watermarks"})
        try:
            return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=CLIENT_TIMEOUT_S)[1]
        finally:
            c.close()


@pytest.fixture
def secure(tmp_path):
    """Starts a `Secure` broker; `secure(authorizer=True, http_auth=True)`."""
    started: list[ListenerBroker] = []
    pki = Pki(tmp_path / "pki")

    def start(*, authorizer: bool = False, http_auth: bool = False) -> Secure:
        sasl_port, ssl_port = free_port(), free_port()
        config = (
            f'listeners = ["SASL_SSL://127.0.0.1:{sasl_port}", "SSL://127.0.0.1:{ssl_port}"]\n'
            'super_users = ["User:admin"]\n'
            + tls_toml(pki, mtls=True)
            # SASL_SSL clients authenticate with SCRAM, not a certificate.
            + 'client_auth = "requested"\n'
            + f"""
[sasl]
enabled_mechanisms = ["{MECHANISM}", "SCRAM-SHA-256", "PLAIN"]

[[sasl.bootstrap_users]]
name = "{ADMIN[0]}"
password = "{ADMIN[1]}"
mechanism = "{MECHANISM}"

[[sasl.bootstrap_users]]
name = "{ALICE[0]}"
password = "{ALICE[1]}"
mechanism = "{MECHANISM}"

[authorizer]
enabled = {str(authorizer).lower()}

[http_auth]
enabled = {str(http_auth).lower()}
"""
        )
        broker = ListenerBroker(tmp_path / f"broker{len(started) + 1}", config, sasl_port)
        started.append(broker)
        broker.start()
        return Secure(broker, pki, sasl_port, ssl_port)

    yield start
    for b in started:
        if b.alive():
            b.stop(check=False)
        b._close_log()


# -- one round trip per client over SASL_SSL --------------------------------


def confluent_round_trip(s: Secure, topic: str, login) -> list[bytes]:
    return tls_confluent_round_trip(s.sasl_bootstrap, topic, s.confluent(login))


def kafka_python_args(s: Secure, login) -> dict:
    return {
        "bootstrap_servers": s.sasl_bootstrap,
        "security_protocol": "SASL_SSL",
        "ssl_cafile": s.pki.ca,
        "sasl_mechanism": MECHANISM,
        "sasl_plain_username": login[0],
        "sasl_plain_password": login[1],
    }


def kafka_python_round_trip(s: Secure, topic: str, login) -> list[bytes]:
    from kafka import KafkaConsumer, KafkaProducer

    args = kafka_python_args(s, login)
    p = KafkaProducer(acks="all", **args)
    for v in payloads(topic):
        p.send(topic, value=v).get(timeout=CLIENT_TIMEOUT_S)
    p.close()
    c = KafkaConsumer(topic, group_id=f"g-{topic}", auto_offset_reset="earliest",
                      consumer_timeout_ms=int(CLIENT_TIMEOUT_S * 1000), **args)
    got: list[bytes] = []
    for m in c:
        got.append(m.value)
        if len(got) == RECORDS:
            break
    c.close()
    return got


def kcat_args(s: Secure, login) -> list[str]:
    return ["-b", s.sasl_bootstrap, "-X", "security.protocol=SASL_SSL",
            "-X", f"ssl.ca.location={s.pki.ca}", "-X", f"sasl.mechanism={MECHANISM}",
            "-X", f"sasl.username={login[0]}", "-X", f"sasl.password={login[1]}"]


def kcat_round_trip(s: Secure, topic: str, login) -> list[bytes]:
    stdin = b"".join(v + b"\n" for v in payloads(topic))
    res = subprocess.run(["kcat", "-P", *kcat_args(s, login), "-t", topic, "-p", "0", "-X", "acks=all"],
                         input=stdin, capture_output=True, timeout=CLIENT_TIMEOUT_S)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    res = subprocess.run(["kcat", "-C", *kcat_args(s, login), "-t", topic, "-p", "0",
                          "-o", "beginning", "-e", "-q"],
                         capture_output=True, timeout=CLIENT_TIMEOUT_S)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    return res.stdout.split(b"\n")[:-1]


def kafkajs_sasl(login) -> dict:
    return {"mechanism": MECHANISM.lower(), "username": login[0], "password": login[1]}


@pytest.mark.parametrize("client", CLIENTS)
def test_each_client_produces_and_consumes_over_sasl_ssl_with_scram_sha_512(client, secure):
    s = secure()
    topic = unique_topic(f"sasl-ssl-{client}")
    if client == "kafkajs":
        if not kafkajs.available():
            pytest.skip("node/kafkajs not installed (scripts/test.sh installs them)")
        result = kafkajs.round_trip(s.sasl_bootstrap, topic, count=RECORDS,
                                    ssl={"ca": s.pki.ca}, sasl=kafkajs_sasl(ALICE))
        assert result["ok"], result
        assert result["consumed"] == result["produced"], result
        return
    s.create_topic(topic)
    run = {"kcat": kcat_round_trip, "confluent": confluent_round_trip,
           "kafka-python": kafka_python_round_trip}[client]
    assert run(s, topic, ALICE) == payloads(topic)


def test_the_sluice_cli_produces_and_consumes_over_sasl_ssl(secure, tmp_path):
    from test_tls import cli_round_trip

    s = secure()
    password = tmp_path / "alice.password"
    password.write_text(ALICE[1] + "\n")
    conn = ["-b", s.sasl_bootstrap, "--security-protocol", "SASL_SSL", "--tls-ca-file", s.pki.ca,
            "--sasl-mechanism", MECHANISM, "--sasl-username", ALICE[0],
            "--sasl-password-file", str(password)]
    topic = unique_topic("sasl-ssl-cli")
    assert cli_round_trip(topic, conn) == payloads(topic)
    # confluent-kafka reads what the CLI wrote.
    c = Consumer({**s.confluent(ALICE), "group.id": "cli-check", "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got: list[bytes] = []
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while len(got) < RECORDS and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is not None and m.error() is None:
                got.append(m.value())
    finally:
        c.close()
    assert got == payloads(topic)


def test_kafkajs_produces_and_consumes_over_ssl_with_a_client_certificate(secure):
    if not kafkajs.available():
        pytest.skip("node/kafkajs not installed (scripts/test.sh installs them)")
    s = secure()
    topic = unique_topic("ssl-kafkajs")
    pki = s.pki
    result = kafkajs.round_trip(s.ssl_bootstrap, topic, count=RECORDS,
                                ssl={"ca": pki.ca, "cert": pki.cert("alice"), "key": pki.key("alice")})
    assert result["ok"], result
    assert result["consumed"] == result["produced"], result


def test_kafkajs_without_a_trusted_client_certificate_is_refused(secure):
    if not kafkajs.available():
        pytest.skip("node/kafkajs not installed (scripts/test.sh installs them)")
    s = secure()
    pki = s.pki
    result = kafkajs.round_trip(s.ssl_bootstrap, unique_topic("ssl-mallory"), count=1, retries=0,
                                ssl={"ca": pki.ca, "cert": pki.cert("mallory"), "key": pki.key("mallory")})
    assert not result["ok"], result
    # The broker refuses the handshake; kafkajs reports a connection error.
    assert result["error"] in ("KafkaJSConnectionError", "KafkaJSNonRetriableError", "KafkaJSNumberOfRetriesExceeded"), result


# -- refusals ---------------------------------------------------------------

BAD_LOGINS = {"wrong password": ("alice", "not-her-password"), "unknown user": ("nobody", "whatever")}


def confluent_refusal(s: Secure, login) -> KafkaError:
    """The authentication error librdkafka reports (through `error_cb`;
    the request itself fails with a transport error)."""
    errors: list[KafkaError] = []
    admin = AdminClient({**s.confluent(login), "error_cb": errors.append})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=REFUSED_TIMEOUT_S)
    # `poll` serves the error callback.
    wait_until(
        lambda: admin.poll(0.1) is not None and any(e.code() == KafkaError._AUTHENTICATION for e in errors),
        REFUSED_TIMEOUT_S,
        "an authentication error",
    )
    return next(e for e in errors if e.code() == KafkaError._AUTHENTICATION)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("case", sorted(BAD_LOGINS))
def test_wrong_passwords_and_unknown_users_are_refused_with_an_authentication_error(client, case, secure, caplog):
    s = secure()
    login = BAD_LOGINS[case]
    if client == "confluent":
        err = confluent_refusal(s, login)
        assert err.code() == KafkaError._AUTHENTICATION, err
        assert "Authentication failed" in err.str(), err
    elif client == "kcat":
        res = subprocess.run(["kcat", "-L", *kcat_args(s, login), "-m", str(int(REFUSED_TIMEOUT_S))],
                             capture_output=True, timeout=REFUSED_TIMEOUT_S * 3)
        assert res.returncode != 0
        assert b"Authentication failed" in res.stderr, res.stderr[-2000:]
    elif client == "kafka-python":
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaConnectionError, KafkaTimeoutError, SaslAuthenticationFailedError

        caplog.set_level(logging.WARNING, logger="kafka")
        with pytest.raises((SaslAuthenticationFailedError, KafkaTimeoutError, KafkaConnectionError)):
            KafkaAdminClient(request_timeout_ms=int(REFUSED_TIMEOUT_S * 1000), **kafka_python_args(s, login))
        # kafka-python 3.0's bootstrap retries an authentication failure
        # like any failed connection until it times out (docs/compatibility.md),
        # but each attempt reads the broker's SASL_AUTHENTICATION_FAILED and
        # its message.
        refusals = [r.getMessage() for r in caplog.records
                    if r.name.startswith("kafka") and "SaslAuthenticationFailedError" in r.getMessage()]
        assert refusals and all("Authentication failed" in m for m in refusals), \
            [r.getMessage() for r in caplog.records][-10:]
        assert "SASL authentication failed" in s.broker.log_text()
    else:
        if not kafkajs.available():
            pytest.skip("node/kafkajs not installed (scripts/test.sh installs them)")
        result = kafkajs.round_trip(s.sasl_bootstrap, unique_topic("refused"), count=1, retries=0,
                                    ssl={"ca": s.pki.ca}, sasl=kafkajs_sasl(login))
        assert not result["ok"], result
        assert result["error"] == "KafkaJSSASLAuthenticationError", result
    # The broker keeps serving the users who do know their password.
    assert s.admin().list_topics(timeout=CLIENT_TIMEOUT_S).topics is not None


# -- ACLs with authenticated principals -------------------------------------


def allow(principal: str, resource_type, name: str, operation) -> AclBinding:
    return AclBinding(resource_type, name, ResourcePatternType.LITERAL, principal, "*",
                      operation, AclPermissionType.ALLOW)


def test_read_on_one_topic_consumes_it_and_nothing_else_and_denials_change_nothing(secure):
    s = secure(authorizer=True)
    mine, other = unique_topic("alice-reads"), unique_topic("not-alices")
    for t in (mine, other):
        s.create_topic(t)
    # The admin (a super user) fills both topics.
    p = Producer({**s.confluent(ADMIN), "acks": "all"})
    for t in (mine, other):
        for v in payloads(t):
            p.produce(t, value=v)
    assert p.flush(CLIENT_TIMEOUT_S) == 0
    grant = allow("User:alice", ResourceType.TOPIC, mine, AclOperation.READ)
    admin = s.admin()
    for f in admin.create_acls([grant]).values():
        f.result(timeout=CLIENT_TIMEOUT_S)

    # Consumes the topic it may read (assigned, no group). librdkafka still
    # looks up the coordinator of its `group.id`, which alice may not
    # describe: that refusal may be reported here, and nothing else.
    c = Consumer({**s.confluent(ALICE), "group.id": "unused", "enable.auto.commit": False})
    c.assign([TopicPartition(mine, 0, 0)])
    got: list[bytes] = []
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while len(got) < RECORDS and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error() is not None:
            assert m.error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED, m.error()
            continue
        got.append(m.value())
    c.close()
    assert got == payloads(mine)

    # Cannot produce to it; its log is unchanged.
    before = s.end_offset(mine)
    p = Producer({**s.confluent(ALICE), "acks": "all", "message.timeout.ms": int(REFUSED_TIMEOUT_S * 1000)})
    errors: list[KafkaError] = []
    p.produce(mine, value=b"forbidden", on_delivery=lambda err, _m: errors.append(err))
    p.flush(REFUSED_TIMEOUT_S * 2)
    assert errors and errors[0] is not None and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, errors
    assert s.end_offset(mine) == before

    # Cannot read the other topic. (An assigned librdkafka consumer retries
    # a refused fetch without reporting it; kcat reports the refusal.)
    res = subprocess.run(["kcat", "-C", *kcat_args(s, ALICE), "-t", other, "-p", "0",
                          "-o", "beginning", "-e", "-c", "1"],
                         capture_output=True, timeout=CLIENT_TIMEOUT_S)
    assert res.stdout == b"", res.stdout
    assert b"authoriz" in res.stderr.lower(), res.stderr[-2000:]

    # Cannot delete anything; both topics stay.
    alice_admin = AdminClient(s.confluent(ALICE))
    futures = alice_admin.delete_topics([mine, other], operation_timeout=10)
    for t, f in futures.items():
        with pytest.raises(KafkaException) as e:
            f.result(timeout=CLIENT_TIMEOUT_S)
        assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (t, e.value)
    topics = s.admin().list_topics(timeout=CLIENT_TIMEOUT_S).topics
    assert mine in topics and other in topics

    # Cannot join a group it has no ACL for.
    c = Consumer({**s.confluent(ALICE), "group.id": "alices-group", "auto.offset.reset": "earliest"})
    c.subscribe([mine])
    group_error = None
    deadline = time.monotonic() + REFUSED_TIMEOUT_S
    while group_error is None and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is not None:
            assert m.error() is not None, f"consumed in a group without a group ACL: {m.value()!r}"
            group_error = m.error()
    c.close()
    assert group_error is not None and group_error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, group_error

    # Metadata shows alice only the topic she may describe.
    visible = AdminClient(s.confluent(ALICE)).list_topics(timeout=CLIENT_TIMEOUT_S).topics
    assert mine in visible and other not in visible, sorted(visible)


# -- the HTTP API against the same users and ACLs ---------------------------


def http_get(url: str, login=None) -> tuple[int, dict]:
    req = urllib.request.Request(url)
    if login:
        token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=CLIENT_TIMEOUT_S) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_the_http_api_authenticates_scram_users_and_applies_their_acls(secure):
    s = secure(authorizer=True, http_auth=True)
    mine, other = unique_topic("http-alice"), unique_topic("http-other")
    for t in (mine, other):
        s.create_topic(t)
    admin = s.admin()
    for f in admin.create_acls([allow("User:alice", ResourceType.TOPIC, mine, AclOperation.DESCRIBE)]).values():
        f.result(timeout=CLIENT_TIMEOUT_S)

    status, _ = http_get(f"{s.http}/v1/topics")
    assert status == 401
    status, _ = http_get(f"{s.http}/v1/topics", ("alice", "wrong"))
    assert status == 401
    status, body = http_get(f"{s.http}/v1/auth/whoami", ALICE)
    assert status == 200 and body.get("principal") == "User:alice", body

    def names(body) -> set[str]:
        items = body.get("topics", body) if isinstance(body, dict) else body
        return {t["name"] for t in items}

    status, body = http_get(f"{s.http}/v1/topics", ALICE)
    assert status == 200, body
    assert mine in names(body) and other not in names(body), body
    status, body = http_get(f"{s.http}/v1/topics", ADMIN)
    assert status == 200 and {mine, other} <= names(body), body
    status, _ = http_get(f"{s.http}/v1/topics/{other}", ALICE)
    assert status == 403
