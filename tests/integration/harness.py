"""The `sluice serve` process as a test object: start, readiness, signals,
restart on the same data dir, log capture. Used by conftest.py fixtures and
by tests that need a broker they drive by hand (lifecycle tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

from util import free_port, read_rss_kb, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]

# A started broker must accept TCP on its Kafka port within this long; a debug
# build on a loaded 2-core CI box starts in well under a second.
READY_TIMEOUT_S = 30.0
# SIGTERM must finish a clean shutdown within this long.
STOP_TIMEOUT_S = 20.0


def sluice_bin() -> Path:
    env = os.environ.get("SLUICE_BIN")
    if env:
        return Path(env)
    release = REPO_ROOT / "target" / "release" / "sluice"
    if release.exists():
        return release
    return REPO_ROOT / "target" / "debug" / "sluice"


class BrokerExited(AssertionError):
    pass


class Broker:
    """One `sluice serve` process. Restartable on the same data dir and ports,
    so clients configured with `bootstrap` keep working across restarts."""

    def __init__(self, workdir: Path, *, extra_args: list[str] | None = None, name: str = "broker"):
        self.bin = sluice_bin()
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.extra_args = list(extra_args or [])
        self.kafka_port = free_port()
        self.http_port = free_port()
        self.registry_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / f"{name}.stderr.log"
        self._log_file = None
        self.starts = 0

    # -- process control ----------------------------------------------------

    def command(self) -> list[str]:
        return [
            str(self.bin),
            "serve",
            "--data-dir", str(self.data_dir),
            "--kafka-listener", f"127.0.0.1:{self.kafka_port}",
            "--http-listener", f"127.0.0.1:{self.http_port}",
            "--schema-registry-listener", f"127.0.0.1:{self.registry_port}",
            "--node-id", "1",
            *self.extra_args,
        ]

    def start(self) -> "Broker":
        if not self.bin.exists():
            raise AssertionError(
                f"sluice binary not found at {self.bin}; build it with `cargo build -p sluice` "
                f"or set SLUICE_BIN"
            )
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.starts += 1
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"\n===== start #{self.starts}: {' '.join(self.command())}\n".encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
            start_new_session=True,  # a Ctrl-C on pytest must not hit the broker first
        )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        def accepting() -> bool:
            code = self.proc.poll()
            if code is not None:
                raise BrokerExited(
                    f"broker exited with code {code} before accepting connections\n"
                    f"--- log tail ---\n{self.log_tail()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.kafka_port), timeout=0.2):
                    return True
            except OSError:
                return False

        try:
            wait_until(accepting, READY_TIMEOUT_S, f"kafka port {self.kafka_port} to accept")
        except BrokerExited:
            raise
        except AssertionError as e:
            self.kill9()
            raise AssertionError(f"{e}\n--- log tail ---\n{self.log_tail()}") from None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_kb(self) -> int:
        return read_rss_kb(self.pid)

    def signal_and_wait(self, sig: int, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Send `sig`, wait for exit, return the exit code. SIGKILLs and fails
        if the broker ignores the signal past the deadline."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self._close_log()
            raise AssertionError(
                f"broker did not exit within {timeout_s}s of signal {sig}\n"
                f"--- log tail ---\n{self.log_tail()}"
            ) from None
        self._close_log()
        return code

    def stop(self, *, check: bool = True) -> int:
        """Clean shutdown via SIGTERM; by default asserts exit code 0."""
        if not self.alive():
            return self.proc.returncode if self.proc else 0
        code = self.signal_and_wait(signal.SIGTERM)
        if check:
            assert code == 0, f"SIGTERM shutdown exited {code}\n--- log tail ---\n{self.log_tail()}"
        return code

    def kill9(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close_log()

    def restart(self) -> "Broker":
        """Clean stop (exit 0 asserted) and start again on the same data dir."""
        self.stop()
        return self.start()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # -- client-facing ----------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class BrokerFactory:
    """Creates brokers for one test and tears every one of them down."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.brokers: list[Broker] = []

    def new(self, *, extra_args: list[str] | None = None, start: bool = True, name: str | None = None) -> Broker:
        name = name or f"broker{len(self.brokers) + 1}"
        b = Broker(self.tmp_path / name, extra_args=extra_args, name=name)
        self.brokers.append(b)
        return b.start() if start else b

    def close(self) -> None:
        for b in self.brokers:
            if b.alive():
                try:
                    b.stop(check=False)
                except AssertionError:
                    pass  # signal_and_wait already SIGKILLed it; the test reports the failure
            b._close_log()
