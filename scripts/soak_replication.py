#!/usr/bin/env python3
"""Replication soak: the fault scenarios of tests/integration/test_replication.py
with counts and durations from the command line, each on a fresh 3-node
cluster, printing a summary per scenario. Exits 1 if any scenario found a
violation (or could not run), 0 otherwise.

    SLUICE_BIN=target/release/sluice /work/main/.venv/bin/python \\
        scripts/soak_replication.py --kills 200 --rolling-rounds 5

Scenarios (default: all): kill (kill -9 the leader, --kills times), two
(kill -9 two nodes at once), isolate (network partition of the leader,
needs root for network namespaces), rolling (SIGTERM each node in turn,
--rolling-rounds times), eos (transactional pipeline across coordinator
kills). Node logs stay under --workdir (default: a new dir in /tmp).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

import faults  # noqa: E402

SCENARIOS = ["kill", "two", "isolate", "rolling", "eos"]


def run_one(name: str, args, workdir: Path) -> faults.Report:
    report = faults.Report(name)
    settings = dict(faults.FAST_FAILOVER)
    if name == "eos":
        settings.update(faults.EOS_SETTINGS)
    for kv in args.set:
        k, _, v = kv.partition("=")
        settings[k] = v
    netns = name == "isolate"
    if netns and (reason := faults.netns_available()):
        report.violations.append(f"not run: network namespaces unavailable: {reason}")
        return report
    cluster = faults.Cluster(workdir / name, netns=netns, settings=settings)
    if args.isr_size:
        cluster.expected_isr = args.isr_size
    print(f"[{name}] node logs under {cluster.workdir}", flush=True)
    try:
        cluster.start()
        if name == "kill":
            faults.run_kill_leader(cluster, kills=args.kills, rate_per_s=args.rate, report=report)
        elif name == "two":
            faults.run_kill_two(cluster, window_s=args.window_s, report=report)
        elif name == "isolate":
            faults.run_isolate_leader(cluster, isolation_s=args.window_s, report=report)
            if not report.violations:
                report.name += "+controller"
                faults.run_isolate_leader(cluster, isolation_s=args.window_s, controller_too=True, report=report)
        elif name == "rolling":
            faults.run_rolling_restart(cluster, rounds=args.rolling_rounds, report=report)
        elif name == "eos":
            faults.run_eos_coordinator_failover(cluster, inputs=args.inputs, report=report)
    except Exception as e:  # a harness failure is reported like a violation
        report.violations.append(f"scenario aborted: {e}")
        traceback.print_exc()
        print(cluster.log_tails(), flush=True)
    finally:
        cluster.stop()
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", default=[], help=f"any of {SCENARIOS} (default: all)")
    ap.add_argument("--kills", type=int, default=100, help="leader kills in the kill scenario")
    ap.add_argument("--rate", type=float, default=150.0, help="records/s per producer in the kill scenario")
    ap.add_argument("--rolling-rounds", type=int, default=3, help="rounds of the rolling restart")
    ap.add_argument("--window-s", type=float, default=8.0,
                    help="how long two nodes stay down / the leader stays isolated")
    ap.add_argument("--inputs", type=int, default=5000, help="input records of the eos pipeline")
    ap.add_argument("--repeat", type=int, default=1, help="run the chosen scenarios this many times")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra broker setting for every node (repeatable)")
    ap.add_argument("--isr-size", type=int, default=0,
                    help="wait for this many in-sync replicas instead of 3 (only to exercise the harness "
                         "against a build that does not replicate)")
    ap.add_argument("--min-insync", type=int, default=0,
                    help="the topics' min.insync.replicas instead of 2 (again only to exercise the harness "
                         "against a build whose ISR cannot grow)")
    ap.add_argument("--workdir", type=Path, default=None, help="where node data and logs go")
    args = ap.parse_args()
    chosen = args.scenarios or SCENARIOS
    if args.min_insync:
        faults.TOPIC_CONFIGS["min.insync.replicas"] = str(args.min_insync)
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}; choose from {SCENARIOS}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sluice-soak-"))
    print(f"soak: {chosen} x{args.repeat}, work dir {workdir}, binary {faults.sluice_bin()}", flush=True)
    reports = []
    start = time.monotonic()
    for r in range(args.repeat):
        for name in chosen:
            rep = run_one(name, args, workdir / f"run{r + 1}")
            print(rep.summary(), flush=True)
            reports.append(rep)
    print(f"\n==== soak summary ({time.monotonic() - start:.0f}s)")
    for rep in reports:
        print(f"{rep.name}: {'PASS' if not rep.violations else f'{len(rep.violations)} violations'}; "
              f"acked {rep.acked}; fault->ack {faults.format_latency(faults.latency_summary(rep.latencies))}")
    return 1 if any(rep.violations for rep in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
