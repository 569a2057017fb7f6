#!/usr/bin/env python3
"""Compare `sluice bench` with librdkafka (confluent-kafka) on one broker,
in one run, and print the markdown table for docs/benchmarks.md.

For each (batch size, acks) it produces N messages of --size bytes to a fresh
topic with `sluice bench produce`, then reads them back with `sluice bench
consume`; then does the same with confluent-kafka (batch.num.messages = the
batch size, the same linger.ms and acks) on another fresh topic.

Usage:
  scripts/bench_librdkafka.py --sluice target/release/sluice [--messages 200000]

It starts its own broker (release build recommended) on free ports in a temp
dir unless --bootstrap is given.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(addr: str, timeout_s: float = 30) -> None:
    host, port = addr.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    # Keep the AdminClient alive until its futures resolve.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(name, partitions, 1)])
    for f in fs.values():
        f.result(30)
    del admin


def rd_produce(bootstrap, topic, n, size, batch, linger_ms, acks) -> dict:
    p = Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "linger.ms": linger_ms,
        "batch.num.messages": batch,
        "batch.size": batch * (size + 100) * 2,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 2_000_000,
        "enable.idempotence": False,
    })
    value = b"x" * size
    errors = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)

    start = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                p.produce(topic, value, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    remaining = p.flush(120)
    elapsed = time.perf_counter() - start
    assert remaining == 0 and not errors, (remaining, errors[:3])
    return {"messages_per_sec": n / elapsed, "mb_per_sec": n * size / elapsed / 2**20}


def rd_consume(bootstrap, topic, partitions, n, size) -> dict:
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "bench-" + uuid.uuid4().hex[:8],
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 100,
    })
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got = 0
    start = time.perf_counter()
    while got < n:
        for m in c.consume(num_messages=10_000, timeout=5):
            if m.error() is None:
                got += 1
    elapsed = time.perf_counter() - start
    c.close()
    return {"messages_per_sec": got / elapsed, "mb_per_sec": got * size / elapsed / 2**20}


def sluice_bench(sluice, bootstrap, mode, topic, n, size, batch, linger_ms, acks, partitions) -> dict:
    out = subprocess.run(
        [sluice, "bench", mode, "--bootstrap-server", bootstrap, "--topic", topic,
         "--messages", str(n), "--message-size", str(size), "--batch-size", str(batch),
         "--linger", f"{linger_ms}ms", "--acks", acks, "--partitions", str(partitions), "--json"],
        capture_output=True, check=True, timeout=600,
    )
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default="target/release/sluice")
    ap.add_argument("--bootstrap")
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--linger-ms", type=int, default=5)
    args = ap.parse_args()

    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        tmp = tempfile.mkdtemp(prefix="sluice-bench-")
        bootstrap = f"127.0.0.1:{free_port()}"
        broker = subprocess.Popen(
            [args.sluice, "serve", "--data-dir", os.path.join(tmp, "data"),
             "--kafka-listener", bootstrap, "--http-listener", f"127.0.0.1:{free_port()}", "--node-id", "1"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "broker.log"), "wb"),
        )
        wait_port(bootstrap)
    rows = []
    try:
        for batch in (100, 1000):
            for acks in ("1", "all"):
                tag = f"b{batch}-a{acks}-{uuid.uuid4().hex[:6]}"
                t_s, t_r = f"s-{tag}", f"r-{tag}"
                sp = sluice_bench(args.sluice, bootstrap, "produce", t_s, args.messages, args.size,
                                  batch, args.linger_ms, acks, args.partitions)
                sc = sluice_bench(args.sluice, bootstrap, "consume", t_s, args.messages, args.size,
                                  batch, args.linger_ms, acks, args.partitions)
                create_topic(bootstrap, t_r, args.partitions)
                rp = rd_produce(bootstrap, t_r, args.messages, args.size, batch, args.linger_ms, acks)
                rc = rd_consume(bootstrap, t_r, args.partitions, args.messages, args.size)
                rows.append((batch, acks, sp, sc, rp, rc))
                print(f"done batch={batch} acks={acks}", file=sys.stderr)
    finally:
        if broker is not None:
            broker.terminate()
            broker.wait(30)

    print(f"{args.messages} messages of {args.size} B, {args.partitions} partitions, linger {args.linger_ms} ms, one producer / one consumer.\n")
    print("| batch | acks | sluice produce msgs/s (MB/s) | librdkafka produce msgs/s (MB/s) | sluice produce p50 / p99 ms | sluice consume msgs/s (MB/s) | librdkafka consume msgs/s (MB/s) |")
    print("|---|---|---|---|---|---|---|")
    for batch, acks, sp, sc, rp, rc in rows:
        f = lambda r: f"{r['messages_per_sec']:,.0f} ({r['mb_per_sec']:.1f})"
        print(f"| {batch} | {acks} | {f(sp)} | {f(rp)} | {sp['latency_ms_p50']:.1f} / {sp['latency_ms_p99']:.1f} | {f(sc)} | {f(rc)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
