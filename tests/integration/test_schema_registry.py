"""The built-in schema registry (issue 16) driven by confluent-kafka's own
SchemaRegistryClient and its Avro, JSON Schema and Protobuf serializers,
producing and consuming through the same Sluice broker, plus the REST API's
answers to hostile input, read raw."""

from __future__ import annotations

import json
import struct
import urllib.error
import urllib.request

import kafkajs
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    record_subject_name_strategy,
    topic_record_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

USER_AVRO = json.dumps({
    "type": "record", "name": "User", "namespace": "io.sluice.test",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
})
# Adds a field with a default: BACKWARD compatible with USER_AVRO.
USER_AVRO_V2 = json.dumps({
    "type": "record", "name": "User", "namespace": "io.sluice.test",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"},
               {"name": "email", "type": "string", "default": ""}],
})
# Adds a field without a default: the classic BACKWARD break.
USER_AVRO_BAD = json.dumps({
    "type": "record", "name": "User", "namespace": "io.sluice.test",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"},
               {"name": "phone", "type": "string"}],
})
USER_JSON = json.dumps({
    "$schema": "http://json-schema.org/draft-07/schema#", "title": "User", "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
})


def registry_url(broker) -> str:
    return f"http://127.0.0.1:{broker.registry_port}"


def client(broker) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry_url(broker)})


def produce_serialized(broker, topic: str, serialize, values: list) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    ctx = SerializationContext(topic, MessageField.VALUE)
    failures = []
    for v in values:
        producer.produce(topic, value=serialize(v, ctx),
                         on_delivery=lambda err, msg: err and failures.append(err))
    assert producer.flush(30) == 0, "undelivered records"
    assert not failures, failures


def consume_raw(broker, topic: str, count: int) -> list[bytes]:
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap, "group.id": f"{topic}-reader",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    out: list[bytes] = []
    try:
        for _ in range(300):
            if len(out) >= count:
                break
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            out.append(msg.value())
    finally:
        consumer.close()
    assert len(out) == count, f"read {len(out)} of {count} records from {topic}"
    return out


def schema_id_of(payload: bytes) -> int:
    assert payload[0] == 0, "Confluent wire format starts with magic byte 0"
    return struct.unpack(">i", payload[1:5])[0]


def test_avro_records_round_trip_through_the_registry_and_the_broker(broker, topic_name):
    sr = client(broker)
    users = [{"name": f"user-{i}", "age": 20 + i} for i in range(20)]
    produce_serialized(broker, topic_name, AvroSerializer(sr, USER_AVRO), users)

    payloads = consume_raw(broker, topic_name, len(users))
    # A fresh client, so nothing comes from the serializer's cache.
    decode = AvroDeserializer(client(broker))
    ctx = SerializationContext(topic_name, MessageField.VALUE)
    assert [decode(p, ctx) for p in payloads] == users

    latest = sr.get_latest_version(f"{topic_name}-value")
    assert latest.version == 1
    assert {schema_id_of(p) for p in payloads} == {latest.schema_id}
    assert f"{topic_name}-value" in sr.get_subjects()


def test_json_schema_records_round_trip(broker, topic_name):
    sr = client(broker)
    users = [{"name": f"j{i}", "age": i} for i in range(10)]
    serializer = JSONSerializer(USER_JSON, sr, to_dict=lambda obj, ctx: obj)
    produce_serialized(broker, topic_name, serializer, users)
    payloads = consume_raw(broker, topic_name, len(users))
    decode = JSONDeserializer(None, schema_registry_client=client(broker),
                              from_dict=lambda d, ctx: d)
    ctx = SerializationContext(topic_name, MessageField.VALUE)
    assert [decode(p, ctx) for p in payloads] == users
    registered = sr.get_latest_version(f"{topic_name}-value")
    assert registered.schema.schema_type == "JSON"
    # The serializer validates against the registered schema: a record
    # missing a required property never reaches the broker.
    with pytest.raises(SerializationError):
        serializer({"name": "no age"}, ctx)


def user_message_class():
    """A Protobuf message class built at run time (no protoc here)."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name="sluice_user.proto", package="sluice.test", syntax="proto3")
    msg = fdp.message_type.add(name="User")
    msg.field.add(name="name", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    msg.field.add(name="age", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("sluice.test.User"))


def test_protobuf_records_round_trip(broker, topic_name):
    sr = client(broker)
    User = user_message_class()
    users = [User(name=f"p{i}", age=i) for i in range(10)]
    serializer = ProtobufSerializer(User, sr, {"use.deprecated.format": False})
    produce_serialized(broker, topic_name, serializer, users)
    payloads = consume_raw(broker, topic_name, len(users))
    decode = ProtobufDeserializer(User, {"use.deprecated.format": False},
                                  schema_registry_client=client(broker))
    ctx = SerializationContext(topic_name, MessageField.VALUE)
    assert [decode(p, ctx) for p in payloads] == users
    registered = sr.get_latest_version(f"{topic_name}-value")
    assert registered.schema.schema_type == "PROTOBUF"
    # The registry compiled it: a message with a renumbered field is refused.
    renumbered = (
        'syntax = "proto3"; package sluice.test; '
        'message User { string name = 1; int32 age = 3; }'
    )
    with pytest.raises(SchemaRegistryError) as e:
        sr.register_schema(f"{topic_name}-value", Schema(renumbered, "PROTOBUF"))
    assert e.value.http_status_code == 409


def test_record_name_strategies_register_under_their_subjects(broker, topic_name):
    sr = client(broker)
    ctx = SerializationContext(topic_name, MessageField.VALUE)
    by_record = AvroSerializer(sr, USER_AVRO, conf={
        "subject.name.strategy": record_subject_name_strategy})
    by_topic_record = AvroSerializer(sr, USER_AVRO, conf={
        "subject.name.strategy": topic_record_subject_name_strategy})
    a = by_record({"name": "a", "age": 1}, ctx)
    b = by_topic_record({"name": "b", "age": 2}, ctx)
    subjects = sr.get_subjects()
    assert "io.sluice.test.User" in subjects
    assert f"{topic_name}-io.sluice.test.User" in subjects
    # One schema, one global id, whatever the subject.
    assert schema_id_of(a) == schema_id_of(b)
    assert sorted(sr.get_subjects_by_schema_id(schema_id_of(a))) == sorted(
        ["io.sluice.test.User", f"{topic_name}-io.sluice.test.User"])


def test_compatibility_levels_refuse_and_allow_as_configured(broker):
    sr = client(broker)
    subject = "compat-value"
    first = sr.register_schema(subject, Schema(USER_AVRO, "AVRO"))
    assert sr.register_schema(subject, Schema(USER_AVRO_V2, "AVRO")) == first + 1
    assert not sr.test_compatibility(subject, Schema(USER_AVRO_BAD, "AVRO"))
    with pytest.raises(SchemaRegistryError) as e:
        sr.register_schema(subject, Schema(USER_AVRO_BAD, "AVRO"))
    assert e.value.http_status_code == 409 and e.value.error_code == 409
    assert "phone" in e.value.error_message

    assert sr.get_compatibility() == "BACKWARD"
    sr.set_compatibility(subject, "NONE")
    assert sr.get_compatibility(subject) == "NONE"
    assert sr.register_schema(subject, Schema(USER_AVRO_BAD, "AVRO")) == first + 2
    assert sr.get_versions(subject) == [1, 2, 3]
    # Registering a known schema again is answered with its id.
    assert sr.register_schema(subject, Schema(USER_AVRO, "AVRO")) == first
    found = sr.lookup_schema(subject, Schema(USER_AVRO_V2, "AVRO"))
    assert (found.version, found.schema_id) == (2, first + 1)


def test_deletes_are_soft_then_permanent_and_ids_are_never_reused(broker):
    sr = client(broker)
    subject = "gone-value"
    sid = sr.register_schema(subject, Schema(USER_AVRO, "AVRO"))
    with pytest.raises(SchemaRegistryError) as e:
        sr.delete_subject(subject, permanent=True)
    assert e.value.error_code == 40405
    assert sr.delete_subject(subject) == [1]
    assert subject not in sr.get_subjects()
    with pytest.raises(SchemaRegistryError) as e:
        sr.get_versions(subject)
    assert e.value.error_code == 40401
    assert sr.get_versions(subject, deleted=True) == [1]
    assert sr.delete_subject(subject, permanent=True) == [1]
    with pytest.raises(SchemaRegistryError) as e:
        sr.get_schema(sid)
    assert e.value.error_code == 40403
    # The same content registered again gets a new id.
    assert sr.register_schema(subject, Schema(USER_AVRO, "AVRO")) > sid


def test_schemas_and_ids_survive_a_restart(broker, topic_name):
    sr = client(broker)
    ids = {}
    for i, text in enumerate([USER_AVRO, '"string"', '{"type": "array", "items": "long"}']):
        ids[f"keep-{i}"] = sr.register_schema(f"keep-{i}", Schema(text, "AVRO"))
    sr.set_compatibility("keep-0", "FULL")
    sr.delete_version("keep-1", 1)
    broker.restart()

    fresh = client(broker)
    assert sorted(fresh.get_subjects()) == ["keep-0", "keep-2"]
    assert fresh.get_versions("keep-1", deleted=True) == [1]
    for subject in ["keep-0", "keep-2"]:
        assert fresh.get_latest_version(subject).schema_id == ids[subject]
    assert fresh.get_compatibility("keep-0") == "FULL"
    assert json.loads(fresh.get_schema(ids["keep-0"]).schema_str) == json.loads(USER_AVRO)
    new_id = fresh.register_schema("keep-3", Schema('"bytes"', "AVRO"))
    assert new_id > max(ids.values())

    # The contents live in `_schemas`, in Confluent's record format.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "schemas-dump",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["_schemas"])
    keys = []
    try:
        for _ in range(100):
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                keys.append(json.loads(msg.key()))
            if len(keys) >= 6:
                break
    finally:
        consumer.close()
    assert {"keytype": "SCHEMA", "subject": "keep-0", "version": 1, "magic": 1} in keys
    assert {"keytype": "CONFIG", "subject": "keep-0", "magic": 0} in keys


def raw(broker, method: str, path: str, body: bytes | None = None,
        content_type: str = CONTENT_TYPE) -> tuple[int, dict | list | str]:
    req = urllib.request.Request(registry_url(broker) + path, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.headers["Content-Type"] == CONTENT_TYPE
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        assert e.headers["Content-Type"] == CONTENT_TYPE, e.headers
        return e.code, json.loads(e.read())


def test_hostile_and_malformed_requests_get_confluent_errors(broker):
    register = "/subjects/h-value/versions"
    cases = [
        ("POST", register, b"{not json", 400, 400),
        ("POST", register, b'{"schema": 5}', 422, 422),
        ("POST", register, b"{}", 422, 42201),
        ("POST", register, json.dumps({"schema": "{\"type\": \"nope\"}"}).encode(), 422, 42201),
        ("POST", register, json.dumps({"schema": "[" * 5000 + "]" * 5000}).encode(), 422, 42201),
        ("POST", register, json.dumps({"schema": '"int"', "schemaType": "XML"}).encode(), 422, 42201),
        ("POST", register, json.dumps({"schema": '"int"', "references": [
            {"name": "x", "subject": "missing", "version": 1}]}).encode(), 422, 42201),
        ("POST", register, json.dumps({"schema": '"int"', "id": 7}).encode(), 422, 42205),
        ("POST", "/subjects/a%0Ab/versions", json.dumps({"schema": '"int"'}).encode(), 422, 42208),
        ("GET", "/subjects/none/versions", None, 404, 40401),
        ("GET", "/subjects/none/versions/0", None, 422, 42202),
        ("GET", "/subjects/none/versions/latest", None, 404, 40401),
        ("GET", "/schemas/ids/abc", None, 404, 40403),
        ("GET", "/schemas/ids/99999", None, 404, 40403),
        ("PUT", "/config", json.dumps({"compatibility": "SIDEWAYS"}).encode(), 422, 42203),
        ("PUT", "/mode", json.dumps({"mode": "WRITEONLY"}).encode(), 422, 42204),
        ("GET", "/config/none", None, 404, 40408),
        ("GET", "/no/such/route", None, 404, 404),
        ("DELETE", "/schemas/types", None, 405, 405),
    ]
    for method, path, body, status, code in cases:
        got_status, got = raw(broker, method, path, body)
        assert (got_status, got.get("error_code")) == (status, code), (method, path, got)
        assert got["message"], got

    # A body over the limit is refused before it is buffered whole.
    big = json.dumps({"schema": "x" * (5 * 1024 * 1024)}).encode()
    req = urllib.request.Request(registry_url(broker) + register, data=big, method="POST")
    req.add_header("Content-Type", CONTENT_TYPE)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 413

    # None of it cost the registry anything: it still serves.
    status, answer = raw(broker, "POST", register, json.dumps({"schema": '"int"'}).encode())
    assert status == 200 and answer["id"] >= 1
    assert raw(broker, "GET", "/schemas/types")[1] == ["JSON", "PROTOBUF", "AVRO"]


@pytest.mark.skipif(not kafkajs.registry_available(),
                    reason="node/@kafkajs/confluent-schema-registry not installed (scripts/test.sh installs them)")
def test_kafkajs_confluent_schema_registry_registers_encodes_and_decodes(broker, topic_name):
    answer = kafkajs.registry_round_trip(broker.bootstrap, registry_url(broker), topic_name)
    assert answer["ok"], answer
    ids = set()
    for kind in ["avro", "json", "protobuf"]:
        got = answer[kind]
        assert got["decoded"] == got["values"], (kind, got)
        assert got["ids"] == [got["id"]] and got["latest"] == got["id"], (kind, got)
        ids.add(got["id"])
    assert len(ids) == 3, answer
    # What kafkajs registered reads back through confluent-kafka's client.
    sr = client(broker)
    proto = sr.get_latest_version(f"{topic_name}-protobuf-value")
    assert proto.schema.schema_type == "PROTOBUF" and "message Reading" in proto.schema.schema_str


def create_topic(broker, name: str, configs: dict[str, str]) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic(name, 1, config=configs)], operation_timeout=30)
    futures[name].result(timeout=30)


def deliver(broker, topic: str, values: list[bytes]) -> list:
    """Produces each value on its own (one batch each); returns each one's error or None."""
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 0})
    outcomes = []
    for v in values:
        producer.produce(topic, value=v, on_delivery=lambda err, msg: outcomes.append(err))
        assert producer.flush(30) == 0
    return outcomes


def test_a_validating_topic_refuses_records_without_a_registered_schema(broker, topic_name):
    from confluent_kafka import KafkaError

    create_topic(broker, topic_name, {"confluent.value.schema.validation": "true"})
    sr = client(broker)
    ctx = SerializationContext(topic_name, MessageField.VALUE)
    good = AvroSerializer(sr, USER_AVRO)({"name": "a", "age": 1}, ctx)
    other_id = sr.register_schema("elsewhere-value", Schema('"string"', "AVRO"))
    foreign = b"\x00" + struct.pack(">i", other_id) + b"\x02x"
    unknown = b"\x00" + struct.pack(">i", 987654) + b"\x02x"
    outcomes = deliver(broker, topic_name, [good, b"not in the wire format", foreign, unknown, good])
    codes = [None if e is None else e.code() for e in outcomes]
    assert codes == [None, KafkaError.INVALID_RECORD, KafkaError.INVALID_RECORD,
                     KafkaError.INVALID_RECORD, None], outcomes
    # librdkafka reports the code only; the record errors and message are
    # checked in crates/broker/src/handlers/produce_tests.rs.
    # Only the two good records reached the log.
    assert consume_raw(broker, topic_name, 2) == [good, good]


def test_record_name_strategy_validation_accepts_what_the_serializer_registered(broker, topic_name):
    from confluent_kafka import KafkaError

    create_topic(broker, topic_name, {
        "confluent.value.schema.validation": "true",
        "confluent.value.subject.name.strategy":
            "io.confluent.kafka.serializers.subject.RecordNameStrategy",
    })
    sr = client(broker)
    ctx = SerializationContext(topic_name, MessageField.VALUE)
    by_record = AvroSerializer(sr, USER_AVRO, conf={
        "subject.name.strategy": record_subject_name_strategy})({"name": "r", "age": 2}, ctx)
    # A plain string schema has no record name, so no RecordNameStrategy
    # subject can hold it: refused.
    other = AvroSerializer(sr, '"string"')("just a string", ctx)
    outcomes = deliver(broker, topic_name, [by_record, other])
    assert [None if e is None else e.code() for e in outcomes] == [None, KafkaError.INVALID_RECORD]


def test_the_openapi_document_is_valid_and_covers_every_route(broker):
    from openapi_spec_validator import validate

    with urllib.request.urlopen(registry_url(broker) + "/openapi.json", timeout=30) as resp:
        spec = json.loads(resp.read())
    validate(spec)
    operations = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    for route in [
        ("POST", "/subjects/{subject}/versions"), ("GET", "/subjects/{subject}/versions/{version}"),
        ("DELETE", "/subjects/{subject}"), ("POST", "/subjects/{subject}"),
        ("GET", "/schemas/ids/{id}"), ("GET", "/schemas/ids/{id}/versions"),
        ("PUT", "/config/{subject}"), ("PUT", "/mode"), ("GET", "/schemas/types"),
        ("POST", "/compatibility/subjects/{subject}/versions/{version}"),
    ]:
        assert route in operations, route
    # Every documented GET without a path parameter answers (none is a 404 or 405).
    for method, path in sorted(operations):
        if method == "GET" and "{" not in path:
            status, _ = raw(broker, "GET", path)
            assert status == 200, (path, status)
