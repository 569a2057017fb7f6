#!/usr/bin/env python3
"""Produce-to-ack latency at a fixed rate, measured by librdkafka (issue 18).

For each rate, starts the sluice binary on a fresh data dir and produces to
one partition with librdkafka's rdkafka_performance at that rate (`-r`),
acks=all and idempotence by default, recording every message's delivery
latency (`-l -A`: from produce() to the delivery report). The first
WARMUP seconds of messages are left out of the percentiles. Beside the
client's figures it prints the broker's own view from /metrics over the
same run: Produce request duration and fsync duration (p50/p99 from the
histogram buckets, so upper bounds), and the broker's CPU from /proc.

The client is C and runs its I/O on its own threads, so what it measures
is the broker plus the loopback, not a load generator that falls behind.

Each rate is measured three ways, back to back, so the rows share the
machine's moment: the broker at its default durability (group commit:
every acknowledged record is fsynced), the broker with
`log.flush_mode = "interval"` (no fsync before the ack: the broker's own
path), and the disk alone: a group-commit loop in this script that
appends whatever arrived at the same rate and record size and
fdatasyncs it, each record's latency from its arrival to the end of the
fdatasync that covered it. That last row is the floor any broker that
fsyncs before acknowledging pays on this disk.

usage: scripts/bench-latency.py BINARY [--rate MB/s ...] [--seconds S]
       [--acks A] [--linger-ms L] [--warmup S] [--size BYTES]
Record size: 1 KiB below 100 MB/s, 10 KiB from 100 MB/s on (as the issue
measured), unless --size is given. Needs ../shared/bench/peers.sh to have
built rdkafka_performance (PEERS, default /tmp/sluice-peers).
"""

import argparse
import os
import subprocess
import tempfile
import time
import urllib.request

from benchproc import cpu_seconds, free_port, wait_port

PEERS = os.environ.get("PEERS", "/tmp/sluice-peers")


def metrics(http):
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=10) as r:
        return r.read().decode()


def buckets(text, name, label=""):
    """Cumulative histogram buckets {le: count} of metric `name` whose
    label set contains `label`."""
    out = {}
    for line in text.splitlines():
        if not line.startswith(name + "_bucket{") or label not in line:
            continue
        labels, value = line.rsplit(" ", 1)
        le = labels.split('le="', 1)[1].split('"', 1)[0]
        out[float(le)] = float(value)
    return out


def histogram_quantile(before, after, q):
    """The upper bound of the bucket holding quantile `q` of the
    observations made between two scrapes."""
    delta = sorted((le, after.get(le, 0) - before.get(le, 0)) for le in after)
    if not delta or delta[-1][1] <= 0:
        return None
    target = q * delta[-1][1]
    for le, count in delta:
        if count >= target:
            return le
    return delta[-1][0]


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


def ms(seconds):
    return "—" if seconds is None else ("> 13 s" if seconds == float("inf") else f"{seconds * 1e3:g} ms")


def record_size(mb_per_s, args):
    return args.size or (1024 if mb_per_s < 100 else 10240)


def summary(micros, rate, warmup, size, wall):
    skip = min(len(micros) // 2, rate * warmup)
    measured = sorted(micros[skip:])
    return {
        "achieved": len(micros) * size / wall / 1e6,
        "p50": percentile(measured, 50) / 1e3, "p99": percentile(measured, 99) / 1e3,
        "p999": percentile(measured, 99.9) / 1e3, "max": measured[-1] / 1e3,
    }


def disk_floor(mb_per_s, args):
    """Group commit with nothing but the disk: records arrive at the rate;
    each pass appends all that arrived and fdatasyncs it."""
    size = record_size(mb_per_s, args)
    rate = max(1, int(mb_per_s * 1e6 / size))
    count = rate * args.seconds
    chunk = os.urandom(size * 256)
    micros = []
    with tempfile.TemporaryDirectory(dir=args.data_parent) as data:
        fd = os.open(os.path.join(data, "floor"), os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            acked = position = 0
            t0 = time.perf_counter()
            while acked < count:
                now = time.perf_counter()
                arrived = min(count, int((now - t0) * rate))
                if arrived == acked:
                    time.sleep(max(0.0, t0 + (acked + 1) / rate - now))
                    continue
                pending = (arrived - acked) * size
                while pending:
                    n = os.pwrite(fd, chunk[:min(pending, len(chunk))], position)
                    position += n
                    pending -= n
                os.fdatasync(fd)
                done = time.perf_counter()
                micros.extend(int((done - t0 - m / rate) * 1e6) for m in range(acked, arrived))
                acked = arrived
            wall = time.perf_counter() - t0
        finally:
            os.close(fd)
    r = summary(micros, rate, args.warmup, size, wall)
    r.update(size=size, cores=None, broker=None)
    return r


def one_rate(binary, mb_per_s, args, flush_mode):
    size = record_size(mb_per_s, args)
    rate = max(1, int(mb_per_s * 1e6 / size))
    count = rate * args.seconds
    port, http = free_port(), free_port()
    with tempfile.TemporaryDirectory(dir=args.data_parent) as data:
        env = dict(os.environ, SLUICE_DATA_DIR=data, SLUICE_LOG_FLUSH_MODE=flush_mode,
                   SLUICE_KAFKA_LISTENER=f"127.0.0.1:{port}",
                   SLUICE_HTTP_LISTENER=f"127.0.0.1:{http}", SLUICE_LOG="warn")
        broker = subprocess.Popen([binary, "serve"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            wait_port(http)
            bootstrap = f"127.0.0.1:{port}"
            subprocess.run([binary, "topic", "create", "lat", "-p", "1", "-b", bootstrap],
                           check=True, capture_output=True, timeout=60)
            before_text = metrics(http)
            cpu_before = cpu_seconds(broker.pid)
            latency_file = os.path.join(data, "latency.txt")
            t0 = time.time()
            out = subprocess.run(
                [f"{PEERS}/rdkafka_performance", "-P", "-b", bootstrap, "-t", "lat", "-p", "0",
                 "-s", str(size), "-c", str(count), "-r", str(rate), "-a", str(args.acks),
                 "-l", "-A", latency_file, "-q",
                 "-X", f"linger.ms={args.linger_ms}",
                 "-X", f"enable.idempotence={'true' if args.idempotence else 'false'}"],
                env=dict(os.environ, LD_LIBRARY_PATH=f"{PEERS}/rdk216"),
                capture_output=True, text=True, timeout=args.seconds * 10 + 60)
            wall = time.time() - t0
            cpu = cpu_seconds(broker.pid) - cpu_before
            after_text = metrics(http)
            if out.returncode != 0:
                raise SystemExit(f"rdkafka_performance failed: {out.stderr[-500:]}")
            with open(latency_file) as f:
                micros = [int(line) for line in f if line.strip()]
        finally:
            broker.terminate()
            broker.wait(timeout=60)
    produce = ('sluice_kafka_request_duration_seconds', 'api="Produce"')
    fsync = ('sluice_log_fsync_duration_seconds', "")
    broker_view = {}
    for key, (name, label) in {"request": produce, "fsync": fsync}.items():
        b, a = buckets(before_text, name, label), buckets(after_text, name, label)
        broker_view[key] = (histogram_quantile(b, a, 0.5), histogram_quantile(b, a, 0.99))
    r = summary(micros, rate, args.warmup, size, wall)
    r.update(size=size, cores=cpu / wall, broker=broker_view)
    return r

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("binary")
    p.add_argument("--rate", type=float, action="append", help="MB/s (repeatable; default 20, 100, 500)")
    p.add_argument("--seconds", type=int, default=12)
    p.add_argument("--warmup", type=int, default=2, help="seconds of messages left out")
    p.add_argument("--acks", type=int, default=-1)
    p.add_argument("--linger-ms", type=float, default=1)
    p.add_argument("--size", type=int)
    p.add_argument("--no-idempotence", dest="idempotence", action="store_false")
    p.add_argument("--data-parent", help="where the data dirs go (default: the temp dir)")
    args = p.parse_args()
    rates = args.rate or [20, 100, 500]
    print(f"acks={args.acks} linger.ms={args.linger_ms} idempotence={args.idempotence}, "
          f"{args.seconds} s per rate, first {args.warmup} s left out\n")
    print("| rate | record | run | achieved | p50 | p99 | p999 | max "
          "| broker Produce p50 / p99 | broker fsync p50 / p99 | broker cores |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    runs = [("group_commit", "sluice, group commit (default)"),
            ("interval", "sluice, flush_mode interval (no fsync)"),
            (None, "disk alone: append + fdatasync")]
    for rate in rates:
        for flush_mode, label in runs:
            r = one_rate(args.binary, rate, args, flush_mode) if flush_mode else disk_floor(rate, args)
            if r["broker"]:
                (rq50, rq99), (fs50, fs99) = r["broker"]["request"], r["broker"]["fsync"]
                broker = f"≤ {ms(rq50)} / ≤ {ms(rq99)} | ≤ {ms(fs50)} / ≤ {ms(fs99)} | {r['cores']:.2f}"
            else:
                broker = "— | — | —"
            print(f"| {rate:g} MB/s | {r['size'] // 1024} KiB | {label} | {r['achieved']:.1f} MB/s "
                  f"| {r['p50']:.2f} ms | {r['p99']:.2f} ms | {r['p999']:.2f} ms | {r['max']:.2f} ms "
                  f"| {broker} |", flush=True)

if __name__ == "__main__":
    main()
