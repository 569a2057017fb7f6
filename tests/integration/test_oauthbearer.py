"""SASL OAUTHBEARER (issue 15) on a SASL_PLAINTEXT listener with kcat,
confluent-kafka, kafka-python and kafkajs: signed JWTs (RS256 and ES256)
checked against a JWKS file, librdkafka's own unsecured JWTs where the broker
allows them, and refusals (expired, foreign key, unknown kid, unsecured when
not allowed) that each client sees as an authentication failure, or, where a
client does not surface it, that the broker logs.

Keys and signatures come from the `openssl` command line, so the test needs no
Python crypto package."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from clients import confluent_produce_consume
import kafkajs
from util import frame, i32, kstring, request_header_v1, unique_topic, wait_until

TIMEOUT_S = 30
SASL_AUTHENTICATION_FAILED = 58
ERROR_JSON = b'{"status":"invalid_token"}'


# -- tokens --------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(sub: str = "alice", exp_in_s: int = 600) -> dict:
    now = int(time.time())
    return {"sub": sub, "iat": now - 5, "exp": now + exp_in_s}


def unsecured_jwt(body: dict) -> str:
    return f"{b64url(json.dumps({'alg': 'none'}).encode())}.{b64url(json.dumps(body).encode())}."


def der_ecdsa_to_raw(der: bytes, size: int = 32) -> bytes:
    """openssl's DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs) as JWS's r || s."""
    assert der[0] == 0x30
    pos = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[pos] == 0x02
        length = der[pos + 1]
        value = der[pos + 2 : pos + 2 + length].lstrip(b"\x00")
        out += value.rjust(size, b"\x00")
        pos += 2 + length
    return out


class Key:
    """A signing key made with openssl: RSA (RS256) or P-256 (ES256)."""

    def __init__(self, directory: Path, name: str, kind: str, kid: str):
        self.kind, self.kid = kind, kid
        self.pem = directory / f"{name}.pem"
        if kind == "RSA":
            run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(self.pem)])
            modulus = run(["openssl", "rsa", "-in", str(self.pem), "-noout", "-modulus"]).decode().strip()
            n = bytes.fromhex(modulus.split("=", 1)[1])
            self.jwk = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": b64url(n), "e": "AQAB"}
        else:
            run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(self.pem)])
            point = run(["openssl", "ec", "-in", str(self.pem), "-pubout", "-outform", "DER"])[-65:]
            self.jwk = {"kty": "EC", "crv": "P-256", "kid": kid, "x": b64url(point[1:33]), "y": b64url(point[33:])}

    def sign(self, body: dict, kid: str | None = None) -> str:
        alg = "RS256" if self.kind == "RSA" else "ES256"
        header = {"alg": alg, "typ": "JWT", "kid": kid or self.kid}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(body).encode())}"
        sig = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.pem)],
            input=signing_input.encode(), capture_output=True, check=True,
        ).stdout
        if self.kind == "EC":
            sig = der_ecdsa_to_raw(sig)
        return f"{signing_input}.{b64url(sig)}"


def run(cmd: list[str]) -> bytes:
    return subprocess.run(cmd, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("oauth-keys")
    trusted_rsa = Key(directory, "rsa", "RSA", "rsa-1")
    trusted_ec = Key(directory, "ec", "EC", "ec-1")
    foreign = Key(directory, "foreign", "RSA", "rsa-1")  # same kid, another key
    jwks = directory / "jwks.json"
    jwks.write_text(json.dumps({"keys": [trusted_rsa.jwk, trusted_ec.jwk]}))
    return {"rsa": trusted_rsa, "ec": trusted_ec, "foreign": foreign, "jwks": jwks}


def oauth_config(tmp_path: Path, jwks: Path, allow_unsecured: bool) -> str:
    path = tmp_path / f"oauth-{allow_unsecured}.toml"
    path.write_text(
        f"""
kafka_security_protocol = "SASL_PLAINTEXT"
[sasl]
enabled_mechanisms = ["OAUTHBEARER"]
failed_authentication_delay_ms = 100
[sasl.oauthbearer]
jwks_file = "{jwks}"
allow_unsecured = {str(allow_unsecured).lower()}
"""
    )
    return str(path)


@pytest.fixture
def signed_broker(broker_factory, tmp_path, keys):
    """Accepts only tokens signed by a JWKS key."""
    return broker_factory.new(extra_args=["--config", oauth_config(tmp_path, keys["jwks"], False)])


@pytest.fixture
def dev_broker(broker_factory, tmp_path, keys):
    """Also accepts unsecured tokens (librdkafka's built-in test JWTs)."""
    return broker_factory.new(extra_args=["--config", oauth_config(tmp_path, keys["jwks"], True)])


# -- clients -------------------------------------------------------------------


def confluent_conf(broker, token: str | None = None) -> dict:
    """librdkafka settings: `token` through oauth_cb, or librdkafka's own
    unsecured JWT for principal alice when `token` is None."""
    conf = {
        "bootstrap.servers": broker.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "OAUTHBEARER",
    }
    if token is None:
        conf["enable.sasl.oauthbearer.unsecure.jwt"] = True
        conf["sasl.oauthbearer.config"] = "principal=alice"
    else:
        # librdkafka refuses a past expiry locally, so the callback reports
        # a future one whatever the JWT's own exp says: the broker decides.
        conf["oauth_cb"] = lambda _config: (token, time.time() + 3600)
    return conf


def create_topic(broker, token: str, topic: str) -> None:
    admin = AdminClient(confluent_conf(broker, token))
    admin.poll(0)  # serves oauth_cb
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    futures[topic].result(TIMEOUT_S)


def produce_consume_confluent(broker, topic: str, token: str | None) -> list[bytes]:
    values = [f"m{i}".encode() for i in range(5)]
    return confluent_produce_consume(confluent_conf(broker, token), topic, values, TIMEOUT_S)


def confluent_login_error(broker, token: str | None) -> KafkaError:
    """The error librdkafka reports (through error_cb) for a refused login."""
    errors: list[KafkaError] = []
    admin = AdminClient({**confluent_conf(broker, token), "error_cb": errors.append})
    try:
        admin.list_topics(timeout=5)
    except KafkaException:
        pass
    else:
        raise AssertionError("the login was accepted")
    wait_until(
        lambda: admin.poll(0.1) is not None and any(e.code() == KafkaError._AUTHENTICATION for e in errors),
        TIMEOUT_S,
        "an authentication error",
    )
    return next(e for e in errors if e.code() == KafkaError._AUTHENTICATION)


def kafka_python_conf(broker, token: str) -> dict:
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class Provider(AbstractTokenProvider):
        def token(self):
            return token

    return dict(
        bootstrap_servers=broker.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauth_token_provider=Provider(),
    )


def produce_consume_kafka_python(broker, topic: str, token: str) -> list[bytes]:
    from kafka import KafkaConsumer, KafkaProducer

    conf = kafka_python_conf(broker, token)
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


def kcat(broker, *args, input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
    """kcat cannot run a token callback: it uses librdkafka's unsecured JWT
    builder for principal alice."""
    cmd = [
        "kcat", "-b", broker.bootstrap,
        "-X", "security.protocol=SASL_PLAINTEXT",
        "-X", "sasl.mechanisms=OAUTHBEARER",
        "-X", "enable.sasl.oauthbearer.unsecure.jwt=true",
        "-X", "sasl.oauthbearer.config=principal=alice",
        *args,
    ]
    return subprocess.run(cmd, input=input_bytes, capture_output=True, timeout=TIMEOUT_S)


def js_sasl(token: str) -> dict:
    return {"mechanism": "oauthbearer", "token": token}


EXPECTED = [f"m{i}".encode() for i in range(5)]


# -- valid tokens produce and consume -------------------------------------------


@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_confluent_and_kafka_python_produce_and_consume_with_a_signed_token(signed_broker, keys, key):
    token = keys[key].sign(claims())
    for client, round_trip in [("confluent", produce_consume_confluent), ("kafka-python", produce_consume_kafka_python)]:
        topic = unique_topic(f"oauth-{key}-{client}")
        create_topic(signed_broker, token, topic)
        assert round_trip(signed_broker, topic, token) == EXPECTED, client


def test_librdkafkas_unsecured_jwt_works_with_confluent_and_kcat_when_allowed(dev_broker, keys):
    topic = unique_topic("oauth-unsecured")
    create_topic(dev_broker, keys["rsa"].sign(claims()), topic)
    assert produce_consume_confluent(dev_broker, topic, None) == EXPECTED
    lines = b"".join(f"k{i}\n".encode() for i in range(5))
    out = kcat(dev_broker, "-P", "-t", topic, input_bytes=lines)
    assert out.returncode == 0, out.stderr.decode()
    out = kcat(dev_broker, "-C", "-t", topic, "-o", "beginning", "-c", "10", "-e")
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.splitlines() == EXPECTED + [f"k{i}".encode() for i in range(5)]


@pytest.mark.skipif(not kafkajs.available(), reason="node and kafkajs are not installed")
def test_kafkajs_produces_and_consumes_with_a_signed_token(signed_broker, keys):
    token = keys["ec"].sign(claims())
    result = kafkajs.round_trip(signed_broker.bootstrap, unique_topic("oauth-js"), sasl=js_sasl(token))
    assert result["ok"], result
    assert result["consumed"] == result["produced"]


# -- refused tokens --------------------------------------------------------------


def test_confluent_sees_expired_foreign_and_unknown_kid_tokens_refused(signed_broker, keys):
    expired = keys["rsa"].sign(claims(exp_in_s=-3600))
    foreign = keys["foreign"].sign(claims())
    unknown_kid = keys["ec"].sign(claims(), kid="ec-2")
    for token, reason in [
        (expired, "expired"),
        (foreign, "signature does not verify"),
        (unknown_kid, "no key in the JWKS"),
    ]:
        err = confluent_login_error(signed_broker, token)
        assert err.code() == KafkaError._AUTHENTICATION, err
        # librdkafka passes on the broker's reason.
        assert reason in err.str(), err.str()
    # Unsecured JWTs (librdkafka's builder) are refused when not allowed.
    err = confluent_login_error(signed_broker, None)
    assert "unsecured tokens (alg none) are not allowed" in err.str(), err.str()
    assert signed_broker.alive()
    # A good token still works on the same broker.
    admin = AdminClient(confluent_conf(signed_broker, keys["rsa"].sign(claims())))
    admin.poll(0)
    assert admin.list_topics(timeout=TIMEOUT_S).brokers


def test_kcat_unsecured_jwt_is_refused_when_not_allowed(signed_broker):
    out = kcat(signed_broker, "-L", "-m", "5")
    assert out.returncode != 0
    err = out.stderr.decode()
    print("kcat stderr:", err)
    # librdkafka prints the broker's reason.
    assert "unsecured tokens (alg none) are not allowed" in err, err
    wait_until(
        lambda: "unsecured tokens (alg none) are not allowed" in signed_broker.log_text(),
        TIMEOUT_S,
        "the broker's refusal line",
    )


def test_kafka_python_with_an_expired_token_is_refused(signed_broker, keys):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as PyKafkaError

    expired = keys["ec"].sign(claims(exp_in_s=-3600))
    with pytest.raises(PyKafkaError) as refused:
        KafkaProducer(**kafka_python_conf(signed_broker, expired),
                      request_timeout_ms=10_000, max_block_ms=10_000).partitions_for("x")
    # What kafka-python raises is recorded in the report; the broker's log
    # names the reason either way.
    print("kafka-python raised:", type(refused.value).__name__, refused.value)
    wait_until(
        lambda: "OAUTHBEARER token refused: the token expired" in signed_broker.log_text(),
        TIMEOUT_S,
        "the broker's refusal line",
    )


@pytest.mark.skipif(not kafkajs.available(), reason="node and kafkajs are not installed")
def test_kafkajs_with_an_expired_token_is_refused(signed_broker, keys):
    expired = keys["ec"].sign(claims(exp_in_s=-3600))
    result = kafkajs.round_trip(
        signed_broker.bootstrap, unique_topic("oauth-js-expired"), sasl=js_sasl(expired), retries=0,
        timeout_ms=10_000,
    )
    assert not result["ok"], result
    print("kafkajs answered:", result)
    wait_until(
        lambda: "OAUTHBEARER token refused: the token expired" in signed_broker.log_text(),
        TIMEOUT_S,
        "the broker's refusal line",
    )


# -- the wire exchange ---------------------------------------------------------


def test_rfc7628_error_exchange_and_hostile_messages_cost_only_their_connection(signed_broker, keys):
    from test_sasl import assert_closed, authenticate, connect, handshake

    port = signed_broker.kafka_port
    # A refused token: the error JSON with no error code, then the failure
    # once the client acknowledges with \x01.
    expired = keys["rsa"].sign(claims(exp_in_s=-3600))
    with connect(port) as s:
        assert handshake(s, "OAUTHBEARER") == 0
        code, body = authenticate(s, f"n,,\x01auth=Bearer {expired}\x01\x01".encode())
        assert code == 0
        assert ERROR_JSON in body
        code, body = authenticate(s, b"\x01", correlation_id=3)
        assert code == SASL_AUTHENTICATION_FAILED
        assert b"expired" in body
        assert_closed(s)
    # Malformed messages fail at once.
    for hostile in [
        b"",
        b"n,,\x01auth=Bearer\x01\x01",
        b"n,,\x01auth=Basic YWxpY2U6cHc=\x01\x01",
        b"y,a=,\x01\x01",
        b"n,,\x01auth=Bearer " + b"a" * 70_000 + b"\x01\x01",
        b"\xff" * 100,
    ]:
        with connect(port) as s:
            assert handshake(s, "OAUTHBEARER") == 0
            answer = authenticate(s, hostile)
            assert answer is not None and answer[0] == SASL_AUTHENTICATION_FAILED, hostile[:40]
            assert_closed(s)
    # Garbage in the token itself: the error exchange, no crash.
    for junk in ["a.b.c", "x" * 100, b64url(b"{}") + ".." + "A" * 10]:
        with connect(port) as s:
            assert handshake(s, "OAUTHBEARER") == 0
            code, body = authenticate(s, f"n,,\x01auth=Bearer {junk}\x01\x01".encode())
            assert code == 0 and ERROR_JSON in body, junk
    assert signed_broker.alive()
    good = keys["ec"].sign(claims())
    with connect(port) as s:
        assert handshake(s, "OAUTHBEARER") == 0
        code, _ = authenticate(s, f"n,,\x01auth=Bearer {good}\x01\x01".encode())
        assert code == 0


def test_the_cli_authenticates_with_a_token_file_or_command_config(signed_broker, keys, tmp_path):
    from harness import sluice_bin

    token_file = tmp_path / "token"
    token_file.write_text(keys["rsa"].sign(claims()) + "\n")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(sluice_bin()), "topic", "list", "-b", signed_broker.bootstrap, *args],
            capture_output=True, timeout=TIMEOUT_S,
        )

    out = cli("--sasl-oauthbearer-token-file", str(token_file))
    assert out.returncode == 0, out.stderr.decode()
    props = tmp_path / "client.properties"
    props.write_text(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n"
        f"sasl.oauthbearer.token.file={token_file}\n"
    )
    out = cli("--command-config", str(props))
    assert out.returncode == 0, out.stderr.decode()
    token_file.write_text(keys["rsa"].sign(claims(exp_in_s=-3600)))
    out = cli("--sasl-oauthbearer-token-file", str(token_file))
    assert out.returncode != 0
    assert "expired" in out.stderr.decode(), out.stderr.decode()


def test_oauthbearer_without_a_key_source_is_a_config_error(tmp_path):
    from harness import sluice_bin

    config = tmp_path / "bad.toml"
    config.write_text('kafka_security_protocol = "SASL_PLAINTEXT"\n[sasl]\nenabled_mechanisms = ["OAUTHBEARER"]\n')
    out = subprocess.run(
        [str(sluice_bin()), "serve", "--config", str(config), "--data-dir", str(tmp_path / "d")],
        capture_output=True, timeout=TIMEOUT_S,
    )
    assert out.returncode != 0
    assert "sasl.oauthbearer.jwks_file" in out.stderr.decode() + out.stdout.decode()


# -- SASL_SSL, and the principal under ACLs ---------------------------------------


def test_over_sasl_ssl_the_token_subject_is_the_principal_acls_see(tmp_path, keys):
    from test_tls import ListenerBroker, Pki, tls_toml
    from util import free_port

    pki = Pki(tmp_path / "pki")
    port = free_port()
    config = (
        f'listeners = ["SASL_SSL://127.0.0.1:{port}"]\n'
        'super_users = ["User:admin"]\n'
        + tls_toml(pki)
        + f"""
[sasl]
enabled_mechanisms = ["OAUTHBEARER"]
[sasl.oauthbearer]
jwks_file = "{keys['jwks']}"
[authorizer]
enabled = true
"""
    )
    broker = ListenerBroker(tmp_path / "broker", config, port)
    broker.start()
    try:
        def conf(sub: str) -> dict:
            token = keys["ec"].sign(claims(sub=sub))
            return {
                "bootstrap.servers": f"127.0.0.1:{port}",
                "security.protocol": "SASL_SSL",
                "ssl.ca.location": pki.ca,
                "sasl.mechanisms": "OAUTHBEARER",
                "oauth_cb": lambda _config: (token, time.time() + 3600),
            }

        topic = unique_topic("oauth-ssl")
        admin = AdminClient(conf("admin"))  # a super user by its sub claim
        admin.poll(0)
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(TIMEOUT_S)
        p = Producer(conf("admin"))
        for i in range(5):
            p.produce(topic, f"m{i}".encode())
        assert p.flush(TIMEOUT_S) == 0
        # alice authenticates, but has no ACL: the write is refused.
        failures: list[KafkaError] = []
        p = Producer({**conf("alice"), "message.timeout.ms": 10_000})
        p.produce(topic, b"nope", on_delivery=lambda err, _msg: failures.append(err))
        p.flush(TIMEOUT_S)
        assert failures and failures[0] is not None
        assert failures[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, failures[0]
    finally:
        broker.stop(check=False)
        broker._close_log()
