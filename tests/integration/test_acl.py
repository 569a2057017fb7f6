"""Issue 15, authorization: Kafka's ACL APIs and their enforcement, driven
by real clients.

SASL is not on this branch, so every client here is User:ANONYMOUS; the
tests make ANONYMOUS an administrator (super user, or
`allow_everyone_if_no_acl_found`) where they need one, and an ordinary
principal where they test refusals. Per-user variants come with SASL.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from clients import ADMIN_TIMEOUT_S, ConfluentClient, confluent_admin
from util import make_records, unique_topic

AUTHORIZER_ON = ["--set", "authorizer.enabled=true"]
ANONYMOUS_IS_SUPER = ["--set", 'super_users=["User:ANONYMOUS"]']
ANONYMOUS = "User:ANONYMOUS"


def _binding(rtype, name, pattern, operation, principal=ANONYMOUS):
    return AclBinding(rtype, name, pattern, principal, "*", operation, AclPermissionType.ALLOW)


def _create_acls(admin, bindings) -> None:
    fs = admin.create_acls(bindings, request_timeout=ADMIN_TIMEOUT_S)
    for f in fs.values():
        f.result(timeout=ADMIN_TIMEOUT_S)


def _describe(admin, acl_filter) -> list:
    return admin.describe_acls(acl_filter, request_timeout=ADMIN_TIMEOUT_S).result(timeout=ADMIN_TIMEOUT_S)


def _any_filter(rtype=ResourceType.ANY, name=None, pattern=ResourcePatternType.ANY):
    return AclBindingFilter(rtype, name, pattern, None, None, AclOperation.ANY, AclPermissionType.ANY)


def _error_code(exc: BaseException) -> int:
    err = exc.args[0] if exc.args else None
    return err.code() if isinstance(err, KafkaError) else -1


# ------------------------------------------------------------ the ACL APIs


def test_acl_apis_answer_security_disabled_without_an_authorizer(broker):
    admin = confluent_admin(broker.bootstrap)
    with pytest.raises(KafkaException) as e:
        _create_acls(admin, [_binding(ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, AclOperation.READ)])
    assert _error_code(e.value) == KafkaError.SECURITY_DISABLED
    # librdkafka's describe_acls drops DescribeAcls' top-level error (it
    # resolves to an empty list); kafka-python reports it.
    from kafka import KafkaAdminClient
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter
    from kafka.admin import ACLResourcePatternType as PT
    from kafka.admin import ResourceType as RT
    from kafka.errors import SecurityDisabledError

    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        everything = ACLFilter(
            principal=None,
            host=None,
            operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(RT.ANY, None, PT.ANY),
        )
        with pytest.raises(SecurityDisabledError):
            kp.describe_acls(everything)
    finally:
        kp.close()


def test_confluent_acls_round_trip_for_a_super_user(broker_factory):
    b = broker_factory.new(extra_args=AUTHORIZER_ON + ANONYMOUS_IS_SUPER)
    admin = confluent_admin(b.bootstrap)
    literal = _binding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, AclOperation.READ)
    prefixed = _binding(ResourceType.TOPIC, "ord", ResourcePatternType.PREFIXED, AclOperation.WRITE, "User:bob")
    group = _binding(ResourceType.GROUP, "g", ResourcePatternType.LITERAL, AclOperation.READ)
    other = _binding(ResourceType.TOPIC, "payments", ResourcePatternType.LITERAL, AclOperation.READ)
    _create_acls(admin, [literal, prefixed, group, other])

    assert sorted(map(str, _describe(admin, _any_filter()))) == sorted(map(str, [literal, prefixed, group, other]))
    # MATCH on topic `orders`: its literal and prefixed ACLs, not the others.
    matched = _describe(admin, _any_filter(ResourceType.TOPIC, "orders", ResourcePatternType.MATCH))
    assert sorted(map(str, matched)) == sorted(map(str, [literal, prefixed]))

    fs = admin.delete_acls(
        [_any_filter(ResourceType.TOPIC, "orders", ResourcePatternType.MATCH)], request_timeout=ADMIN_TIMEOUT_S
    )
    deleted = [d for f in fs.values() for d in f.result(timeout=ADMIN_TIMEOUT_S)]
    assert sorted(map(str, deleted)) == sorted(map(str, [literal, prefixed]))
    assert sorted(map(str, _describe(admin, _any_filter()))) == sorted(map(str, [group, other]))

    # ACLs are metadata: they survive a restart.
    b.restart()
    admin = confluent_admin(b.bootstrap)
    assert sorted(map(str, _describe(admin, _any_filter()))) == sorted(map(str, [group, other]))


def test_kafka_python_acls_round_trip_when_everyone_is_allowed_without_acls(broker_factory):
    from kafka import KafkaAdminClient
    from kafka.admin import ACL, ACLFilter, ACLOperation, ACLPermissionType, ResourcePattern, ResourcePatternFilter
    from kafka.admin import ACLResourcePatternType as PT
    from kafka.admin import ResourceType as RT

    b = broker_factory.new(extra_args=AUTHORIZER_ON + ["--set", "authorizer.allow_everyone_if_no_acl_found=true"])
    admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=15000)
    try:
        acl = ACL(
            principal="User:alice",
            host="*",
            operation=ACLOperation.READ,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(RT.TOPIC, "t", PT.PREFIXED),
        )
        result = admin.create_acls([acl])
        assert not result["failed"], result
        everything = ACLFilter(
            principal=None,
            host=None,
            operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(RT.ANY, None, PT.ANY),
        )
        listed, error = admin.describe_acls(everything)
        assert error.errno == 0, error
        assert [(a.principal, a.resource_pattern.resource_name, a.resource_pattern.pattern_type) for a in listed] == [
            ("User:alice", "t", PT.PREFIXED)
        ]
        deleted = admin.delete_acls([everything])
        assert len(deleted[0][1]) == 1, deleted
        listed, _ = admin.describe_acls(everything)
        assert listed == []
    finally:
        admin.close()


# ------------------------------------------------------------ enforcement


def _produce_error(bootstrap: str, topic: str) -> int | None:
    """Produces one record; the delivery error code, or None on success."""
    errors: list[KafkaError] = []
    delivered: list[bool] = []
    p = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 15000, "socket.timeout.ms": 10000})

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)
        else:
            delivered.append(True)

    p.produce(topic, value=b"denied?", on_delivery=on_delivery)
    assert p.flush(30) == 0, "delivery report never came"
    return errors[0].code() if errors else None


def _consume(bootstrap: str, topic: str, want: int, wait_s: float = 30, **extra) -> tuple[int, KafkaError | None]:
    """Reads `topic` partition 0 from offset 0 by assignment (no group
    protocol); returns (records read, first error) once `want` records or an
    error arrive, within a bounded time."""
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": "unused-by-assign",
        "enable.auto.commit": False,
        "socket.timeout.ms": 10000,
        "fetch.wait.max.ms": 100,
    }
    conf.update(extra)
    c = Consumer(conf)
    read = 0
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + wait_s
        while read < want and time.monotonic() < deadline:
            for m in c.consume(num_messages=100, timeout=0.5):
                if m.error():
                    # librdkafka looks up the coordinator of `group.id` even
                    # for an assignment, and reports the group refusal.
                    if m.error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                        continue
                    return read, m.error()
                read += 1
                if read == want:
                    break
    finally:
        c.close()
    return read, None


def _start_locked_down(broker_factory, readable: str, other: str):
    """A broker with the authorizer on where ANONYMOUS, a super user at
    first, creates `readable` and `other` with records in both and grants
    itself READ on `readable` only; then restarted with no super users."""
    b = broker_factory.new(extra_args=AUTHORIZER_ON + ANONYMOUS_IS_SUPER)
    admin = confluent_admin(b.bootstrap)
    fs = admin.create_topics(
        [NewTopic(t, num_partitions=1, replication_factor=1) for t in (readable, other)],
        request_timeout=ADMIN_TIMEOUT_S,
    )
    for f in fs.values():
        f.result(timeout=ADMIN_TIMEOUT_S)
    for t in (readable, other):
        ConfluentClient().produce(b.bootstrap, t, make_records(5, 1, seed=3), "none")
    _create_acls(admin, [_binding(ResourceType.TOPIC, readable, ResourcePatternType.LITERAL, AclOperation.READ)])
    b.stop()
    b.extra_args = list(AUTHORIZER_ON)
    b.start()
    return b


def test_without_acls_anonymous_is_refused_and_sees_no_topics(broker_factory):
    readable, other = unique_topic("readable"), unique_topic("other")
    b = _start_locked_down(broker_factory, readable, other)
    # `other` has no ACL: its produce is refused and Metadata hides it.
    assert _produce_error(b.bootstrap, other) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    listed = confluent_admin(b.bootstrap).list_topics(timeout=ADMIN_TIMEOUT_S).topics
    assert other not in listed
    assert readable in listed, "READ implies DESCRIBE"
    # kcat (Debian's librdkafka) sees the same.
    out = subprocess.run(
        ["kcat", "-b", b.bootstrap, "-L", "-J"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert other not in out and readable in out
    kcat = subprocess.run(
        ["kcat", "-b", b.bootstrap, "-P", "-t", other, "-X", "message.timeout.ms=10000"],
        input="refused\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert kcat.returncode != 0 or "authoriz" in kcat.stderr.lower(), kcat.stderr
    assert "authoriz" in kcat.stderr.lower(), kcat.stderr


def test_read_on_one_topic_allows_consuming_it_and_nothing_else(broker_factory):
    readable, other = unique_topic("readable"), unique_topic("other")
    b = _start_locked_down(broker_factory, readable, other)

    read, error = _consume(b.bootstrap, readable, 5)
    assert (read, error) == (5, None)

    # Cannot produce to it, and the refused produce appended nothing (READ
    # implies DESCRIBE, so ListOffsets answers).
    assert _produce_error(b.bootstrap, readable) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "unused", "socket.timeout.ms": 10000})
    try:
        assert c.get_watermark_offsets(TopicPartition(readable, 0), timeout=ADMIN_TIMEOUT_S) == (0, 5)
    finally:
        c.close()

    # Cannot read another topic: nothing arrives (librdkafka does not
    # surface the refusal to an assign()ed consumer), and kcat, which
    # reports it, is refused.
    read, error = _consume(b.bootstrap, other, 1, wait_s=5)
    assert read == 0
    assert error is None or error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    kcat = subprocess.run(
        ["kcat", "-b", b.bootstrap, "-C", "-t", other, "-o", "beginning", "-e", "-c", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert kcat.stdout == "", kcat.stdout
    assert "authoriz" in kcat.stderr.lower(), kcat.stderr

    # Cannot delete it; it is still there afterwards.
    admin = confluent_admin(b.bootstrap)
    fs = admin.delete_topics([readable], request_timeout=ADMIN_TIMEOUT_S)
    with pytest.raises(KafkaException) as e:
        fs[readable].result(timeout=ADMIN_TIMEOUT_S)
    assert _error_code(e.value) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert readable in admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics

    # Cannot join a group without a group ACL.
    c = Consumer(
        {
            "bootstrap.servers": b.bootstrap,
            "group.id": unique_topic("group"),
            "auto.offset.reset": "earliest",
            "socket.timeout.ms": 10000,
        }
    )
    try:
        c.subscribe([readable])
        deadline = time.monotonic() + 30
        seen = None
        while seen is None and time.monotonic() < deadline:
            for m in c.consume(num_messages=10, timeout=0.5):
                if m.error():
                    seen = m.error()
                    break
                pytest.fail("consumed through a group with no group ACL")
        assert seen is not None and seen.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, seen
    finally:
        c.close()

    # The ACL APIs themselves need the cluster permissions.
    with pytest.raises(KafkaException) as e:
        _create_acls(admin, [_binding(ResourceType.GROUP, "g", ResourcePatternType.LITERAL, AclOperation.READ)])
    assert _error_code(e.value) == KafkaError.CLUSTER_AUTHORIZATION_FAILED


# ------------------------------------------------------------ sluice acl


def _sluice_acl(bootstrap: str, *args: str) -> str:
    from harness import sluice_bin

    out = subprocess.run(
        [str(sluice_bin()), "acl", *args, "--bootstrap-server", bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_sluice_acl_cli_creates_lists_and_deletes(broker_factory):
    import json

    b = broker_factory.new(extra_args=AUTHORIZER_ON + ANONYMOUS_IS_SUPER)
    _sluice_acl(
        b.bootstrap, "create", "--allow-principal", "User:alice", "--operation", "read",
        "--operation", "describe", "--topic", "orders", "--group", "billing",
    )
    _sluice_acl(
        b.bootstrap, "create", "--deny-principal", "User:bob", "--operation", "write",
        "--topic", "ord", "--resource-pattern-type", "prefixed",
    )
    listed = json.loads(_sluice_acl(b.bootstrap, "list", "--json"))
    assert len(listed) == 5, listed
    matched = json.loads(
        _sluice_acl(b.bootstrap, "list", "--topic", "orders", "--resource-pattern-type", "match", "--json")
    )
    assert sorted((a["resource_name"], a["principal"], a["operation"], a["permission"]) for a in matched) == [
        ("ord", "User:bob", "WRITE", "DENY"),
        ("orders", "User:alice", "DESCRIBE", "ALLOW"),
        ("orders", "User:alice", "READ", "ALLOW"),
    ]
    deleted = json.loads(_sluice_acl(b.bootstrap, "delete", "--group", "billing", "--json"))
    assert len(deleted) == 2, deleted
    assert len(json.loads(_sluice_acl(b.bootstrap, "list", "--json"))) == 3
