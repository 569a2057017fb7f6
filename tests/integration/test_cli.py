"""Interop between the `sluice` CLI and other clients: records written by
`sluice produce` are read by kcat and confluent-kafka, records written by
them are read by `sluice consume`, and keys land on the same partitions as
librdkafka's murmur2 partitioner (`partitioner=murmur2_random`)."""

from __future__ import annotations

import json
import subprocess

from confluent_kafka import OFFSET_BEGINNING, KafkaError, Producer, TopicPartition

from clients import confluent_consumer, confluent_create_topic
from harness import sluice_bin

CLI_TIMEOUT_S = 60


def sluice(broker, *args: str, stdin: bytes | None = None) -> str:
    res = subprocess.run(
        [str(sluice_bin()), *args, "--bootstrap-server", broker.bootstrap],
        input=stdin,
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
    )
    assert res.returncode == 0, f"sluice {' '.join(args)} exited {res.returncode}: {res.stderr.decode(errors='replace')}"
    return res.stdout.decode()


def test_sluice_produce_is_read_by_kcat_and_confluent(broker, topic_name):
    sluice(broker, "topic", "create", topic_name, "--partitions", "2")
    lines = "".join(f"k{i}:v{i}\n" for i in range(100)).encode()
    sluice(broker, "produce", topic_name, "--key-separator", ":", "--compression", "lz4", stdin=lines)

    res = subprocess.run(
        ["kcat", "-C", "-b", broker.bootstrap, "-t", topic_name, "-e", "-q", "-f", "%k=%s\n"],
        capture_output=True, timeout=CLI_TIMEOUT_S,
    )
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    assert sorted(res.stdout.decode().split()) == sorted(f"k{i}=v{i}" for i in range(100))

    consumer = confluent_consumer(broker.bootstrap)
    # assign, not subscribe: this checks the data path, not the group coordinator.
    consumer.assign([TopicPartition(topic_name, p, OFFSET_BEGINNING) for p in range(2)])
    got = {}
    try:
        while len(got) < 100:
            msg = consumer.poll(10)
            assert msg is not None, f"confluent-kafka timed out after {len(got)} records"
            if msg.error() is not None and msg.error().code() == KafkaError._PARTITION_EOF:
                continue
            assert msg.error() is None, msg.error()
            got[msg.key().decode()] = msg.value().decode()
    finally:
        consumer.close()
    assert got == {f"k{i}": f"v{i}" for i in range(100)}


def test_kcat_and_confluent_records_are_read_by_sluice_consume(broker, topic_name):
    confluent_create_topic(broker.bootstrap, topic_name, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": "zstd"})
    for i in range(50):
        p.produce(topic_name, key=f"c{i}", value=f"confluent-{i}", headers=[("src", b"ck")])
    assert p.flush(30) == 0
    res = subprocess.run(
        ["kcat", "-P", "-b", broker.bootstrap, "-t", topic_name, "-K:", "-z", "snappy"],
        input="".join(f"q{i}:kcat-{i}\n" for i in range(50)).encode(),
        capture_output=True, timeout=CLI_TIMEOUT_S,
    )
    assert res.returncode == 0, res.stderr.decode(errors="replace")

    out = sluice(broker, "consume", topic_name, "--from-beginning", "--count", "100", "--format", "json")
    recs = [json.loads(line) for line in out.splitlines()]
    assert len(recs) == 100
    by_key = {r["key"]: r for r in recs}
    assert by_key["c7"]["value"] == "confluent-7"
    assert by_key["c7"]["headers"] == [{"key": "src", "value": "ck"}]
    assert by_key["q9"]["value"] == "kcat-9"
    assert [r["offset"] for r in recs] == list(range(100))


def test_keys_map_to_the_same_partitions_as_librdkafka_murmur2(broker, topic_name):
    partitions = 7
    confluent_create_topic(broker.bootstrap, topic_name, partitions)
    keys = [f"user-{i}" for i in range(60)] + ["", "a", "ab", "abc", "abcd", "é✓"]

    rd = {}

    def on_delivery(err, msg):
        assert err is None, err
        rd[msg.key().decode()] = msg.partition()

    p = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})
    for k in keys:
        p.produce(topic_name, key=k.encode(), value=b"rd", on_delivery=on_delivery)
    assert p.flush(30) == 0

    ours = {}
    for k in keys:
        if k == "":
            continue  # an empty --key means "no key" on the command line
        out = sluice(broker, "produce", topic_name, "--key", k, "--value", "cli", "--print-offset")
        ours[k] = int(out.split()[0].removeprefix("partition="))
    mismatched = {k: (ours[k], rd[k]) for k in ours if ours[k] != rd[k]}
    assert not mismatched, f"(sluice, librdkafka) partitions differ: {mismatched}"
    assert len(set(ours.values())) > 1, "keys should spread over several partitions"


def test_json_output_keeps_binary_keys_values_and_headers_as_base64(broker, topic_name):
    """`-F json` never replaces bytes with U+FFFD: what is not UTF-8 is
    written as base64 and marked with a `*_encoding` field."""
    import base64

    confluent_create_topic(broker.bootstrap, topic_name, 1)
    binary = bytes(range(256))
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce(topic_name, key=b"\xff\x00k", value=binary, headers=[("h", b"\xc3\x28"), ("t", b"text")])
    p.produce(topic_name, key="plain", value="caf\u00e9")
    assert p.flush(30) == 0

    out = sluice(broker, "consume", topic_name, "--from-beginning", "--count", "2", "-F", "json")
    first, second = (json.loads(line) for line in out.splitlines())
    assert "\ufffd" not in out
    assert first["value_encoding"] == "base64" and base64.b64decode(first["value"]) == binary
    assert first["key_encoding"] == "base64" and base64.b64decode(first["key"]) == b"\xff\x00k"
    assert first["headers"][0] == {"key": "h", "value": base64.b64encode(b"\xc3\x28").decode(), "value_encoding": "base64"}
    assert first["headers"][1] == {"key": "t", "value": "text"}
    # UTF-8 stays readable text, without an encoding field.
    assert second["key"] == "plain" and second["value"] == "caf\u00e9"
    assert "value_encoding" not in second

    out = sluice(broker, "consume", topic_name, "--from-beginning", "--count", "2", "-F", "json", "--json-encoding", "base64")
    second = json.loads(out.splitlines()[1])
    assert second["value_encoding"] == "base64"
    assert base64.b64decode(second["value"]) == "caf\u00e9".encode()
