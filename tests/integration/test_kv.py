"""The key-value view of compacted topics (issue 17) with real clients:
confluent-kafka writes many updates to few keys across partitions, kcat `-Z`
writes tombstones, a transactional producer commits and aborts; the HTTP
API's `/v1/topics/{t}/keys` routes, the key-filtered SSE tail and
`sluice kv get|list` then show exactly the latest committed value per key,
before and after the background cleaner compacts the topic."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.parse

import confluent_kafka as ck
import yaml

from clients import confluent_create_topic, confluent_produce_keyed as produce
from harness import sluice_bin
from http_client import Http, assert_error, metric
from test_compaction import CLEAN_TIMEOUT_S, CLEANER_ARGS, TOPIC_CONFIG, topic_bytes
from test_http_api import http_stream, sse_records
from util import wait_until

CLI_TIMEOUT_S = 60
PARTITIONS = 3


def ready(broker) -> Http:
    """The broker's HTTP API once `/ready` answers 200."""
    http = Http(broker)
    http.wait_ready()
    return http


def kv_path(topic: str, key: str, query: str = "") -> str:
    return f"/v1/topics/{topic}/keys/{urllib.parse.quote(key, safe='')}{query}"


def list_all(http: Http, topic: str, prefix: str, limit: int) -> list[dict]:
    """Every key with `prefix`, page by page (`after` = the last page's cursor)."""
    out, after, pages = [], None, 0
    while True:
        query = f"prefix={urllib.parse.quote(prefix)}&limit={limit}"
        if after is not None:
            query += f"&after={urllib.parse.quote(after)}"
        page = http.get(f"/v1/topics/{topic}/keys?{query}")
        assert len(page["keys"]) <= limit
        out.extend(page["keys"])
        pages += 1
        after = page["next_after"]
        if after is None:
            return out
        assert pages < 100, "paging does not end"


def test_latest_values_tombstones_prefixes_and_pages(broker, topic_name):
    http = ready(broker)
    confluent_create_topic(broker.bootstrap, topic_name, PARTITIONS, {"cleanup.policy": "compact"})
    keys = [f"user-{i:02}".encode() for i in range(20)] + [f"order-{i}".encode() for i in range(5)]
    updates = [(keys[i % len(keys)], f"v{i}".encode()) for i in range(500)]
    last = produce(broker.bootstrap, topic_name, updates)
    assert len({p for p, _, _ in last.values()}) > 1, "keys should spread over partitions"

    for key, (partition, offset, value) in last.items():
        got = http.get(kv_path(topic_name, key.decode()))
        assert (got["topic"], got["partition"], got["offset"]) == (topic_name, partition, offset)
        assert (got["key"], got["value"]) == (key.decode(), value.decode())
        assert got["key_base64"] == base64.b64encode(key).decode()
    # The key as base64, and limited to its partition.
    key = keys[3]
    partition, offset, value = last[key]
    b64 = urllib.parse.quote(base64.b64encode(key).decode(), safe="")
    got = http.get(f"/v1/topics/{topic_name}/keys/{b64}?key_encoding=base64&partition={partition}")
    assert (got["offset"], got["value"]) == (offset, value.decode())
    other = (partition + 1) % PARTITIONS
    assert_error(http.call("GET", kv_path(topic_name, key.decode(), f"?partition={other}")), 404, "KEY_NOT_FOUND")
    assert_error(http.call("GET", kv_path(topic_name, "never-written")), 404, "KEY_NOT_FOUND")
    assert metric(http, "sluice_kv_index_keys") >= len(keys)
    assert metric(http, "sluice_kv_index_bytes") > 0

    # kcat -Z: an empty value is a null value, a tombstone, written to the
    # partition holding the key.
    dead = [b"user-05", b"user-13", b"order-2"]
    for key in dead:
        res = subprocess.run(
            ["kcat", "-P", "-b", broker.bootstrap, "-t", topic_name, "-p", str(last[key][0]), "-K:", "-Z"],
            input=key + b":\n", capture_output=True, timeout=60)
        assert res.returncode == 0, res.stderr
    for key in dead:
        body = assert_error(http.call("GET", kv_path(topic_name, key.decode())), 404, "KEY_NOT_FOUND")
        assert topic_name in body["message"]
    live = sorted(k for k in keys if k not in dead)

    # A prefix lists exactly its live keys in byte order; pages of 3 cover
    # them all once.
    users = list_all(http, topic_name, "user-1", 3)
    assert [k["key"] for k in users] == [k.decode() for k in live if k.startswith(b"user-1")]
    everything = list_all(http, topic_name, "", 4)
    assert [k["key"] for k in everything] == [k.decode() for k in live]
    for entry in everything:
        partition, offset, _ = last[entry["key"].encode()]
        assert (entry["partition"], entry["offset"]) == (partition, offset)
        assert "record" not in entry
    # values=true carries each key's record.
    page = http.get(f"/v1/topics/{topic_name}/keys?prefix_base64={base64.b64encode(b'order').decode()}&values=true")
    assert {k["key"]: k["record"]["value"] for k in page["keys"]} == {
        k.decode(): last[k][2].decode() for k in live if k.startswith(b"order")}
    assert page["next_after"] is None and page["partitions_elsewhere"] == []

    # New writes are caught up at the next request.
    produce(broker.bootstrap, topic_name, [(b"user-05", b"back")])
    assert http.get(kv_path(topic_name, "user-05"))["value"] == "back"

    for query, code in (("?limit=0", "BAD_REQUEST"), ("?limit=1001", "BAD_REQUEST"),
                        ("?after=%%%", "BAD_REQUEST"), ("?prefix=a&prefix_base64=YQ==", "BAD_REQUEST")):
        assert_error(http.call("GET", f"/v1/topics/{topic_name}/keys{query}"), 400, code)
    assert_error(http.call("GET", kv_path(topic_name, "!", "?key_encoding=base64")), 400, "BAD_REQUEST")


def test_an_aborted_value_is_invisible_and_a_committed_one_visible(broker, topic_name):
    http = ready(broker)
    confluent_create_topic(broker.bootstrap, topic_name, 1, {"cleanup.policy": "compact"})
    p = ck.Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": topic_name + "-tx"})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic_name, key=b"k", value=b"committed", partition=0)
    p.commit_transaction(30)
    p.begin_transaction()
    p.produce(topic_name, key=b"k", value=b"aborted", partition=0)
    p.produce(topic_name, key=b"only-aborted", value=b"x", partition=0)
    p.abort_transaction(30)
    try:
        assert http.get(kv_path(topic_name, "k"))["value"] == "committed"
        assert_error(http.call("GET", kv_path(topic_name, "only-aborted")), 404, "KEY_NOT_FOUND")
        # An open transaction is not visible until it commits.
        p.begin_transaction()
        p.produce(topic_name, key=b"k", value=b"pending", partition=0)
        p.flush(30)
        assert http.get(kv_path(topic_name, "k"))["value"] == "committed"
        p.commit_transaction(30)
        assert http.get(kv_path(topic_name, "k"))["value"] == "pending"
        assert [k["key"] for k in http.get(f"/v1/topics/{topic_name}/keys")["keys"]] == ["k"]
    finally:
        del p  # before the broker stops, so librdkafka does not log reconnects


def test_values_stay_right_after_the_cleaner_compacts_the_topic(broker_factory, topic_name):
    broker = broker_factory.new(extra_args=CLEANER_ARGS)
    http = ready(broker)
    confluent_create_topic(broker.bootstrap, topic_name, 1, TOPIC_CONFIG)
    keys = [f"k{i}".encode() for i in range(8)]
    # The index is built before any clean, then caught up while the
    # cleaner compacts what it already read.
    produce(broker.bootstrap, topic_name, [(b"k0", b"first")], partition=0)
    assert http.get(kv_path(topic_name, "k0"))["value"] == "first"
    last = produce(broker.bootstrap, topic_name,
                   [(keys[i % 8], f"v{i}-".encode() + b"x" * 100) for i in range(800)], partition=0)
    assert http.get(kv_path(topic_name, "k3"))["offset"] == last[b"k3"][1]
    produce(broker.bootstrap, topic_name, [(b"filler", b"f" * 100)] * 60, partition=0)
    # The cleaner may start before all is written, so the size to beat is
    # what was appended, not the size of the log at some moment.
    written = metric(http, f'sluice_topic_bytes_in_total{{topic="{topic_name}"}}')
    # The log shrinks before the clean finishes (and counts itself).
    wait_until(lambda: topic_bytes(http, topic_name) < written // 3
               and metric(http, "sluice_log_cleaner_runs_total") > 0,
               CLEAN_TIMEOUT_S, "the cleaner to compact the topic")
    for key in keys:
        got = http.get(kv_path(topic_name, key.decode()))
        assert (got["offset"], got["value"]) == (last[key][1], last[key][2].decode())
    assert len(http.get(f"/v1/topics/{topic_name}/keys")["keys"]) == len(keys) + 1


def test_only_compacted_topics_have_a_view(broker, topic_name):
    http = ready(broker)
    http.create_topic(topic_name, 1)
    for path in (kv_path(topic_name, "k"), f"/v1/topics/{topic_name}/keys"):
        body = assert_error(http.call("GET", path), 400, "TOPIC_NOT_COMPACTED")
        assert "cleanup.policy" in body["message"]
    assert_error(http.call("GET", kv_path("no-such-topic", "k")), 404, "UNKNOWN_TOPIC_OR_PARTITION")
    assert_error(http.call("GET", "/v1/topics/no-such-topic/keys"), 404, "UNKNOWN_TOPIC_OR_PARTITION")


def test_an_index_over_kv_index_max_bytes_is_refused_whole(broker_factory, topic_name):
    broker = broker_factory.new(extra_args=["--set", "kv.index_max_bytes=4096"])
    http = ready(broker)
    http.create_topic(topic_name, 1, {"cleanup.policy": "compact"})
    small = f"{topic_name}-small"
    http.create_topic(small, 1, {"cleanup.policy": "compact"})
    http.produce(small, [{"key": "a", "value": "1"}])
    assert http.get(kv_path(small, "a"))["value"] == '"1"'  # the JSON text stored
    # 200 keys of ~104 accounted bytes each do not fit in 4 KiB.
    http.produce(topic_name, [{"key": f"key-{i:04}", "value": "v"} for i in range(200)])
    for path in (kv_path(topic_name, "key-0001"), f"/v1/topics/{topic_name}/keys"):
        body = assert_error(http.call("GET", path), 503, "KV_INDEX_LIMIT")
        assert "kv.index_max_bytes" in body["message"]
    # The small topic is still served; the refused index holds nothing.
    assert http.get(kv_path(small, "a"))["value"] == '"1"'  # the JSON text stored
    assert metric(http, "sluice_kv_index_bytes") <= 4096


def test_the_tail_filtered_by_key_sends_only_that_key(broker, topic_name):
    http = ready(broker)
    confluent_create_topic(broker.bootstrap, topic_name, PARTITIONS, {"cleanup.policy": "compact"})
    by_text = http_stream(http, f"/v1/topics/{topic_name}/tail?key=wanted")
    by_b64 = http_stream(http, f"/v1/topics/{topic_name}/tail?key_base64={base64.b64encode(b'wanted').decode()}")
    items = [(b"other", b"o1"), (b"wanted", b"w1"), (b"other", b"o2"), (b"wanted", b"w2"), (b"third", b"t")]
    last = produce(broker.bootstrap, topic_name, items)
    partition = last[b"wanted"][0]
    one = http_stream(http, f"/v1/topics/{topic_name}/partitions/{partition}/tail?offset=0&key=wanted")
    for res in (by_text, by_b64, one):
        got = sse_records(res, 2)
        assert [(r["key"], r["value"]) for r in got] == [("wanted", "w1"), ("wanted", "w2")]
    # Only the wanted key arrives next, even after many other records.
    produce(broker.bootstrap, topic_name, [(b"other", b"x")] * 50 + [(b"wanted", b"w3")])
    for res in (by_text, one):
        assert [r["value"] for r in sse_records(res, 1)] == ["w3"]
        res.close()
    by_b64.close()
    assert_error(http.call("GET", f"/v1/topics/{topic_name}/tail?key=a&key_base64=YQ=="), 400, "BAD_REQUEST")


def sluice_kv(broker, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(
        [str(sluice_bin()), "kv", *args, "--http-server", f"127.0.0.1:{broker.http_port}"],
        capture_output=True, timeout=CLI_TIMEOUT_S)
    if check:
        assert res.returncode == 0, f"sluice kv {' '.join(args)}: {res.stderr.decode(errors='replace')}"
    return res


def test_sluice_kv_get_and_list(broker, topic_name):
    confluent_create_topic(broker.bootstrap, topic_name, PARTITIONS, {"cleanup.policy": "compact"})
    keys = [f"cfg/{name}".encode() for name in ("a", "b", "c", "d")] + [b"other"]
    last = produce(broker.bootstrap, topic_name, [(keys[i % 5], f"value {i}".encode()) for i in range(50)])

    assert sluice_kv(broker, "get", topic_name, "cfg/b").stdout.decode() == last[b"cfg/b"][2].decode() + "\n"
    b64 = base64.b64encode(b"cfg/c").decode()
    assert sluice_kv(broker, "get", topic_name, b64, "--base64").stdout.decode().strip() == last[b"cfg/c"][2].decode()
    as_json = json.loads(sluice_kv(broker, "get", topic_name, "cfg/a", "--json").stdout)
    assert (as_json["partition"], as_json["offset"]) == last[b"cfg/a"][:2]
    # --format yaml prints the same document, and PyYAML reads it back.
    as_yaml = yaml.safe_load(sluice_kv(broker, "get", topic_name, "cfg/a", "--format", "yaml").stdout)
    assert as_yaml == as_json
    missing = sluice_kv(broker, "get", topic_name, "cfg/zz", check=False)
    assert missing.returncode != 0
    assert b"KEY_NOT_FOUND" in missing.stderr

    lines = sluice_kv(broker, "list", topic_name, "--prefix", "cfg/").stdout.decode().splitlines()
    assert lines == [f"{k.decode()}\t{last[k][0]}\t{last[k][1]}" for k in sorted(keys) if k.startswith(b"cfg/")]
    assert len(sluice_kv(broker, "list", topic_name, "--limit", "2").stdout.decode().splitlines()) == 2
    listed = json.loads(sluice_kv(broker, "list", topic_name, "--json").stdout)
    assert yaml.safe_load(sluice_kv(broker, "list", topic_name, "--format", "yaml").stdout) == listed
    assert [k["key"] for k in listed["keys"]] == sorted(k.decode() for k in keys)
