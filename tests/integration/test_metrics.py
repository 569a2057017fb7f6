"""/metrics after a real produce/consume run: the counters match what was
sent, per-partition gauges match the logs, consumer lag matches the group's
commits, and a deleted topic's label sets disappear."""

from __future__ import annotations

import re
import time

import pytest

from http_client import Http

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(http: Http) -> list[tuple[str, dict, float]]:
    status, headers, body = http.raw("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("application/openmetrics-text")
    text = body.decode()
    assert text.endswith("# EOF\n"), "OpenMetrics exposition must end with # EOF"
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"unparseable sample line: {line!r}"
        out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def value(samples, name: str, **labels) -> float:
    """Sum of every sample of `name` whose labels include `labels`."""
    return sum(v for n, ls, v in samples if n == name and all(ls.get(k) == str(x) for k, x in labels.items()))


def has(samples, name: str, **labels) -> bool:
    return any(n == name and all(ls.get(k) == str(x) for k, x in labels.items()) for n, ls, _ in samples)


@pytest.fixture
def http(broker) -> Http:
    h = Http(broker)
    h.wait_ready()
    return h


def test_metrics_match_a_produce_and_consume_run(http, broker, topic_name):
    import confluent_kafka as ck

    http.create_topic(topic_name, 3)
    n, value_bytes = 300, 100
    p = ck.Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "compression.type": "none"})
    for i in range(n):
        p.produce(topic_name, key=f"k{i}".encode(), value=bytes([65 + i % 26]) * value_bytes, partition=i % 3)
    assert p.flush(30) == 0

    group = topic_name + "-g"
    c = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic_name])
    got, deadline = 0, time.monotonic() + 60
    while got < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    assert got == n
    c.commit(asynchronous=False)

    s = scrape(http)
    # Messages and bytes in: exactly what the producer sent; the log holds it all.
    assert value(s, "sluice_topic_messages_in_total", topic=topic_name) == n
    bytes_in = value(s, "sluice_topic_bytes_in_total", topic=topic_name)
    assert bytes_in >= n * value_bytes
    assert bytes_in == value(s, "sluice_log_size_bytes", topic=topic_name)
    # The consumer read every byte at least once.
    assert value(s, "sluice_topic_bytes_out_total", topic=topic_name) >= bytes_in
    for part in range(3):
        assert value(s, "sluice_log_end_offset", topic=topic_name, partition=part) == n // 3
        assert value(s, "sluice_log_high_watermark", topic=topic_name, partition=part) == n // 3
        assert value(s, "sluice_log_start_offset", topic=topic_name, partition=part) == 0
        assert value(s, "sluice_consumer_group_lag", group=group, topic=topic_name, partition=part) == 0
    # Requests by API, with latency histograms whose counts agree.
    produces = value(s, "sluice_kafka_requests_total", api="Produce")
    assert 1 <= produces <= n
    assert value(s, "sluice_kafka_request_duration_seconds_count", api="Produce") == produces
    assert value(s, "sluice_kafka_requests_total", api="Fetch") >= 1
    assert value(s, "sluice_kafka_requests_total", api="OffsetCommit") >= 1
    assert value(s, "sluice_kafka_request_bytes_total", api="Produce") > bytes_in
    assert value(s, "sluice_kafka_response_bytes_total", api="Fetch") > bytes_in
    assert value(s, "sluice_http_requests_total", api="POST /v1/topics") == 1
    # Connections: the consumer is still connected; the producer too.
    assert value(s, "sluice_connections") >= 1
    assert value(s, "sluice_connections_accepted_total") >= 2
    assert value(s, "sluice_http_connections") >= 1  # this scrape's own connection
    # Group commit fsynced every produce.
    assert value(s, "sluice_log_fsync_duration_seconds_count") >= 1

    # Lag moves with new data and the group's commits.
    http.produce(topic_name, [{"value": i, "partition": 0} for i in range(7)])
    s = scrape(http)
    assert value(s, "sluice_consumer_group_lag", group=group, topic=topic_name, partition=0) == 7
    assert value(s, "sluice_topic_messages_in_total", topic=topic_name) == n + 7
    c.close()
    p.flush(5)


def test_deleted_topics_drop_their_label_sets(http, topic_name):
    http.create_topic(topic_name, 2)
    http.produce(topic_name, [{"value": 1, "partition": 0}, {"value": 2, "partition": 1}])
    http.get(f"/v1/topics/{topic_name}/partitions/0/records?first=1")
    s = scrape(http)
    for name in ("sluice_topic_messages_in_total", "sluice_topic_bytes_in_total", "sluice_topic_bytes_out_total",
                 "sluice_log_end_offset", "sluice_log_size_bytes"):
        assert has(s, name, topic=topic_name), name
    http.ok("DELETE", f"/v1/topics/{topic_name}", status=204)
    s = scrape(http)
    leftovers = [(n, ls) for n, ls, _ in s if ls.get("topic") == topic_name]
    assert leftovers == []
