"""Issue 3, proof 3: the admin APIs of confluent-kafka and kafka-python.

Each client walks one topic through its whole life (create with configs,
describe, AlterConfigs, IncrementalAlterConfigs, CreatePartitions,
DeleteRecords, DeleteTopics) and checks the broker's view after every step,
then the error paths: duplicate name, invalid names, validate_only.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from clients import (
    ADMIN_TIMEOUT_S,
    ConfluentClient,
    confluent_admin,
    confluent_partition_count,
    confluent_watermarks,
)
from util import make_records, unique_topic

INVALID_NAMES = ["bad/name", "x" * 250, "..", "spaces are bad"]

# ------------------------------------------------------------------ helpers


def _produce_to_partition0(bootstrap: str, topic: str, n: int) -> None:
    ConfluentClient().produce(bootstrap, topic, make_records(n, 1, seed=7), "none")


def _confluent_describe(admin, topic: str) -> dict:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([res], request_timeout=ADMIN_TIMEOUT_S)[res].result(timeout=ADMIN_TIMEOUT_S)


def _kafka_python_admin(bootstrap: str):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)


def _kp_describe(admin, topic: str) -> dict:
    from kafka.admin import ConfigResource as KConfigResource

    out = admin.describe_configs([KConfigResource("TOPIC", topic)], config_filter="all")
    return out["topic"][topic]


# ------------------------------------------------------------ confluent-kafka


# alter_configs is deprecated in confluent-kafka, but it is the only way to send
# the (non-incremental) AlterConfigs API, which older clients still use.
@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated:DeprecationWarning")
def test_confluent_admin_manages_topic_configs_partitions_records_and_deletion(broker, topic_name):
    admin = confluent_admin(broker.bootstrap)
    t = topic_name

    fs = admin.create_topics(
        [NewTopic(t, num_partitions=2, replication_factor=1, config={"retention.ms": "3600000"})],
        request_timeout=ADMIN_TIMEOUT_S,
    )
    fs[t].result(timeout=ADMIN_TIMEOUT_S)
    assert confluent_partition_count(broker.bootstrap, t) == 2

    entries = _confluent_describe(admin, t)
    assert entries["retention.ms"].value == "3600000"
    assert not entries["retention.ms"].is_default

    # AlterConfigs (legacy, whole-set replace)
    res = ConfigResource(ResourceType.TOPIC, t, set_config={"retention.ms": "7200000"})
    admin.alter_configs([res], request_timeout=ADMIN_TIMEOUT_S)[res].result(timeout=ADMIN_TIMEOUT_S)
    assert _confluent_describe(admin, t)["retention.ms"].value == "7200000"

    # IncrementalAlterConfigs: SET one key, and it must not disturb another
    res = ConfigResource(
        ResourceType.TOPIC,
        t,
        incremental_configs=[
            ConfigEntry("retention.ms", "1800000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("segment.bytes", "2097152", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    admin.incremental_alter_configs([res], request_timeout=ADMIN_TIMEOUT_S)[res].result(timeout=ADMIN_TIMEOUT_S)
    entries = _confluent_describe(admin, t)
    assert entries["retention.ms"].value == "1800000"
    assert entries["segment.bytes"].value == "2097152"
    res = ConfigResource(
        ResourceType.TOPIC,
        t,
        incremental_configs=[ConfigEntry("segment.bytes", None, incremental_operation=AlterConfigOpType.DELETE)],
    )
    admin.incremental_alter_configs([res], request_timeout=ADMIN_TIMEOUT_S)[res].result(timeout=ADMIN_TIMEOUT_S)
    entries = _confluent_describe(admin, t)
    assert entries["retention.ms"].value == "1800000", "DELETE of segment.bytes touched retention.ms"
    assert entries["segment.bytes"].is_default, "DELETE did not revert segment.bytes to its default"

    # CreatePartitions
    fs = admin.create_partitions([NewPartitions(t, 5)], request_timeout=ADMIN_TIMEOUT_S)
    fs[t].result(timeout=ADMIN_TIMEOUT_S)
    assert confluent_partition_count(broker.bootstrap, t) == 5

    # DeleteRecords moves the low watermark (log start offset)
    _produce_to_partition0(broker.bootstrap, t, 10)
    fs = admin.delete_records([TopicPartition(t, 0, 4)], request_timeout=ADMIN_TIMEOUT_S)
    deleted = fs[TopicPartition(t, 0, 4)].result(timeout=ADMIN_TIMEOUT_S)
    assert deleted.low_watermark == 4
    assert confluent_watermarks(broker.bootstrap, t, 0) == (4, 10)
    earliest = admin.list_offsets(
        {TopicPartition(t, 0): OffsetSpec.earliest()}, request_timeout=ADMIN_TIMEOUT_S
    )
    assert earliest[TopicPartition(t, 0)].result(timeout=ADMIN_TIMEOUT_S).offset == 4

    # DeleteTopics
    fs = admin.delete_topics([t], request_timeout=ADMIN_TIMEOUT_S)
    fs[t].result(timeout=ADMIN_TIMEOUT_S)
    assert confluent_partition_count(broker.bootstrap, t) is None, "deleted topic still in metadata"


def test_confluent_create_existing_topic_fails_with_topic_already_exists(broker, topic_name):
    admin = confluent_admin(broker.bootstrap)
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(timeout=ADMIN_TIMEOUT_S)
    with pytest.raises(KafkaException) as ei:
        admin.create_topics([NewTopic(topic_name, 3, 1)])[topic_name].result(timeout=ADMIN_TIMEOUT_S)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, ei.value
    assert confluent_partition_count(broker.bootstrap, topic_name) == 1, "duplicate create changed the topic"


@pytest.mark.parametrize("name", INVALID_NAMES, ids=["slash", "250chars", "dotdot", "spaces"])
def test_confluent_create_topic_with_invalid_name_fails_with_invalid_topic(broker, name):
    admin = confluent_admin(broker.bootstrap)
    with pytest.raises(KafkaException) as ei:
        admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=ADMIN_TIMEOUT_S)
    assert ei.value.args[0].code() == KafkaError.TOPIC_EXCEPTION, ei.value
    md = admin.list_topics(timeout=ADMIN_TIMEOUT_S)
    assert name not in md.topics


def test_confluent_create_topic_validate_only_creates_nothing(broker, topic_name):
    admin = confluent_admin(broker.bootstrap)
    fs = admin.create_topics([NewTopic(topic_name, 2, 1)], validate_only=True)
    fs[topic_name].result(timeout=ADMIN_TIMEOUT_S)
    assert confluent_partition_count(broker.bootstrap, topic_name) is None
    # and validate_only still validates
    with pytest.raises(KafkaException) as ei:
        admin.create_topics([NewTopic("bad/name", 1, 1)], validate_only=True)["bad/name"].result(
            timeout=ADMIN_TIMEOUT_S
        )
    assert ei.value.args[0].code() == KafkaError.TOPIC_EXCEPTION


# --------------------------------------------------------------- kafka-python


def test_kafka_python_admin_manages_topic_configs_partitions_records_and_deletion(broker, topic_name):
    from kafka import TopicPartition as KTP
    from kafka.admin import ConfigResource as KConfigResource
    from kafka.admin import OffsetSpec as KOffsetSpec

    t = topic_name
    admin = _kafka_python_admin(broker.bootstrap)
    try:
        admin.create_topics(
            {t: {"num_partitions": 2, "replication_factor": 1, "configs": {"retention.ms": "3600000"}}},
            timeout_ms=10000,
        )
        assert confluent_partition_count(broker.bootstrap, t) == 2
        assert t in admin.list_topics()

        configs = _kp_describe(admin, t)
        assert configs["retention.ms"]["value"] == "3600000"
        assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"

        # AlterConfigs (non-incremental)
        out = admin.alter_configs([KConfigResource("TOPIC", t, configs={"retention.ms": "7200000"})], incremental=False)
        assert out == {"topic": {t: "OK"}}
        assert _kp_describe(admin, t)["retention.ms"]["value"] == "7200000"

        # IncrementalAlterConfigs
        out = admin.alter_configs([KConfigResource("TOPIC", t, configs={"retention.ms": "1800000"})], incremental=True)
        assert out == {"topic": {t: "OK"}}
        assert _kp_describe(admin, t)["retention.ms"]["value"] == "1800000"

        # CreatePartitions
        admin.create_partitions({t: 5}, timeout_ms=10000)
        assert confluent_partition_count(broker.bootstrap, t) == 5
        described = {d["name"]: d for d in admin.describe_topics([t])}
        assert len(described[t]["partitions"]) == 5

        # DeleteRecords
        _produce_to_partition0(broker.bootstrap, t, 10)
        result = admin.delete_records({KTP(t, 0): 4}, timeout_ms=10000)
        assert result[KTP(t, 0)]["low_watermark"] == 4
        assert confluent_watermarks(broker.bootstrap, t, 0) == (4, 10)
        earliest = admin.list_partition_offsets({KTP(t, 0): KOffsetSpec.EARLIEST})
        assert earliest[KTP(t, 0)].offset == 4

        # DeleteTopics
        admin.delete_topics([t], timeout_ms=10000)
        assert t not in admin.list_topics()
        assert confluent_partition_count(broker.bootstrap, t) is None
    finally:
        admin.close()


def test_kafka_python_create_existing_topic_fails_with_topic_already_exists(broker, topic_name):
    from kafka.errors import TopicAlreadyExistsError

    admin = _kafka_python_admin(broker.bootstrap)
    try:
        admin.create_topics({topic_name: {"num_partitions": 1, "replication_factor": 1}})
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics({topic_name: {"num_partitions": 3, "replication_factor": 1}})
    finally:
        admin.close()
    assert confluent_partition_count(broker.bootstrap, topic_name) == 1


@pytest.mark.parametrize("name", INVALID_NAMES, ids=["slash", "250chars", "dotdot", "spaces"])
def test_kafka_python_create_topic_with_invalid_name_fails_with_invalid_topic(broker, name):
    from kafka.errors import InvalidTopicError

    admin = _kafka_python_admin(broker.bootstrap)
    try:
        with pytest.raises(InvalidTopicError):
            admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}})
        assert name not in admin.list_topics()
    finally:
        admin.close()


def test_kafka_python_create_topic_validate_only_creates_nothing(broker):
    t = unique_topic("kp-validate-only")
    admin = _kafka_python_admin(broker.bootstrap)
    try:
        admin.create_topics({t: {"num_partitions": 2, "replication_factor": 1}}, validate_only=True)
        assert t not in admin.list_topics()
    finally:
        admin.close()
    assert confluent_partition_count(broker.bootstrap, t) is None
