#!/usr/bin/env python3
"""Replication cost, measured: `sluice bench produce` against one node and
against a three-node cluster (replication factor 3, min.insync.replicas 2),
with acks=1 and acks=all, all in one run on this machine.

    scripts/bench_replication.py [--bin target/release/sluice] [--rounds 5]
        [--messages 200000] [--size 1024] [--dir /tmp/sluice-bench-repl]

Rounds rotate through the four configurations, so the machine's drift
spreads over all of them; the table gives medians over rounds of
throughput and of each round's p50/p99 produce-to-ack latency, plus the
ratio of each configuration to one node with acks=1. The machine's disk
and loopback ceilings (../shared/bench/machine-limits.sh) are printed
first when that script exists. Stops every node it starts, on any exit.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


_ports_given = set()


def free_port():
    """A free port never returned before: the kernel may hand out one just
    released port twice in a row."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


class Nodes:
    """One node, or three with a metadata quorum, on 127.0.0.1."""

    def __init__(self, binary, base, count):
        self.binary, self.base, self.count = binary, base, count
        self.procs = []
        self.kafka = [free_port() for _ in range(count)]
        self.http = [free_port() for _ in range(count)]
        self.controller = [free_port() for _ in range(count)]

    def start(self):
        shutil.rmtree(self.base, ignore_errors=True)
        voters = ",".join(
            f"{i + 1}@127.0.0.1:{self.controller[i]}" for i in range(self.count)
        )
        for i in range(self.count):
            data = os.path.join(self.base, f"node{i + 1}")
            os.makedirs(data)
            env = dict(
                os.environ,
                SLUICE_NODE_ID=str(i + 1),
                SLUICE_DATA_DIR=data,
                SLUICE_KAFKA_LISTENER=f"127.0.0.1:{self.kafka[i]}",
                SLUICE_HTTP_LISTENER=f"127.0.0.1:{self.http[i]}",
            )
            if self.count > 1:
                env["SLUICE_CONTROLLER_LISTENER"] = f"127.0.0.1:{self.controller[i]}"
                env["SLUICE_CLUSTER_VOTERS"] = voters
            log = open(os.path.join(self.base, f"node{i + 1}.log"), "w")
            self.procs.append(
                subprocess.Popen([self.binary, "serve"], env=env, stdout=log, stderr=log)
            )
        deadline = time.time() + 60
        while time.time() < deadline:
            if all(self._live_brokers(i) >= self.count for i in range(self.count)):
                return
            time.sleep(0.2)
        raise RuntimeError(f"nodes under {self.base} did not come up")

    def _live_brokers(self, i):
        url = f"http://127.0.0.1:{self.http[i]}/v1/cluster"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                cluster = json.load(r)
        except OSError:
            return 0
        if self.count == 1:
            return 1
        return sum(1 for b in cluster.get("brokers", []) if not b.get("fenced"))

    def bootstrap(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.kafka)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []


def bench(binary, nodes, topic, acks, args):
    cmd = [
        binary, "bench", "produce",
        "--bootstrap-server", nodes.bootstrap(),
        "--topic", topic,
        "--messages", str(args.messages),
        "--message-size", str(args.size),
        "--partitions", "3",
        "--acks", acks,
        "--json",
    ]
    if nodes.count > 1:
        cmd += ["--replication-factor", "3", "--min-insync-replicas", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr}")
    # The summary is the JSON object at the end of the output.
    return json.loads(out.stdout[out.stdout.index("{"):])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, "target/release/sluice"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--dir", default="/tmp/sluice-bench-repl")
    args = parser.parse_args()

    limits = os.path.join(ROOT, "..", "shared", "bench", "machine-limits.sh")
    if os.path.exists(limits):
        os.makedirs(args.dir, exist_ok=True)
        print(subprocess.run(["bash", limits, args.dir], capture_output=True, text=True).stdout)

    single = Nodes(args.bin, os.path.join(args.dir, "single"), 1)
    cluster = Nodes(args.bin, os.path.join(args.dir, "cluster"), 3)
    configs = [("1 node", single, "1"), ("1 node", single, "all"),
               ("3 nodes, RF 3", cluster, "1"), ("3 nodes, RF 3", cluster, "all")]
    results = {(name, acks): [] for name, _, acks in configs}
    try:
        single.start()
        cluster.start()
        for r in range(args.rounds):
            for name, nodes, acks in configs:
                # A fresh topic per measurement: every round writes the same
                # amount into an empty log.
                topic = f"bench-{r}-{acks}-{nodes.count}"
                report = bench(args.bin, nodes, topic, acks, args)
                results[(name, acks)].append(report)
                print(f"round {r + 1} {name} acks={acks}: "
                      f"{report['mb_per_sec']:.1f} MB/s, p50 {report['latency_ms_p50']:.2f} ms, "
                      f"p99 {report['latency_ms_p99']:.2f} ms", flush=True)
    finally:
        single.stop()
        cluster.stop()

    base = statistics.median(r["mb_per_sec"] for r in results[("1 node", "1")])
    print()
    print(f"{args.messages:,} × {args.size} B, 3 partitions, {args.rounds} rounds, medians")
    print()
    print("| configuration | acks | MB/s | vs 1 node acks=1 | p50 ack ms | p99 ack ms |")
    print("|---|---|---|---|---|---|")
    for name, _, acks in configs:
        rs = results[(name, acks)]
        mbs = statistics.median(r["mb_per_sec"] for r in rs)
        p50 = statistics.median(r["latency_ms_p50"] for r in rs)
        p99 = statistics.median(r["latency_ms_p99"] for r in rs)
        print(f"| {name} | {acks} | {mbs:.1f} | {mbs / base:.2f} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
