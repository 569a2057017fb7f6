"""Issue 3, proof 8: process lifecycle and config validation of `sluice serve`."""

from __future__ import annotations

import signal
import subprocess

import pytest

from clients import ADMIN_TIMEOUT_S, confluent_admin, confluent_create_topic, confluent_partition_count
from harness import Broker, sluice_bin
from util import unique_topic

EXIT_TIMEOUT_S = 20


def _run_to_exit(broker: Broker) -> subprocess.CompletedProcess:
    """Run a broker command that is expected to exit by itself."""
    assert broker.bin.exists(), f"sluice binary not found at {broker.bin}"
    try:
        return subprocess.run(broker.command(), capture_output=True, text=True, timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"`sluice serve` kept running for {EXIT_TIMEOUT_S}s instead of exiting\n{e.stderr}"
        ) from None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_signal_exits_zero(broker, sig):
    confluent_create_topic(broker.bootstrap, unique_topic("before-shutdown"), 1)
    code = broker.signal_and_wait(sig)
    assert code == 0, f"exit code {code} after {sig.name}\n{broker.log_tail()}"


def test_second_broker_on_same_data_dir_exits_nonzero_mentioning_the_lock(broker_factory):
    first = broker_factory.new()
    t = unique_topic("owned-by-first")
    confluent_create_topic(first.bootstrap, t, 2)

    second = Broker(first.workdir, name="second")  # same data dir, its own ports
    res = _run_to_exit(second)
    assert res.returncode != 0, f"second broker on the same data dir exited 0\n{res.stderr[-2000:]}"
    assert "lock" in (res.stderr + res.stdout).lower(), f"exit message does not mention the lock:\n{res.stderr[-2000:]}"

    # The first broker is untouched and still owns its data.
    assert first.alive()
    assert confluent_partition_count(first.bootstrap, t) == 2


@pytest.mark.parametrize(
    "key,value",
    [
        ("log.segment_bytes", "banana"),
        ("topics.num_partitions", "-3"),
        ("topics.auto_create", "maybe"),
        ("limits.socket_request_max_bytes", "lots"),
    ],
)
def test_bad_config_value_on_command_line_exits_nonzero_naming_the_key(tmp_path, key, value):
    b = Broker(tmp_path, extra_args=["--set", f"{key}={value}"])
    res = _run_to_exit(b)
    assert res.returncode != 0, f"--set {key}={value} was accepted\n{res.stderr[-2000:]}"
    assert key in res.stderr, f"error does not name `{key}`:\n{res.stderr[-2000:]}"


def test_bad_config_value_in_toml_file_exits_nonzero_naming_the_key(tmp_path):
    cfg = tmp_path / "sluice.toml"
    cfg.write_text('[log]\nsegment_bytes = "banana"\n')
    b = Broker(tmp_path, extra_args=["--config", str(cfg)])
    res = _run_to_exit(b)
    assert res.returncode != 0, f"bad TOML config was accepted\n{res.stderr[-2000:]}"
    assert "log.segment_bytes" in res.stderr, f"error does not name `log.segment_bytes`:\n{res.stderr[-2000:]}"


def test_config_file_and_set_override_are_applied(broker_factory, tmp_path):
    cfg = tmp_path / "sluice.toml"
    cfg.write_text("[topics]\nauto_create = true\nnum_partitions = 2\n")
    b = broker_factory.new(extra_args=["--config", str(cfg), "--set", "topics.num_partitions=4"])
    # Auto-create by producing to an unknown topic; --set beats the file.
    from confluent_kafka import Producer

    t = unique_topic("auto")
    p = Producer({"bootstrap.servers": b.bootstrap, "message.timeout.ms": 15000})
    p.produce(t, b"v")
    assert p.flush(20) == 0
    assert confluent_partition_count(b.bootstrap, t) == 4


def test_auto_create_disabled_refuses_unknown_topic(broker_factory):
    from confluent_kafka import KafkaError, Producer

    b = broker_factory.new(extra_args=["--set", "topics.auto_create=false"])
    t = unique_topic("no-auto")
    errors = []
    p = Producer({"bootstrap.servers": b.bootstrap, "message.timeout.ms": 5000})
    p.produce(t, b"v", on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert errors and errors[0] is not None, "produce to an unknown topic succeeded with auto_create=false"
    assert errors[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._MSG_TIMED_OUT)
    md = confluent_admin(b.bootstrap).list_topics(timeout=ADMIN_TIMEOUT_S)
    assert t not in md.topics


def test_binary_is_present():
    """Makes a missing build an obvious single failure in the CI log."""
    assert sluice_bin().exists(), f"sluice binary not found at {sluice_bin()}; run `cargo build -p sluice`"
