#!/usr/bin/env python3
"""Broker CPU per gigabyte produced and consumed (issue 18).

Starts each given sluice binary on a fresh data dir, produces MESSAGES
records of SIZE bytes to one partition with librdkafka's rdkafka_performance
(acks 1, linger 5 ms, as compare.sh does), then consumes them from the
beginning, and reads the broker's own CPU time (utime + stime from
/proc/<pid>/stat) around each phase. Binaries alternate over ROUNDS rounds
so they see the same machine; the medians are printed.

usage: scripts/bench-cpu.py BINARY [BINARY...] [--messages N] [--size S] [--rounds R]
Needs ../shared/bench/peers.sh to have built rdkafka_performance
(PEERS, default /tmp/sluice-peers).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchproc import cpu_seconds, free_port, wait_port

PEERS = os.environ.get("PEERS", "/tmp/sluice-peers")


def rdkafka(args):
    env = dict(os.environ, LD_LIBRARY_PATH=f"{PEERS}/rdk216")
    out = subprocess.run(
        [f"{PEERS}/rdkafka_performance", *args, "-q"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    if out.returncode != 0:
        raise SystemExit(f"rdkafka_performance failed: {out.stderr[-500:]}")
    return out.stdout + out.stderr


def one_round(binary, messages, size):
    port, http = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ, SLUICE_DATA_DIR=data,
                   SLUICE_KAFKA_LISTENER=f"127.0.0.1:{port}",
                   SLUICE_HTTP_LISTENER=f"127.0.0.1:{http}", SLUICE_LOG="warn")
        broker = subprocess.Popen([binary, "serve"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            topic = "cpu"
            subprocess.run([binary, "topic", "create", topic, "-p", "1", "-b", f"127.0.0.1:{port}"],
                           check=True, capture_output=True, timeout=60)
            bootstrap = f"127.0.0.1:{port}"
            gb = messages * size / 1e9
            before = cpu_seconds(broker.pid)
            t0 = time.time()
            rdkafka(["-P", "-b", bootstrap, "-t", topic, "-p", "0", "-s", str(size), "-c",
                     str(messages), "-a", "1", "-X", "linger.ms=5", "-X", "batch.size=1000000"])
            produce_wall = time.time() - t0
            mid = cpu_seconds(broker.pid)
            t0 = time.time()
            rdkafka(["-C", "-b", bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-c",
                     str(messages)])
            consume_wall = time.time() - t0
            after = cpu_seconds(broker.pid)
            return {
                "produce_cpu_s_per_gb": (mid - before) / gb,
                "consume_cpu_s_per_gb": (after - mid) / gb,
                "produce_mb_s": messages * size / 1e6 / produce_wall,
                "consume_mb_s": messages * size / 1e6 / consume_wall,
            }
        finally:
            broker.terminate()
            broker.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    results = {b: [] for b in a.binaries}
    for r in range(a.rounds):
        for b in a.binaries:
            res = one_round(b, a.messages, a.size)
            results[b].append(res)
            print(f"round {r + 1} {b}: " + ", ".join(f"{k} {v:.3f}" for k, v in res.items()),
                  flush=True)
    for b, rs in results.items():
        med = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
        print(f"median {b}: " + ", ".join(f"{k} {v:.3f}" for k, v in med.items()))


if __name__ == "__main__":
    sys.exit(main())
