"""The HTTP API against the real binary: every endpoint, its error paths, and
the OpenAPI document (valid, and every documented operation is routed).

Errors are always JSON `{error_code, message}` with a 4xx status for client
mistakes; hostile bodies (too large, malformed, deeply nested) must never
produce a 5xx or take the broker down."""

from __future__ import annotations

import base64
import http.client as httpc
import json
import time

import pytest

from http_client import Http, assert_error


@pytest.fixture
def http(broker) -> Http:
    h = Http(broker)
    h.wait_ready()
    return h


# --------------------------------------------------------------------------
# cluster, health, readiness, OpenAPI
# --------------------------------------------------------------------------


def test_health_ready_and_cluster_status(http, broker):
    assert http.get("/health") == {"status": "ok"}
    assert http.get("/ready") == {"status": "ok"}
    c = http.get("/v1/cluster")
    assert c["node_id"] == 1
    assert len(c["cluster_id"]) == 22
    assert c["brokers"] == [{
        "node_id": 1, "host": "127.0.0.1", "port": broker.kafka_port,
        "rack": None, "is_controller": True, "fenced": False,
    }]
    # A single node has no quorum; its image still has a digest to compare.
    assert c["quorum"] is None and c["controller_id"] == 1
    assert len(c["metadata"]["digest"]) == 8 and c["metadata"]["next_offset"] >= 0
    assert c["topic_count"] == 0 and c["partition_count"] == 0
    assert c["uptime_ms"] >= 0


def test_shutdown_is_clean_with_a_live_tail_open(http, broker):
    # An open live tail must not hold shutdown up.
    http.create_topic("tailed")
    res = http_stream(http, "/v1/topics/tailed/tail")
    assert broker.stop() == 0
    assert b"event: record" not in res.read()  # the server ended the stream


def test_openapi_document_is_valid_and_every_operation_is_routed(http):
    from openapi_spec_validator import validate

    spec = http.get("/v1/openapi.json")
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    ops = {(m.upper(), p) for p, item in spec["paths"].items() for m in item
           if m in ("get", "post", "put", "patch", "delete")}
    # Every endpoint this suite exercises is documented ...
    expected = {
        ("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"), ("GET", "/v1/openapi.json"),
        ("GET", "/v1/cluster"), ("GET", "/v1/cluster/balance"),
        ("POST", "/v1/cluster/brokers/{node_id}/decommission"),
        ("DELETE", "/v1/cluster/brokers/{node_id}/decommission"),
        ("GET", "/v1/topics"), ("POST", "/v1/topics"),
        ("GET", "/v1/topics/{topic}"), ("DELETE", "/v1/topics/{topic}"),
        ("PATCH", "/v1/topics/{topic}/configs"), ("POST", "/v1/topics/{topic}/partitions"),
        ("POST", "/v1/topics/{topic}/records"), ("GET", "/v1/topics/{topic}/records"),
        ("GET", "/v1/topics/{topic}/partitions/{partition}/records"),
        ("DELETE", "/v1/topics/{topic}/partitions/{partition}/records"),
        ("GET", "/v1/topics/{topic}/partitions/{partition}/tail"),
        ("GET", "/v1/topics/{topic}/tail"),
        ("GET", "/v1/topics/{topic}/keys/{key}"), ("GET", "/v1/topics/{topic}/keys"),
        ("GET", "/v1/groups"), ("GET", "/v1/groups/{group}"), ("DELETE", "/v1/groups/{group}"),
        ("POST", "/v1/groups/{group}/offsets/reset"),
        ("GET", "/v1/auth/whoami"), ("GET", "/v1/auth/tokens"), ("POST", "/v1/auth/tokens"),
        ("DELETE", "/v1/auth/tokens/{token_id}"),
        ("POST", "/consumers/{group}"), ("DELETE", "/consumers/{group}/instances/{instance}"),
        ("POST", "/consumers/{group}/instances/{instance}/subscription"),
        ("GET", "/consumers/{group}/instances/{instance}/subscription"),
        ("GET", "/consumers/{group}/instances/{instance}/assignments"),
        ("GET", "/consumers/{group}/instances/{instance}/records"),
        ("POST", "/consumers/{group}/instances/{instance}/offsets"),
        ("GET", "/consumers/{group}/instances/{instance}/offsets"),
        # Issue 19's console routes.
        ("GET", "/v1/metrics/history"), ("GET", "/v1/topics/{topic}/configs"),
        ("GET", "/v1/cluster/brokers/{node_id}/configs"),
    }
    assert ops == expected, f"undocumented: {expected - ops}; untested: {ops - expected}"
    # ... and every documented operation is routed: a request reaches a
    # handler (which may say 404 for the missing topic, with a Kafka error
    # code) instead of the router's NOT_FOUND / METHOD_NOT_ALLOWED fallback.
    for method, path in sorted(ops):
        if path.endswith("/tail"):
            continue  # streams; routed-ness is proven by the tail tests
        concrete = (path.replace("{topic}", "no-such-topic").replace("{partition}", "0")
                    .replace("{group}", "no-such-group").replace("{node_id}", "99")
                    .replace("{token_id}", "no-such-token").replace("{key}", "k")
                    .replace("{instance}", "no-such-instance"))
        body = b"{}" if method in ("POST", "PATCH") else None
        status, _, raw = http.raw(method, concrete, body, {"content-type": "application/json"})
        if status >= 400:
            err = json.loads(raw)
            assert err["error_code"] not in ("NOT_FOUND", "METHOD_NOT_ALLOWED"), (method, path, err)
        for response in spec["paths"][path][method.lower()]["responses"].values():
            assert "description" in response
    # Error responses are documented with the shared error schema.
    assert set(spec["components"]["schemas"]["ErrorBody"]["properties"]) == {"error_code", "message"}


def test_a_single_node_has_no_balancer_and_no_broker_to_decommission(http):
    balance = http.get("/v1/cluster/balance")
    assert balance["enabled"] is False and balance["moves"] == [] and balance["bytes_left"] == 0, balance
    assert_error(http.call("POST", "/v1/cluster/brokers/99/decommission"), 404, "BROKER_ID_NOT_REGISTERED")
    assert_error(http.call("DELETE", "/v1/cluster/brokers/99/decommission"), 404, "BROKER_ID_NOT_REGISTERED")


def test_with_http_auth_off_the_caller_is_anonymous_and_tokens_are_disabled(http):
    assert http.get("/v1/auth/whoami") == {
        "principal": "User:ANONYMOUS", "auth_method": "none", "auth_enabled": False}
    assert_error(http.call("POST", "/v1/auth/tokens", {}), 400, "DELEGATION_TOKEN_AUTH_DISABLED")
    assert_error(http.call("GET", "/v1/auth/tokens"), 400, "DELEGATION_TOKEN_AUTH_DISABLED")


def test_unknown_routes_and_methods_get_json_errors(http):
    assert_error(http.call("GET", "/v1/nope"), 404, "NOT_FOUND")
    assert_error(http.call("PUT", "/v1/topics"), 405, "METHOD_NOT_ALLOWED")
    assert_error(http.call("GET", "/v1/topics/a/partitions/notanumber/records?first=1"), 400, "BAD_REQUEST")


def test_console_is_served_from_the_binary(http):
    status, headers, body = http.raw("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"<title>Sluice Console</title>" in body
    for path, ctype in (("/console/console.js", "text/javascript"), ("/console/console.css", "text/css"),
                        ("/console/favicon.svg", "image/svg+xml")):
        status, headers, body = http.raw("GET", path)
        assert status == 200 and headers["content-type"].startswith(ctype) and body, path


# --------------------------------------------------------------------------
# topics
# --------------------------------------------------------------------------


def test_topic_create_list_describe_alter_grow_delete(http, topic_name):
    created = http.create_topic(topic_name, 3, {"retention.ms": "3600000"})
    assert created["name"] == topic_name and len(created["partitions"]) == 3
    assert created["configs"] == {"retention.ms": "3600000"}
    p0 = created["partitions"][0]
    assert (p0["leader"], p0["replicas"], p0["isr"]) == (1, [1], [1])
    assert (p0["log_start_offset"], p0["high_watermark"], p0["log_end_offset"]) == (0, 0, 0)

    listed = {t["name"]: t for t in http.get("/v1/topics")["topics"]}
    assert listed[topic_name]["partition_count"] == 3 and listed[topic_name]["internal"] is False

    http.produce(topic_name, [{"value": i, "partition": 1} for i in range(4)])
    d = http.get(f"/v1/topics/{topic_name}")
    p1 = d["partitions"][1]
    assert (p1["log_start_offset"], p1["high_watermark"], p1["log_end_offset"]) == (0, 4, 4)
    assert p1["size_bytes"] > 0 and p1["segment_count"] >= 1

    altered = http.ok("PATCH", f"/v1/topics/{topic_name}/configs",
                      {"set": {"cleanup.policy": "compact"}, "delete": ["retention.ms"]})
    assert altered["configs"] == {"cleanup.policy": "compact"}

    grown = http.ok("POST", f"/v1/topics/{topic_name}/partitions", {"count": 5})
    assert [p["partition"] for p in grown["partitions"]] == [0, 1, 2, 3, 4]

    assert http.call("DELETE", f"/v1/topics/{topic_name}") == (204, None)
    assert_error(http.call("GET", f"/v1/topics/{topic_name}"), 404, "UNKNOWN_TOPIC_OR_PARTITION")
    assert topic_name not in {t["name"] for t in http.get("/v1/topics")["topics"]}


def test_topic_errors(http, topic_name):
    http.create_topic(topic_name, 1)
    assert_error(http.call("POST", "/v1/topics", {"name": topic_name}), 409, "TOPIC_ALREADY_EXISTS")
    assert_error(http.call("POST", "/v1/topics", {"name": "bad/name"}), 400, "INVALID_TOPIC_EXCEPTION")
    assert_error(http.call("POST", "/v1/topics", {"name": "zero", "partitions": 0}), 400, "INVALID_PARTITIONS")
    assert_error(http.call("POST", "/v1/topics", {"name": "rf", "replication_factor": 3}), 400,
                 "INVALID_REPLICATION_FACTOR")
    assert_error(http.call("POST", "/v1/topics", {"name": "cfg", "configs": {"retention.ms": "soon"}}), 400,
                 "INVALID_CONFIG")
    assert_error(http.call("POST", "/v1/topics", {"name": "cfg", "configs": {"no.such.config": "1"}}), 400,
                 "INVALID_CONFIG")
    body = assert_error(http.call("POST", "/v1/topics", {"name": "x", "partitionz": 2}), 422, "BAD_JSON")
    assert "partitionz" in body["message"]
    assert_error(http.call("POST", "/v1/topics", {"partitions": 2}), 422, "BAD_JSON")
    assert_error(http.call("GET", "/v1/topics/missing"), 404, "UNKNOWN_TOPIC_OR_PARTITION")
    assert_error(http.call("DELETE", "/v1/topics/missing"), 404, "UNKNOWN_TOPIC_OR_PARTITION")
    assert_error(http.call("PATCH", "/v1/topics/missing/configs", {"set": {"retention.ms": "1"}}), 404,
                 "UNKNOWN_TOPIC_OR_PARTITION")
    assert_error(http.call("PATCH", f"/v1/topics/{topic_name}/configs", {}), 400, "BAD_REQUEST")
    assert_error(http.call("PATCH", f"/v1/topics/{topic_name}/configs", {"set": {"retention.ms": "x"}}), 400,
                 "INVALID_CONFIG")
    assert_error(http.call("POST", f"/v1/topics/{topic_name}/partitions", {"count": 1}), 400, "INVALID_PARTITIONS")
    assert_error(http.call("POST", "/v1/topics/missing/partitions", {"count": 3}), 404, "UNKNOWN_TOPIC_OR_PARTITION")
    # The failed calls changed nothing.
    d = http.get(f"/v1/topics/{topic_name}")
    assert len(d["partitions"]) == 1 and d["configs"] == {}


# --------------------------------------------------------------------------
# produce and read
# --------------------------------------------------------------------------


def test_produce_json_base64_headers_keys_and_read_back(http, topic_name):
    http.create_topic(topic_name, 4)
    raw = bytes(range(256))
    offsets = http.produce(topic_name, [
        {"key": "k1", "value": {"a": [1, 2, {"b": None}]}, "partition": 2,
         "headers": [{"key": "h", "value": "1"}, {"key": "h", "value": "2"}, {"key": "n", "value": None}]},
        {"key_base64": base64.b64encode(b"\x00\xff").decode(), "value_base64": base64.b64encode(raw).decode(),
         "partition": 2, "timestamp_ms": 1_700_000_000_000},
        {"value": "just a string", "partition": 2},
        {"partition": 2},  # null value: a tombstone
    ])
    assert offsets == [{"partition": 2, "offset": i, "log_append_time_ms": -1} for i in range(4)]

    r = http.get(f"/v1/topics/{topic_name}/partitions/2/records?first=10")
    assert (r["log_start_offset"], r["high_watermark"], r["next_offset"]) == (0, 4, 4)
    recs = r["records"]
    assert [x["offset"] for x in recs] == [0, 1, 2, 3]
    assert recs[0]["key"] == "k1" and json.loads(recs[0]["value"]) == {"a": [1, 2, {"b": None}]}
    assert [(h["key"], h["value"]) for h in recs[0]["headers"]] == [("h", "1"), ("h", "2"), ("n", None)]
    assert base64.b64decode(recs[1]["key_base64"]) == b"\x00\xff" and recs[1]["key"] is None
    assert base64.b64decode(recs[1]["value_base64"]) == raw and recs[1]["value"] is None
    assert recs[1]["timestamp_ms"] == 1_700_000_000_000 and recs[1]["timestamp_type"] == "CreateTime"
    assert json.loads(recs[2]["value"]) == "just a string"
    assert recs[3]["value"] is None and recs[3]["value_base64"] is None and recs[3]["key"] is None


def test_keyed_records_follow_kafkas_default_partitioner(http, topic_name):
    http.create_topic(topic_name, 6)
    offsets = http.produce(topic_name, [{"key": k, "value": 1} for k in ["a", "b", "c", "a", "b", "c"]])
    by_key = {}
    for k, o in zip(["a", "b", "c", "a", "b", "c"], offsets):
        by_key.setdefault(k, set()).add(o["partition"])
    assert all(len(ps) == 1 for ps in by_key.values()), by_key
    # Kafka's murmur2 partitioner: toPositive(murmur2(key)) % 6.
    from kafka.partitioner.default import murmur2
    for k, ps in by_key.items():
        assert ps == {(murmur2(k.encode()) & 0x7FFFFFFF) % 6}, k
    # Unkeyed records without a partition are spread over partitions.
    spread = http.produce(topic_name, [{"value": i} for i in range(12)])
    assert len({o["partition"] for o in spread}) > 1


def test_read_by_offset_timestamp_first_and_last(http, topic_name):
    http.create_topic(topic_name, 1)
    # A minute in the past: produce refuses CreateTime more than
    # message.timestamp.after.max.ms (1 hour, Kafka 4's default) ahead.
    base = int(time.time() * 1000) - 60_000
    http.produce(topic_name, [{"value": i, "partition": 0, "timestamp_ms": base + i * 1000} for i in range(20)])
    path = f"/v1/topics/{topic_name}/partitions/0/records"
    vals = lambda r: [json.loads(x["value"]) for x in r["records"]]  # noqa: E731
    assert vals(http.get(path + "?first=3")) == [0, 1, 2]
    last = http.get(path + "?last=3")
    assert vals(last) == [17, 18, 19] and last["next_offset"] == 20
    assert vals(http.get(path + "?offset=5&limit=4")) == [5, 6, 7, 8]
    page = http.get(path + "?offset=18")
    assert vals(page) == [18, 19] and page["next_offset"] == 20
    assert vals(http.get(path + f"?timestamp={base + 7500}&limit=2")) == [8, 9]
    assert vals(http.get(path + f"?timestamp={base + 99_000}")) == []
    assert http.get(path + "?offset=20")["records"] == []


def test_topic_read_merges_partitions_pages_exactly_and_filters(http, broker, topic_name):
    import confluent_kafka as ck

    http.create_topic(topic_name, 3)
    # Produced by a Kafka client, at distinct create times, round the partitions.
    p = ck.Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(30):
        headers = [("kind", b"even" if i % 2 == 0 else b"odd")]
        p.produce(topic_name, key=f"key-{i}".encode(), value=json.dumps({"n": i}).encode(),
                  partition=i % 3, timestamp=1_700_000_000_000 + i, headers=headers)
    assert p.flush(30) == 0
    path = f"/v1/topics/{topic_name}/records"
    seen, cursor = [], None
    for _ in range(10):
        page = http.get(path + "?limit=4" + (f"&cursor={cursor}" if cursor else ""))
        assert len(page["records"]) <= 4 and page["truncated"] is False
        seen += [json.loads(r["value"])["n"] for r in page["records"]]
        cursor = page["cursor"]
        if page["end_reached"]:
            break
    assert seen == list(range(30)), "every record once, by time across partitions"
    assert sorted(p["next_offset"] for p in page["partitions"]) == [10, 10, 10]
    # Records produced later continue from the last cursor.
    http.produce(topic_name, [{"value": {"n": 30}, "partition": 1}])
    later = http.get(f"{path}?cursor={cursor}")
    assert [json.loads(r["value"])["n"] for r in later["records"]] == [30]

    def numbers(query):
        return [json.loads(r["value"])["n"] for r in http.get(f"{path}?{query}")["records"]]

    assert numbers("key_contains=key-2&limit=100") == [2, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]
    assert numbers("value_contains=%22n%22%3A%201&header=kind%3Dodd&limit=100") == [1, 11, 13, 15, 17, 19]
    assert numbers("header=kind&from_ts=1700000000010&to_ts=1700000000012") == [10, 11, 12]
    assert numbers("from=1700000000027") == [27, 28, 29, 30]
    assert numbers("from=end&limit=3") == [28, 29, 30]
    bounded = http.get(f"{path}?key_contains=key-2&max_scan=5")
    assert (bounded["scanned"], bounded["truncated"]) == (5, True)
    assert [json.loads(r["value"])["n"] for r in bounded["records"]] == [2]
    rest = http.get(f"{path}?key_contains=key-2&cursor={bounded['cursor']}")
    assert [json.loads(r["value"])["n"] for r in rest["records"]] == [20, 21, 22, 23, 24, 25, 26, 27, 28, 29]
    for bad in ("limit=0", "max_scan=1000000", "from=soon", "cursor=9:0", "cursor=0:1,0:2", "cursor=x",
                "cursor=0:0&from=end", "header="):
        assert_error(http.call("GET", f"{path}?{bad}"), 400, "BAD_REQUEST")
    assert_error(http.call("GET", "/v1/topics/missing/records"), 404, "UNKNOWN_TOPIC_OR_PARTITION")


def test_format_json_embeds_json_keys_and_values(http, topic_name):
    http.create_topic(topic_name, 1)
    http.produce(topic_name, [{"key": "{\"id\": 7}", "value": {"a": [1, 2]}},
                              {"key": "plain", "value_base64": base64.b64encode(b"not json").decode()},
                              {"value_base64": base64.b64encode(b"\xff\x00").decode()}])
    for path in (f"/v1/topics/{topic_name}/partitions/0/records?first=3&format=json",
                 f"/v1/topics/{topic_name}/records?format=json"):
        records = http.get(path)["records"]
        assert records[0]["value_json"] == {"a": [1, 2]} and records[0]["key_json"] == {"id": 7}, records[0]
        assert records[0]["value"] == '{"a":[1,2]}'  # the text stays
        assert "value_json" not in records[1] and "key_json" not in records[1], records[1]
        assert "value_json" not in records[2] and records[2]["value_base64"] == "/wA=", records[2]
    # Without format=json nothing is embedded.
    plain = http.get(f"/v1/topics/{topic_name}/partitions/0/records?first=1")["records"][0]
    assert "value_json" not in plain
    assert_error(http.call("GET", f"/v1/topics/{topic_name}/records?format=yaml"), 400, "BAD_REQUEST")
    res = http_stream(http, f"/v1/topics/{topic_name}/tail?last=1000&format=json")
    assert sse_records(res, 1)[0]["value_json"] == {"a": [1, 2]}
    res.close()


def test_read_errors(http, topic_name):
    http.create_topic(topic_name, 1)
    http.produce(topic_name, [{"value": 1, "partition": 0}])
    path = f"/v1/topics/{topic_name}/partitions/0/records"
    assert_error(http.call("GET", path), 400, "BAD_REQUEST")
    assert_error(http.call("GET", path + "?first=1&last=1"), 400, "BAD_REQUEST")
    assert_error(http.call("GET", path + "?offset=0&limit=0"), 400, "BAD_REQUEST")
    assert_error(http.call("GET", path + "?last=100000"), 400, "BAD_REQUEST")
    assert_error(http.call("GET", path + "?offset=abc"), 400, "BAD_REQUEST")
    assert_error(http.call("GET", path + "?offset=0&bogus=1"), 400, "BAD_REQUEST")
    assert_error(http.call("GET", path + "?timestamp=-5"), 400, "BAD_REQUEST")
    assert_error(http.call("GET", path + "?offset=2"), 416, "OFFSET_OUT_OF_RANGE")
    assert_error(http.call("GET", path + "?offset=-1"), 416, "OFFSET_OUT_OF_RANGE")
    assert_error(http.call("GET", f"/v1/topics/{topic_name}/partitions/9/records?first=1"), 404,
                 "UNKNOWN_TOPIC_OR_PARTITION")
    assert_error(http.call("GET", "/v1/topics/missing/partitions/0/records?first=1"), 404,
                 "UNKNOWN_TOPIC_OR_PARTITION")


def test_produce_errors(http, topic_name):
    http.create_topic(topic_name, 2, {"max.message.bytes": "2000"})
    p = f"/v1/topics/{topic_name}/records"
    assert_error(http.call("POST", "/v1/topics/missing/records", {"records": [{"value": 1}]}), 404,
                 "UNKNOWN_TOPIC_OR_PARTITION")
    assert_error(http.call("POST", p, {"records": [{"value": 1, "partition": 7}]}), 404, "UNKNOWN_TOPIC_OR_PARTITION")
    assert_error(http.call("POST", p, {"records": [{"value": 1, "partition": -1}]}), 404, "UNKNOWN_TOPIC_OR_PARTITION")
    assert_error(http.call("POST", p, {"records": []}), 400, "BAD_REQUEST")
    assert_error(http.call("POST", p, {"records": [{"value_base64": "***"}]}), 400, "BAD_REQUEST")
    assert_error(http.call("POST", p, {"records": [{"value": 1, "value_base64": "AA=="}]}), 400, "BAD_REQUEST")
    assert_error(http.call("POST", p, {"records": [{"key": "a", "key_base64": "AA=="}]}), 400, "BAD_REQUEST")
    assert_error(http.call("POST", p, {"records": [{"value": 1, "colour": "red"}]}), 422, "BAD_JSON")
    assert_error(http.call("POST", p, {"records": [{"value": 1}] * 10_001}), 413, "PAYLOAD_TOO_LARGE")
    # A batch over the topic's max.message.bytes is refused by the log.
    big = http.call("POST", p, {"records": [{"value": "x" * 5000, "partition": 0}]})
    assert big[0] == 413, big
    # Nothing was appended by any of the failed requests.
    assert all(x["high_watermark"] == 0 for x in http.get(f"/v1/topics/{topic_name}")["partitions"])


def test_hostile_bodies_get_4xx_and_never_hurt_the_broker(http, broker, topic_name):
    http.create_topic(topic_name, 1)
    p = f"/v1/topics/{topic_name}/records"
    cases = [
        (b"{", {"content-type": "application/json"}, 400),
        (b"not json at all", {"content-type": "application/json"}, 400),
        (b'{"records": [' + b"[" * 100_000, {"content-type": "application/json"}, 422),  # deep nesting
        (b"[" * 100_000, {"content-type": "application/json"}, 422),
        (b'{"records": 5}', {"content-type": "application/json"}, 422),
        (b'{"records": [{"value": 1}]}', {"content-type": "text/plain"}, 415),
        (b'{"records": [{"value": 1}]}', {}, 415),
        (b"\xff\xfe\x00garbage", {"content-type": "application/json"}, 400),
        (b'{"records": [{"partition": 99999999999}]}', {"content-type": "application/json"}, 422),
    ]
    for body, headers, want in cases:
        status, _, raw = http.raw("POST", p, body, headers)
        assert status == want, (body[:40], status, raw[:200])
        err = json.loads(raw)
        assert set(err) == {"error_code", "message"}
    # Bodies over the 8 MiB limit, with a declared length and chunked: 413.
    # hyper may close the socket while the client is still sending the
    # excess, which the client sees as a reset; either way nothing is
    # appended and the broker carries on.
    chunk = b"x" * (1024 * 1024)

    def oversized():
        yield b'{"records": [{"value": "'
        for _ in range(9):
            yield chunk
        yield b'"}]}'

    for chunked in (False, True):
        conn = httpc.HTTPConnection("127.0.0.1", int(http.base.rsplit(":", 1)[1]), timeout=30)
        body = oversized() if chunked else b"".join(oversized())
        try:
            conn.request("POST", p, body=body, headers={"content-type": "application/json"},
                         encode_chunked=chunked)
            res = conn.getresponse()
            assert res.status == 413 and json.loads(res.read())["error_code"] == "PAYLOAD_TOO_LARGE"
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            conn.close()
    assert broker.alive()
    assert http.get("/health") == {"status": "ok"}
    assert http.get(f"/v1/topics/{topic_name}")["partitions"][0]["high_watermark"] == 0


# --------------------------------------------------------------------------
# live tail (Server-Sent Events)
# --------------------------------------------------------------------------


def http_stream(http: Http, path: str, timeout: float = 20.0) -> httpc.HTTPResponse:
    conn = httpc.HTTPConnection("127.0.0.1", int(http.base.rsplit(":", 1)[1]), timeout=timeout)
    conn.request("GET", path, headers={"accept": "text/event-stream"})
    res = conn.getresponse()
    assert res.status == 200, res.read()
    assert res.headers["content-type"].startswith("text/event-stream")
    return res


def sse_records(res, count: int) -> list[dict]:
    """Reads `count` `record` events (keep-alive comments are skipped)."""
    out, event, data = [], None, []
    while len(out) < count:
        line = res.fp.readline().decode()
        assert line, "stream ended early"
        line = line.rstrip("\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "":
            if event == "record":
                out.append(json.loads("\n".join(data)))
            event, data = None, []
    return out


def test_tail_a_partition_and_a_topic(http, topic_name):
    http.create_topic(topic_name, 2)
    http.produce(topic_name, [{"value": "old", "partition": 0}])
    # A partition tail from the end sees only new records; from an offset, old ones too.
    live = http_stream(http, f"/v1/topics/{topic_name}/partitions/0/tail")
    replay = http_stream(http, f"/v1/topics/{topic_name}/partitions/0/tail?offset=0")
    whole = http_stream(http, f"/v1/topics/{topic_name}/tail?last=1")
    http.produce(topic_name, [{"key": "k", "value": {"n": 1}, "partition": 0},
                              {"value": {"n": 2}, "partition": 1}])
    got = sse_records(live, 1)[0]
    assert (got["offset"], got["key"], json.loads(got["value"])) == (1, "k", {"n": 1})
    assert [r["offset"] for r in sse_records(replay, 2)] == [0, 1]
    seen = sse_records(whole, 3)  # the replayed "old" and both new records
    assert sorted((r["partition"], r["offset"]) for r in seen) == [(0, 0), (0, 1), (1, 0)]
    for r in (live, replay, whole):
        r.close()


def sse_events(res, count: int) -> list[tuple[str, dict]]:
    """Reads `count` `record` events as (id, record)."""
    out, event, data, ident = [], None, [], None
    while len(out) < count:
        line = res.fp.readline().decode()
        assert line, "stream ended early"
        line = line.rstrip("\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line.startswith("id:"):
            ident = line[3:].strip()
        elif line == "":
            if event == "record":
                out.append((ident, json.loads("\n".join(data))))
            event, data = None, []
    return out


def test_tail_resumes_after_last_event_id_without_gap_or_duplicate(http, topic_name):
    http.create_topic(topic_name, 3)
    http.produce(topic_name, [{"value": i, "partition": i % 3} for i in range(9)])
    res = http_stream(http, f"/v1/topics/{topic_name}/tail?last=1000")
    first = sse_events(res, 4)
    res.close()  # the client goes away mid-stream
    last_id = first[-1][0]
    assert last_id, first
    http.produce(topic_name, [{"value": i, "partition": i % 3} for i in range(9, 15)])
    # An EventSource reconnects with the header; a sentinel produced last
    # proves nothing is sent twice before it.
    port = int(http.base.rsplit(":", 1)[1])
    conn = httpc.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("GET", f"/v1/topics/{topic_name}/tail?last=1000",
                 headers={"accept": "text/event-stream", "last-event-id": last_id})
    again = conn.getresponse()
    assert again.status == 200
    http.produce(topic_name, [{"value": "sentinel", "partition": 0}])
    rest = sse_events(again, 15 - 4 + 1)
    again.close()
    values = [json.loads(r["value"]) for _, r in first + rest]
    assert values[-1] == "sentinel", values
    assert sorted(values[:-1]) == list(range(15)), f"gap or duplicate: {values}"
    # The same through the query parameter, resuming from the very end.
    end_id = rest[-1][0]
    res = http_stream(http, f"/v1/topics/{topic_name}/tail?last=1000&last_event_id={end_id}")
    http.produce(topic_name, [{"value": "after", "partition": 2}])
    assert json.loads(sse_events(res, 1)[0][1]["value"]) == "after"
    res.close()
    # A partition tail resumes the same way.
    res = http_stream(http, f"/v1/topics/{topic_name}/partitions/0/tail?offset=0")
    (ident, r), = sse_events(res, 1)
    res.close()
    assert (ident, r["offset"]) == ("0:1", 0)
    res = http_stream(http, f"/v1/topics/{topic_name}/partitions/0/tail?offset=0&last_event_id=0:1")
    assert sse_events(res, 1)[0][1]["offset"] == 1
    res.close()
    assert_error(http.call("GET", f"/v1/topics/{topic_name}/tail?last_event_id=7:1"), 400, "BAD_REQUEST")
    assert_error(http.call("GET", f"/v1/topics/{topic_name}/partitions/0/tail?last_event_id=1:1"), 400,
                 "BAD_REQUEST")


def test_tail_errors(http, topic_name):
    http.create_topic(topic_name, 1)
    assert_error(http.call("GET", "/v1/topics/missing/tail"), 404, "UNKNOWN_TOPIC_OR_PARTITION")
    assert_error(http.call("GET", f"/v1/topics/{topic_name}/partitions/3/tail"), 404, "UNKNOWN_TOPIC_OR_PARTITION")
    assert_error(http.call("GET", f"/v1/topics/{topic_name}/partitions/0/tail?offset=0&last=1"), 400, "BAD_REQUEST")
    assert_error(http.call("GET", f"/v1/topics/{topic_name}/tail?last=5000"), 400, "BAD_REQUEST")


def test_tail_ends_when_its_topic_is_deleted(http, topic_name):
    http.create_topic(topic_name, 1)
    res = http_stream(http, f"/v1/topics/{topic_name}/partitions/0/tail", timeout=30)
    http.ok("DELETE", f"/v1/topics/{topic_name}", status=204)
    started = time.monotonic()
    rest = res.read()  # returns when the server ends the stream
    assert b"event: record" not in rest
    assert time.monotonic() - started < 25


# --------------------------------------------------------------------------
# consumer groups
# --------------------------------------------------------------------------


def group_consumer(bootstrap: str, group: str):
    import confluent_kafka as ck

    return ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                        "enable.auto.commit": False, "session.timeout.ms": 6000})


def poll_until(consumer, count: int, timeout_s: float = 30.0) -> list:
    got, deadline = [], time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            got.append(m)
    assert len(got) >= count, f"consumed {len(got)} of {count}"
    return got


def test_groups_list_describe_lag_and_reset(http, broker, topic_name):
    import confluent_kafka as ck

    http.create_topic(topic_name, 2)
    http.produce(topic_name, [{"value": i, "partition": i % 2} for i in range(10)])  # 5 per partition
    group = topic_name + "-g"
    c = group_consumer(broker.bootstrap, group)
    c.subscribe([topic_name])
    poll_until(c, 1)
    c.commit(offsets=[ck.TopicPartition(topic_name, 0, 2), ck.TopicPartition(topic_name, 1, 5)], asynchronous=False)

    # While the consumer is a member: described with its assignment, reset refused.
    g = http.get(f"/v1/groups/{group}")
    # KIP-848's group type, and the protocol type `sluice group list` shows.
    assert (g["type"], g["protocol_type"], g["state"]) == ("classic", "consumer", "Stable"), g
    assert len(g["members"]) == 1
    member = g["members"][0]
    assert sorted((a["topic"], a["partition"]) for a in member["assignment"]) == [(topic_name, 0), (topic_name, 1)]
    lags = {o["partition"]: o for o in g["offsets"]}
    assert (lags[0]["committed_offset"], lags[0]["high_watermark"], lags[0]["lag"]) == (2, 5, 3)
    assert (lags[1]["committed_offset"], lags[1]["lag"]) == (5, 0)
    assert lags[0]["member_id"] == member["member_id"]
    assert g["total_lag"] == 3
    assert_error(http.call("POST", f"/v1/groups/{group}/offsets/reset", {"topic": topic_name, "to": "earliest"}),
                 409, "NON_EMPTY_GROUP")
    c.close()

    listed = {x["group_id"]: x for x in http.get("/v1/groups")["groups"]}
    assert listed[group]["state"] == "Empty" and listed[group]["member_count"] == 0
    assert (listed[group]["type"], listed[group]["protocol_type"]) == ("classic", "consumer")
    # The same protocol type `sluice group list` shows.
    import subprocess

    from harness import sluice_bin
    out = subprocess.run([str(sluice_bin()), "group", "list", "--json", "--bootstrap-server", broker.bootstrap],
                         capture_output=True, timeout=60, check=True).stdout
    cli = {g["group"]: g for g in json.loads(out)}
    assert cli[group]["protocol_type"] == listed[group]["protocol_type"], (cli, listed)
    assert listed[group]["total_lag"] == 3

    r = http.ok("POST", f"/v1/groups/{group}/offsets/reset", {"topic": topic_name, "to": "earliest"})
    assert sorted((o["partition"], o["committed_offset"], o["lag"]) for o in r["offsets"]) == [(0, 0, 5), (1, 0, 5)]
    assert http.get(f"/v1/groups/{group}")["total_lag"] == 10
    r = http.ok("POST", f"/v1/groups/{group}/offsets/reset",
                {"topic": topic_name, "partitions": [1], "to": "offset", "offset": 4})
    assert [(o["partition"], o["committed_offset"]) for o in r["offsets"]] == [(1, 4)]
    r = http.ok("POST", f"/v1/groups/{group}/offsets/reset", {"topic": topic_name, "to": "latest"})
    assert all(o["lag"] == 0 for o in r["offsets"])
    assert http.get(f"/v1/groups/{group}")["total_lag"] == 0

    # A real consumer of the group now starts where the reset put it.
    c = group_consumer(broker.bootstrap, group)
    committed = c.committed([ck.TopicPartition(topic_name, 0), ck.TopicPartition(topic_name, 1)], timeout=10)
    assert [tp.offset for tp in committed] == [5, 5]
    c.close()


def test_group_errors(http, broker, topic_name):
    import confluent_kafka as ck

    assert_error(http.call("GET", "/v1/groups/missing"), 404, "GROUP_ID_NOT_FOUND")
    assert_error(http.call("POST", "/v1/groups/missing/offsets/reset", {"topic": "t", "to": "earliest"}), 404,
                 "GROUP_ID_NOT_FOUND")
    http.create_topic(topic_name, 1)
    http.produce(topic_name, [{"value": 1, "partition": 0}])
    group = topic_name + "-g"
    c = group_consumer(broker.bootstrap, group)
    c.commit(offsets=[ck.TopicPartition(topic_name, 0, 1)], asynchronous=False)
    c.close()
    reset = f"/v1/groups/{group}/offsets/reset"
    assert_error(http.call("POST", reset, {"topic": "missing", "to": "earliest"}), 404, "UNKNOWN_TOPIC_OR_PARTITION")
    assert_error(http.call("POST", reset, {"topic": topic_name, "partitions": [4], "to": "earliest"}), 404,
                 "UNKNOWN_TOPIC_OR_PARTITION")
    assert_error(http.call("POST", reset, {"topic": topic_name, "to": "sideways"}), 400, "BAD_REQUEST")
    assert_error(http.call("POST", reset, {"topic": topic_name, "to": "offset"}), 400, "BAD_REQUEST")
    assert_error(http.call("POST", reset, {"topic": topic_name}), 422, "BAD_JSON")
    assert http.get(f"/v1/groups/{group}")["offsets"][0]["committed_offset"] == 1


def test_delete_group_refuses_live_members_and_deletes_empty_groups(http, broker, topic_name):
    import confluent_kafka as ck

    http.create_topic(topic_name, 1)
    http.produce(topic_name, [{"value": 1, "partition": 0}])
    group = topic_name + "-g"
    c = group_consumer(broker.bootstrap, group)
    c.subscribe([topic_name])
    poll_until(c, 1)
    c.commit(offsets=[ck.TopicPartition(topic_name, 0, 1)], asynchronous=False)
    assert_error(http.call("DELETE", f"/v1/groups/{group}"), 409, "NON_EMPTY_GROUP")
    c.close()
    assert http.call("DELETE", f"/v1/groups/{group}") == (204, None)
    assert_error(http.call("GET", f"/v1/groups/{group}"), 404, "GROUP_ID_NOT_FOUND")
    assert_error(http.call("DELETE", f"/v1/groups/{group}"), 404, "GROUP_ID_NOT_FOUND")
    # Its offsets went with it: a new member of the same id has none.
    c = group_consumer(broker.bootstrap, group)
    committed = c.committed([ck.TopicPartition(topic_name, 0)], timeout=10)
    assert committed[0].offset == ck.OFFSET_INVALID, committed
    c.close()


def test_delete_records_moves_the_log_start_offset(http, broker, topic_name):
    import confluent_kafka as ck

    http.create_topic(topic_name, 1)
    http.produce(topic_name, [{"value": i, "partition": 0} for i in range(5)])
    path = f"/v1/topics/{topic_name}/partitions/0/records"
    r = http.ok("DELETE", path + "?before=2")
    assert (r["topic"], r["partition"], r["log_start_offset"], r["high_watermark"]) == (topic_name, 0, 2, 5)
    assert [x["offset"] for x in http.get(path + "?first=10")["records"]] == [2, 3, 4]
    # A Kafka client sees the new low watermark.
    c = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic_name + "-w"})
    assert c.get_watermark_offsets(ck.TopicPartition(topic_name, 0), timeout=10) == (2, 5)
    assert_error(http.call("DELETE", path + "?before=6"), 416, "OFFSET_OUT_OF_RANGE")
    assert_error(http.call("DELETE", path + "?before=later"), 400, "BAD_REQUEST")
    assert_error(http.call("DELETE", path), 400, "BAD_REQUEST")
    assert_error(http.call("DELETE", f"/v1/topics/{topic_name}/partitions/3/records?before=end"), 404,
                 "UNKNOWN_TOPIC_OR_PARTITION")
    r = http.ok("DELETE", path + "?before=end")
    assert r["log_start_offset"] == 5 and http.get(path + "?first=10")["records"] == []
    assert c.get_watermark_offsets(ck.TopicPartition(topic_name, 0), timeout=10) == (5, 5)
    c.close()
    assert_error(http.call("DELETE", "/v1/topics/__consumer_offsets/partitions/0/records?before=end"), 400,
                 "INVALID_TOPIC_EXCEPTION")


def test_read_committed_hides_aborted_and_open_transactions(http, broker, topic_name):
    import confluent_kafka as ck

    http.create_topic(topic_name, 1)
    p = ck.Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": topic_name + "-tx"})
    p.init_transactions(30)
    for outcome, values in (("commit", ["c1", "c2"]), ("abort", ["a1", "a2"])):
        p.begin_transaction()
        for v in values:
            p.produce(topic_name, value=v.encode(), partition=0)
        p.flush(30)
        (p.commit_transaction if outcome == "commit" else p.abort_transaction)(30)
    p.begin_transaction()
    p.produce(topic_name, value=b"open", partition=0)
    p.flush(30)  # appended, transaction still open

    try:
        check_isolation(http, topic_name)
    finally:
        p.abort_transaction(30)
        del p  # before the broker stops, so librdkafka does not log reconnects


def check_isolation(http, topic_name):
    path = f"/v1/topics/{topic_name}/partitions/0/records?first=100"
    everything = http.get(path)
    assert [r["value"] for r in everything["records"]] == ["c1", "c2", "a1", "a2", "open"]
    committed = http.get(path + "&isolation=read_committed")
    assert [r["value"] for r in committed["records"]] == ["c1", "c2"]
    assert committed["last_stable_offset"] < committed["high_watermark"]
    last = http.get(f"/v1/topics/{topic_name}/partitions/0/records?last=1&isolation=read_committed")
    assert [r["value"] for r in last["records"]] in (["c2"], [])  # the abort marker may be the last stable record
    assert_error(http.call("GET", path + "&isolation=sometimes"), 400, "BAD_REQUEST")


# --------------------------------------------------------------------------
# REST Proxy v2 consumer instances
# --------------------------------------------------------------------------

V2 = {"content-type": "application/vnd.kafka.v2+json"}


def test_rest_proxy_consumers_share_a_group(http, broker, topic_name):
    import re

    import confluent_kafka as ck
    from util import wait_until

    http.create_topic(topic_name, 4)
    group = topic_name + "-g"

    def create(name):
        body = {"name": name, "format": "json", "auto.offset.reset": "earliest", "auto.commit.enable": "false"}
        status, _, raw = http.raw("POST", f"/consumers/{group}", json.dumps(body).encode(), V2)
        assert status == 200, raw
        created = json.loads(raw)
        assert created["instance_id"] == name, created
        assert created["base_uri"].endswith(f"/consumers/{group}/instances/{name}"), created
        return f"/consumers/{group}/instances/{name}"

    a, b = create("a"), create("b")
    assert_error(http.call("POST", f"/consumers/{group}", {"name": "a"}), 409, "CONSUMER_INSTANCE_EXISTS")
    assert_error(http.call("POST", f"/consumers/{group}", {"auto.offset.reset": "sometime"}), 400, "BAD_REQUEST")
    assert_error(http.call("GET", a + "/records"), 409, "NOT_SUBSCRIBED")
    # A joins alone; B's join rebalances the group, and A's instance rejoins
    # without a request from its client.
    assert http.raw("POST", a + "/subscription", json.dumps({"topics": [topic_name]}).encode(), V2)[0] == 204
    body = json.dumps({"topic_pattern": re.escape(topic_name)}).encode()
    assert http.raw("POST", b + "/subscription", body, V2)[0] == 204
    assert http.get(b + "/subscription") == {"topics": [topic_name]}

    def assigned(path):
        return {p["partition"] for p in http.get(path + "/assignments")["partitions"]}

    def shared():
        sa, sb = assigned(a), assigned(b)
        return (sa, sb) if sa and sb and not sa & sb and sa | sb == {0, 1, 2, 3} else None

    share_a, share_b = wait_until(shared, 60, "both instances to share the 4 partitions")

    http.produce(topic_name, [{"value": {"n": i}, "partition": i % 4} for i in range(40)])
    got = {a: [], b: []}
    deadline = time.monotonic() + 60
    while len(got[a]) + len(got[b]) < 40 and time.monotonic() < deadline:
        for path in (a, b):
            status, headers, raw = http.raw("GET", path + "/records?timeout=500&max_bytes=200",
                                            headers={"accept": "application/vnd.kafka.json.v2+json"})
            assert status == 200, raw
            assert headers["content-type"] == "application/vnd.kafka.json.v2+json"
            got[path] += json.loads(raw)
    numbers = sorted(r["value"]["n"] for r in got[a] + got[b])
    assert numbers == list(range(40)), f"not every record exactly once: {numbers}"
    assert {r["partition"] for r in got[a]} == share_a and {r["partition"] for r in got[b]} == share_b

    # A commits what it was given; B names its offsets. A Kafka client sees both.
    assert http.raw("POST", a + "/offsets", b"", V2)[0] == 204
    offsets = [{"topic": topic_name, "partition": p, "offset": 10} for p in sorted(share_b)]
    assert http.raw("POST", b + "/offsets", json.dumps({"offsets": offsets}).encode(), V2)[0] == 204
    committed = http.get(a + "/offsets")["offsets"]
    assert sorted((o["partition"], o["offset"]) for o in committed) == [(p, 10) for p in sorted(share_a)]
    c = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    tps = c.committed([ck.TopicPartition(topic_name, p) for p in range(4)], timeout=10)
    c.close()
    assert [tp.offset for tp in tps] == [10, 10, 10, 10]
    g = http.get(f"/v1/groups/{group}")
    assert (g["type"], g["protocol_type"], len(g["members"])) == ("classic", "consumer", 2), g

    # B leaves: A takes every partition and reads only what comes after the commits.
    assert http.call("DELETE", b) == (204, None)
    assert_error(http.call("GET", b + "/records"), 404, "CONSUMER_INSTANCE_NOT_FOUND")
    wait_until(lambda: assigned(a) == {0, 1, 2, 3}, 60, "A to take all partitions")
    http.produce(topic_name, [{"value": {"n": 40 + p}, "partition": p} for p in range(4)])
    later = []
    deadline = time.monotonic() + 30
    while len(later) < 4 and time.monotonic() < deadline:
        later += http.get(a + "/records?timeout=500")
    assert sorted(r["value"]["n"] for r in later) == [40, 41, 42, 43], later
    assert_error(http.call("GET", a + "/records?timeout=60000"), 400, "BAD_REQUEST")
    assert http.call("DELETE", a) == (204, None)
