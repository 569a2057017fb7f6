#!/usr/bin/env python3
"""Group coordinator load time after many offset commits to few keys,
before and after the log cleaner compacts `__consumer_offsets` (issue 17).

Run by hand (minutes, about 1 GB of disk), with the venv the tests use:

    .venv/bin/python scripts/bench-coordinator-load.py --bin target/release/sluice

It starts the real broker on a fresh data directory, commits COMMITS
offsets to KEYS keys (one group, KEYS partitions of one topic, KEYS
offsets per OffsetCommit request) with confluent-kafka, then:
1. restarts the broker and times, from the process start, the first
   OffsetFetch that returns every committed offset (the load as a client
   sees it), and reads the records the coordinator replayed from its log;
2. lets the cleaner compact `__consumer_offsets`, restarts, times it again.
The coordinator's own load time comes from its log line. Prints one table
to paste into docs/benchmarks.md."""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import json
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                  NewTopic)

GROUP = "load-bench"
TOPIC = "load-bench-topic"
# Bound on any one wait (start, load, clean).
WAIT_S = 900.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, binary: str, data: Path):
        self.binary = binary
        self.data = data
        self.kafka = free_port()
        self.http = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = data.parent / "broker.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka}"

    def start(self, cleaner: bool = True) -> float:
        """Starts the broker (its log cleaner on or off); returns
        time.monotonic() at the spawn."""
        log = open(self.log_path, "a")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-dir", str(self.data),
             "--kafka-listener", self.bootstrap, "--http-listener", f"127.0.0.1:{self.http}",
             "--schema-registry-listener", f"127.0.0.1:{free_port()}", "--node-id", "1",
             "--set", "log.cleaner_backoff_ms=1000",
             "--set", f"log.cleaner_enable={'true' if cleaner else 'false'}"],
            stdout=subprocess.DEVNULL, stderr=log)
        return t0

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        assert self.proc.wait(timeout=120) == 0, "broker did not stop cleanly"

    def http_get(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=10) as r:
            return r.read()

    def wait_http(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                self.http_get("/health")
                return
            except OSError:
                time.sleep(0.01)
        raise SystemExit("broker did not start")


def time_to_committed(broker: Broker, t0: float, keys: int, expected: int) -> float:
    """Seconds from t0 to the first OffsetFetch answering every offset."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": GROUP,
                         "enable.auto.commit": False, "socket.connection.setup.timeout.ms": 1000,
                         "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 50})
    wanted = [TopicPartition(TOPIC, p) for p in range(keys)]
    deadline = time.monotonic() + WAIT_S
    try:
        while time.monotonic() < deadline:
            try:
                got = consumer.committed(wanted, timeout=5)
                if all(tp.offset == expected for tp in got):
                    return time.monotonic() - t0
            except Exception:  # noqa: BLE001 - loading or not up yet
                pass
            time.sleep(0.01)
    finally:
        consumer.close()
    raise SystemExit("committed offsets never came back")


def coordinator_load(broker: Broker) -> tuple[int, int]:
    """Records replayed and milliseconds taken by the last load, from the
    coordinator's own log line."""
    text = broker.log_path.read_text(errors="replace")
    found = re.findall(r"group coordinator loaded __consumer_offsets partitions.*?records=(\d+) elapsed_ms=(\d+)",
                       text)
    if not found:
        raise SystemExit("no coordinator load in the broker log")
    records, ms = found[-1]
    return int(records), int(ms)


def offsets_bytes(broker: Broker) -> int:
    detail = json.loads(broker.http_get("/v1/topics/__consumer_offsets"))
    return sum(p["size_bytes"] for p in detail["partitions"])


def cleaner_runs(broker: Broker) -> int:
    m = re.search(rb"^sluice_log_cleaner_runs_total (\d+)", broker.http_get("/metrics"), re.M)
    return int(m.group(1)) if m else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/sluice")
    ap.add_argument("--commits", type=int, default=10_000_000)
    ap.add_argument("--keys", type=int, default=1_000)
    ap.add_argument("--offsets-segment-bytes", type=int, default=None,
                    help="segment.bytes of __consumer_offsets (default: the broker's, 100 MiB as in Kafka); "
                         "smaller for a quick trial run")
    args = ap.parse_args()
    rounds = args.commits // args.keys

    with tempfile.TemporaryDirectory(prefix="sluice-load-") as tmp:
        # The cleaner stays off until the "before" figure is taken.
        broker = Broker(args.bin, Path(tmp) / "data")
        broker.data.mkdir(parents=True)
        broker.start(cleaner=False)
        broker.wait_http()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for f in admin.create_topics([NewTopic(TOPIC, args.keys, 1)]).values():
            f.result(60)
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": GROUP,
                             "enable.auto.commit": False})
        # The first commit creates __consumer_offsets.
        consumer.commit(offsets=[TopicPartition(TOPIC, 0, 0)], asynchronous=False)
        if args.offsets_segment_bytes:
            resource = ConfigResource("topic", "__consumer_offsets",
                                      incremental_configs=[ConfigEntry(
                                          "segment.bytes", str(args.offsets_segment_bytes),
                                          incremental_operation=AlterConfigOpType.SET)])
            for f in admin.incremental_alter_configs([resource]).values():
                f.result(60)
        began = time.monotonic()
        for r in range(1, rounds + 1):
            consumer.commit(offsets=[TopicPartition(TOPIC, p, r) for p in range(args.keys)],
                            asynchronous=False)
            if r % 1000 == 0:
                rate = r * args.keys / (time.monotonic() - began)
                print(f"  {r * args.keys:,} commits ({rate:,.0f}/s)", file=sys.stderr)
        consumer.close()
        committed_s = time.monotonic() - began
        size_before = offsets_bytes(broker)
        broker.stop()

        t0 = broker.start(cleaner=False)
        before = time_to_committed(broker, t0, args.keys, rounds)
        replayed_before, load_before = coordinator_load(broker)
        broker.stop()
        broker.start(cleaner=True)
        broker.wait_http()

        # Let the cleaner compact every sealed segment.
        deadline = time.monotonic() + WAIT_S
        while cleaner_runs(broker) == 0 or offsets_bytes(broker) >= size_before:
            if time.monotonic() > deadline:
                raise SystemExit("the cleaner did not compact __consumer_offsets")
            time.sleep(1)
        time.sleep(3)  # a further clean may follow the first
        size_after = offsets_bytes(broker)
        broker.stop()

        t0 = broker.start(cleaner=True)
        after = time_to_committed(broker, t0, args.keys, rounds)
        replayed_after, load_after = coordinator_load(broker)
        broker.stop()

    print(f"{args.commits:,} offset commits to {args.keys:,} keys in {committed_s:.0f} s")
    print("| | `__consumer_offsets` bytes | records replayed | coordinator load | start to offsets served |")
    print("|---|---|---|---|---|")
    print(f"| before compaction | {size_before / 2**20:,.1f} MiB | {replayed_before:,} | {load_before / 1000:.2f} s "
          f"| {before:.2f} s |")
    print(f"| after compaction | {size_after / 2**20:,.1f} MiB | {replayed_after:,} | {load_after / 1000:.2f} s "
          f"| {after:.2f} s |")


if __name__ == "__main__":
    main()
