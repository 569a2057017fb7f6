#!/usr/bin/env python3
"""Produce and consume throughput of two broker binaries in one run, by hand
(not a test): a change that must not regress the data path is measured
against the binary before it. Results go into docs/benchmarks.md.

    /work/main/.venv/bin/python scripts/bench_before_after.py \
        --before /path/to/old/sluice --after target/release/sluice --runs 5

The brokers run side by side on fresh data dirs; runs rotate between them,
and the `--after` binary's `sluice bench` is the client for both, so only
the broker differs. Each run uses a fresh topic. The machine's ceilings
(`../shared/bench/machine-limits.sh`) are measured in the same run when the
script exists, to print beside the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Longest one broker start or one bench run may take; longer is a failure.
STEP_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"broker did not listen on {port}")


class Broker:
    def __init__(self, binary: Path, work: Path, name: str):
        self.kafka_port = free_port()
        data = work / name
        data.mkdir()
        self.log = open(work / f"{name}.log", "wb")
        self.proc = subprocess.Popen(
            [
                str(binary),
                "serve",
                "--data-dir",
                str(data / "data"),
                "--kafka-listener",
                f"127.0.0.1:{self.kafka_port}",
                "--http-listener",
                f"127.0.0.1:{free_port()}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.kafka_port, time.monotonic() + STEP_TIMEOUT_S)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=STEP_TIMEOUT_S)
        self.log.close()


def bench(client: Path, broker: Broker, mode: str, topic: str, args) -> dict:
    cmd = [
        str(client),
        "bench",
        mode,
        "-b",
        f"127.0.0.1:{broker.kafka_port}",
        "-t",
        topic,
        "-n",
        str(args.messages),
        "-s",
        str(args.message_size),
        "--compression",
        args.compression,
        "--json",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=True)
    return json.loads(out.stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, required=True)
    p.add_argument("--after", type=Path, required=True)
    p.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another broker binary to measure in the same rotation",
    )
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--message-size", type=int, default=1024)
    p.add_argument("--compression", default="none")
    p.add_argument("--work-dir", type=Path, default=None)
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sluice-before-after-", dir=args.work_dir))
    limits = Path(__file__).resolve().parents[2] / "shared/bench/machine-limits.sh"
    if limits.exists():
        print(subprocess.run(["bash", str(limits), str(work)], capture_output=True, text=True).stdout)
    brokers = {
        "before": Broker(args.before, work, "before"),
        "after": Broker(args.after, work, "after"),
    }
    for extra in args.also:
        name, _, path = extra.partition("=")
        brokers[name] = Broker(Path(path), work, name)
    results: dict[str, dict[str, list[float]]] = {
        name: {"produce": [], "consume": []} for name in brokers
    }
    try:
        for run in range(args.runs):
            for name, broker in brokers.items():
                topic = f"bench-{run}"
                for mode in ("produce", "consume"):
                    r = bench(args.after, broker, mode, topic, args)
                    results[name][mode].append(r["messages_per_sec"])
                    print(
                        f"run {run} {name:6} {mode:7} {r['messages_per_sec']:>12,.0f} msgs/s",
                        flush=True,
                    )
    finally:
        for broker in brokers.values():
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.messages} messages of {args.message_size} B, compression {args.compression}")
    print("| broker | mode | runs | median msgs/s | / before |")
    print("|---|---|---|---|---|")
    for name in brokers:
        for mode in ("produce", "consume"):
            before = statistics.median(results["before"][mode])
            median = statistics.median(results[name][mode])
            print(f"| {name} | {mode} | {args.runs} | {median:,.0f} | {median / before:.2f} |")
    for name in brokers:
        for mode in ("produce", "consume"):
            runs = " ".join(f"{v:,.0f}" for v in results[name][mode])
            print(f"{name} {mode}: {runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
