"""`sluice user create|list|delete` (issue 15): SCRAM users managed with the
CLI over SASL, checked with real clients. The admin is a super user from
`[[sasl.bootstrap_users]]` (the first-admin route); the authorizer is on, so
an ordinary user may not create users and its refusal must be a clear,
non-zero CLI failure."""

from __future__ import annotations

import json
import subprocess

import pytest
from confluent_kafka import KafkaError

from harness import sluice_bin
from test_sasl import (
    ADMIN,
    TIMEOUT_S,
    confluent_login_error,
    produce_consume_confluent,
    produce_consume_kafka_python,
    sasl_config,
)
from util import unique_topic

ERIN_PASSWORD = "erin-Pa55-from-the-cli"
TOPIC_PREFIX = "user-cli-"


@pytest.fixture
def secured(broker_factory, tmp_path):
    extra = 'super_users = ["User:admin"]\n[authorizer]\nenabled = true\n'
    broker = broker_factory.new(extra_args=["--config", sasl_config(tmp_path, extra)])
    admin_pw = tmp_path / "admin.pw"
    admin_pw.write_text(ADMIN[1] + "\n")
    return broker, admin_pw


def cli(broker, *args: str, login: tuple[str, str] | None = None, password_file=None, stdin: bytes | None = None):
    """Runs `sluice ARGS` against `broker`, logged in as `login` (whose
    password is in `password_file`)."""
    cmd = [str(sluice_bin()), *args, "--bootstrap-server", broker.bootstrap]
    if login is not None:
        cmd += ["--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", login[0], "--sasl-password-file", str(password_file)]
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=TIMEOUT_S * 2)


def ok(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode()


def failed(out: subprocess.CompletedProcess) -> str:
    """The single error line of a failed CLI run."""
    assert out.returncode != 0, out.stdout.decode()
    err = out.stderr.decode()
    assert err.startswith("error: "), err
    return err


def listed(broker, admin_pw, *names: str) -> dict:
    out = ok(cli(broker, "user", "list", *names, "--json", login=ADMIN, password_file=admin_pw))
    return {u["name"]: sorted((c["mechanism"], c["iterations"]) for c in u["credentials"]) for u in json.loads(out)}


def test_an_admin_creates_lists_and_deletes_a_user_that_real_clients_log_in_as(secured, tmp_path):
    broker, admin_pw = secured
    as_admin = dict(login=ADMIN, password_file=admin_pw)
    erin_pw = tmp_path / "erin.password"
    erin_pw.write_text(ERIN_PASSWORD + "\n")

    out = ok(cli(broker, "user", "create", "erin", "--password-file", str(erin_pw), **as_admin))
    assert "SCRAM-SHA-512" in out and "erin" in out and ERIN_PASSWORD not in out

    # erin may use the topics under the prefix and any group; nothing else.
    ok(cli(broker, "acl", "create", "--allow-principal", "User:erin", "--operation", "all",
           "--topic", TOPIC_PREFIX, "--resource-pattern-type", "prefixed", **as_admin))
    ok(cli(broker, "acl", "create", "--allow-principal", "User:erin", "--operation", "all", "--group", "*", **as_admin))
    for client, produce_consume in [("confluent", produce_consume_confluent), ("kafka-python", produce_consume_kafka_python)]:
        topic = unique_topic(f"{TOPIC_PREFIX}{client}")
        ok(cli(broker, "topic", "create", topic, "--partitions", "1", **as_admin))
        got = produce_consume(broker, topic, "SCRAM-SHA-512", "erin", ERIN_PASSWORD)
        assert got == [f"m{i}".encode() for i in range(5)], client

    # The listing names users, mechanisms and iterations, never secrets.
    table = ok(cli(broker, "user", "list", **as_admin))
    lines = table.splitlines()
    assert lines[0].split() == ["USER", "MECHANISM", "ITERATIONS"]
    assert ["erin", "SCRAM-SHA-512", "4096"] in [line.split() for line in lines[1:]]
    assert ERIN_PASSWORD not in table
    assert listed(broker, admin_pw, "erin") == {"erin": [("SCRAM-SHA-512", 4096)]}
    everyone = ok(cli(broker, "user", "list", "--json", **as_admin))
    assert ERIN_PASSWORD not in everyone and "salt" not in everyone and "key" not in everyone
    assert {"admin", "erin"} <= set(listed(broker, admin_pw))

    # A second mechanism from stdin, with its own iteration count.
    ok(cli(broker, "user", "create", "erin", "--password-stdin", "--mechanism", "SCRAM-SHA-256",
           "--iterations", "8192", stdin=f"{ERIN_PASSWORD}\n".encode(), **as_admin))
    assert listed(broker, admin_pw, "erin") == {"erin": [("SCRAM-SHA-256", 8192), ("SCRAM-SHA-512", 4096)]}
    assert produce_consume_kafka_python(broker, unique_topic(f"{TOPIC_PREFIX}sha256"), "SCRAM-SHA-256", "erin", ERIN_PASSWORD)

    # Deleting one mechanism leaves the other; deleting the user removes all.
    ok(cli(broker, "user", "delete", "erin", "--mechanism", "SCRAM-SHA-256", **as_admin))
    assert listed(broker, admin_pw, "erin") == {"erin": [("SCRAM-SHA-512", 4096)]}
    out = ok(cli(broker, "user", "delete", "erin", **as_admin))
    assert "SCRAM-SHA-512" in out
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256"]:
        err = confluent_login_error(broker, mechanism, "erin", ERIN_PASSWORD)
        assert err.code() == KafkaError._AUTHENTICATION

    # Unknown users: Kafka's RESOURCE_NOT_FOUND, named in one error line.
    for args in [("user", "delete", "erin"), ("user", "list", "erin"),
                 ("user", "delete", "nobody", "--mechanism", "SCRAM-SHA-512")]:
        err = failed(cli(broker, *args, **as_admin))
        assert "RESOURCE_NOT_FOUND" in err, err
    assert broker.alive()


def test_an_ordinary_user_may_not_create_or_list_users(secured, tmp_path):
    broker, admin_pw = secured
    erin_pw = tmp_path / "erin.password"
    erin_pw.write_text(ERIN_PASSWORD)
    ok(cli(broker, "user", "create", "erin", "--password-file", str(erin_pw), login=ADMIN, password_file=admin_pw))

    as_erin = dict(login=("erin", ERIN_PASSWORD), password_file=erin_pw)
    for args in [("user", "create", "mallory", "--password-file", str(erin_pw)),
                 ("user", "list"),
                 ("user", "delete", "admin")]:
        err = failed(cli(broker, *args, **as_erin))
        assert "CLUSTER_AUTHORIZATION_FAILED" in err, err
    # Nothing changed.
    users = listed(broker, admin_pw)
    assert "mallory" not in users and ADMIN[0] in users


def test_a_missing_or_empty_password_is_refused_before_anything_is_sent(secured, tmp_path):
    broker, admin_pw = secured
    as_admin = dict(login=ADMIN, password_file=admin_pw)
    missing = tmp_path / "no-such.password"
    err = failed(cli(broker, "user", "create", "bob", "--password-file", str(missing), **as_admin))
    assert str(missing) in err and "No such file" in err, err
    empty = tmp_path / "empty.password"
    empty.write_text("\n")
    err = failed(cli(broker, "user", "create", "bob", "--password-file", str(empty), **as_admin))
    assert "empty" in err, err
    err = failed(cli(broker, "user", "create", "bob", "--password-stdin", stdin=b"", **as_admin))
    assert "empty" in err, err
    # Neither a password nor a source: clap's usage error.
    assert cli(broker, "user", "create", "bob", **as_admin).returncode != 0
    # Iterations outside Kafka's bounds never reach the broker.
    err = failed(cli(broker, "user", "create", "bob", "--password-stdin", "--iterations", "100",
                     stdin=b"pw\n", **as_admin))
    assert "4096" in err, err
    assert "bob" not in listed(broker, admin_pw)
