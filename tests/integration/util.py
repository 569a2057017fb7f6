"""Shared helpers for the integration suite: test data, byte-exact comparison,
bounded waits, and hand-rolled Kafka wire framing for the hostile-input tests.

Nothing here knows about a particular Kafka client; the client adapters live in
`clients.py`. Every wait in this module has a deadline so a broken broker
fails a test instead of hanging it.
"""

from __future__ import annotations

import dataclasses
import random
import re
import os
import socket
import struct
import time
import uuid

# --------------------------------------------------------------------------
# Time and names
# --------------------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def unique_topic(prefix: str = "it") -> str:
    """A topic name no other test (or earlier run on the same data dir) uses."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", prefix)[:80]
    return f"{safe}-{uuid.uuid4().hex[:10]}"


# Every port free_port() has returned in this process. The kernel may hand
# the same just-released port to two calls in a row (a broker's Kafka and
# HTTP listeners once got one port between them), so none is returned twice.
_ports_given: set[int] = set()


# Under pytest-xdist each worker takes its ports from its own block below the
# kernel's ephemeral range (32768+ on Linux), so two workers never race for
# one port and no client's outgoing connection holds one a broker wants.
_XDIST_PORT_BASE = 10000
_XDIST_PORTS_PER_WORKER = 4000


def _worker_index() -> int | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        return int(worker[2:])
    return None


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port free right now, never one returned before in this process;
    the broker binds it right after."""
    worker = _worker_index()
    if worker is not None and worker < 5:
        base = _XDIST_PORT_BASE + worker * _XDIST_PORTS_PER_WORKER
        for port in range(base, base + _XDIST_PORTS_PER_WORKER):
            if port not in _ports_given and _bindable(port):
                _ports_given.add(port)
                return port
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------

Header = tuple[str, bytes]


@dataclasses.dataclass(frozen=True)
class Rec:
    """One record as a client sees it: what we send and what we expect back."""

    partition: int
    key: bytes
    value: bytes
    headers: tuple[Header, ...]
    timestamp_ms: int


# Printable ASCII without the characters kcat uses as delimiters in our
# command lines and output format (":" key delimiter, tab/newline, "," and "="
# in the %h header rendering).
_KCAT_SAFE = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    "!#$%&()*+-./;<>?@[]^_{|}~ "
)

# Headers kcat attaches to every record: kcat -H is per run, not per record.
# The repeated "h" key checks that headers are a list, not a map.
KCAT_HEADERS: tuple[Header, ...] = (("h", b"one"), ("h", b"two"), ("trace", b"kcat"))


def make_records(
    count: int,
    partitions: int,
    *,
    seed: int,
    value_bytes: int = 100,
    printable: bool = False,
    base_ts_ms: int | None = None,
) -> list[Rec]:
    """Deterministic records spread round-robin over `partitions`.

    Binary mode puts every byte value (including NUL and 0xff) in values and
    header values. Printable mode is for kcat, which moves records through text.
    Timestamps strictly increase by 1 ms per record, starting an hour ago so
    default retention never touches them.
    """
    rng = random.Random(seed)
    if base_ts_ms is None:
        base_ts_ms = now_ms() - 3_600_000
    out = []
    for i in range(count):
        p = i % partitions
        key = f"key-{p}-{i:07d}".encode()
        if printable:
            value = "".join(rng.choice(_KCAT_SAFE) for _ in range(value_bytes)).encode()
            headers = KCAT_HEADERS
        else:
            value = rng.randbytes(value_bytes)
            headers = (
                ("h", b"first-" + rng.randbytes(6)),
                ("h", b"second-" + rng.randbytes(3)),
                ("trace-id", str(i).encode()),
                ("empty", b""),
            )
        out.append(Rec(p, key, value, headers, base_ts_ms + i))
    return out


def by_partition(records: list[Rec]) -> dict[int, list[Rec]]:
    out: dict[int, list[Rec]] = {}
    for r in records:
        out.setdefault(r.partition, []).append(r)
    return out


def _describe(r: Rec | None) -> str:
    if r is None:
        return "<missing>"
    return (
        f"Rec(p={r.partition}, key={r.key[:40]!r}, value={r.value[:40]!r}.. "
        f"({len(r.value)} B), headers={list(r.headers)!r}, ts={r.timestamp_ms})"
    )


def assert_partition_equal(
    partition: int, expected: list[Rec], actual: list[Rec], *, check_timestamps: bool = True
) -> None:
    """Every byte of key/value/headers (ordered) and the order within the
    partition must match. Reports the first mismatch, not 10,000 lines."""
    for i, (e, a) in enumerate(zip(expected, actual)):
        same = (
            e.key == a.key
            and e.value == a.value
            and tuple(e.headers) == tuple(a.headers)
            and (not check_timestamps or e.timestamp_ms == a.timestamp_ms)
        )
        if not same:
            raise AssertionError(
                f"partition {partition} offset {i}: record differs\n"
                f"  sent: {_describe(e)}\n  got:  {_describe(a)}"
            )
    if len(expected) != len(actual):
        extra = actual[len(expected)] if len(actual) > len(expected) else None
        raise AssertionError(
            f"partition {partition}: sent {len(expected)} records, read back {len(actual)}; "
            f"first unmatched: sent {_describe(expected[len(actual)] if len(expected) > len(actual) else None)}"
            f" got {_describe(extra)}"
        )


def assert_all_partitions_equal(
    sent: list[Rec], read: dict[int, list[Rec]], partitions: int, **kw
) -> None:
    expected = by_partition(sent)
    for p in range(partitions):
        assert_partition_equal(p, expected.get(p, []), read.get(p, []), **kw)


# --------------------------------------------------------------------------
# Bounded waiting
# --------------------------------------------------------------------------


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.05):
    """Poll an external observable (a port, a file, a process) until a deadline.

    Used only where the broker offers no event to wait on; it never stands in
    for a fixed sleep because it returns the moment the condition holds.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def read_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


# --------------------------------------------------------------------------
# Kafka wire primitives (hand-rolled on purpose: the hostile tests must send
# bytes no well-behaved client library would produce).
# --------------------------------------------------------------------------


def _crc32c_table() -> list[int]:
    poly = 0x82F63B78  # Castagnoli, reflected
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C as used by record batch v2 (check value for b"123456789": 0xE3069283)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def kstring(s: str | None) -> bytes:
    """Kafka STRING / NULLABLE_STRING (int16 length)."""
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def kbytes(b: bytes) -> bytes:
    """Kafka BYTES (int32 length)."""
    return i32(len(b)) + b


def uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint(v: int) -> bytes:
    """Zig-zag signed varint (record fields); works for varlong too."""
    return uvarint((v << 1) ^ (v >> 63))


def request_header_v1(api_key: int, api_version: int, correlation_id: int, client_id: str = "sluice-it") -> bytes:
    return i16(api_key) + i16(api_version) + i32(correlation_id) + kstring(client_id)


def request_header_v2(api_key: int, api_version: int, correlation_id: int, client_id: str = "sluice-it") -> bytes:
    # v2 = v1 + empty tagged-field section
    return request_header_v1(api_key, api_version, correlation_id, client_id) + b"\x00"


def frame(payload: bytes) -> bytes:
    return i32(len(payload)) + payload


def build_record_batch(
    records: list[tuple[bytes | None, bytes | None, list[Header]]],
    *,
    base_ts_ms: int,
    base_offset: int = 0,
    ts_deltas: list[int] | None = None,
) -> bytes:
    """An uncompressed magic-2 record batch, exactly as the spec lays it out.

    Record i has timestamp base_ts_ms + ts_deltas[i] (default: + i)."""
    deltas = list(range(len(records))) if ts_deltas is None else ts_deltas
    assert len(deltas) == len(records)
    body = bytearray()
    for i, (key, value, headers) in enumerate(records):
        r = bytearray()
        r += i8(0)  # record attributes
        r += varint(deltas[i])  # timestamp delta
        r += varint(i)  # offset delta
        r += varint(-1) if key is None else varint(len(key)) + key
        r += varint(-1) if value is None else varint(len(value)) + value
        r += varint(len(headers))
        for hk, hv in headers:
            hkb = hk.encode()
            r += varint(len(hkb)) + hkb + varint(len(hv)) + hv
        body += varint(len(r)) + r
    n = len(records)
    after_crc = (
        i16(0)  # attributes: no compression, CreateTime, not transactional
        + i32(n - 1)  # lastOffsetDelta
        + i64(base_ts_ms)
        + i64(base_ts_ms + max(deltas, default=-1))  # maxTimestamp
        + i64(-1)  # producerId
        + i16(-1)  # producerEpoch
        + i32(-1)  # baseSequence
        + i32(n)
        + bytes(body)
    )
    batch_length = 4 + 1 + 4 + len(after_crc)  # leader epoch + magic + crc + rest
    return (
        i64(base_offset)
        + i32(batch_length)
        + i32(-1)  # partitionLeaderEpoch
        + i8(2)  # magic
        + struct.pack(">I", crc32c(after_crc))
        + after_crc
    )


def produce_v3_request(correlation_id: int, topic: str, partition: int, batch: bytes, acks: int = -1) -> bytes:
    body = (
        kstring(None)  # transactional_id
        + i16(acks)
        + i32(10_000)  # timeout_ms
        + i32(1)
        + kstring(topic)
        + i32(1)
        + i32(partition)
        + kbytes(batch)
    )
    return frame(request_header_v1(0, 3, correlation_id) + body)


class Reader:
    """Cursor over a response body; raises if the broker sent too few bytes."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise AssertionError(
                f"response truncated: need {n} bytes at {self.pos}, have {len(self.data) - self.pos}"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def i16(self) -> int:
        return struct.unpack(">h", self.take(2))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def i64(self) -> int:
        return struct.unpack(">q", self.take(8))[0]

    def string(self) -> str | None:
        n = self.i16()
        return None if n < 0 else self.take(n).decode()


def parse_produce_v3_response(body: bytes) -> list[tuple[str, int, int, int]]:
    """-> [(topic, partition, error_code, base_offset)]"""
    r = Reader(body)
    out = []
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            partition, err, base_offset, _log_append = r.i32(), r.i16(), r.i64(), r.i64()
            out.append((name, partition, err, base_offset))
    r.i32()  # throttle_time_ms
    return out


def connect(port: int, timeout_s: float = 5.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    s.settimeout(timeout_s)
    return s


def recv_response_or_close(sock: socket.socket, timeout_s: float = 10.0) -> bytes | None:
    """One response frame (correlation id onwards), or None if the broker
    closed the connection. Fails if it did neither within the deadline: a
    connection the broker neither answers nor drops is a leaked resource."""
    deadline = time.monotonic() + timeout_s
    buf = bytearray()

    def need(n: int) -> bool:
        while len(buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"broker neither answered nor closed the connection within {timeout_s}s "
                    f"(got {len(buf)} bytes)"
                )
            sock.settimeout(remaining)
            try:
                # Never read past this frame: pipelined responses follow it.
                chunk = sock.recv(n - len(buf))
            except (ConnectionResetError, BrokenPipeError):
                return False
            except socket.timeout:
                continue
            if not chunk:
                return False
            buf.extend(chunk)
        return True

    if not need(4):
        return None
    (size,) = struct.unpack(">i", bytes(buf[:4]))
    assert 0 <= size < 64 * 1024 * 1024, f"absurd response size {size}"
    if not need(4 + size):
        raise AssertionError(f"broker closed mid-response ({len(buf) - 4}/{size} bytes)")
    return bytes(buf[4 : 4 + size])


def send_all_tolerant(sock: socket.socket, data: bytes) -> bool:
    """Send, treating a reset/closed connection as the broker having dropped us
    (a legitimate answer to garbage). Returns False if the send was cut off."""
    try:
        sock.sendall(data)
        return True
    except (ConnectionResetError, BrokenPipeError):
        return False
