"""A full disk: the broker runs on a size-limited tmpfs that the test fills.

Mounting needs root; these tests run as root here and in CI, and a failed
mount fails them loudly rather than skipping. Covers: a partition that
cannot write goes offline (Metadata, /ready, /health say so), writes come
back once space is freed without a restart and without keeping anything a
failed write left behind, the broker log names the outage once rather than
every second, and a broker whose disk is full starts read-only, serves
reads, and lets an operator delete a topic to make room.
"""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from clients import confluent_admin
from http_client import Http
from util import (
    Reader,
    build_record_batch,
    connect,
    now_ms,
    parse_produce_v3_response,
    produce_v3_request,
    recv_response_or_close,
    wait_until,
)

# Big enough for the broker's files plus a few MiB of data, small enough to
# fill in a moment.
TMPFS_SIZE = "24m"
# More than a page, so a write on a full tmpfs cannot land in the slack of
# an already allocated page.
BIG_VALUE_BYTES = 64 * 1024
KAFKA_STORAGE_ERROR = 56
# The broker retries offline logs every 2 s; writes must come back well
# within this once space is freed.
RECOVERY_TIMEOUT_S = 30.0
# One error line when the partition goes offline (the failed write), one
# "partition is offline" line, and the produce handler's line for the
# request that hit the failure. Anything repeating per retry or per second
# would pass this quickly.
MAX_ERROR_LINES_PER_OUTAGE = 3


@pytest.fixture
def tmpfs(tmp_path: Path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, f"mounting a tmpfs failed (these tests need root): {r.stderr}"
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def broker_on(broker_factory, mnt: Path):
    b = broker_factory.new(start=False)
    b.data_dir = mnt / "data"
    b.data_dir.mkdir()
    return b.start()


# tmpfs allocates whole pages.
PAGE_BYTES = 4096


def fill(mnt: Path) -> Path:
    """Writes a filler file until the file system is full."""
    path = mnt / "filler"
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    return path


def produce(broker, topic: str, value: bytes, correlation_id: int = 1) -> tuple[int, int]:
    """One Produce v3 (acks=all) of one record -> (error code, base offset)."""
    batch = build_record_batch([(None, value, [])], base_ts_ms=now_ms())
    with connect(broker.kafka_port) as s:
        s.sendall(produce_v3_request(correlation_id, topic, 0, batch))
        resp = recv_response_or_close(s, timeout_s=30.0)
    assert resp is not None, "broker closed the connection instead of answering"
    assert Reader(resp).i32() == correlation_id
    [(_, _, err, base)] = parse_produce_v3_response(resp[4:])
    return err, base


def partition_metadata(broker, topic: str):
    md = confluent_admin(broker.bootstrap).list_topics(topic=topic, timeout=10)
    return md.topics[topic].partitions[0]


def values(http: Http, topic: str) -> list[str]:
    body = http.get(f"/v1/topics/{topic}/partitions/0/records?offset=0&limit=1000")
    return [r["value"] for r in body["records"]]


def error_lines(broker, topic: str) -> list[str]:
    return [l for l in broker.log_text().splitlines() if "ERROR" in l and topic in l]


def test_a_full_disk_takes_the_partition_offline_and_writes_resume_when_space_returns(
    broker_factory, tmpfs
):
    broker = broker_on(broker_factory, tmpfs)
    http = Http(broker)
    http.wait_ready()
    topic = "fills"
    http.create_topic(topic)
    for i in range(5):
        assert produce(broker, topic, f"before-{i}".encode()) == (0, i)

    filler = fill(tmpfs)
    err, _ = produce(broker, topic, b"x" * BIG_VALUE_BYTES)
    assert err == KAFKA_STORAGE_ERROR

    # Offline, and says so: Metadata like Kafka for an offline log dir,
    # readiness fails, health lists the partition.
    p = partition_metadata(broker, topic)
    assert p.leader == -1, p
    assert p.error is not None and p.error.code() == KafkaError.LEADER_NOT_AVAILABLE, p.error
    status, body = http.call("GET", "/ready")
    assert status == 503 and body["error_code"] == "LOGS_OFFLINE", (status, body)
    health = http.get("/health")
    assert health["status"] == "degraded" and f"{topic}-0" in health["offline_partitions"], health
    # Reads of what was acknowledged keep working.
    assert values(http, topic) == [f"before-{i}" for i in range(5)]
    # Still offline while the disk is full: retries do not bring it back.
    assert produce(broker, topic, b"y" * BIG_VALUE_BYTES)[0] == KAFKA_STORAGE_ERROR

    filler.unlink()

    def writable():
        return produce(broker, topic, b"after")[0] == 0

    wait_until(writable, RECOVERY_TIMEOUT_S, "writes to resume after space was freed")
    http.wait_ready()
    p = partition_metadata(broker, topic)
    assert p.leader == 1 and p.error is None, (p.leader, p.error)
    assert http.get("/health") == {"status": "ok"}
    # Nothing the failed writes left in the page cache survived the reopen.
    got = values(http, topic)
    assert got[:5] == [f"before-{i}" for i in range(5)]
    assert set(got[5:]) == {"after"}, got

    lines = error_lines(broker, topic)
    assert len(lines) <= MAX_ERROR_LINES_PER_OUTAGE, "\n".join(lines)
    assert "back online" in broker.log_text()
    assert broker.stop() == 0


def test_a_broker_on_a_full_disk_starts_read_only_and_deleting_a_topic_brings_writes_back(
    broker_factory, tmpfs
):
    broker = broker_on(broker_factory, tmpfs)
    http = Http(broker)
    http.wait_ready()
    http.create_topic("keep")
    http.create_topic("big")
    for i in range(3):
        assert produce(broker, "keep", f"kept-{i}".encode())[0] == 0
    for i in range(40):
        assert produce(broker, "big", b"b" * BIG_VALUE_BYTES, correlation_id=i + 1)[0] == 0
    # A crash, so recovery has checkpoints to write at the next start.
    broker.kill9()
    fill(tmpfs)

    broker.start()  # waits for the Kafka port: the broker must come up
    # Read-only: reads work, writes are refused, readiness says why.
    assert values(http, "keep") == [f"kept-{i}" for i in range(3)]
    # Larger than a page: a few bytes could still land in the slack of the
    # segment's last allocated page, and whether `keep-0` opened read-only
    # depends on whether its recovery had a checkpoint to write (they are
    # written at most once a minute), so only a write needing new space is
    # sure to meet the full disk.
    assert produce(broker, "keep", b"r" * 3 * PAGE_BYTES)[0] == KAFKA_STORAGE_ERROR
    status, body = http.call("GET", "/ready")
    assert status == 503, (status, body)

    # The operator deletes a topic through the API; that frees the space.
    status, body = http.call("DELETE", "/v1/topics/big")
    assert status == 204, (status, body)
    assert not (broker.data_dir / "big-0").exists()

    def writable():
        return produce(broker, "keep", b"after")[0] == 0

    wait_until(writable, RECOVERY_TIMEOUT_S, "writes to resume after the topic was deleted")
    http.wait_ready()
    got = values(http, "keep")
    assert got[:3] == [f"kept-{i}" for i in range(3)]
    assert set(got[3:]) == {"after"}, got
    assert broker.stop() == 0


def test_a_create_topics_that_fails_on_a_full_disk_leaves_nothing_behind(broker_factory, tmpfs):
    from confluent_kafka.admin import NewTopic

    broker = broker_on(broker_factory, tmpfs)
    http = Http(broker)
    http.wait_ready()
    http.create_topic("before")
    filler = fill(tmpfs)

    admin = confluent_admin(broker.bootstrap)
    futures = admin.create_topics([NewTopic("doomed", num_partitions=3, replication_factor=1)])
    with pytest.raises(Exception) as ei:
        futures["doomed"].result(timeout=30)
    assert "STORAGE" in str(ei.value).upper(), ei.value
    assert not list(broker.data_dir.glob("doomed-*")), list(broker.data_dir.glob("doomed-*"))
    md = admin.list_topics(timeout=10)
    assert "doomed" not in md.topics or md.topics["doomed"].error is not None, md.topics.get("doomed")
    assert http.call("GET", "/v1/topics/doomed")[0] == 404

    filler.unlink()

    # Once there is room the same name can be created: nothing collides.
    def created():
        f = admin.create_topics([NewTopic("doomed", num_partitions=3, replication_factor=1)])
        try:
            f["doomed"].result(timeout=30)
            return True
        except Exception:
            return False

    wait_until(created, RECOVERY_TIMEOUT_S, "the topic to be creatable once space returned")
    assert sorted(p.name for p in broker.data_dir.glob("doomed-*")) == ["doomed-0", "doomed-1", "doomed-2"]
    assert produce(broker, "doomed", b"ok")[0] == 0
    assert broker.stop() == 0


def test_shutdown_exits_non_zero_when_the_final_flush_fails(broker_factory, tmpfs):
    broker = broker_on(broker_factory, tmpfs)
    http = Http(broker)
    http.wait_ready()
    http.create_topic("lost")
    assert produce(broker, "lost", b"kept")[0] == 0
    fill(tmpfs)
    assert produce(broker, "lost", b"x" * BIG_VALUE_BYTES)[0] == KAFKA_STORAGE_ERROR
    # The partition is offline, so its final flush cannot succeed: a clean
    # exit code would tell a supervisor that everything was made durable.
    code = broker.stop(check=False)
    assert code != 0, "shutdown with an unflushable log exited 0"
    assert "final flush at shutdown failed" in broker.log_text()
