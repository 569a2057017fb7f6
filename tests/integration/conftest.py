"""Fixtures that run the real `sluice` binary for black-box tests.

The binary comes from $SLUICE_BIN (set by scripts/test.sh), else
target/release/sluice, else target/debug/sluice. The Broker class lives in harness.py. Each test gets its own broker
on a fresh temp data dir and free ports; the broker's stderr goes to a file in
that dir and its tail is attached to the report of any failing test.
"""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Broker, BrokerFactory, sluice_bin  # noqa: E402
from util import unique_topic  # noqa: E402

TEST_TIMEOUT_S = 240  # see harness.py for the broker-side time limits


@pytest.fixture
def broker_factory(tmp_path):
    factory = BrokerFactory(tmp_path)
    yield factory
    factory.close()


@pytest.fixture
def broker(broker_factory) -> Broker:
    """A fresh broker on an empty data dir, stopped at teardown."""
    return broker_factory.new()


@pytest.fixture
def topic_name(request) -> str:
    return unique_topic(request.node.name)


@pytest.fixture(autouse=True)
def _per_test_deadline(request):
    """Turn a hung test into a failure with a traceback instead of a hung CI job.

    A test module whose scenarios need longer sets its own bound in a
    module-level `SCENARIO_TIMEOUT_S`."""
    bound_s = getattr(request.module, "SCENARIO_TIMEOUT_S", TEST_TIMEOUT_S)

    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded {bound_s}s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(bound_s)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        factory = item.funcargs.get("broker_factory") if hasattr(item, "funcargs") else None
        if factory is not None:
            for b in factory.brokers:
                state = "alive" if b.alive() else f"exited {b.proc.returncode if b.proc else '-'}"
                report.sections.append(
                    (f"{b.name} ({state}) stderr tail: {b.log_path}", b.log_tail(80))
                )


class _RepeatFilter(logging.Filter):
    """kafka-python logs the same error once per batch; a failing run would
    attach thousands of identical lines. Keep the first few of each."""

    def __init__(self, keep: int = 3):
        super().__init__()
        self.keep = keep
        self.seen: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        key = re.sub(r"\d+", "#", msg)[:300]  # client ids and counters differ
        self.seen[key] = self.seen.get(key, 0) + 1
        return self.seen[key] <= self.keep


@pytest.fixture(autouse=True)
def _dedupe_kafka_python_logs():
    f = _RepeatFilter()
    loggers = [logging.getLogger(n) for n in ("kafka.producer.sender", "kafka.producer.transaction_manager",
                                               "kafka.conn", "kafka.net")]
    for lg in loggers:
        lg.addFilter(f)
    yield
    for lg in loggers:
        lg.removeFilter(f)


def _client_versions() -> list[str]:
    lines = [f"sluice binary: {sluice_bin()}"]
    try:
        out = subprocess.run(["kcat", "-V"], capture_output=True, text=True, timeout=10)
        first = [l for l in (out.stdout + out.stderr).splitlines() if l.startswith("Version")]
        lines.append(f"kcat: {first[0] if first else 'unknown'}")
    except (OSError, subprocess.TimeoutExpired) as e:
        lines.append(f"kcat: unavailable ({e})")
    try:
        import confluent_kafka

        ver, lib = confluent_kafka.version(), confluent_kafka.libversion()
        ver = ver[0] if isinstance(ver, tuple) else ver
        lib = lib[0] if isinstance(lib, tuple) else lib
        lines.append(f"confluent-kafka: {ver}, librdkafka {lib}")
    except ImportError as e:
        lines.append(f"confluent-kafka: unavailable ({e})")
    try:
        import kafka

        lines.append(f"kafka-python: {kafka.__version__}")
    except ImportError as e:
        lines.append(f"kafka-python: unavailable ({e})")
    return lines


def pytest_sessionstart(session):
    # Written through the terminal reporter so it shows even under -q, and the
    # CI log records exactly which client versions were proven.
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    for line in _client_versions():
        if tr is not None:
            tr.write_line(f"[versions] {line}")
        else:
            print(f"[versions] {line}", file=sys.stderr)


# Suites that measure time or rates, cut networks, fill disks, start clusters
# or load both cores: scripts/test.sh runs them alone (`-m serial`) after the
# rest has run several at a time under pytest-xdist (`-m "not serial"`), so
# other tests' load cannot skew what they measure.
SERIAL_SUITES = {
    "test_replication.py",  # network namespaces, failover timing
    "test_balance.py",  # clusters, balancer timing
    "test_throttle.py",  # replication byte rates
    "test_quota.py",  # client byte rates
    "test_cluster.py",  # three-node clusters
    "test_cluster_security.py",  # three-node clusters over TLS
    "test_reassignment.py",  # clusters, throttled moves
    "test_durability.py",  # kill -9 under load
    "test_many_partitions.py",  # 10,000 partitions
    "test_connection_limits.py",  # process-wide file and connection limits
    "test_full_disk.py",  # a full filesystem
    "test_lifecycle.py",  # signals and shutdown deadlines
    "test_console_browser.py",  # chromium
}


def pytest_configure(config):
    config.addinivalue_line("markers", "serial: run alone, not beside other tests (see SERIAL_SUITES)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SERIAL_SUITES:
            item.add_marker(pytest.mark.serial)
