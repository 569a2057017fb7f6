#!/usr/bin/env python3
"""Partition scaling (issue 18): throughput and latency with many partitions,
and what idle partitions cost.

Starts BINARY on a fresh data dir and runs, with `sluice bench e2e` (each
record timed from its scheduled send to its consumption, warm-up excluded):
  1. 1,000 partitions, 8 producers and 8 consumers at RATE_1K;
  2. 10,000 partitions: the broker's CPU over IDLE seconds with nothing
     moving, then a light load (RATE_10K, 1 producer, 1 consumer).
The broker's CPU is read from /proc/<pid>/stat around each phase.

usage: scripts/bench-partitions.py BINARY [--rate-1k 50MB] [--rate-10k 2MB]
       [--duration 15s] [--idle 10] [--partitioner sticky|round-robin]

The records have no key; `--partitioner` says how the load generator
spreads them (sticky, its default like the Java client's, or one record
per partition in turn, which makes every batch a one-record batch).
"""

import argparse
import json
import os
import subprocess
import tempfile
import time

from benchproc import cpu_seconds, free_port, rss_mib, wait_port


def run(cmd, timeout=900):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr[-800:]}")
    return out.stdout


def e2e(binary, bootstrap, topic, partitions, rate, producers, consumers, duration, pid, partitioner):
    before, t0 = cpu_seconds(pid), time.time()
    report = json.loads(run([
        binary, "bench", "e2e", "-b", bootstrap, "-t", topic, "-p", str(partitions),
        "--rate", rate, "--producers", str(producers), "--consumers", str(consumers),
        "-s", "1024", "--linger", "5ms", "-d", duration, "--partitioner", partitioner, "--json",
    ]))
    cpu = (cpu_seconds(pid) - before) / (time.time() - t0)
    keys = ("mb_per_sec", "messages_per_sec", "latency_ms_p50", "latency_ms_p99",
            "latency_ms_p999", "latency_ms_max")
    return {**{k: report[k] for k in keys}, "broker_cores": round(cpu, 3),
            "broker_rss_mib": round(rss_mib(pid), 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rate-1k", default="50MB")
    ap.add_argument("--rate-10k", default="2MB")
    ap.add_argument("--duration", default="15s")
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--partitioner", default="sticky", choices=["sticky", "round-robin"])
    a = ap.parse_args()
    port, http = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ, SLUICE_DATA_DIR=data, SLUICE_KAFKA_LISTENER=f"127.0.0.1:{port}",
                   SLUICE_HTTP_LISTENER=f"127.0.0.1:{http}", SLUICE_LOG="warn")
        broker = subprocess.Popen([a.binary, "serve"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            bootstrap = f"127.0.0.1:{port}"
            r = e2e(a.binary, bootstrap, "p1k", 1000, a.rate_1k, 8, 8, a.duration, broker.pid,
                  a.partitioner)
            print(f"1,000 partitions, 8 producers, 8 consumers at {a.rate_1k}: {r}", flush=True)
            # Opening 10,000 logs takes tens of seconds on a slow disk (two
            # directory fsyncs each): more than the CLI's default 30 s.
            run([a.binary, "topic", "create", "p10k", "-p", "10000", "-b", bootstrap,
                 "--request-timeout", "300s"])
            time.sleep(2)
            before = cpu_seconds(broker.pid)
            time.sleep(a.idle)
            idle = (cpu_seconds(broker.pid) - before) / a.idle
            print(f"10,000 partitions (+1,000), idle: broker {idle:.3f} cores, "
                  f"RSS {rss_mib(broker.pid):.0f} MiB", flush=True)
            r = e2e(a.binary, bootstrap, "p10k", 10000, a.rate_10k, 1, 1, a.duration, broker.pid,
                  a.partitioner)
            print(f"10,000 partitions, 1 producer, 1 consumer at {a.rate_10k}: {r}", flush=True)
        finally:
            broker.terminate()
            broker.wait(60)


if __name__ == "__main__":
    main()
