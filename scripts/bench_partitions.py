#!/usr/bin/env python3
"""Many-partitions benchmark, run by hand (not a test): creation, one write
per partition, memory and open files, and recovery after a clean stop and
after kill -9. Results go into docs/benchmarks.md.

    cargo build --release -p sluice
    /work/main/.venv/bin/python scripts/bench_partitions.py \
        --bin $CARGO_TARGET_DIR/release/sluice --partitions 10000

Needs confluent-kafka. The broker runs on a fresh data directory under
--work-dir (default: the system temp dir), which is removed afterwards
unless --keep is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

# Longest we wait for any one phase; a phase that takes longer is a failure.
PHASE_TIMEOUT_S = 900.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(rest.split()[0])
    out["open_fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


class Broker:
    def __init__(self, binary: Path, data_dir: Path, log_path: Path):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.kafka_port = free_port()
        self.http_port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def start(self) -> float:
        """Starts the broker; returns seconds until its Kafka port accepts,
        which happens only after every partition log is recovered."""
        log = open(self.log_path, "ab")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                str(self.binary), "serve",
                "--data-dir", str(self.data_dir),
                "--kafka-listener", self.bootstrap,
                "--http-listener", f"127.0.0.1:{self.http_port}",
            ],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        deadline = started + PHASE_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"broker exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.kafka_port), timeout=0.2):
                    return time.monotonic() - started
            except OSError:
                time.sleep(0.01)
        sys.exit("broker did not start in time")

    def stop(self) -> float:
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=PHASE_TIMEOUT_S)
        if code != 0:
            sys.exit(f"clean stop exited {code}; see {self.log_path}")
        return time.monotonic() - started

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=60)


def wait_all_partitions(bootstrap: str, topic: str, partitions: int) -> float:
    """Seconds until Metadata lists every partition with a leader."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    started = time.monotonic()
    while time.monotonic() - started < PHASE_TIMEOUT_S:
        md = admin.list_topics(topic=topic, timeout=30)
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
            p.leader == 1 for p in t.partitions.values()
        ):
            return time.monotonic() - started
        time.sleep(0.05)
    sys.exit("partitions never all had a leader")


def produce_all(bootstrap: str, topic: str, partitions: int) -> float:
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "linger.ms": 20,
        "message.timeout.ms": int(PHASE_TIMEOUT_S * 1000),
        "queue.buffering.max.messages": max(100_000, partitions * 2),
    })
    failures = []

    def on_delivery(err, msg):
        if err is not None:
            failures.append(err)

    started = time.monotonic()
    for p in range(partitions):
        producer.produce(topic, value=f"record-{p}".encode(), partition=p, on_delivery=on_delivery)
        producer.poll(0)
    if producer.flush(PHASE_TIMEOUT_S) != 0 or failures:
        sys.exit(f"produce failed: {failures[:5]}")
    return time.monotonic() - started


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    return f"{os.cpu_count()} CPUs ({cpu}), {mem_kb // 1024 // 1024} GiB RAM, Linux {platform.release()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, required=True, help="release sluice binary")
    ap.add_argument("--partitions", type=int, default=10_000)
    ap.add_argument("--work-dir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sluice-bench-partitions-", dir=args.work_dir))
    data_dir = work / "data"
    broker = Broker(args.bin.resolve(), data_dir, work / "broker.log")
    topic = "bench-wide"
    n = args.partitions
    results: dict[str, object] = {"partitions": n, "machine": machine(),
                                  "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        results["first_start_s"] = broker.start()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        started = time.monotonic()
        futures = admin.create_topics([NewTopic(topic, num_partitions=n, replication_factor=1)],
                                      operation_timeout=PHASE_TIMEOUT_S, request_timeout=PHASE_TIMEOUT_S)
        try:
            futures[topic].result(timeout=PHASE_TIMEOUT_S)
        except KafkaException as e:
            sys.exit(f"create failed: {e}")
        results["create_s"] = time.monotonic() - started
        results["after_create"] = proc_status(broker.proc.pid)
        results["produce_all_s"] = produce_all(broker.bootstrap, topic, n)
        results["after_produce"] = proc_status(broker.proc.pid)
        results["clean_stop_s"] = broker.stop()

        results["clean_restart_port_s"] = broker.start()
        results["clean_restart_metadata_s"] = wait_all_partitions(broker.bootstrap, topic, n)
        results["after_clean_restart"] = proc_status(broker.proc.pid)
        # Write again, so the kill -9 restart has unflushed recovery points.
        results["produce_again_s"] = produce_all(broker.bootstrap, topic, n)
        broker.kill9()

        results["kill9_restart_port_s"] = broker.start()
        results["kill9_restart_metadata_s"] = wait_all_partitions(broker.bootstrap, topic, n)
        results["after_kill9_restart"] = proc_status(broker.proc.pid)
        broker.stop()
        results["data_dir_entries"] = len(os.listdir(data_dir))
    finally:
        if broker.proc is not None and broker.proc.poll() is None:
            broker.kill9()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
