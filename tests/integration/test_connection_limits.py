"""Issue 3, server bounds: pipelined requests are answered in order, idle
connections time out, and the connection cap holds further clients back
until a slot frees, without dropping them."""

from __future__ import annotations

import socket
import time

from util import Reader, connect, frame, recv_response_or_close, request_header_v1

API_VERSIONS = 18
METADATA = 3


def api_versions_v0(correlation_id: int) -> bytes:
    return frame(request_header_v1(API_VERSIONS, 0, correlation_id))


def metadata_v1_all_topics(correlation_id: int) -> bytes:
    # v1 body: topics = null (-1) means every topic.
    return frame(request_header_v1(METADATA, 1, correlation_id) + (-1).to_bytes(4, "big", signed=True))


def correlation_of(response: bytes) -> int:
    return Reader(response).i32()


def test_pipelined_requests_are_answered_in_request_order(broker):
    sock = connect(broker.kafka_port)
    try:
        ids = [101, 102, 103, 104, 105, 106]
        burst = b"".join(
            api_versions_v0(cid) if i % 2 == 0 else metadata_v1_all_topics(cid) for i, cid in enumerate(ids)
        )
        sock.sendall(burst)  # one write: the broker sees them pipelined
        got = []
        for _ in ids:
            response = recv_response_or_close(sock)
            assert response is not None, f"connection closed after {got}"
            got.append(correlation_of(response))
        assert got == ids
    finally:
        sock.close()


def _closed_by_peer(sock: socket.socket, within_s: float) -> bool:
    sock.settimeout(within_s)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, socket.timeout):
        return False
    except ConnectionResetError:
        return True


def test_idle_connection_is_closed_after_connections_max_idle_ms(broker_factory):
    b = broker_factory.new(extra_args=["--set", "limits.connections_max_idle_ms=1000"])
    idle = connect(b.kafka_port)
    busy = connect(b.kafka_port)
    try:
        # A connection that keeps talking stays open past the idle limit.
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            busy.sendall(api_versions_v0(1))
            assert recv_response_or_close(busy) is not None, "an active connection was closed"
            time.sleep(0.3)
        # The silent one has been closed by now (or is within moments).
        assert _closed_by_peer(idle, within_s=5.0), "idle connection was not closed"
        assert b.alive()
    finally:
        idle.close()
        busy.close()


def test_connection_cap_holds_extra_clients_until_a_slot_frees(broker_factory):
    b = broker_factory.new(extra_args=["--set", "limits.max_connections=2"])
    first, second = connect(b.kafka_port), connect(b.kafka_port)
    third = None
    try:
        for s in (first, second):
            s.sendall(api_versions_v0(7))
            assert recv_response_or_close(s) is not None
        # The kernel completes the handshake, but the broker does not serve
        # a third connection while two are open.
        third = connect(b.kafka_port)
        third.sendall(api_versions_v0(9))
        third.settimeout(1.5)
        try:
            early = third.recv(4)
        except (TimeoutError, socket.timeout):
            early = None
        assert early is None, "a connection beyond limits.max_connections was served"
        # Free a slot: the waiting client is now served, nothing was dropped.
        first.close()
        response = recv_response_or_close(third, timeout_s=10.0)
        assert response is not None and correlation_of(response) == 9
    finally:
        for s in (first, second, third):
            if s is not None:
                s.close()
