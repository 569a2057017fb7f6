"""One client cannot starve the broker or stall visibility.

- Produced data becomes durable and visible even when the producer's
  connection goes away before its responses are written.
- Request frames across all connections share one memory budget
  (limits.queued_max_request_bytes): while one connection holds it, another
  waits without being read, and proceeds when the budget is given back.
"""

from __future__ import annotations

import socket
import struct

from clients import confluent_consumer, confluent_create_topic, confluent_watermarks
from confluent_kafka import KafkaError, TopicPartition
from http_client import Http
from util import (
    build_record_batch,
    connect,
    frame,
    i32,
    now_ms,
    produce_v3_request,
    recv_response_or_close,
    request_header_v1,
    wait_until,
)

VISIBLE_WITHIN_S = 15


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0) instead of an orderly FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_produced_records_become_visible_after_the_producer_vanishes(broker, topic_name):
    """Pipelined produces (acks=1 and acks=all) to many partitions, then the
    socket is closed without reading a single response: a plain close in
    some rounds (the broker's second reply write fails), a reset in others.
    Every appended record must become visible (high watermark) and
    fetchable, with no further produce to push the high watermark along."""
    partitions = 24
    rounds = 6
    confluent_create_topic(broker.bootstrap, topic_name, partitions)
    ts = now_ms()
    for rnd in range(rounds):
        batch = build_record_batch([(b"k", f"r{rnd}".encode(), [])], base_ts_ms=ts)
        payload = b"".join(
            produce_v3_request(rnd * partitions + p, topic_name, p, batch, acks=1 if p % 2 else -1)
            for p in range(partitions)
        )
        sock = connect(broker.kafka_port)
        sock.sendall(payload)
        if rnd % 2:
            _reset(sock)
        else:
            sock.close()

    def all_visible() -> bool:
        return all(
            confluent_watermarks(broker.bootstrap, topic_name, p)[1] == rounds for p in range(partitions)
        )

    # The broker may still be reading the last connection's requests; the
    # high watermark of every partition must reach `rounds` on its own.
    try:
        wait_until(all_visible, VISIBLE_WITHIN_S, "every partition's high watermark to reach its log end")
    except AssertionError:
        stuck = {
            p: confluent_watermarks(broker.bootstrap, topic_name, p)[1]
            for p in range(partitions)
            if confluent_watermarks(broker.bootstrap, topic_name, p)[1] != rounds
        }
        raise AssertionError(f"high watermarks stuck below {rounds}: {stuck}") from None

    consumer = confluent_consumer(broker.bootstrap)
    try:
        consumer.assign([TopicPartition(topic_name, p, 0) for p in range(partitions)])
        seen = 0
        eofs: set[int] = set()

        def drained() -> bool:
            nonlocal seen
            msg = consumer.poll(0.5)
            if msg is not None:
                if msg.error() is None:
                    seen += 1
                elif msg.error().code() == KafkaError._PARTITION_EOF:
                    eofs.add(msg.partition())
            return len(eofs) == partitions and seen == partitions * rounds

        wait_until(drained, VISIBLE_WITHIN_S, f"{partitions * rounds} records fetched", interval_s=0)
    finally:
        consumer.close()


REQUEST_BUDGET_BYTES = 2 * 1024 * 1024


def test_a_frame_holding_the_request_budget_holds_back_other_connections(broker_factory):
    """Connection A announces a frame as large as the whole budget and sends
    a few bytes of it. Connection B's small ApiVersions request must not be
    read while A holds the budget, and is answered once A goes away."""
    b = broker_factory.new(
        extra_args=[
            "--set", f"limits.socket_request_max_bytes={REQUEST_BUDGET_BYTES}",
            "--set", f"limits.queued_max_request_bytes={REQUEST_BUDGET_BYTES}",
        ]
    )
    hog = connect(b.kafka_port)
    hog.sendall(i32(REQUEST_BUDGET_BYTES) + b"\x00" * 10)
    http = Http(b)
    http.wait_ready()

    def queued_bytes() -> int:
        _, _, body = http.raw("GET", "/metrics")
        for line in body.decode().splitlines():
            if line.startswith("sluice_kafka_request_queued_bytes "):
                return int(float(line.split()[1]))
        raise AssertionError("no sluice_kafka_request_queued_bytes in /metrics")

    wait_until(lambda: queued_bytes() == REQUEST_BUDGET_BYTES, 10, "A's frame to take the whole budget")
    waiter = connect(b.kafka_port)
    waiter.sendall(frame(request_header_v1(18, 0, 2)))
    waiter.settimeout(1.5)
    try:
        early = waiter.recv(4)
    except socket.timeout:
        early = None
    assert early is None, "B was answered while A held the whole request budget"
    hog.close()
    response = recv_response_or_close(waiter, timeout_s=10)
    assert response is not None and response[:4] == i32(2), "B answered once A released the budget"
    wait_until(lambda: queued_bytes() == 0, 10, "the budget to be given back")
    waiter.close()
