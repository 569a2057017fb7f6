"""REST produce and read with registered schemas (issue 16): JSON in, the
schema registry's wire format on the log, read back by confluent-kafka's own
deserializers; and records that confluent-kafka's serializers wrote, decoded
to JSON by REST reads and the SSE tail."""

from __future__ import annotations

import base64
import json
import struct
import urllib.request

from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from http_client import Http
from test_schema_registry import (
    USER_AVRO,
    USER_JSON,
    client,
    consume_raw,
    produce_serialized,
    schema_id_of,
    user_message_class,
)

ORDER_AVRO = json.dumps({
    "type": "record", "name": "Order", "namespace": "io.sluice.test",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "lines", "type": {"type": "array", "items": {
            "type": "record", "name": "Line",
            "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}},
        {"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["NEW", "PAID"]}},
    ],
})

USER_PROTO = (
    'syntax = "proto3"; package sluice.test; '
    'message User { string name = 1; int32 age = 2; }'
)


def read_partition(http: Http, topic: str, partition: int = 0, **params) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in {"offset": 0, "decode": "true", **params}.items())
    return http.get(f"/v1/topics/{topic}/partitions/{partition}/records?{query}")["records"]


def test_rest_reads_decode_what_confluent_serializers_wrote(broker, topic_name):
    sr = client(broker)
    http = Http(broker)
    orders = [
        {"id": 1, "note": None, "lines": [], "state": "NEW"},
        {"id": 2**40, "note": "gift", "lines": [{"sku": "a", "qty": 2}], "state": "PAID"},
    ]
    produce_serialized(broker, topic_name, AvroSerializer(sr, ORDER_AVRO), orders)
    records = read_partition(http, topic_name)
    assert [r["value_schema"]["data"] for r in records] == orders
    schema_id = sr.get_latest_version(f"{topic_name}-value").schema_id
    assert {r["value_schema"]["schema_id"] for r in records} == {schema_id}
    assert {r["value_schema"]["schema_type"] for r in records} == {"AVRO"}
    # The raw bytes are still there, and without decode=true nothing is decoded.
    assert schema_id_of(base64.b64decode(records[0]["value_base64"])) == schema_id
    plain = http.get(f"/v1/topics/{topic_name}/partitions/0/records?offset=0")["records"]
    assert all("value_schema" not in r for r in plain)


def test_rest_produce_encodes_json_that_confluent_deserializers_read(broker, topic_name):
    sr = client(broker)
    http = Http(broker)
    http.create_topic(topic_name, 1)
    sr.register_schema(f"{topic_name}-value", Schema(USER_AVRO, "AVRO"))
    users = [{"name": f"rest-{i}", "age": 30 + i} for i in range(5)]
    # `{}`: the latest version of <topic>-value (TopicNameStrategy).
    http.ok("POST", f"/v1/topics/{topic_name}/records", {
        "records": [{"value": u, "value_schema": {}} for u in users]})
    payloads = consume_raw(broker, topic_name, len(users))
    decode = AvroDeserializer(client(broker))
    ctx = SerializationContext(topic_name, MessageField.VALUE)
    assert [decode(p, ctx) for p in payloads] == users
    # And a REST read decodes them back to the same JSON.
    assert [r["value_schema"]["data"] for r in read_partition(http, topic_name)] == users


def test_rest_produce_with_a_schema_id_json_schema_and_protobuf(broker, topic_name):
    sr = client(broker)
    http = Http(broker)
    json_topic, proto_topic = f"{topic_name}-j", f"{topic_name}-p"
    for t in (json_topic, proto_topic):
        http.create_topic(t, 1)

    json_id = sr.register_schema(f"{json_topic}-value", Schema(USER_JSON, "JSON"))
    users = [{"name": "j", "age": 1}, {"name": "k", "age": 2}]
    http.ok("POST", f"/v1/topics/{json_topic}/records", {
        "records": [{"value": u, "value_schema": {"id": json_id}} for u in users]})
    payloads = consume_raw(broker, json_topic, len(users))
    assert {schema_id_of(p) for p in payloads} == {json_id}
    decode = JSONDeserializer(None, schema_registry_client=client(broker),
                              from_dict=lambda d, ctx: d)
    ctx = SerializationContext(json_topic, MessageField.VALUE)
    assert [decode(p, ctx) for p in payloads] == users

    sr.register_schema(f"{proto_topic}-value", Schema(USER_PROTO, "PROTOBUF"))
    http.ok("POST", f"/v1/topics/{proto_topic}/records", {
        "records": [{"key": {"name": "k"}, "key_schema": {"subject": f"{proto_topic}-value",
                                                          "version": "latest"},
                     "value": u, "value_schema": {"subject": f"{proto_topic}-value",
                                                  "version": 1}} for u in users]})
    payloads = consume_raw(broker, proto_topic, len(users))
    User = user_message_class()
    decode = ProtobufDeserializer(User, {"use.deprecated.format": False},
                                  schema_registry_client=client(broker))
    ctx = SerializationContext(proto_topic, MessageField.VALUE)
    assert [decode(p, ctx) for p in payloads] == [User(name=u["name"], age=u["age"]) for u in users]
    records = read_partition(http, proto_topic)
    assert [r["value_schema"]["data"] for r in records] == users
    assert {r["value_schema"]["message"] for r in records} == {"sluice.test.User"}
    assert {json.dumps(r["key_schema"]["data"]) for r in records} == {'{"name": "k"}'}


def test_rest_produce_refuses_values_that_do_not_fit_and_unknown_schemas(broker, topic_name):
    sr = client(broker)
    http = Http(broker)
    http.create_topic(topic_name, 1)
    sr.register_schema(f"{topic_name}-value", Schema(USER_AVRO, "AVRO"))
    path = f"/v1/topics/{topic_name}/records"
    cases = [
        ({"value": {"name": "x", "age": "old"}, "value_schema": {}}, 422, "SCHEMA_MISMATCH", "/age"),
        ({"value": {"name": "x"}, "value_schema": {}}, 422, "SCHEMA_MISMATCH", "/age"),
        ({"value": {"name": "x", "age": 1}, "value_schema": {"id": 99999}}, 404, "SCHEMA_NOT_FOUND", "99999"),
        ({"value": {"name": "x", "age": 1}, "value_schema": {"subject": "nope"}}, 404, "SCHEMA_NOT_FOUND", "nope"),
        ({"value": {"name": "x", "age": 1}, "value_schema": {"subject": f"{topic_name}-value",
                                                            "version": "first"}}, 400, "BAD_REQUEST", "first"),
        ({"value_base64": "AAAA", "value_schema": {}}, 400, "BAD_REQUEST", "value_base64"),
        ({"key": {"a": 1}, "value": "v"}, 400, "BAD_REQUEST", "key_schema"),
    ]
    for record, status, code, needle in cases:
        got, body = http.call("POST", path, {"records": [{"value": "ok"}, record]})
        assert (got, body["error_code"]) == (status, code), (record, body)
        assert needle in body["message"], (record, body)
    # Nothing of a refused request was appended.
    assert http.get(f"/v1/topics/{topic_name}/partitions/0/records?offset=0")["records"] == []


def test_hostile_wire_format_records_get_a_decode_error_not_a_crash(broker, topic_name):
    sr = client(broker)
    http = Http(broker)
    http.create_topic(topic_name, 1)
    nulls = sr.register_schema(f"{topic_name}-value",
                               Schema(json.dumps({"type": "array", "items": "null"}), "AVRO"))
    # One block claiming 2^62 null items: free per item in the data.
    count = (1 << 62) << 1
    varint = bytearray()
    while count >= 0x80:
        varint.append((count & 0x7F) | 0x80)
        count >>= 7
    varint.append(count)
    bomb = b"\x00" + struct.pack(">i", nulls) + bytes(varint) + b"\x00"
    truncated = b"\x00" + struct.pack(">i", nulls) + b"\x02"
    unknown = b"\x00" + struct.pack(">i", 987654) + b"\x00"
    http.ok("POST", f"/v1/topics/{topic_name}/records", {"records": [
        {"value_base64": base64.b64encode(v).decode()} for v in (bomb, truncated, unknown)
    ] + [{"value": "plain text"}]})
    records = read_partition(http, topic_name)
    assert len(records) == 4
    errors = [r["value_schema"].get("error", "") for r in records[:3]]
    assert "budget" in errors[0], errors
    assert "ends early" in errors[1], errors
    assert "not registered" in errors[2], errors
    assert all("data" not in r["value_schema"] for r in records[:3])
    assert "value_schema" not in records[3]
    # The broker is still serving.
    assert http.raw("GET", "/ready")[0] == 200


def test_the_sse_tail_decodes_with_schemas(broker, topic_name):
    sr = client(broker)
    http = Http(broker)
    users = [{"name": "tail", "age": 7}]
    produce_serialized(broker, topic_name, AvroSerializer(sr, USER_AVRO), users)
    req = urllib.request.Request(http.url(f"/v1/topics/{topic_name}/tail?last=1&decode=true"))
    with urllib.request.urlopen(req, timeout=30) as resp:
        for line in resp:
            line = line.decode().strip()
            if line.startswith("data:"):
                event = json.loads(line[len("data:"):])
                assert event["value_schema"]["data"] == users[0]
                break
        else:
            raise AssertionError("the tail ended without a record")
