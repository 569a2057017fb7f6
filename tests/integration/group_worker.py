"""A consumer-group member in its own process, for tests/integration/test_groups.py.

Usage: group_worker.py CLIENT BOOTSTRAP TOPIC GROUP [--instance ID] [--session-ms N]
CLIENT is `classic` (confluent-kafka, classic protocol), `consumer`
(confluent-kafka, KIP-848) or `kafka-python`.

Prints one JSON object per line on stdout, flushed at once so a SIGKILLed
worker leaves a complete record of what it did:
  {"ev": "assign"|"revoke", "t": <unix s>, "parts": [..]}   ownership changes
  {"ev": "recs", "parts": {"<p>": [offsets...]}}           records consumed
  {"ev": "ready"}                                           entered the poll loop
SIGTERM stops the loop and closes the consumer cleanly (final commit, leave).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

stop = False


def emit(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def on_term(signum, frame):
    global stop
    stop = True


def run_confluent(args) -> None:
    from confluent_kafka import Consumer

    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 500,
        "fetch.wait.max.ms": 100,
    }
    if args.client == "consumer":
        conf["group.protocol"] = "consumer"
    else:
        conf["session.timeout.ms"] = args.session_ms
        conf["heartbeat.interval.ms"] = 500
    if args.instance:
        conf["group.instance.id"] = args.instance
    c = Consumer(conf)

    def assigned(consumer, parts):
        emit({"ev": "assign", "t": time.time(), "parts": sorted(p.partition for p in parts)})

    def revoked(consumer, parts):
        emit({"ev": "revoke", "t": time.time(), "parts": sorted(p.partition for p in parts)})

    c.subscribe([args.topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)
    emit({"ev": "ready"})
    while not stop:
        msgs = c.consume(500, 0.2)
        batch: dict[str, list[int]] = {}
        for m in msgs:
            if m.error():
                continue
            batch.setdefault(str(m.partition()), []).append(m.offset())
        if batch:
            emit({"ev": "recs", "parts": batch})
    c.close()
    emit({"ev": "closed"})


def run_kafka_python(args) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit({"ev": "revoke", "t": time.time(), "parts": sorted(p.partition for p in revoked)})

        def on_partitions_assigned(self, assigned):
            emit({"ev": "assign", "t": time.time(), "parts": sorted(p.partition for p in assigned)})

    c = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        auto_commit_interval_ms=500,
        session_timeout_ms=args.session_ms,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=100,
        group_instance_id=args.instance,
    ) if args.instance else KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        auto_commit_interval_ms=500,
        session_timeout_ms=args.session_ms,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=100,
    )
    c.subscribe([args.topic], listener=Listener())
    emit({"ev": "ready"})
    while not stop:
        polled = c.poll(timeout_ms=200, max_records=500)
        batch: dict[str, list[int]] = {}
        for tp, records in polled.items():
            for r in records:
                batch.setdefault(str(tp.partition), []).append(r.offset)
        if batch:
            emit({"ev": "recs", "parts": batch})
    c.close()
    emit({"ev": "closed"})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("client", choices=["classic", "consumer", "kafka-python"])
    p.add_argument("bootstrap")
    p.add_argument("topic")
    p.add_argument("group")
    p.add_argument("--instance")
    p.add_argument("--session-ms", type=int, default=6000)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    if args.client == "kafka-python":
        run_kafka_python(args)
    else:
        run_confluent(args)


if __name__ == "__main__":
    main()
