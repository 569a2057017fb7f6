"""/metrics after a real produce/consume run: the counters match what was
sent, per-partition gauges match the logs, consumer lag matches the group's
commits, and a deleted topic's label sets disappear."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

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


def _proc_status(pid: int) -> dict[str, str]:
    out = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, rest = line.partition(":")
        out[key] = rest.strip()
    return out


def _proc_stat_fields(pid: int) -> list[str]:
    text = open(f"/proc/{pid}/stat").read()
    # Fields after the command name, which may hold spaces; numbered from 3.
    return text[text.rindex(")") + 2:].split()


def test_process_metrics_match_proc_and_build_info_names_the_version(http, broker, topic_name):
    pid = broker.pid
    http.create_topic(topic_name, 1)
    # Work until /proc shows the broker has used CPU (a fresh release
    # build can be under one 10 ms tick), so the CPU check below compares
    # a non-zero figure.
    cpu = lambda f: (int(f[14 - 3]) + int(f[15 - 3])) / 100.0
    deadline = time.monotonic() + 30
    while True:
        http.produce(topic_name, [{"value": i} for i in range(50)])
        if cpu(_proc_stat_fields(pid)) > 0 or time.monotonic() > deadline:
            break
    # Each figure is read from /proc just before and just after the scrape:
    # threads, fds and memory move while other work finishes (blocking-pool
    # threads exit after their idle time), so the scrape must fall between
    # the two readings, give or take the noted slack.
    stat_before = _proc_stat_fields(pid)
    status_before = _proc_status(pid)
    fds_before = len(os.listdir(f"/proc/{pid}/fd"))
    s = scrape(http)
    fds_after = len(os.listdir(f"/proc/{pid}/fd"))
    stat_after = _proc_stat_fields(pid)
    status = _proc_status(pid)

    def between(name, a, b, slack):
        lo, hi = min(a, b) - slack, max(a, b) + slack
        got = value(s, name)
        assert lo <= got <= hi, (name, got, lo, hi)

    # CPU: between what /proc said just before and just after the scrape
    # (USER_HZ ticks; utime and stime are fields 14 and 15).
    assert cpu(stat_before) <= value(s, "process_cpu_seconds_total") <= cpu(stat_after)
    assert value(s, "process_cpu_seconds_total") > 0
    # Start time: boot time plus the start ticks (field 22), exactly.
    btime = next(int(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime "))
    assert value(s, "process_start_time_seconds") == pytest.approx(btime + int(stat_after[22 - 3]) / 100.0)
    assert abs(value(s, "process_start_time_seconds") - time.time()) < 600
    # Memory: resident within 25% of VmRSS now (it moves between reads),
    # virtual within 25% of VmSize.
    kib = lambda st, key: int(st[key].split()[0]) * 1024
    rss = (kib(status_before, "VmRSS"), kib(status, "VmRSS"))
    between("process_resident_memory_bytes", *rss, slack=0.25 * max(rss))
    vsize = (kib(status_before, "VmSize"), kib(status, "VmSize"))
    between("process_virtual_memory_bytes", *vsize, slack=0.25 * max(vsize))
    assert value(s, "process_virtual_memory_bytes") > value(s, "process_resident_memory_bytes")
    # Threads and fds: a few either way of the two readings.
    between("process_threads", int(status_before["Threads"]), int(status["Threads"]), slack=4)
    assert value(s, "process_threads") >= 2
    between("process_open_fds", fds_before, fds_after, slack=8)
    assert value(s, "process_open_fds") >= 5  # listeners, the data dir lock, segments
    soft = next(line.split()[3] for line in open(f"/proc/{pid}/limits") if line.startswith("Max open files"))
    if soft != "unlimited":
        assert value(s, "process_max_fds") == int(soft)

    # Build info: 1, labelled with the workspace's version.
    cargo = (Path(__file__).resolve().parents[2] / "Cargo.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', cargo, re.M).group(1)
    infos = [(ls, v) for n, ls, v in s if n == "sluice_build_info"]
    assert len(infos) == 1, infos
    labels, v = infos[0]
    assert v == 1 and labels["version"] == version, infos
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", labels.get("rustc", "")), labels


def test_disk_and_segment_metrics_match_the_data_dir(http, broker, topic_name):
    # Small segments, so the partitions roll several times.
    http.create_topic(topic_name, 2, {"segment.bytes": "4096"})
    for _ in range(6):
        http.produce(topic_name, [{"value": "x" * 500, "partition": p} for p in (0, 1) for _ in range(4)])
    before = os.statvfs(broker.data_dir)
    s = scrape(http)
    after = os.statvfs(broker.data_dir)
    d = str(broker.data_dir)

    # The file system's size is fixed; use and free space move with the
    # other processes on this machine, so they are checked against
    # statvfs read on either side of the scrape, with a margin.
    assert value(s, "sluice_disk_total_bytes", dir=d) == before.f_blocks * before.f_frsize
    margin = 256 * 1024 * 1024
    used = [(x.f_blocks - x.f_bfree) * x.f_frsize for x in (before, after)]
    assert min(used) - margin <= value(s, "sluice_disk_used_bytes", dir=d) <= max(used) + margin
    free = [x.f_bavail * x.f_frsize for x in (before, after)]
    assert min(free) - margin <= value(s, "sluice_disk_free_bytes", dir=d) <= max(free) + margin
    # Sluice's own bytes: every partition's log, as the per-partition gauges have it.
    log_bytes = sum(v for n, _, v in s if n == "sluice_log_size_bytes")
    assert value(s, "sluice_disk_log_bytes", dir=d) == log_bytes
    assert log_bytes >= value(s, "sluice_topic_bytes_in_total", topic=topic_name) > 0

    # Segments per partition: the .log files in the partition's directory.
    for p in (0, 1):
        part_dir = broker.data_dir / f"{topic_name}-{p}"
        files = [f for f in os.listdir(part_dir) if f.endswith(".log")]
        segments = value(s, "sluice_log_segments", topic=topic_name, partition=p)
        assert segments == len(files) >= 3, (segments, sorted(files))
        on_disk = sum(os.path.getsize(part_dir / f) for f in files)
        assert value(s, "sluice_log_size_bytes", topic=topic_name, partition=p) == on_disk

    # A single node: everything it hosts it leads, nothing is short.
    partitions = value(s, "sluice_partitions")
    assert partitions >= 2
    assert value(s, "sluice_leader_partitions") == partitions
    for name in ("sluice_under_replicated_partitions", "sluice_under_min_isr_partitions",
                 "sluice_offline_partitions"):
        assert has(s, name) and value(s, name) == 0, name


def test_queue_time_and_errors_by_code_count_every_request(http, broker, topic_name):
    import confluent_kafka as ck

    http.create_topic(topic_name, 2)
    s0 = scrape(http)
    p = ck.Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "acks": "all"})
    for i in range(20):
        p.produce(topic_name, value=b"v%d" % i, partition=i % 2)
        p.flush(10)
    c = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic_name + "-g",
                     "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    c.assign([ck.TopicPartition(topic_name, 0, 0)])
    got, deadline = 0, time.monotonic() + 30
    while got < 10 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    assert got == 10
    c.close()
    s = scrape(http)
    delta = lambda name, **ls: value(s, name, **ls) - value(s0, name, **ls)

    # Queue time: one observation per request as it starts, each far below
    # a second. Every produce was answered; a fetch still polling when the
    # consumer closed started (queued) but never finished (not counted).
    for api, unanswered in (("Produce", 0), ("Fetch", 2), ("Metadata", 1)):
        requests = delta("sluice_kafka_requests_total", api=api)
        assert requests >= 1, api
        queued = delta("sluice_kafka_request_queue_duration_seconds_count", api=api)
        assert requests <= queued <= requests + unanswered, (api, requests, queued)
        assert delta("sluice_kafka_request_queue_duration_seconds_sum", api=api) < queued * 0.5, api
    # Errors by code: each of the 20 one-partition produces answered NONE once.
    assert delta("sluice_kafka_errors_total", api="Produce", error="NONE") == 20
    assert delta("sluice_kafka_errors_total", api="Produce") == 20
    # Every fetch answered a top-level code and one per partition, all NONE.
    fetches = delta("sluice_kafka_requests_total", api="Fetch")
    assert delta("sluice_kafka_errors_total", api="Fetch", error="NONE") >= 2 * fetches - 1
    p.flush(5)


def test_admin_responses_count_their_error_codes(http, broker, topic_name):
    """Every API's responses are counted by code, not only Produce and
    Fetch: creating an existing topic answers TOPIC_ALREADY_EXISTS for it,
    and deleting two missing topics UNKNOWN_TOPIC_OR_PARTITION for each."""
    from confluent_kafka.admin import AdminClient, NewTopic
    from confluent_kafka import KafkaException

    http.create_topic(topic_name, 1)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    s0 = scrape(http)
    futures = admin.create_topics([NewTopic(topic_name, 1, 1)], operation_timeout=10)
    with pytest.raises(KafkaException):
        futures[topic_name].result(timeout=30)
    missing = [topic_name + "-gone-a", topic_name + "-gone-b"]
    for f in admin.delete_topics(missing, operation_timeout=10).values():
        with pytest.raises(KafkaException):
            f.result(timeout=30)
    s = scrape(http)
    delta = lambda name, **ls: value(s, name, **ls) - value(s0, name, **ls)
    assert delta("sluice_kafka_errors_total", api="CreateTopics", error="TOPIC_ALREADY_EXISTS") == 1
    assert delta("sluice_kafka_errors_total", api="CreateTopics", error="NONE") == 0
    assert delta("sluice_kafka_errors_total", api="DeleteTopics",
                 error="UNKNOWN_TOPIC_OR_PARTITION") == 2
    assert delta("sluice_kafka_errors_total", api="DeleteTopics") == 2


def test_a_produce_to_a_missing_partition_counts_its_error_code(http, broker, topic_name):
    """Raw Produce v3 requests for partition 7 of a one-partition topic
    and for partition 0: the responses carry UNKNOWN_TOPIC_OR_PARTITION and
    NONE, and the counters say exactly that."""
    from util import build_record_batch, connect, now_ms, parse_produce_v3_response, produce_v3_request, \
        recv_response_or_close

    http.create_topic(topic_name, 1)
    s0 = scrape(http)
    batch = build_record_batch([(None, b"v", [])], base_ts_ms=now_ms())
    sock = connect(broker.kafka_port)
    try:
        answers = []
        for correlation_id, partition in ((1, 7), (2, 0), (3, 7)):
            sock.sendall(produce_v3_request(correlation_id, topic_name, partition, batch, acks=1))
            body = recv_response_or_close(sock)
            assert body is not None
            answers += [err for _, _, err, _ in parse_produce_v3_response(body[4:])]
    finally:
        sock.close()
    assert answers == [3, 0, 3]  # UNKNOWN_TOPIC_OR_PARTITION, NONE, UNKNOWN_TOPIC_OR_PARTITION
    s = scrape(http)
    delta = lambda name, **ls: value(s, name, **ls) - value(s0, name, **ls)
    assert delta("sluice_kafka_errors_total", api="Produce", error="UNKNOWN_TOPIC_OR_PARTITION") == 2
    assert delta("sluice_kafka_errors_total", api="Produce", error="NONE") == 1
    assert delta("sluice_kafka_errors_total", api="Produce") == 3


def _wait_assigned(consumer, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not consumer.assignment():
        assert time.monotonic() < deadline, "no assignment"
        consumer.poll(0.2)


def test_group_rebalances_are_counted_by_protocol(http, broker, topic_name):
    import confluent_kafka as ck

    http.create_topic(topic_name, 2)
    s0 = scrape(http)
    conf = {"bootstrap.servers": broker.bootstrap, "group.id": topic_name + "-classic",
            "session.timeout.ms": 6000}
    a = ck.Consumer(conf)
    a.subscribe([topic_name])
    _wait_assigned(a)
    s1 = scrape(http)
    # An empty group's first join is one rebalance.
    classic = lambda s: value(s, "sluice_group_rebalances_total", protocol="classic")
    assert classic(s1) - classic(s0) == 1
    # A second member makes another.
    b = ck.Consumer(conf)
    b.subscribe([topic_name])
    deadline = time.monotonic() + 60
    while not (b.assignment() and len(a.assignment()) == 1):
        assert time.monotonic() < deadline, "no rebalance to two members"
        a.poll(0.1)
        b.poll(0.1)
    s2 = scrape(http)
    assert classic(s2) - classic(s1) >= 1
    b.close()
    a.close()

    # KIP-848 groups count their epoch bumps under protocol="consumer".
    consumer = lambda s: value(s, "sluice_group_rebalances_total", protocol="consumer")
    c = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic_name + "-848",
                     "group.protocol": "consumer"})
    c.subscribe([topic_name])
    _wait_assigned(c)
    s3 = scrape(http)
    assert consumer(s3) - consumer(s2) >= 1
    assert {ls["protocol"] for n, ls, _ in s3 if n == "sluice_group_rebalances_total"} <= {"classic", "consumer"}
    c.close()


def _scrape_node(node) -> list[tuple[str, dict, float]]:
    import urllib.request
    with urllib.request.urlopen(f"http://{node.host}:{node.http_port}/metrics", timeout=10) as res:
        text = res.read().decode()
    out = []
    for line in text.splitlines():
        m = SAMPLE.match(line) if line and not line.startswith("#") else None
        if m:
            out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def test_partition_health_follows_a_killed_node(tmp_path):
    """Three nodes; a topic on all three with min.insync.replicas=2 led by
    node 1, one with min.insync.replicas=3 led by node 2, and a one-replica
    topic on node 3. Killing node 3 leaves node 1 with one under-replicated
    partition, node 2 with one under-replicated and under-min-ISR partition,
    and the cluster with one offline partition."""
    import uuid

    import faults
    from faults import Cluster

    tag = uuid.uuid4().hex[:8]
    min2, min3, single = f"min2-{tag}", f"min3-{tag}", f"single-{tag}"
    c = Cluster(tmp_path / "cluster", settings={**faults.FAST_FAILOVER, "replica.lag_time_max_ms": "3000"})
    c.start()
    try:
        c.create_topic(min2, 1, 3, {"min.insync.replicas": "2"}, assignment=[[1, 2, 3]])
        c.create_topic(min3, 1, 3, {"min.insync.replicas": "3"}, assignment=[[2, 1, 3]])
        c.create_topic(single, 1, 1, assignment=[[3]])
        c.wait_isr(min2)
        c.wait_isr(min3)
        names = ("sluice_under_replicated_partitions", "sluice_under_min_isr_partitions", "sluice_offline_partitions")

        def health(i: int) -> tuple[float, ...]:
            s = _scrape_node(c.node(i))
            return tuple(value(s, n) for n in names)

        # Healthy: nothing short anywhere.
        for i in (1, 2, 3):
            faults.wait_for(lambda: health(i) == (0, 0, 0), 30, f"node {i} healthy, now {health(i)}")
        s = _scrape_node(c.node(2))
        assert value(s, "sluice_leader_partitions") >= 1
        assert value(s, "sluice_partitions") >= 2

        c.kill9(3)
        # The controller fences node 3 and shrinks the ISRs; each leader
        # reports its own partitions, every broker the cluster's offline one.
        faults.wait_for(lambda: health(1) == (1, 0, 1), 60, f"node 1 to report (1, 0, 1), now {health(1)}")
        faults.wait_for(lambda: health(2) == (1, 1, 1), 60, f"node 2 to report (1, 1, 1), now {health(2)}")
        assert c.leader_of(min2, 0) == 1 and c.leader_of(min3, 0) == 2
        assert c.leader_of(single, 0) == -1
    finally:
        c.stop()


DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "sluice-dashboard.json"
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                   "unless", "offset", "inf", "nan"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers left once
    strings, label matchers, range and offset brackets, grouping clauses and
    function calls are taken out."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_KEYWORDS:
            continue
        names.add(word)
    return names


def exported_names(text: str) -> set[str]:
    """Every series name the exposition offers to PromQL: the samples, and
    from each family's TYPE the names its type exports even before it has
    a sample (counters as `_total`, histograms as `_bucket`, `_sum` and
    `_count`)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(maxsplit=3)
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"],
                        "summary": ["_sum", "_count", ""], "info": ["_info"]}.get(kind, [""])
            names.update(family + s for s in suffixes)
        elif line and not line.startswith("#"):
            names.add(SAMPLE.match(line).group(1))
    return names


def test_promql_name_extraction():
    assert promql_metric_names(
        'histogram_quantile(0.99, sum by (api, le) (rate(sluice_x_bucket{instance=~"$instance", '
        'error!="NONE"}[$__rate_interval])))') == {"sluice_x_bucket"}
    assert promql_metric_names("time() - process_start_time_seconds") == {"process_start_time_seconds"}
    assert promql_metric_names("a / on (x) group_left (y) b offset 5m") == {"a", "b"}
    assert promql_metric_names('label_values(sluice_build_info, instance)') == {"sluice_build_info", "instance"}


def test_the_grafana_dashboard_uses_only_exported_metrics(http, broker, topic_name):
    import confluent_kafka as ck

    dashboard = json.loads(DASHBOARD.read_text())
    # A family is exported once it has a sample: run Kafka traffic through
    # a consumer group so the request, error, lag and rebalance families
    # have theirs.
    http.create_topic(topic_name, 1)
    p = ck.Producer({"bootstrap.servers": broker.bootstrap})
    p.produce(topic_name, value=b"v")
    assert p.flush(30) == 0
    c = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic_name + "-g",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic_name])
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "nothing consumed"
        m = c.poll(0.5)
        if m is not None and not m.error():
            break
    c.commit(asynchronous=False)
    c.close()
    status, _, body = http.raw("GET", "/metrics")
    assert status == 200
    exported = exported_names(body.decode())
    # Families whose first sample needs a rare event (a panicked task, a
    # throttled client): checked against their registration instead.
    registered = (Path(__file__).resolve().parents[2] / "crates" / "metrics" / "src" / "lib.rs").read_text()
    for family in ("task_panics", "client_quota_throttle_time_ms"):
        assert f'"{family}"' in registered, family
        exported.add(f"sluice_{family}_total")

    used: dict[str, set[str]] = {}
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 20
    for p in panels:
        exprs = [t["expr"] for t in p.get("targets", [])]
        assert exprs, f"panel {p['title']!r} has no query"
        for expr in exprs:
            names = promql_metric_names(expr)
            assert names, f"panel {p['title']!r}: no metric in {expr!r}"
            for name in names:
                used.setdefault(name, set()).add(p["title"])
    # The instance variable's label_values(metric, label): the metric only.
    for var in dashboard["templating"]["list"]:
        query = var.get("definition", "")
        m = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query)
        if m:
            used.setdefault(m.group(1), set()).add(f"variable {var['name']}")
    missing = {name: sorted(titles) for name, titles in used.items() if name not in exported}
    assert not missing, f"dashboard panels use metrics the broker does not export: {missing}"
    # The dashboard covers each area the broker exports.
    for needed in ("process_cpu_seconds_total", "sluice_disk_free_bytes", "sluice_kafka_errors_total",
                   "sluice_under_replicated_partitions", "sluice_consumer_group_lag",
                   "sluice_kafka_request_duration_seconds_bucket", "sluice_topic_bytes_in_total"):
        assert needed in used, needed
