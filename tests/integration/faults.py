"""Fault-injection harness for replication (issue 13): a cluster of real
`sluice serve` processes, optionally each in its own network namespace,
faults (kill -9, SIGTERM, network partitions), a workload of real clients
that records a history, and a checker over that history.

The pieces, top to bottom:
- `Node` / `Cluster`: start N nodes (127.0.0.1 with free ports, or one
  network namespace per node), kill, terminate, restart, wait until ready,
  ask the HTTP API who leads a partition and who is in sync.
- `Netns`: one namespace and veth pair per node, routed through the root
  namespace; `isolate(i)` cuts node i off from the other nodes (clients in
  the root namespace still reach it), `disconnect(i)` cuts it off from
  everyone.
- `History`, `ProducerWorker`, `GroupConsumerWorker`, `PinnedProducer`,
  `EosPipeline`, `read_partitions`: the workload and what it saw.
- `check_*`: pure functions over a history, each returning the list of
  violations of one rule (empty when the rule holds).
- `run_*`: the scenarios, shared by tests/integration/test_replication.py
  (CI bounds) and scripts/soak_replication.py (longer soaks). Each returns
  a report with its violations instead of asserting, so a soak can print
  every violation of every round.

Every wait has a deadline; every process is killed at teardown, and every
namespace and link removed, even when a test fails. Node logs stay in the
cluster's work dir (pytest keeps the tmp dirs of its last runs).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from harness import sluice_bin
from util import (
    build_record_batch, frame, free_port, i16, i32, kbytes, kstring, now_ms, parse_produce_v3_response,
    request_header_v1,
)

# --------------------------------------------------------------------------
# Bounds (each says why it exists)
# --------------------------------------------------------------------------

# A node must accept Kafka connections and list itself unfenced this long
# after start: start-up, joining the quorum and catching up the metadata take
# a few seconds on a loaded 2-core box.
READY_TIMEOUT_S = 45.0
# SIGTERM (controlled shutdown: leadership moves away first) must end the
# process within this long; past it the node is SIGKILLed and that is a failure.
TERMINATE_TIMEOUT_S = 30.0
# A partition's ISR must be full again (a restarted follower caught up) within
# this long: a few seconds of data at the workload's rate.
ISR_TIMEOUT_S = 45.0
# The issue's promise: the next acknowledged produce within 5 s of a leader kill.
FAILOVER_BOUND_S = 5.0
# How long a scenario waits for that next ack before recording "never" (so
# the report shows how far over the bound a slow failover was).
FAILOVER_WAIT_S = 20.0
# HTTP calls to a node: a node that is down or cut off must not stall a wait.
HTTP_TIMEOUT_S = 3.0
# Admin requests (CreateTopics) while a controller may be changing.
ADMIN_TIMEOUT_S = 30.0
# Reading a whole topic back after the faults.
READ_TIMEOUT_S = 60.0
# A producer's final flush when the workload stops.
FLUSH_TIMEOUT_S = 60.0

# Broker settings for the scenarios: none. The 5 s failover bound must hold
# with Sluice's defaults (a 3 s broker session, 500 ms heartbeats), not
# with settings tuned for the test.
FAST_FAILOVER: dict = {}

# Error names (librdkafka's `KafkaError.name()`) a client may see during a
# fault and recover from by retrying. Kafka's RetriableException subclasses,
# plus librdkafka's local transport/timeout conditions. Anything else seen by
# a producer or consumer during a rolling restart is a violation.
RETRIABLE = frozenset({
    "_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_TIMED_OUT_QUEUE", "_RESOLVE",
    "_WAIT_COORD", "_NO_OFFSET", "_OUTDATED", "_IN_PROGRESS", "_PREV_IN_PROGRESS",
    "_UNKNOWN_PARTITION", "_UNKNOWN_TOPIC",
    "UNKNOWN_TOPIC_OR_PART", "LEADER_NOT_AVAILABLE", "NOT_LEADER_FOR_PARTITION",
    "REQUEST_TIMED_OUT", "NETWORK_EXCEPTION", "COORDINATOR_LOAD_IN_PROGRESS",
    "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR", "NOT_ENOUGH_REPLICAS",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "KAFKA_STORAGE_ERROR", "FENCED_LEADER_EPOCH",
    "UNKNOWN_LEADER_EPOCH", "OFFSET_NOT_AVAILABLE", "CONCURRENT_TRANSACTIONS",
    "UNSTABLE_OFFSET_COMMIT", "ELIGIBLE_LEADERS_NOT_AVAILABLE", "FETCH_SESSION_ID_NOT_FOUND",
    "INVALID_FETCH_SESSION_EPOCH", "THROTTLING_QUOTA_EXCEEDED",
    # A group member's commit refused across a rebalance (Java's
    # CommitFailedException): the consumer rejoins and re-reads from the last
    # commit; nothing is lost.
    "REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID", "_ASSIGNMENT_LOST",
})

# Kafka error codes a raw Produce may answer while a leader cannot reach its
# followers (none of them acknowledges the records).
NOT_ACKED_CODES = {6: "NOT_LEADER_OR_FOLLOWER", 7: "REQUEST_TIMED_OUT", 19: "NOT_ENOUGH_REPLICAS",
                   20: "NOT_ENOUGH_REPLICAS_AFTER_APPEND", 74: "FENCED_LEADER_EPOCH"}


class HarnessError(AssertionError):
    """The harness could not do what a scenario asked (a node did not start,
    a wait timed out): the scenario fails with the node logs attached."""


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (no privilege, no `ip`)."""


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.1):
    """Polls an external observable (a port, an HTTP answer) until it holds
    or the deadline passes. Returns the predicate's value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HarnessError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


# --------------------------------------------------------------------------
# Network namespaces
# --------------------------------------------------------------------------


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


def netns_available() -> str | None:
    """None when network namespaces work here, else why not."""
    probe = f"slfp{os.getpid() % 100000}"
    try:
        out = _ip("netns", "add", probe, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run `ip`: {e}"
    if out.returncode != 0:
        return f"`ip netns add` failed (needs root / CAP_SYS_ADMIN): {out.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


class Netns:
    """One network namespace per node, each joined to the root namespace by a
    veth pair: node i has 10.77.B.(4i+2)/30, the root end 10.77.B.(4i+1)/30,
    and a default route through the root namespace, which forwards between
    the nodes (`net.ipv4.ip_forward=1`). B is a /24 no other cluster on this
    machine uses, and every name carries a random tag, so leftovers of a
    crashed run never collide with a new one.

    `isolate(i)` installs blackhole routes between node i and every other
    node (in both namespaces), so the nodes lose each other while clients in
    the root namespace still reach node i: a leader can be cut off from its
    followers and the controller and still be asked to acknowledge writes.
    `disconnect(i)` takes node i's link down: nobody reaches it."""

    PREFIX = "slf"

    def __init__(self, node_ids: Iterable[int]):
        reason = netns_available()
        if reason:
            raise NetnsUnavailable(reason)
        self.tag = uuid.uuid4().hex[:4]
        self.node_ids = list(node_ids)
        assert max(self.node_ids) < 63, "one /24 holds 63 /30 node links"
        self.block = self._free_block()
        self.isolated: set[int] = set()
        self.created: list[int] = []
        self._forward_was: str | None = None

    @staticmethod
    def _free_block() -> int:
        used = _ip("-4", "-o", "addr").stdout
        free = [b for b in range(1, 255) if f"10.77.{b}." not in used]
        if not free:
            raise NetnsUnavailable("no free 10.77.x.0/24 block")
        return random.choice(free)

    def ns(self, i: int) -> str:
        return f"{self.PREFIX}{self.tag}-n{i}"

    def host_link(self, i: int) -> str:
        return f"{self.PREFIX}{self.tag}h{i}"

    def node_link(self, i: int) -> str:
        return f"{self.PREFIX}{self.tag}n{i}"

    def node_ip(self, i: int) -> str:
        return f"10.77.{self.block}.{4 * i + 2}"

    def root_ip(self, i: int) -> str:
        return f"10.77.{self.block}.{4 * i + 1}"

    def exec_prefix(self, i: int) -> list[str]:
        return ["ip", "netns", "exec", self.ns(i)]

    def setup(self) -> "Netns":
        forward = Path("/proc/sys/net/ipv4/ip_forward")
        self._forward_was = forward.read_text().strip()
        if self._forward_was != "1":
            forward.write_text("1\n")
        try:
            for i in self.node_ids:
                ns, h, n = self.ns(i), self.host_link(i), self.node_link(i)
                _ip("netns", "add", ns)
                self.created.append(i)
                _ip("link", "add", h, "type", "veth", "peer", "name", n)
                _ip("link", "set", n, "netns", ns)
                _ip("addr", "add", f"{self.root_ip(i)}/30", "dev", h)
                _ip("link", "set", h, "up")
                _ip("netns", "exec", ns, "ip", "addr", "add", f"{self.node_ip(i)}/30", "dev", n)
                _ip("netns", "exec", ns, "ip", "link", "set", n, "up")
                _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
                _ip("netns", "exec", ns, "ip", "route", "add", "default", "via", self.root_ip(i))
        except subprocess.CalledProcessError as e:
            self.teardown()
            raise NetnsUnavailable(f"{' '.join(e.cmd)}: {e.stderr.strip()}") from None
        return self

    def _routes(self, i: int, op: str) -> None:
        for j in self.node_ids:
            if j == i:
                continue
            _ip("netns", "exec", self.ns(i), "ip", "route", op, "blackhole", f"{self.node_ip(j)}/32",
                check=op == "add")
            _ip("netns", "exec", self.ns(j), "ip", "route", op, "blackhole", f"{self.node_ip(i)}/32",
                check=op == "add")

    def isolate(self, i: int) -> None:
        """Cut node i off from every other node (not from clients)."""
        assert i not in self.isolated, f"node {i} is already isolated"
        self._routes(i, "add")
        self.isolated.add(i)

    def heal(self, i: int) -> None:
        """Undo `isolate(i)` and `disconnect(i)`."""
        if i in self.isolated:
            self._routes(i, "del")
            self.isolated.discard(i)
        _ip("link", "set", self.host_link(i), "up", check=False)

    def disconnect(self, i: int) -> None:
        """Take node i's link down: neither nodes nor clients reach it."""
        _ip("link", "set", self.host_link(i), "down")

    def teardown(self) -> None:
        for i in self.created:
            _ip("netns", "del", self.ns(i), check=False)
            _ip("link", "del", self.host_link(i), check=False)  # gone with the namespace; belt and braces
        self.created = []
        # Restore forwarding only when no other cluster of ours still needs it.
        if self._forward_was == "0":
            others = [l for l in _ip("netns", "list").stdout.splitlines() if l.startswith(self.PREFIX)]
            if not others:
                Path("/proc/sys/net/ipv4/ip_forward").write_text("0\n")


# --------------------------------------------------------------------------
# Nodes and the cluster
# --------------------------------------------------------------------------


class Node:
    """One `sluice serve` process with a node id, restartable on the same data
    dir and addresses. Its stdout and stderr go to `log_path` (appended on
    every start)."""

    def __init__(self, workdir: Path, node_id: int, host: str, kafka_port: int, http_port: int,
                 controller_port: int, exec_prefix: list[str] | None = None):
        self.node_id = node_id
        self.host = host
        self.kafka_port = kafka_port
        self.http_port = http_port
        self.controller_port = controller_port
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"node{node_id}.log"
        self.exec_prefix = list(exec_prefix or [])
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._log = None

    def __repr__(self) -> str:
        return f"node{self.node_id}"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def controller(self) -> str:
        return f"{self.host}:{self.controller_port}"

    def command(self, voters: str, settings: dict[str, str]) -> list[str]:
        cmd = [
            *self.exec_prefix, str(sluice_bin()), "serve",
            "--data-dir", str(self.data_dir),
            "--kafka-listener", self.bootstrap,
            "--http-listener", f"{self.host}:{self.http_port}",
            "--schema-registry-listener", "",
            "--node-id", str(self.node_id),
            "--set", f"controller_listener={self.controller}",
            "--set", f"cluster.voters={voters}",
        ]
        for k, v in settings.items():
            cmd += ["--set", f"{k}={v}"]
        return cmd

    def launch(self, voters: str, settings: dict[str, str]) -> None:
        """Starts the process without waiting for it to be ready."""
        if not sluice_bin().exists():
            raise HarnessError(f"sluice binary not found at {sluice_bin()}; set SLUICE_BIN")
        assert not self.alive(), f"{self} is already running"
        self.starts += 1
        self._log = open(self.log_path, "ab")
        cmd = self.command(voters, settings)
        self._log.write(f"\n===== start #{self.starts} at {time.strftime('%H:%M:%S')}: {' '.join(cmd)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL and reap: once this returns the process is gone."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=20)
        self._close_log()

    def terminate(self, timeout_s: float = TERMINATE_TIMEOUT_S) -> int:
        """SIGTERM and wait for the exit code; SIGKILL and fail past the bound."""
        if not self.alive():
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise HarnessError(f"{self} did not exit within {timeout_s}s of SIGTERM\n{self.log_tail()}") from None
        self._close_log()
        return code

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return f"--- {self} log tail ({self.log_path}) ---\n" + "\n".join(text.splitlines()[-lines:])

    # -- HTTP ------------------------------------------------------------

    def http(self, method: str, path: str, body=None, timeout_s: float = HTTP_TIMEOUT_S):
        """(status, parsed JSON) from this node's HTTP API, or None if it does
        not answer (down, cut off, starting)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://{self.host}:{self.http_port}{path}", data=data, method=method,
                                     headers={"content-type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as res:
                raw = res.read()
                return res.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, (json.loads(raw) if raw else None)
            except ValueError:
                return e.code, None
        except (OSError, ValueError):
            return None

    def status(self) -> dict | None:
        """/v1/cluster, or None while the node does not answer."""
        got = self.http("GET", "/v1/cluster")
        return got[1] if got and got[0] == 200 else None

    def describe(self, topic: str) -> dict | None:
        """/v1/topics/<topic> as this node sees it: the metadata image's
        leader/ISR/epoch, and this node's own replica's offsets."""
        got = self.http("GET", f"/v1/topics/{topic}")
        return got[1] if got and got[0] == 200 else None


class Cluster:
    """N nodes sharing one metadata quorum. With `netns=True` each node runs
    in its own network namespace (see `Netns`), else all on 127.0.0.1 with
    free ports. `settings` are `--set key=value` for every node."""

    def __init__(self, workdir: Path, size: int = 3, *, netns: bool = False,
                 settings: dict[str, str] | None = None):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.settings = dict(settings or {})
        # The ISR size `wait_isr` waits for by default: every node. Lowered
        # only to exercise the harness against a build that does not
        # replicate yet (its ISR is the leader alone).
        self.expected_isr = size
        self.net: Netns | None = Netns(range(1, size + 1)).setup() if netns else None
        self.nodes: dict[int, Node] = {}
        try:
            for i in range(1, size + 1):
                if self.net:
                    # Own address per namespace: the standard ports are free.
                    node = Node(workdir / f"node{i}", i, self.net.node_ip(i), 9092, 8080, 9093,
                                self.net.exec_prefix(i))
                else:
                    node = Node(workdir / f"node{i}", i, "127.0.0.1", free_port(), free_port(), free_port())
                self.nodes[i] = node
        except BaseException:
            self.stop()
            raise
        self.voters = ",".join(f"{i}@{n.controller}" for i, n in self.nodes.items())

    # -- life cycle --------------------------------------------------------

    def start(self) -> "Cluster":
        try:
            for n in self.nodes.values():
                n.launch(self.voters, self.settings)
            for i in self.nodes:
                self.wait_ready(i)
            # Every node lists every node as a registered, unfenced broker
            # (before the first registration a node lists only itself).
            self.wait_brokers(set(self.nodes))
            if len(self.nodes) == 1:
                # Alone, that self-listing cannot be told from a registration
                # through the HTTP API; the controller's log line can.
                n = next(iter(self.nodes.values()))
                wait_for(lambda: "unfenced broker=" in n.log_path.read_text(errors="replace"),
                         READY_TIMEOUT_S, f"{n} to register and be unfenced")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kills every node (SIGTERM, then SIGKILL past the bound) and removes
        the namespaces. Safe to call twice and on a half-started cluster."""
        for n in self.nodes.values():
            if n.alive():
                try:
                    n.terminate(timeout_s=10)
                except HarnessError:
                    pass  # already SIGKILLed; the scenario's own result stands
            n._close_log()
        if self.net:
            self.net.teardown()

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def node(self, i: int) -> Node:
        return self.nodes[i]

    def alive(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.alive()]

    def bootstrap(self, ids: Iterable[int] | None = None) -> str:
        ids = list(ids) if ids is not None else list(self.nodes)
        return ",".join(self.nodes[i].bootstrap for i in ids)

    def kill9(self, i: int) -> float:
        """SIGKILL node i; returns the monotonic time it was dead by."""
        self.nodes[i].kill9()
        return time.monotonic()

    def terminate(self, i: int, timeout_s: float = TERMINATE_TIMEOUT_S) -> int:
        return self.nodes[i].terminate(timeout_s)

    def restart(self, i: int) -> None:
        """Starts node i again on its data dir (SIGTERM first if it runs) and
        waits until it is ready. In between it waits until the others have
        fenced the old incarnation, so "unfenced" afterwards means the new
        one registered and caught up."""
        n = self.nodes[i]
        if n.alive():
            code = n.terminate()
            if code != 0:
                raise HarnessError(f"{n} exited {code} on SIGTERM\n{n.log_tail()}")
        self.wait_fenced(i)
        n.launch(self.voters, self.settings)
        self.wait_ready(i)

    def add_node(self, i: int) -> Node:
        """Starts a new node `i` (not a voter: it joins the quorum as a
        learner and registers as a broker) and waits until it is ready."""
        assert i not in self.nodes, f"node {i} exists"
        if self.net:
            raise HarnessError("add_node needs a cluster on 127.0.0.1")
        n = Node(self.workdir / f"node{i}", i, "127.0.0.1", free_port(), free_port(), free_port())
        self.nodes[i] = n
        n.launch(self.voters, self.settings)
        self.wait_ready(i)
        return n

    def balance(self) -> dict | None:
        """/v1/cluster/balance from the first live node that answers."""
        for n in self._observers(0):
            got = n.http("GET", "/v1/cluster/balance")
            if got and got[0] == 200:
                return got[1]
        return None

    def sluice_cli(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
        """Runs `sluice cluster ...` against a live node's controller listener."""
        target = self._observers(0)[0]
        return subprocess.run([str(sluice_bin()), "cluster", "--controller", target.controller, *args],
                              capture_output=True, text=True, timeout=timeout_s)

    def _observers(self, i: int) -> list[Node]:
        """Live nodes other than i that are not cut off."""
        return [n for n in self.alive()
                if n.node_id != i and not (self.net and n.node_id in self.net.isolated)]

    def wait_fenced(self, i: int) -> None:
        """Another live node lists node i as fenced (or not at all)."""
        session_s = int(self.settings.get("broker.session_timeout_ms", "9000")) / 1000

        def fenced():
            if not self._observers(i):
                return True  # nobody left to fence it (a single node)
            for n in self._observers(i):
                s = n.status()
                if s is not None and not any(b["node_id"] == i and not b["fenced"] for b in s["brokers"]):
                    return True
            return False

        # Fencing takes one session after the last heartbeat, plus an election
        # if node i was the controller.
        wait_for(fenced, 3 * session_s + 10, f"node {i} to be fenced")

    def wait_ready(self, i: int, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Node i answers /ready, knows the quorum leader, and both it and
        another live node list it as an unfenced broker (registered and
        caught up with the metadata)."""
        n = self.nodes[i]

        def unfenced_in(s: dict | None) -> bool:
            return bool(s) and any(b["node_id"] == i and not b["fenced"] for b in s["brokers"])

        def ready():
            if not n.alive():
                raise HarnessError(f"{n} exited with {n.proc.returncode} while starting\n{n.log_tail()}")
            got = n.http("GET", "/ready")
            if not got or got[0] != 200:
                return False
            s = n.status()
            if not unfenced_in(s) or not s.get("quorum") or s["quorum"].get("leader") is None:
                return False
            others = self._observers(i)
            return not others or any(unfenced_in(o.status()) for o in others)

        try:
            wait_for(ready, timeout_s, f"{n} to be ready (/ready, listed unfenced)", 0.1)
        except HarnessError as e:
            raise HarnessError(f"{e}\n{n.log_tail()}") from None

    def wait_brokers(self, ids: set[int], via: Iterable[int] | None = None,
                     timeout_s: float = READY_TIMEOUT_S) -> None:
        """The nodes `via` (default: every live one) list exactly `ids` unfenced."""
        def settled():
            for i in (via if via is not None else [n.node_id for n in self.alive()]):
                s = self.nodes[i].status()
                if s is None or {b["node_id"] for b in s["brokers"] if not b["fenced"]} != ids:
                    return False
            return True

        wait_for(settled, timeout_s, f"unfenced brokers to be {sorted(ids)}")

    def controller(self) -> int | None:
        """The quorum leader (active controller) as a live node reports it."""
        for n in self._observers(0):
            st = n.status()
            if st and st.get("quorum") and st["quorum"].get("leader") is not None:
                return st["quorum"]["leader"]
        return None

    # -- partitions ------------------------------------------------------

    def describe(self, topic: str, via: Iterable[int] | None = None) -> dict:
        """The topic as the first answering node of `via` (default: live
        nodes that are not isolated) describes it."""
        order = list(via) if via is not None else [
            n.node_id for n in self.alive() if not (self.net and n.node_id in self.net.isolated)]
        for i in order:
            d = self.nodes[i].describe(topic)
            if d is not None:
                return d
        raise HarnessError(f"no node of {order} describes {topic}")

    def partition(self, topic: str, p: int, via: Iterable[int] | None = None) -> dict:
        for part in self.describe(topic, via)["partitions"]:
            if part["partition"] == p:
                return part
        raise HarnessError(f"{topic} has no partition {p}")

    def leader_of(self, topic: str, p: int, via: Iterable[int] | None = None) -> int:
        """The partition's leader in the metadata image (-1: none)."""
        return self.partition(topic, p, via)["leader"]

    def leaders(self, topic: str, via: Iterable[int] | None = None) -> dict[int, int]:
        return {part["partition"]: part["leader"] for part in self.describe(topic, via)["partitions"]}

    def wait_leader(self, topic: str, p: int, *, not_in: Iterable[int] = (), via: Iterable[int] | None = None,
                    timeout_s: float = FAILOVER_WAIT_S) -> int:
        """A live leader outside `not_in`."""
        bad = set(not_in)

        def found():
            try:
                leader = self.leader_of(topic, p, via)
            except HarnessError:
                return None
            return leader if leader != -1 and leader not in bad else None

        return wait_for(found, timeout_s, f"{topic}-{p} to get a leader outside {sorted(bad)}")

    def wait_isr(self, topic: str, size: int | None = None, timeout_s: float = ISR_TIMEOUT_S) -> None:
        """Every partition has a leader and `size` (default: every node) in-sync replicas."""
        size = size if size is not None else self.expected_isr
        last: dict = {}

        def full():
            nonlocal last
            try:
                parts = self.describe(topic)["partitions"]
            except HarnessError:
                return False
            last = {p["partition"]: (p["leader"], p["isr"]) for p in parts}
            return all(p["leader"] != -1 and len(p["isr"]) >= size for p in parts)

        try:
            wait_for(full, timeout_s, f"every partition of {topic} to have {size} in-sync replicas")
        except HarnessError as e:
            raise HarnessError(f"{e}; last seen (leader, isr) per partition: {last}") from None

    def wait_replicas_agree(self, topic: str, timeout_s: float = ISR_TIMEOUT_S) -> dict[int, int]:
        """Every node's replica of every partition has the same log end offset
        and high watermark (read from each node's HTTP API: its own replica).
        Returns {partition: log end offset}."""
        last: dict = {}

        def agree():
            nonlocal last
            seen: dict[int, set] = defaultdict(set)
            for n in self.nodes.values():
                d = n.describe(topic)
                if d is None:
                    return False
                for p in d["partitions"]:
                    seen[p["partition"]].add((p["log_end_offset"], p["high_watermark"]))
            last = {p: sorted(v) for p, v in seen.items()}
            ok = all(len(v) == 1 and next(iter(v))[0] == next(iter(v))[1] for v in seen.values())
            return {p: next(iter(v))[0] for p, v in seen.items()} if ok else None

        try:
            return wait_for(agree, timeout_s, f"every replica of {topic} to hold the same offsets")
        except HarnessError as e:
            raise HarnessError(f"{e}; (log end, high watermark) per partition: {last}") from None

    def create_topic(self, name: str, partitions: int, rf: int = 3, configs: dict[str, str] | None = None,
                     timeout_s: float = ADMIN_TIMEOUT_S, assignment: list[list[int]] | None = None) -> None:
        """CreateTopics through any node, retried while no controller answers,
        then waits until every partition has a leader on every live node.
        `assignment` places replicas by hand (the first one leads)."""
        deadline = time.monotonic() + timeout_s
        last = None
        while True:
            admin = AdminClient({"bootstrap.servers": self.bootstrap([n.node_id for n in self.alive()]),
                                 "socket.timeout.ms": 10000})
            # The binding wants the partition count even with an assignment.
            new = (NewTopic(name, len(assignment), replica_assignment=assignment, config=dict(configs or {}))
                   if assignment
                   else NewTopic(name, partitions, rf, config=dict(configs or {})))
            fs = admin.create_topics([new], operation_timeout=10, request_timeout=15)
            try:
                fs[name].result(timeout=20)
                break
            except KafkaException as e:
                last = e.args[0]
                if last.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    break
                if not last.retriable() or time.monotonic() > deadline:
                    raise HarnessError(f"cannot create {name}: {last}") from None
        for n in self.alive():
            wait_for(lambda: (d := n.describe(name)) and len(d["partitions"]) == partitions
                     and all(p["leader"] != -1 for p in d["partitions"]),
                     timeout_s, f"{n} to see {name} with a leader per partition")

    def replica_log(self, i: int, topic: str, p: int) -> list["DiskRecord"]:
        """Node i's replica of topic-p, read straight from its segment files."""
        return read_partition_dir(self.nodes[i].data_dir / f"{topic}-{p}")

    def log_tails(self, lines: int = 30) -> str:
        return "\n".join(n.log_tail(lines) for n in self.nodes.values())


# --------------------------------------------------------------------------
# Reading a replica from disk (docs/design.md, "Segment file")
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DiskRecord:
    offset: int
    leader_epoch: int
    value: bytes | None
    control: bool
    # The batch's producer fields and this record's sequence (-1 when the
    # batch has none): tell a retry the broker failed to deduplicate (same
    # producer epoch and sequence twice) from a client that re-sent under a
    # new epoch.
    producer_id: int = -1
    producer_epoch: int = -1
    sequence: int = -1


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    v, pos = _uvarint(buf, pos)
    return (v >> 1) ^ -(v & 1), pos


def parse_segment(data: bytes) -> list[DiskRecord]:
    """The records of a segment's whole batches; a torn tail (a batch cut
    short by a crash) ends the list, as recovery would cut it."""
    out = []
    pos = 0
    while pos + 61 <= len(data):
        base_offset, batch_len, epoch = struct.unpack_from(">qii", data, pos)
        end = pos + 12 + batch_len
        if batch_len < 49 or end > len(data):
            break
        attributes = struct.unpack_from(">h", data, pos + 21)[0]
        producer_id, producer_epoch, base_sequence = struct.unpack_from(">qhi", data, pos + 43)
        if attributes & 0x7:
            raise ValueError(f"compressed batch at offset {base_offset}: the harness produces uncompressed")
        control = bool(attributes & 0x20)
        (count,) = struct.unpack_from(">i", data, pos + 57)
        rpos = pos + 61
        for _ in range(count):
            _len, rpos = _varint(data, rpos)
            rec_end = rpos + _len
            rpos += 1  # attributes
            _ts, rpos = _varint(data, rpos)
            delta, rpos = _varint(data, rpos)
            klen, rpos = _varint(data, rpos)
            rpos += max(klen, 0)
            vlen, rpos = _varint(data, rpos)
            value = None if vlen < 0 else bytes(data[rpos:rpos + vlen])
            sequence = base_sequence + delta if base_sequence >= 0 else -1
            out.append(DiskRecord(base_offset + delta, epoch, value, control,
                                  producer_id, producer_epoch, sequence))
            rpos = rec_end
        pos = end
    return out


def read_partition_dir(path: Path) -> list[DiskRecord]:
    """Every record of a partition directory, segment by segment."""
    if not path.is_dir():
        return []
    out = []
    for seg in sorted(path.glob("*.log")):
        out.extend(parse_segment(seg.read_bytes()))
    return out


# --------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Ack:
    """A record the broker acknowledged at `offset`."""
    producer: str
    topic: str
    partition: int
    offset: int
    value: bytes
    sent_at: float  # monotonic time of produce()
    acked_at: float


@dataclasses.dataclass(frozen=True)
class Failure:
    """A record whose delivery failed: not acknowledged, may or may not be in the log."""
    producer: str
    topic: str
    partition: int
    value: bytes
    error: str
    sent_at: float
    at: float


@dataclasses.dataclass(frozen=True)
class ClientError:
    """An error a client reported outside a delivery (error_cb, a consumer
    message error, a failed commit)."""
    client: str
    error: str
    fatal: bool
    at: float
    text: str = ""

    @property
    def retriable(self) -> bool:
        return not self.fatal and self.error in RETRIABLE


@dataclasses.dataclass(frozen=True)
class Commit:
    """A committed offset of a group as the broker answered it (OffsetFetch
    after a commit), in the order observed."""
    group: str
    topic: str
    partition: int
    offset: int
    at: float


@dataclasses.dataclass(frozen=True)
class Read:
    consumer: str
    topic: str
    partition: int
    offset: int
    value: bytes


class History:
    """Everything the workload saw, appended from client threads. Waiting
    on it uses a condition variable notified on every append."""

    def __init__(self):
        self.cond = threading.Condition()
        self.acks: list[Ack] = []
        self.failures: list[Failure] = []
        self.errors: list[ClientError] = []
        self.commits: list[Commit] = []
        self.reads: list[Read] = []
        self.attempted: set[bytes] = set()
        self.events: list[tuple[float, str]] = []

    def _add(self, lst: list, item) -> None:
        with self.cond:
            lst.append(item)
            self.cond.notify_all()

    def ack(self, a: Ack) -> None:
        self._add(self.acks, a)

    def failure(self, f: Failure) -> None:
        self._add(self.failures, f)

    def error(self, e: ClientError) -> None:
        self._add(self.errors, e)

    def commit(self, c: Commit) -> None:
        self._add(self.commits, c)

    def read(self, r: Read) -> None:
        self._add(self.reads, r)

    def attempt(self, value: bytes) -> None:
        with self.cond:
            self.attempted.add(value)

    def event(self, what: str) -> None:
        """A fault or step, for the report's timeline."""
        self._add(self.events, (time.monotonic(), what))

    def wait(self, predicate: Callable[["History"], object], timeout_s: float):
        """Blocks until predicate(self) is truthy (returns it) or the deadline
        passes (returns None)."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while True:
                value = predicate(self)
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)

    def first_ack_sent_after(self, t: float, topic: str | None = None,
                             partitions: Iterable[int] | None = None) -> Ack | None:
        """The earliest-acknowledged record produced after `t` (so no broker
        alive only before `t` can have acknowledged it)."""
        parts = set(partitions) if partitions is not None else None
        best = None
        for a in self.acks:
            if a.sent_at > t and (topic is None or a.topic == topic) and (parts is None or a.partition in parts):
                if best is None or a.acked_at < best.acked_at:
                    best = a
        return best

    def wait_ack_sent_after(self, t: float, timeout_s: float, topic: str | None = None,
                            partitions: Iterable[int] | None = None) -> Ack | None:
        parts = list(partitions) if partitions is not None else None
        return self.wait(lambda h: h.first_ack_sent_after(t, topic, parts), timeout_s)

    def count_acks_after(self, t: float) -> int:
        return sum(1 for a in self.acks if a.sent_at > t)


# --------------------------------------------------------------------------
# Workload
# --------------------------------------------------------------------------


def producer_conf(bootstrap: str, **extra) -> dict:
    """acks=all with idempotence, as the issue's scenarios require."""
    conf = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": "none",  # the disk reader parses uncompressed batches
        "linger.ms": 5,
        # Bounds the wait for a leader that is dead or cut off, so the client
        # retries against the new leader within the failover bound.
        "request.timeout.ms": 3000,
        "message.timeout.ms": 120000,
        "retry.backoff.ms": 50,
        "retry.backoff.max.ms": 300,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "socket.timeout.ms": 10000,
        "topic.metadata.refresh.fast.interval.ms": 100,
    }
    conf.update(extra)
    return conf


def _error_name(err: KafkaError) -> str:
    try:
        return err.name()
    except Exception:  # an unknown code has no name
        return str(err.code())


class ProducerWorker(threading.Thread):
    """One idempotent acks=all producer writing unique values `<name>:<seq>`
    round-robin over `partitions` at `rate_per_s`, until stopped or `count`
    records are sent. Every delivery report goes to the history."""

    def __init__(self, history: History, bootstrap: str, topic: str, partitions: list[int], *,
                 name: str, rate_per_s: float = 200.0, count: int | None = None, **conf):
        super().__init__(name=f"producer-{name}", daemon=True)
        self.history = history
        self.topic = topic
        self.partitions = partitions
        self.pname = name
        self.interval_s = 1.0 / rate_per_s
        self.count = count
        self.stop_event = threading.Event()
        self.sent = 0
        self.unflushed = 0
        self.crash: BaseException | None = None
        self.conf = producer_conf(bootstrap, error_cb=self._on_error, **conf)

    def _on_error(self, err: KafkaError) -> None:
        self.history.error(ClientError(self.pname, _error_name(err), err.fatal(), time.monotonic(), err.str()))

    def _on_delivery(self, sent_at: float, err, msg) -> None:
        now = time.monotonic()
        if err is None:
            self.history.ack(Ack(self.pname, msg.topic(), msg.partition(), msg.offset(), msg.value(), sent_at, now))
        else:
            self.history.failure(Failure(self.pname, msg.topic(), msg.partition(), msg.value(),
                                         _error_name(err), sent_at, now))

    def run(self) -> None:
        try:
            producer = Producer(self.conf)
            seq = 0
            started = time.monotonic()
            while not self.stop_event.is_set() and (self.count is None or seq < self.count):
                value = f"{self.pname}:{seq:09d}".encode()
                partition = self.partitions[seq % len(self.partitions)]
                sent_at = time.monotonic()
                self.history.attempt(value)
                while True:
                    try:
                        producer.produce(self.topic, value=value, partition=partition,
                                         on_delivery=lambda err, msg, t=sent_at: self._on_delivery(t, err, msg))
                        break
                    except BufferError:
                        producer.poll(0.1)  # queue full: serve delivery reports, then retry
                        if self.stop_event.is_set():
                            break
                seq += 1
                self.sent = seq
                # Paces the workload to its rate and serves delivery callbacks
                # meanwhile (poll returns early whenever it served one).
                next_at = started + seq * self.interval_s
                while not self.stop_event.is_set() and (left := next_at - time.monotonic()) > 0:
                    producer.poll(left)
            self.unflushed = producer.flush(FLUSH_TIMEOUT_S)
        except BaseException as e:  # reported by stop()
            self.crash = e

    def stop(self) -> None:
        self.stop_event.set()
        self.join(FLUSH_TIMEOUT_S + 30)
        if self.is_alive():
            raise HarnessError(f"{self.name} did not stop")
        if self.crash:
            raise HarnessError(f"{self.name} crashed: {self.crash!r}")


class GroupConsumerWorker(threading.Thread):
    """A group member reading `topic` during the faults: records every read,
    commits synchronously every `commit_every` records and then reads the
    committed offsets back from the broker (OffsetFetch) into the history, so
    the checker sees what the broker says is committed, in order."""

    def __init__(self, history: History, bootstrap: str, topic: str, partitions: int, *, group: str,
                 name: str, commit_every: int = 100):
        super().__init__(name=f"consumer-{name}", daemon=True)
        self.history = history
        self.topic = topic
        self.partitions = partitions
        self.group = group
        self.cname = name
        self.commit_every = commit_every
        self.stop_event = threading.Event()
        self.crash: BaseException | None = None
        self.conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "session.timeout.ms": 6000,
            "socket.timeout.ms": 10000,
            "reconnect.backoff.max.ms": 500,
            "topic.metadata.refresh.fast.interval.ms": 100,
            "error_cb": lambda err: self._error(err),
        }

    def _error(self, err: KafkaError, text: str = "") -> None:
        self.history.error(ClientError(self.cname, _error_name(err), err.fatal(), time.monotonic(),
                                       text or err.str()))

    def run(self) -> None:
        try:
            c = Consumer(self.conf)
            c.subscribe([self.topic])
            since_commit = 0
            while not self.stop_event.is_set():
                m = c.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    self._error(m.error())
                    continue
                self.history.read(Read(self.cname, m.topic(), m.partition(), m.offset(), m.value()))
                since_commit += 1
                if since_commit >= self.commit_every:
                    since_commit = 0
                    self._commit(c)
            self._commit(c)
            c.close()
        except BaseException as e:
            self.crash = e

    def _commit(self, c: Consumer) -> None:
        try:
            c.commit(asynchronous=False)
            tps = c.committed([TopicPartition(self.topic, p) for p in range(self.partitions)], timeout=10)
        except KafkaException as e:
            self._error(e.args[0], "commit")
            return
        now = time.monotonic()
        for tp in tps:
            if tp.error is None and tp.offset >= 0:
                self.history.commit(Commit(self.group, tp.topic, tp.partition, tp.offset, now))

    def stop(self) -> None:
        self.stop_event.set()
        self.join(60)
        if self.is_alive():
            raise HarnessError(f"{self.name} did not stop")
        if self.crash:
            raise HarnessError(f"{self.name} crashed: {self.crash!r}")


@dataclasses.dataclass(frozen=True)
class PinnedAttempt:
    """One raw acks=all Produce sent to one node only."""
    value: bytes
    sent_at: float
    outcome: str  # "acked", an error name, "no answer", "closed", "refused"
    offset: int = -1


class PinnedProducer(threading.Thread):
    """Sends one record per raw Produce v3 (acks=-1) to a single node and
    nowhere else, sequentially, so no client-side rerouting hides what that
    node answers. Used to show a leader cut off from its followers
    acknowledges nothing."""

    # How long the broker may wait for the ISR before answering
    # REQUEST_TIMED_OUT: short, so several requests fit in one partition window.
    PRODUCE_TIMEOUT_MS = 2000
    # The broker must answer (or drop the connection) within this long.
    ANSWER_TIMEOUT_S = 10.0

    def __init__(self, history: History, node: Node, topic: str, partition: int, name: str):
        super().__init__(name=f"pinned-{name}", daemon=True)
        self.history = history
        self.node = node
        self.topic = topic
        self.partition = partition
        self.pname = name
        self.attempts: list[PinnedAttempt] = []
        self.stop_event = threading.Event()

    def _one(self, seq: int) -> PinnedAttempt:
        value = f"{self.pname}:{seq:09d}".encode()
        self.history.attempt(value)
        sent_at = time.monotonic()
        batch = build_record_batch([(None, value, [])], base_ts_ms=now_ms())
        try:
            with socket.create_connection((self.node.host, self.node.kafka_port), timeout=3) as s:
                s.settimeout(self.ANSWER_TIMEOUT_S)
                s.sendall(produce_v3_acks_all(seq, self.topic, self.partition, batch, self.PRODUCE_TIMEOUT_MS))
                head = _recv_exact(s, 4)
                if head is None:
                    return PinnedAttempt(value, sent_at, "closed")
                body = _recv_exact(s, struct.unpack(">i", head)[0])
                if body is None:
                    return PinnedAttempt(value, sent_at, "closed")
        except socket.timeout:
            return PinnedAttempt(value, sent_at, "no answer")
        except OSError as e:
            return PinnedAttempt(value, sent_at, f"refused ({e.__class__.__name__})")
        [(_t, _p, err, base_offset)] = parse_produce_v3_response(body[4:])  # skip correlation id
        if err == 0:
            return PinnedAttempt(value, sent_at, "acked", base_offset)
        return PinnedAttempt(value, sent_at, NOT_ACKED_CODES.get(err, f"error {err}"))

    def run(self) -> None:
        seq = 0
        while not self.stop_event.is_set():
            self.attempts.append(self._one(seq))
            seq += 1
            self.stop_event.wait(0.2)  # pacing between requests, interrupted by stop()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(self.ANSWER_TIMEOUT_S + 10)
        if self.is_alive():
            raise HarnessError(f"{self.name} did not stop")


def produce_v3_acks_all(correlation_id: int, topic: str, partition: int, batch: bytes, timeout_ms: int) -> bytes:
    """A Produce v3 request, acks=-1, for one batch to one partition."""
    body = (kstring(None) + i16(-1) + i32(timeout_ms) + i32(1) + kstring(topic) + i32(1) + i32(partition)
            + kbytes(batch))
    return frame(request_header_v1(0, 3, correlation_id) + body)


def _recv_exact(s: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf.extend(chunk)
    return bytes(buf)


def read_partitions(bootstrap: str, topic: str, partitions: int, *, name: str,
                    isolation: str = "read_uncommitted", timeout_s: float = READ_TIMEOUT_S,
                    at_least: dict[int, int] | None = None) -> list[Read]:
    """Every record of every partition from offset 0 to its end (high
    watermark, or last stable offset for read_committed), by assign().
    A partition is at its end only once past `at_least[p]` (its highest
    acknowledged offset): a leader elected a moment ago may report a high
    watermark still below what its predecessor acknowledged, until its
    followers fetch again."""
    at_least = at_least or {}
    last: dict[int, int] = {}
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"faults-reader-{uuid.uuid4().hex[:6]}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": isolation,
        "fetch.wait.max.ms": 100,
        "socket.timeout.ms": 10000,
        "topic.metadata.refresh.fast.interval.ms": 100,
    })
    out: list[Read] = []
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        at_eof: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(at_eof) < partitions:
            if time.monotonic() > deadline:
                raise HarnessError(f"{name}: reading {topic} did not reach the end of partitions "
                                   f"{sorted(set(range(partitions)) - at_eof)} within {timeout_s}s")
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if last.get(m.partition(), -1) >= at_least.get(m.partition(), -1):
                        at_eof.add(m.partition())
                    continue
                if m.error().fatal() or _error_name(m.error()) not in RETRIABLE:
                    raise HarnessError(f"{name}: reading {topic}: {m.error()}")
                continue
            at_eof.discard(m.partition())
            last[m.partition()] = max(last.get(m.partition(), -1), m.offset())
            out.append(Read(name, m.topic(), m.partition(), m.offset(), m.value()))
        return out
    finally:
        c.close()


def produce_all(bootstrap: str, topic: str, values: list[bytes], partitions: int,
                timeout_s: float = FLUSH_TIMEOUT_S) -> list[Ack]:
    """Produces `values` (acks=all, idempotent) and requires every one acknowledged."""
    acks: list[Ack] = []
    errors: list[str] = []
    p = Producer(producer_conf(bootstrap, **{"linger.ms": 20}))
    for i, v in enumerate(values):
        t = time.monotonic()

        def done(err, msg, t=t):
            if err:
                errors.append(f"{msg.value()!r}: {err}")
            else:
                acks.append(Ack("seed", msg.topic(), msg.partition(), msg.offset(), msg.value(), t, time.monotonic()))

        while True:
            try:
                p.produce(topic, value=v, partition=i % partitions, on_delivery=done)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(timeout_s)
    if left or errors:
        raise HarnessError(f"seeding {topic}: {left} unflushed, errors {errors[:5]}")
    return acks


def java_string_hash(s: str) -> int:
    """Java's String.hashCode over UTF-16 code units, as a signed 32-bit int."""
    h = 0
    data = s.encode("utf-16-be")
    for k in range(0, len(data), 2):
        h = (31 * h + ((data[k] << 8) | data[k + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def coordinator_partition(key: str, partitions: int) -> int:
    """Kafka's `Utils.abs(key.hashCode) % partitions` (abs(MIN_VALUE) = 0)."""
    h = java_string_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


class EosPipeline(threading.Thread):
    """A consume-transform-produce loop with transactions: reads `src`
    (read_committed, group `group`), writes `out-<input>#<incarnation>.<txn>`
    to `dst` in a transaction that also commits the consumed offsets. `txn`
    numbers the transactions and `incarnation` the pipelines run with this
    transactional id, so an aborted transaction's outputs are recognisable.
    Abortable errors abort and rewind to the committed offsets; retriable
    errors retry the commit; a fatal error ends the loop (a violation).
    EOS_DEBUG in the environment sets the producer's librdkafka `debug`."""

    def __init__(self, history: History, bootstrap: str, src: str, dst: str, partitions: int, *,
                 group: str, txn_id: str, total: int, deadline_s: float, batch: int = 20,
                 incarnation: int = 1):
        super().__init__(name=f"eos-pipeline-{incarnation}", daemon=True)
        self.incarnation = incarnation
        self.history = history
        self.bootstrap = bootstrap
        self.src, self.dst, self.partitions = src, dst, partitions
        self.group, self.txn_id, self.total = group, txn_id, total
        self.deadline_s = deadline_s
        self.batch = batch
        self.committed_txns: list[tuple[int, float]] = []  # (txn number, monotonic time)
        self.aborted_txns: set[int] = set()
        self.fatal: str | None = None
        self.done = threading.Event()
        self.stop_event = threading.Event()
        self.crash: BaseException | None = None

    def _err(self, err: KafkaError, text: str) -> None:
        self.history.error(ClientError("eos", _error_name(err), err.fatal(), time.monotonic(), text))

    def _rewind(self, c: Consumer) -> None:
        """After an abort: back to the group's committed offsets."""
        assignment = c.assignment()
        if not assignment:
            return
        for tp in c.committed(assignment, timeout=15):
            c.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0))

    def _committed_total(self, c: Consumer) -> int:
        tps = c.committed([TopicPartition(self.src, p) for p in range(self.partitions)], timeout=10)
        now = time.monotonic()
        for tp in tps:
            if tp.error is None and tp.offset >= 0:
                self.history.commit(Commit(self.group, tp.topic, tp.partition, tp.offset, now))
        return sum(max(tp.offset, 0) for tp in tps)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:
            self.crash = e
        finally:
            self.done.set()
            with self.history.cond:
                self.history.cond.notify_all()

    def _run(self) -> None:
        c = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "isolation.level": "read_committed",
            "fetch.wait.max.ms": 100, "session.timeout.ms": 6000, "socket.timeout.ms": 10000,
            "topic.metadata.refresh.fast.interval.ms": 100,
            # A pipeline stuck in a client call leaves the group after this
            # long, so the one that replaces it gets the partitions (Kafka's
            # 5 min default would outlast the test). Above the 30 s bound of
            # one transaction's calls.
            "max.poll.interval.ms": 40000,
            "error_cb": lambda e: self._err(e, "consumer"),
        })
        end = time.monotonic() + self.deadline_s
        p = self._producer(end)
        if p is None:
            return
        c.subscribe([self.src])
        txn = 0
        while time.monotonic() < end and not self.stop_event.is_set():
            msgs = [m for m in c.consume(self.batch, 0.5) if not m.error()]
            if msgs:
                txn += 1
                outcome = self._transaction(p, c, msgs, txn)
                if outcome == "fatal":
                    return
                if outcome == "aborted":
                    self.aborted_txns.add(txn)
                    try:
                        self._rewind(c)
                    except KafkaException as e:
                        self._err(e.args[0], "rewind")
                    continue
                self.committed_txns.append((txn, time.monotonic()))
                with self.history.cond:
                    self.history.cond.notify_all()
            try:
                if self._committed_total(c) >= self.total:
                    c.close()
                    return
            except KafkaException as e:
                self._err(e.args[0], "committed")
        self.fatal = self.fatal or f"ran out of time ({self.deadline_s}s) before committing {self.total} inputs"

    def _producer(self, end: float) -> Producer | None:
        """A transactional producer for `txn_id`, initialised (which fences
        any earlier one), or None (and `fatal` set) if that fails."""
        p = Producer({
            "bootstrap.servers": self.bootstrap, "transactional.id": self.txn_id, "linger.ms": 5,
            "compression.type": "none", "request.timeout.ms": 3000, "socket.timeout.ms": 10000,
            "transaction.timeout.ms": 30000, "message.timeout.ms": 30000,
            "retry.backoff.max.ms": 300, "reconnect.backoff.max.ms": 500,
            "topic.metadata.refresh.fast.interval.ms": 100,
            "error_cb": lambda e: self._err(e, "producer"),
            **({"debug": os.environ["EOS_DEBUG"]} if os.environ.get("EOS_DEBUG") else {}),
        })
        while True:
            try:
                p.init_transactions(30)
                return p
            except KafkaException as e:
                self._err(e.args[0], "init_transactions")
                if not e.args[0].retriable() or time.monotonic() > end:
                    self.fatal = f"init_transactions: {e}"
                    return None

    # Retries of a transactional call that failed with a retriable error, as
    # Kafka's API says to; each is bounded by its 30 s timeout.
    RETRIES = 10


    def _transaction(self, p: Producer, c: Consumer, msgs, txn: int) -> str:
        try:
            p.begin_transaction()
            for m in msgs:
                p.produce(self.dst, value=b"out-" + m.value() + f"#{self.incarnation}.{txn}".encode(),
                          partition=m.partition())
        except KafkaException as e:
            return self._failed(p, e, "send")
        offsets = c.position(c.assignment())
        for attempt in range(self.RETRIES):
            try:
                p.send_offsets_to_transaction(offsets, c.consumer_group_metadata(), 30)
                break
            except KafkaException as e:
                err = e.args[0]
                if err.retriable() and not err.txn_requires_abort() and attempt + 1 < self.RETRIES:
                    self._err(err, "send_offsets_to_transaction (retrying)")
                    continue
                return self._failed(p, e, "send_offsets")
        for _ in range(self.RETRIES):  # each retry is bounded by the 30 s call timeout
            try:
                p.commit_transaction(30)
                return "committed"
            except KafkaException as e:
                err = e.args[0]
                if err.retriable() and not err.txn_requires_abort():
                    self._err(err, "commit_transaction (retrying)")
                    continue
                return self._failed(p, e, "commit")
        self.fatal = "commit_transaction kept failing"
        return "fatal"

    def _failed(self, p: Producer, e: KafkaException, where: str) -> str:
        err = e.args[0]
        self._err(err, where)
        if err.txn_requires_abort():
            try:
                p.abort_transaction(30)
                return "aborted"
            except KafkaException as e2:
                self.fatal = f"abort after {where} error ({err}) failed: {e2}"
                return "fatal"
        self.fatal = f"{where}: {e}"
        return "fatal"

    def wait_committed_after(self, t: float, count: int, timeout_s: float) -> bool:
        """True once `count` transactions committed after monotonic time `t`."""
        return bool(self.history.wait(
            lambda h: self.done.is_set() or sum(1 for _, at in self.committed_txns if at > t) >= count,
            timeout_s)) and sum(1 for _, at in self.committed_txns if at > t) >= count


# --------------------------------------------------------------------------
# Checker: pure functions over a history. Each returns the violations of one
# rule (empty when it holds).
# --------------------------------------------------------------------------

_SHOW = 10  # violations listed per rule; the count says how many more


def _cap(lines: list[str]) -> list[str]:
    if len(lines) <= _SHOW:
        return lines
    return lines[:_SHOW] + [f"... and {len(lines) - _SHOW} more"]


def check_acked_read_back(acks: Iterable[Ack], reads: Iterable[Read]) -> list[str]:
    """Every acknowledged record is read back at the offset it was
    acknowledged with (lost: nothing there; overwritten: another value).
    librdkafka may report an idempotent batch delivered without an offset
    (None: a later batch's success proved it persisted); such a record
    must be read back in its partition, at any offset."""
    reads = list(reads)
    at = {(r.topic, r.partition, r.offset): r.value for r in reads}
    values = {(r.topic, r.partition, r.value) for r in reads}
    out = []
    for a in acks:
        if a.offset is None:
            if (a.topic, a.partition, a.value) not in values:
                out.append(f"lost: {a.value!r} acked (offset unknown) in {a.topic}-{a.partition} is not read back")
            continue
        got = at.get((a.topic, a.partition, a.offset), None)
        if got is None:
            out.append(f"lost: {a.value!r} acked at {a.topic}-{a.partition}@{a.offset} is not read back")
        elif got != a.value:
            out.append(f"overwritten: {a.value!r} acked at {a.topic}-{a.partition}@{a.offset}, read {got!r}")
    return _cap(out)


def check_no_duplicates(reads: Iterable[Read]) -> list[str]:
    """No value appears at two positions (values are unique per send, so a
    second copy is a retried batch written twice)."""
    where: dict[bytes, set[tuple[str, int, int]]] = defaultdict(set)
    for r in reads:
        where[r.value].add((r.topic, r.partition, r.offset))
    return _cap([f"duplicate: {v!r} at {sorted(pos)}" for v, pos in where.items() if len(pos) > 1])


def check_no_phantoms(reads: Iterable[Read], attempted: set[bytes]) -> list[str]:
    """Nothing is read that no producer sent."""
    return _cap(sorted({f"phantom: {r.value!r} at {r.topic}-{r.partition}@{r.offset} was never sent"
                        for r in reads if r.value not in attempted}))


def check_consumers_agree(reads: Iterable[Read]) -> list[str]:
    """All consumers see the same record at the same offset."""
    seen: dict[tuple[str, int, int], dict[bytes, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in reads:
        seen[(r.topic, r.partition, r.offset)][r.value].add(r.consumer)
    out = []
    for (t, p, o), values in sorted(seen.items()):
        if len(values) > 1:
            detail = ", ".join(f"{sorted(cs)} read {v!r}" for v, cs in values.items())
            out.append(f"disagree at {t}-{p}@{o}: {detail}")
    return _cap(out)


def check_commits_monotonic(commits: Iterable[Commit]) -> list[str]:
    """A group's committed offset for a partition never goes backwards, in
    the order the commits were observed."""
    last: dict[tuple[str, str, int], int] = {}
    out = []
    for c in commits:
        key = (c.group, c.topic, c.partition)
        if key in last and c.offset < last[key]:
            out.append(f"committed offset of {c.group} on {c.topic}-{c.partition} went back "
                       f"from {last[key]} to {c.offset}")
        last[key] = max(last.get(key, -1), c.offset)
    return _cap(out)


def check_no_aborted(committed_reads: Iterable[Read], aborted: set[bytes]) -> list[str]:
    """A read_committed reader never sees a record of an aborted transaction."""
    return _cap([f"aborted data read: {r.value!r} at {r.topic}-{r.partition}@{r.offset}"
                 for r in committed_reads if r.value in aborted])


def check_exactly_once(inputs: Iterable[bytes], outputs: Iterable[Read],
                       source_of: Callable[[bytes], bytes | None]) -> list[str]:
    """Each input appears exactly once in the (read_committed) output, and
    the output holds nothing else."""
    count = Counter()
    out = []
    for r in outputs:
        src = source_of(r.value)
        if src is None:
            out.append(f"output {r.value!r} at {r.topic}-{r.partition}@{r.offset} comes from no input")
        else:
            count[src] += 1
    wanted = set(inputs)
    for v in sorted(wanted):
        if count[v] != 1:
            out.append(f"input {v!r} is in the output {count[v]} times")
    for v in sorted(set(count) - wanted):
        out.append(f"output from unknown input {v!r}")
    return _cap(out)


def check_never_acked(attempts: Iterable[PinnedAttempt], after: float) -> list[str]:
    """No raw produce sent after `after` to a cut-off leader was acknowledged."""
    return _cap([f"acked by the isolated leader: {a.value!r} at offset {a.offset}"
                 for a in attempts if a.sent_at > after and a.outcome == "acked"])


def check_absent(reads: Iterable[Read], values: set[bytes], why: str) -> list[str]:
    """None of `values` (records no majority ever held) is read back."""
    found = {(r.value, r.topic, r.partition, r.offset) for r in reads if r.value in values}
    return _cap([f"{why}: {v!r} at {t}-{p}@{o}" for v, t, p, o in sorted(found)])


def check_replicas_identical(logs: dict[int, list[DiskRecord]], label: str) -> list[str]:
    """Every replica holds the same records at the same offsets (compared
    as (offset, value, control)); a divergent tail not truncated shows here."""
    ids = sorted(logs)
    if not ids:
        return []
    ref_id = ids[0]
    ref = [(r.offset, r.value, r.control) for r in logs[ref_id]]
    out = []
    for i in ids[1:]:
        other = [(r.offset, r.value, r.control) for r in logs[i]]
        if other == ref:
            continue
        first = next((k for k, (x, y) in enumerate(zip(ref, other)) if x != y), min(len(ref), len(other)))
        a = ref[first] if first < len(ref) else None
        b = other[first] if first < len(other) else None
        out.append(f"{label}: node {i} differs from node {ref_id} from record #{first} "
                   f"(node {ref_id}: {a}, node {i}: {b}; lengths {len(ref)} vs {len(other)})")
    return out


def latency_summary(samples: list[float | None]) -> dict:
    """min / median / p99 / max of the samples that exist, and how many never happened."""
    got = sorted(s for s in samples if s is not None)
    if not got:
        return {"n": 0, "never": len(samples)}
    p99 = got[min(len(got) - 1, int(round(0.99 * (len(got) - 1))))]
    return {"n": len(got), "never": len(samples) - len(got), "min": got[0],
            "median": statistics.median(got), "p99": p99, "max": got[-1]}


def format_latency(summary: dict) -> str:
    if summary.get("n", 0) == 0:
        return f"no samples ({summary.get('never', 0)} never)"
    return (f"n={summary['n']} min={summary['min']:.2f}s median={summary['median']:.2f}s "
            f"p99={summary['p99']:.2f}s max={summary['max']:.2f}s never={summary['never']}")


def check_history(h: History, final_reads: list[Read]) -> list[str]:
    """The rules every scenario checks: acked records read back at their
    offsets, no duplicates, no phantoms, consumers (final readers and the
    live group member) agree, committed offsets monotonic."""
    violations = []
    per_reader: dict[str, list[Read]] = defaultdict(list)
    for r in final_reads:
        per_reader[r.consumer].append(r)
    timeouts = sum(1 for f in h.failures if f.error == "_MSG_TIMED_OUT")
    # After a message timeout librdkafka bumps the idempotent producer's epoch
    # and re-sends in-flight records under it, which may write them twice
    # (librdkafka#4953): say so next to any duplicate, not hide it.
    hint = f" (the producers had {timeouts} message timeouts: see librdkafka#4953)" if timeouts else ""
    for reader, reads in sorted(per_reader.items()):
        violations += [f"[{reader}] {v}" for v in check_acked_read_back(h.acks, reads)]
        violations += [f"[{reader}] {v}{hint}" for v in check_no_duplicates(reads)]
    violations += check_no_phantoms(final_reads, h.attempted)
    violations += check_consumers_agree(list(final_reads) + list(h.reads))
    violations += check_commits_monotonic(h.commits)
    return violations


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

TOPIC_CONFIGS = {"min.insync.replicas": "2"}


@dataclasses.dataclass
class Report:
    """What a scenario saw: violations (empty = passed) and figures."""
    name: str
    violations: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    latencies: list[float | None] = dataclasses.field(default_factory=list)
    acked: int = 0
    failed: int = 0
    errors: Counter = dataclasses.field(default_factory=Counter)

    def note(self, line: str) -> None:
        self.notes.append(line)
        print(f"[{self.name}] {line}", flush=True)

    def summary(self) -> str:
        lines = [f"== {self.name}: {'PASS' if not self.violations else f'{len(self.violations)} VIOLATIONS'}",
                 f"acked {self.acked}, failed deliveries {self.failed}, client errors {dict(self.errors)}"]
        if self.latencies:
            lines.append(f"fault -> next ack: {format_latency(latency_summary(self.latencies))}")
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  VIOLATION: {v}" for v in self.violations]
        return "\n".join(lines)


def _finish(report: Report, h: History, cluster: Cluster, topic: str, partitions: int,
            readers: Iterable[int] | None = None) -> list[Read]:
    """Reads the topic back through two different bootstrap nodes and runs
    the common checks."""
    ids = list(readers) if readers is not None else [n.node_id for n in cluster.alive()][:2]
    acked: dict[int, int] = {}
    for a in h.acks:
        if a.topic == topic and a.offset is not None:
            acked[a.partition] = max(acked.get(a.partition, -1), a.offset)
    final: list[Read] = []
    for i in ids:
        final += read_partitions(cluster.nodes[i].bootstrap, topic, partitions, name=f"reader-via-{i}",
                                 at_least=acked)
    report.acked = len(h.acks)
    report.failed = len(h.failures)
    report.errors = Counter(e.error for e in h.errors)
    report.violations += check_history(h, final)
    for line in explain_duplicates(cluster, final):
        report.note(line)
    return final


def explain_duplicates(cluster: Cluster, reads: Iterable[Read], limit: int = 5) -> list[str]:
    """For each duplicated value (at most `limit`), every node's on-disk copy
    of it (offset, leader epoch, producer id/epoch, sequence), and the
    produce refusals in every node's log: enough to tell a broker that
    failed to deduplicate a retry from a client that re-sent under a new
    producer epoch, without the run's files."""
    where: dict[bytes, set[tuple[str, int]]] = defaultdict(set)
    offsets: dict[bytes, set[int]] = defaultdict(set)
    for r in reads:
        where[r.value].add((r.topic, r.partition))
        offsets[r.value].add(r.offset)
    dups = [v for v, at in offsets.items() if len(at) > 1][:limit]
    if not dups:
        return []
    out = []
    for value in dups:
        for topic, partition in sorted(where[value]):
            for node_id, node in sorted(cluster.nodes.items()):
                try:
                    copies = [d for d in read_partition_dir(node.data_dir / f"{topic}-{partition}")
                              if d.value == value]
                except (OSError, ValueError, IndexError, struct.error) as e:
                    out.append(f"duplicate {value!r}: node {node_id} unreadable: {e!r}")
                    continue
                desc = ", ".join(f"@{d.offset} leader_epoch={d.leader_epoch} producer={d.producer_id}"
                                 f"/epoch {d.producer_epoch} seq={d.sequence}" for d in copies)
                out.append(f"duplicate {value!r} on node {node_id}: {desc or 'absent'}")
    for node_id, node in sorted(cluster.nodes.items()):
        try:
            text = node.log_path.read_text(errors="replace")
        except OSError:
            continue
        refused = [line for line in text.splitlines() if "batch refused" in line or "records refused" in line]
        for line in refused[-10:]:
            out.append(f"node {node_id} log: {line[:300]}")
    return out


def _isr_back(report: Report, cluster: Cluster, topic: str, when: str) -> bool:
    """Waits for a full ISR again; a timeout is a violation (the scenario
    then goes on to check the data it has) rather than an abort."""
    try:
        cluster.wait_isr(topic)
        return True
    except HarnessError as e:
        report.violations.append(f"ISR not full {when}: {e}")
        return False


def _start_workload(h: History, cluster: Cluster, topic: str, partitions: int, producers: int,
                    rate_per_s: float, consumer: bool = True, **producer_conf):
    workers = [ProducerWorker(h, cluster.bootstrap(), topic, list(range(partitions)), name=f"p{k}",
                              rate_per_s=rate_per_s, **producer_conf) for k in range(producers)]
    if consumer:
        workers.append(GroupConsumerWorker(h, cluster.bootstrap(), topic, partitions,
                                           group=f"{topic}-group", name="group-member"))
    for w in workers:
        w.start()
    return workers


def _stop_workload(workers) -> None:
    for w in workers:
        w.stop()


def run_kill_leader(cluster: Cluster, *, kills: int, partitions: int = 3, rate_per_s: float = 150.0,
                    report: Report | None = None) -> Report:
    """kill -9 a partition leader under load, `kills` times, restarting it
    each time once the survivors acknowledge again: no acknowledged record
    lost, no duplicates, next ack (of a record sent after the kill, on a
    partition the victim led) within FAILOVER_BOUND_S."""
    report = report or Report("kill-leader")
    h = History()
    topic = f"kill-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, partitions, 3, TOPIC_CONFIGS)
    cluster.wait_isr(topic)
    workers = _start_workload(h, cluster, topic, partitions, producers=2, rate_per_s=rate_per_s)
    try:
        if not h.wait_ack_sent_after(0, 30, topic):
            raise HarnessError("the workload got no ack before the first fault")
        for k in range(kills):
            p = k % partitions
            victim = cluster.leader_of(topic, p)
            if victim == -1:
                raise HarnessError(f"{topic}-{p} has no leader before kill {k + 1}")
            led = [q for q, l in cluster.leaders(topic).items() if l == victim]
            controller = cluster.controller()
            killed_at = cluster.kill9(victim)
            h.event(f"kill -9 node {victim} (leads {led})")
            # When the metadata names another leader (HTTP, polled every
            # 0.1 s), to tell a slow election from a slow client.
            try:
                cluster.wait_leader(topic, p, not_in=[victim], timeout_s=FAILOVER_WAIT_S)
                moved = f"{time.monotonic() - killed_at:.2f}s"
            except HarnessError:
                moved = "never"
            ack = h.wait_ack_sent_after(killed_at, FAILOVER_WAIT_S, topic, led)
            latency = ack.acked_at - killed_at if ack else None
            report.latencies.append(latency)
            report.note(f"kill {k + 1}/{kills}: node {victim}{' (the controller)' if victim == controller else ''} "
                        f"leading {led}; new leader of {p} after {moved}; next ack "
                        f"{f'{latency:.2f}s' if latency is not None else f'none within {FAILOVER_WAIT_S}s'}")
            if latency is None or latency > FAILOVER_BOUND_S:
                report.violations.append(f"kill {k + 1}: next ack on {led} after "
                                         f"{'never' if latency is None else f'{latency:.2f}s'} "
                                         f"(bound {FAILOVER_BOUND_S}s)")
            cluster.restart(victim)
            if not _isr_back(report, cluster, topic, f"after restarting node {victim} (kill {k + 1})"):
                break  # a further kill would not test failover from a full ISR
    finally:
        _stop_workload(workers)
    _finish(report, h, cluster, topic, partitions)
    summary = latency_summary(report.latencies)
    report.note(f"kill -> next ack: {format_latency(summary)}")
    return report


def run_kill_two(cluster: Cluster, *, partitions: int = 3, window_s: float = 8.0,
                 report: Report | None = None) -> Report:
    """kill -9 the two nodes that do not lead partition 0, at once: while only
    one node is up nothing sent after the kill is acknowledged (a pinned raw
    producer to the survivor gets only errors such as NOT_ENOUGH_REPLICAS or
    REQUEST_TIMED_OUT); after restarting both, acks resume and every
    acknowledged record is there.

    The client producers keep the long delivery timeout: records sent into
    the outage wait and are acknowledged after the restart, which is
    correct. (A short timeout would make librdkafka bump the idempotent
    producer's epoch and re-send in-flight records under it, which can
    legitimately duplicate them: librdkafka#4953.)"""
    report = report or Report("kill-two")
    h = History()
    topic = f"two-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, partitions, 3, TOPIC_CONFIGS)
    cluster.wait_isr(topic)
    workers = _start_workload(h, cluster, topic, partitions, producers=1, rate_per_s=100, consumer=False)
    pinned = None
    try:
        if not h.wait_ack_sent_after(0, 30, topic):
            raise HarnessError("the workload got no ack before the fault")
        survivor = cluster.leader_of(topic, 0)
        victims = [i for i in sorted(cluster.nodes) if i != survivor]
        sent_before = workers[0].sent
        killed_at = 0.0
        for v in victims:
            killed_at = cluster.kill9(v)
        h.event(f"kill -9 nodes {victims}")
        pinned = PinnedProducer(h, cluster.nodes[survivor], topic, 0, name="pinned")
        pinned.start()
        # The outage window is the test: it runs its full length even when
        # an ack (a violation) shows up early, so the report counts them all.
        threading.Event().wait(window_s)
        pinned.stop()
        restart_at = time.monotonic()
        sent_in_window = workers[0].sent - sent_before
        acked_alone = [a for a in h.acks if a.sent_at > killed_at and a.acked_at < restart_at]
        report.note(f"only node {survivor} up for {window_s}s: the producer sent {sent_in_window} records, "
                    f"{len(acked_alone)} acknowledged meanwhile; pinned raw produce to node {survivor}: "
                    f"{dict(Counter(a.outcome for a in pinned.attempts))}")
        report.violations += _cap([f"acknowledged with only node {survivor} up: {a.value!r} at "
                                   f"{a.topic}-{a.partition}@{a.offset}, {a.acked_at - killed_at:.2f}s "
                                   f"after the kill" for a in acked_alone])
        report.violations += check_never_acked(pinned.attempts, killed_at)
        if not sent_in_window or not pinned.attempts:
            raise HarnessError("nothing was sent during the outage; the test proved nothing")
        for v in victims:
            cluster.nodes[v].launch(cluster.voters, cluster.settings)
        for v in victims:
            cluster.wait_ready(v)
        _isr_back(report, cluster, topic, f"after restarting nodes {victims}")
        if not h.wait_ack_sent_after(time.monotonic(), FAILOVER_WAIT_S * 2, topic):
            report.violations.append("no ack after both nodes came back")
    finally:
        if pinned is not None and pinned.is_alive():
            pinned.stop()
        _stop_workload(workers)
    _finish(report, h, cluster, topic, partitions)
    return report


def run_isolate_leader(cluster: Cluster, *, isolation_s: float = 8.0, controller_too: bool = False,
                       report: Report | None = None) -> Report:
    """A network partition cuts the leader of a one-partition topic off from
    the other nodes (clients still reach it): a producer pinned to it gets no
    ack, the majority elects a new leader and acks resume; after healing the
    old leader truncates and follows, and all replicas hold the same log.
    The topic is placed so that its leader is the active controller
    (`controller_too`) or is not: the majority must then also elect a new
    controller before it can move the partition."""
    assert cluster.net is not None, "needs a cluster in network namespaces"
    report = report or Report("isolate-leader" + ("+controller" if controller_too else ""))
    h = History()
    topic = f"iso-{uuid.uuid4().hex[:8]}"
    controller = cluster.controller()
    if controller is None:
        raise HarnessError("no node names the active controller")
    target = controller if controller_too else min(i for i in cluster.nodes if i != controller)
    cluster.create_topic(topic, 1, 3, TOPIC_CONFIGS,
                         assignment=[[target] + [i for i in sorted(cluster.nodes) if i != target]])
    cluster.wait_isr(topic)
    workers = _start_workload(h, cluster, topic, 1, producers=2, rate_per_s=100)
    pinned = None
    try:
        if not h.wait_ack_sent_after(0, 30, topic):
            raise HarnessError("the workload got no ack before the fault")
        old = cluster.leader_of(topic, 0)
        majority = [i for i in cluster.nodes if i != old]
        controller = cluster.controller()
        cluster.net.isolate(old)
        cut_at = time.monotonic()
        h.event(f"isolate node {old}")
        pinned = PinnedProducer(h, cluster.nodes[old], topic, 0, name="pinned")
        pinned.start()
        try:
            new = cluster.wait_leader(topic, 0, not_in=[old], via=majority, timeout_s=FAILOVER_WAIT_S)
        except HarnessError as e:
            new = None
            views = {}
            for i in majority:
                st = cluster.nodes[i].status() or {}
                q = st.get("quorum") or {}
                views[i] = {"quorum_leader": q.get("leader"), "term": q.get("term"),
                            "fenced": sorted(b["node_id"] for b in st.get("brokers", []) if b["fenced"])}
            report.violations.append(f"the majority {majority} elected no new leader: {e}; partition as they "
                                     f"see it: {cluster.partition(topic, 0, via=majority)}; their quorum and "
                                     f"fenced brokers: {views}")
        # A new client that knows only the majority's nodes: its metadata
        # names the new leader, so its acks show the majority takes writes.
        # It may still ask the cut-off node (Metadata lists fenced brokers),
        # which answers from its stale view until it suspends itself, two
        # broker sessions after the cut (docs/design.md, "A broker cut off
        # from the controller"). The running producers' first ack after the
        # cut is reported, not bound. PROBE_DEBUG=<librdkafka debug
        # contexts> logs this client's view, for a failure here.
        probe_at = time.monotonic()
        probe = ProducerWorker(h, cluster.bootstrap(majority), topic, [0], name="majority-probe", rate_per_s=50,
                               **({"debug": os.environ["PROBE_DEBUG"]} if os.environ.get("PROBE_DEBUG") else {}))
        probe.start()
        workers.append(probe)
        ack = h.wait(lambda hh: next((a for a in hh.acks if a.producer == "majority-probe"), None), FAILOVER_WAIT_S)
        latency = ack.acked_at - cut_at if ack else None
        report.latencies.append(latency)
        first = h.wait_ack_sent_after(cut_at, FAILOVER_WAIT_S, topic)
        report.note(f"isolated node {old}{' (the controller)' if old == controller else ''}; "
                    f"majority {majority} elected node {new}; a client of the majority "
                    f"got its first ack {f'{latency:.2f}s' if latency is not None else 'never'} after the cut "
                    f"(started {probe_at - cut_at:.2f}s after it); the running producers' first ack of a record "
                    f"sent after the cut: {f'{first.acked_at - cut_at:.2f}s' if first else 'none'}")
        if ack is None:
            report.violations.append(f"a client of the majority {majority} got no ack within {FAILOVER_WAIT_S}s")
        # Keep the old leader cut off for the rest of the window (its pinned
        # producer keeps asking), woken early by nothing: the window is the test.
        pinned.stop_event.wait(max(0.0, isolation_s - (time.monotonic() - cut_at)))
        pinned.stop()
        cluster.net.heal(old)
        h.event(f"heal node {old}")
        cluster.wait_brokers(set(cluster.nodes))
        _isr_back(report, cluster, topic, f"after healing node {old}")
        report.note(f"pinned producer to node {old}: {dict(Counter(a.outcome for a in pinned.attempts))}")
        report.violations += check_never_acked(pinned.attempts, cut_at)
    finally:
        if pinned is not None and pinned.is_alive():
            pinned.stop()
        for i in list(cluster.net.isolated):
            cluster.net.heal(i)
        _stop_workload(workers)
    final = _finish(report, h, cluster, topic, 1)
    report.violations += check_absent(final, {a.value for a in pinned.attempts},
                                      "written by the cut-off leader and not truncated")
    try:
        cluster.wait_replicas_agree(topic)
    except HarnessError as e:
        report.violations.append(str(e))
    logs = {i: cluster.replica_log(i, topic, 0) for i in cluster.nodes}
    report.note(f"replica log lengths: {{{', '.join(f'{i}: {len(l)}' for i, l in logs.items())}}}")
    report.violations += check_replicas_identical(logs, f"{topic}-0")
    return report


def run_rolling_restart(cluster: Cluster, *, rounds: int = 1, partitions: int = 3,
                        report: Report | None = None) -> Report:
    """SIGTERM, restart and wait for every node in turn, `rounds` times,
    under load: clients see only retriable errors and no delivery fails."""
    report = report or Report("rolling-restart")
    h = History()
    topic = f"roll-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, partitions, 3, TOPIC_CONFIGS)
    cluster.wait_isr(topic)
    workers = _start_workload(h, cluster, topic, partitions, producers=2, rate_per_s=150)
    try:
        if not h.wait_ack_sent_after(0, 30, topic):
            raise HarnessError("the workload got no ack before the first restart")
        stalled = False
        for r in range(rounds):
            if stalled:
                break
            for i in sorted(cluster.nodes):
                t = time.monotonic()
                code = cluster.terminate(i)
                stopped = time.monotonic() - t
                h.event(f"SIGTERM node {i} (exit {code})")
                if code != 0:
                    report.violations.append(f"node {i} exited {code} on SIGTERM")
                cluster.restart(i)
                if not _isr_back(report, cluster, topic, f"after restarting node {i}"):
                    stalled = True  # restarting the next node would take the partition below min ISR
                    break
                report.note(f"round {r + 1}: node {i} stopped in {stopped:.2f}s, back in sync after "
                            f"{time.monotonic() - t:.2f}s")
    finally:
        _stop_workload(workers)
    _finish(report, h, cluster, topic, partitions)
    report.violations += _cap([f"delivery failed: {f.value!r} on {f.topic}-{f.partition}: {f.error}"
                               for f in h.failures])
    report.violations += _cap([f"non-retriable client error at {e.client}: {e.error} {e.text}"
                               for e in h.errors if not e.retriable])
    return report


# Settings for the balancing scenarios: plan every half second (the default
# 2 s only makes them slower), and a disk high-water mark the shared CI disk
# cannot reach (every node's data sits on the same file system; the mark
# itself is unit-tested in the planner).
# Preferred-leader balancing is checked every second rather than Kafka's 5
# minutes, so leaders follow the balancer's preferred replicas in the test.
BALANCE_SETTINGS = {"balancer.interval_ms": "500", "balancer.disk_high_watermark_percent": "100",
                    "leader.imbalance_check_interval_seconds": "1"}

# How long a cluster may take to balance after a broker joins or leaves.
BALANCE_TIMEOUT_S = 150.0


def _balanced(status: dict | None, brokers: set[int], percent: int = 10) -> bool:
    """No move in flight and every broker of `brokers` holds a share of the
    replicas within the balancer's tolerance (`percent` of the mean, at
    least 1) of every other one's."""
    if not status or status["moves"]:
        return False
    loads = [b["replicas"] for b in status["brokers"] if b["node_id"] in brokers]
    if len(loads) != len(brokers):
        return False
    tolerance = max(1, -(-sum(loads) * percent // (len(loads) * 100)))
    return max(loads) - min(loads) <= tolerance


def _loaded_topic(h: History, cluster: Cluster, prefix: str, partitions: int, rf: int,
                  before: str) -> tuple[str, list]:
    """A new topic with a full ISR and the usual workload on it (two
    producers, a group member), once the workload has an ack: the state
    every balancing scenario starts its change from."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, partitions, rf, TOPIC_CONFIGS)
    cluster.wait_isr(topic, size=rf)
    workers = _start_workload(h, cluster, topic, partitions, producers=2, rate_per_s=150)
    if not h.wait_ack_sent_after(0, 30, topic):
        _stop_workload(workers)
        raise HarnessError(f"the workload got no ack before {before}")
    return topic, workers


def _leaders_balanced(status: dict | None, brokers: set[int], percent: int = 10) -> bool:
    """Every broker of `brokers` leads a share of the partitions within twice
    the tolerance of every other's: the balancer spreads preferred replicas
    within one tolerance, and Kafka's leader balancing lets a broker lead up
    to `leader.imbalance.per.broker.percentage` (10 %) fewer than it is
    preferred for."""
    if not status:
        return False
    leaders = [b["leaders"] for b in status["brokers"] if b["node_id"] in brokers]
    if len(leaders) != len(brokers):
        return False
    tolerance = max(1, -(-sum(leaders) * percent // (len(leaders) * 100)))
    return max(leaders) - min(leaders) <= 2 * tolerance


def _loads(status: dict | None) -> str:
    if not status:
        return "no balance status"
    return ", ".join(f"node {b['node_id']}: {b['replicas']} replicas, {b['leaders']} leaders"
                     for b in status["brokers"]) + f"; {len(status['moves'])} moves in flight"


def run_scale_out(cluster: Cluster, *, partitions: int = 60, rf: int = 3, new_node: int = 4,
                  report: Report | None = None) -> Report:
    """Adds a broker to a cluster under load: within BALANCE_TIMEOUT_S every
    broker holds a balanced share of the replicas and of the leaderships
    (the new one included), and no acknowledged record is lost."""
    report = report or Report("scale-out")
    h = History()
    topic, workers = _loaded_topic(h, cluster, "scale", partitions, rf, "the new broker joined")
    try:
        report.note(f"before: {_loads(cluster.balance())}")
        t = time.monotonic()
        cluster.add_node(new_node)
        h.event(f"node {new_node} joined")
        brokers = set(cluster.nodes)
        # Status samples taken while moves were in flight.
        progress: list[dict] = []

        def balanced():
            st = cluster.balance()
            if st and st["moves"]:
                progress.append(st)
            return _balanced(st, brokers)

        try:
            wait_for(balanced, BALANCE_TIMEOUT_S, f"the cluster to balance onto node {new_node}", 0.25)
            report.note(f"balanced {time.monotonic() - t:.1f}s after node {new_node} joined: "
                        f"{_loads(cluster.balance())}")
        except HarnessError:
            report.violations.append(f"not balanced {BALANCE_TIMEOUT_S}s after node {new_node} joined: "
                                     f"{_loads(cluster.balance())}")
        held = next((b["replicas"] for b in (cluster.balance() or {}).get("brokers", [])
                     if b["node_id"] == new_node), 0)
        if held == 0:
            report.violations.append(f"node {new_node} holds no replica")
        try:
            wait_for(lambda: _leaders_balanced(cluster.balance(), brokers), BALANCE_TIMEOUT_S,
                     "leadership to follow the balanced preferred replicas", 0.5)
            report.note(f"leaders balanced {time.monotonic() - t:.1f}s after node {new_node} joined: "
                        f"{_loads(cluster.balance())}")
        except HarnessError:
            report.violations.append(f"leaders not balanced {BALANCE_TIMEOUT_S}s after node {new_node} "
                                     f"joined: {_loads(cluster.balance())}")
        # Reported, not checked: these moves copy a few KB and often finish
        # before the next heartbeat reports a size (test_throttle.py checks
        # the reporting on a move that lasts).
        sized = [m for st in progress for m in st["moves"] if m["bytes_total"] is not None]
        report.note(f"{len(progress)} status samples with moves in flight; {len(sized)} moves with sizes; "
                    f"largest bytes left {max((st['bytes_left'] for st in progress), default=0)}")
    finally:
        _stop_workload(workers)
    _finish(report, h, cluster, topic, partitions)
    return report


def run_decommission(cluster: Cluster, *, victim: int, partitions: int = 20, rf: int = 3,
                     report: Report | None = None) -> Report:
    """`sluice cluster decommission` a broker under load: it waits until the
    broker holds no replica, the broker is then stopped, and clients saw
    only retriable errors, no failed delivery and no lost record."""
    report = report or Report("decommission")
    h = History()
    topic, workers = _loaded_topic(h, cluster, "decom", partitions, rf, "the decommission")
    try:
        report.note(f"before: {_loads(cluster.balance())}")
        t = time.monotonic()
        done = cluster.sluice_cli("decommission", str(victim), "--timeout-secs", str(int(BALANCE_TIMEOUT_S)),
                                  timeout_s=BALANCE_TIMEOUT_S + 30)
        report.note(f"`sluice cluster decommission {victim}` exited {done.returncode} after "
                    f"{time.monotonic() - t:.1f}s: {done.stdout.strip().splitlines()[-1:]} {done.stderr.strip()}")
        if done.returncode != 0 or "safe to stop" not in done.stdout:
            report.violations.append(f"decommission did not finish: {done.stdout} {done.stderr}")
        status = cluster.balance()
        left = next((b["replicas"] for b in (status or {}).get("brokers", []) if b["node_id"] == victim), None)
        if left != 0:
            report.violations.append(f"node {victim} still holds {left} replicas: {_loads(status)}")
        shown = cluster.sluice_cli("balance", "status", "--json", timeout_s=30)
        try:
            drained = next(b["drained"] for b in json.loads(shown.stdout)["brokers"] if b["broker_id"] == victim)
        except (ValueError, KeyError, StopIteration):
            drained = None
        if drained is not True:
            report.violations.append(f"`sluice cluster balance status --json` does not show node {victim} drained: "
                                     f"{shown.stdout} {shown.stderr}")
        code = cluster.terminate(victim)
        h.event(f"SIGTERM node {victim} (exit {code})")
        if code != 0:
            report.violations.append(f"node {victim} exited {code} on SIGTERM")
        # The workload goes on without the node: it was holding nothing.
        if not h.wait_ack_sent_after(time.monotonic(), 30, topic):
            report.violations.append(f"no ack after node {victim} stopped")
        report.note(f"after: {_loads(cluster.balance())}")
    finally:
        _stop_workload(workers)
    _finish(report, h, cluster, topic, partitions)
    report.violations += _cap([f"delivery failed: {f.value!r} on {f.topic}-{f.partition}: {f.error}"
                               for f in h.failures])
    report.violations += _cap([f"non-retriable client error at {e.client}: {e.error} {e.text}"
                               for e in h.errors if not e.retriable])
    return report


def run_lost_broker(cluster: Cluster, *, victim: int, partitions: int = 12, rf: int = 3,
                    report: Report | None = None) -> Report:
    """kill -9 a broker, under load: once it has been gone for
    `balancer.lost_broker_timeout_ms` its replicas are re-created on the
    others, so every partition is back to `rf` in-sync replicas without it;
    when it comes back its stale replicas are deleted and it takes a share
    again; no acknowledged record is lost."""
    report = report or Report("lost-broker")
    h = History()
    topic, workers = _loaded_topic(h, cluster, "lost", partitions, rf, "the kill")
    try:
        held = [p["partition"] for p in cluster.describe(topic)["partitions"] if victim in p["replicas"]]
        killed_at = cluster.kill9(victim)
        h.event(f"kill -9 node {victim} for good (held {held})")

        def restored():
            try:
                parts = cluster.describe(topic)["partitions"]
            except HarnessError:
                return False
            return all(victim not in p["replicas"] and len(p["replicas"]) == rf and len(p["isr"]) == rf
                       for p in parts)

        try:
            wait_for(restored, BALANCE_TIMEOUT_S, f"node {victim}'s replicas to be re-created elsewhere", 0.5)
            report.note(f"node {victim} held {len(held)} of {partitions} partitions; all back to {rf} "
                        f"in-sync replicas {time.monotonic() - killed_at:.1f}s after the kill")
        except HarnessError:
            report.violations.append(f"replicas not restored {BALANCE_TIMEOUT_S}s after node {victim} was lost: "
                                     f"{cluster.describe(topic)['partitions']}")
        status = cluster.balance()
        lost = next((b for b in (status or {}).get("brokers", []) if b["node_id"] == victim), None)
        if not lost or not lost["lost"]:
            report.violations.append(f"the balance status does not show node {victim} lost: {status}")
        # It comes back: the replicas moved off it while it was down are
        # deleted there, and it takes a share again.
        cluster.restart(victim)
        h.event(f"node {victim} back")
        try:
            wait_for(lambda: _balanced(cluster.balance(), set(cluster.nodes)), BALANCE_TIMEOUT_S,
                     f"the cluster to balance with node {victim} back", 0.5)
        except HarnessError:
            report.violations.append(f"not balanced after node {victim} came back: {_loads(cluster.balance())}")
        placed = {p["partition"] for p in cluster.describe(topic)["partitions"] if victim in p["replicas"]}
        on_disk = {int(d.name.rsplit("-", 1)[1]) for d in cluster.nodes[victim].data_dir.iterdir()
                   if d.is_dir() and d.name.rsplit("-", 1)[0] == topic}
        report.note(f"node {victim} back: holds {sorted(placed)}; its disk has {sorted(on_disk)}")
        if on_disk != placed:
            report.violations.append(f"node {victim}'s disk holds {sorted(on_disk)} of {topic}, "
                                     f"the metadata places {sorted(placed)} there")
    finally:
        _stop_workload(workers)
    _finish(report, h, cluster, topic, partitions)
    return report


def run_reassignment_across_controller_failover(cluster: Cluster, *, partitions: int = 6,
                                                report: Report | None = None) -> Report:
    """Starts reassignments (Kafka's AlterPartitionReassignments, through
    the HTTP API of the decommission: every replica of a node moves) and
    kill -9s the active controller while they are in flight: after the
    failover they complete, and no acknowledged record is lost."""
    report = report or Report("reassignment-controller-failover")
    h = History()
    topic = f"move-{uuid.uuid4().hex[:8]}"
    controller = cluster.controller()
    if controller is None:
        raise HarnessError("no active controller")
    # Put every replica on the controller and one other node, so the moves
    # (off the controller, to the node holding none) start at once.
    others = sorted(i for i in cluster.nodes if i != controller)
    spare = others[-1]
    assignment = [[controller, others[0]] if p % 2 == 0 else [others[0], controller]
                  for p in range(partitions)]
    cluster.create_topic(topic, partitions, 2, TOPIC_CONFIGS, assignment=assignment)
    cluster.wait_isr(topic, size=2)
    workers = _start_workload(h, cluster, topic, partitions, producers=1, rate_per_s=150)
    try:
        if not h.wait_ack_sent_after(0, 30, topic):
            raise HarnessError("the workload got no ack before the reassignment")
        # The moves: the controller's replica of every partition to `spare`.
        target = {p: [spare if b == controller else b for b in a] for p, a in enumerate(assignment)}
        ok = cluster.nodes[others[0]].http("POST", f"/v1/cluster/brokers/{controller}/decommission")
        if not ok or ok[0] != 202:
            raise HarnessError(f"decommission via HTTP failed: {ok}")
        wait_for(lambda: (cluster.balance() or {}).get("moves"), 30, "a move to be in flight", 0.05)
        killed_at = cluster.kill9(controller)
        h.event(f"kill -9 node {controller} (the controller) with moves in flight")
        report.note(f"killed the controller (node {controller}) with moves in flight")

        def moved():
            try:
                parts = cluster.describe(topic)["partitions"]
            except HarnessError:
                return False
            return all(sorted(p["replicas"]) == sorted(target[p["partition"]]) for p in parts)

        try:
            wait_for(moved, BALANCE_TIMEOUT_S, "the reassignments to complete after the failover", 0.5)
            report.note(f"every move done {time.monotonic() - killed_at:.1f}s after the kill; "
                        f"new controller {cluster.controller()}")
        except HarnessError:
            report.violations.append(f"moves not done {BALANCE_TIMEOUT_S}s after the controller's kill: "
                                     f"{cluster.describe(topic)['partitions']}")
    finally:
        _stop_workload(workers)
    _finish(report, h, cluster, topic, partitions)
    return report


EOS_SETTINGS = {
    # Internal topics (__consumer_offsets, __transaction_state) get the
    # default replication factor: 3, so coordinators can fail over.
    "topics.default_replication_factor": "3",
    "groups.offsets_topic_num_partitions": "3",
}


def _thread_at(t: threading.Thread) -> str:
    """The innermost line of this module a running thread is at (which client
    call a stuck pipeline waits in)."""
    frame = sys._current_frames().get(t.ident)
    while frame is not None and frame.f_code.co_filename != __file__:
        frame = frame.f_back
    if frame is None:
        return "an unknown place"
    import linecache
    return f"line {frame.f_lineno}: {linecache.getline(__file__, frame.f_lineno).strip()}"


def run_eos_coordinator_failover(cluster: Cluster, *, inputs: int = 1500, report: Report | None = None) -> Report:
    """A consume-transform-produce pipeline with transactions, across kill -9
    of the transaction coordinator's node (and then the group
    coordinator's, when another node): a transaction commits within
    2 x FAILOVER_WAIT_S of each kill, each input appears exactly once in the
    read_committed output, no aborted data is read, committed offsets never
    go backwards.

    A pipeline that commits nothing after a kill is a violation; it is then
    replaced by a new one with the same transactional id (which fences it
    and aborts its open transaction, as a supervisor restarting a stuck
    worker would), so the exactly-once checks still run on the output."""
    report = report or Report("eos-coordinator-failover")
    h = History()
    tag = uuid.uuid4().hex[:8]
    src, dst, partitions = f"eos-src-{tag}", f"eos-dst-{tag}", 3
    group, txn_id = f"eos-group-{tag}", f"eos-txn-{tag}"
    for t in (src, dst):
        cluster.create_topic(t, partitions, min(3, len(cluster.nodes)), TOPIC_CONFIGS)
        cluster.wait_isr(t)
    values = [f"in-{k:06d}".encode() for k in range(inputs)]
    produce_all(cluster.bootstrap(), src, values, partitions)
    pipes: list[EosPipeline] = []

    def new_pipeline() -> EosPipeline:
        pipe = EosPipeline(h, cluster.bootstrap(), src, dst, partitions, group=group, txn_id=txn_id,
                           total=inputs, deadline_s=180.0, incarnation=len(pipes) + 1)
        pipes.append(pipe)
        pipe.start()
        return pipe

    pipe = new_pipeline()
    try:
        if not pipe.wait_committed_after(0, 5, 60):
            raise HarnessError(f"the pipeline committed no transactions before the fault: {pipe.fatal}; "
                               f"client errors: {[(e.client, e.error, e.text) for e in h.errors][:8]}")
        offsets_parts = int(cluster.settings.get("groups.offsets_topic_num_partitions", "50"))
        targets = [("transaction", "__transaction_state", coordinator_partition(txn_id, 50)),
                   ("group", "__consumer_offsets", coordinator_partition(group, offsets_parts))]
        killed: set[int] = set()
        for role, internal, part in targets:
            victim = cluster.leader_of(internal, part)
            if victim in killed or victim == -1:
                report.note(f"{role} coordinator ({internal}-{part}) is node {victim}: already killed")
                continue
            killed.add(victim)
            killed_at = cluster.kill9(victim)
            h.event(f"kill -9 node {victim} ({role} coordinator)")
            ok = pipe.wait_committed_after(killed_at, 1, FAILOVER_WAIT_S * 2)
            after = next((at - killed_at for _, at in pipe.committed_txns if at > killed_at), None)
            report.latencies.append(after)
            report.note(f"killed node {victim}, the {role} coordinator ({internal}-{part}); next committed "
                        f"transaction {f'{after:.2f}s' if after is not None else 'never'} later")
            if not ok:
                report.violations.append(f"no transaction committed within {FAILOVER_WAIT_S * 2}s of killing "
                                         f"the {role} coordinator (pipeline {pipe.incarnation}: "
                                         f"{pipe.fatal or pipe.crash or 'stuck in ' + _thread_at(pipe)})")
            cluster.restart(victim)
            if not ok:
                pipe.stop_event.set()
                pipe = new_pipeline()
                report.note(f"replaced the stuck pipeline by pipeline {pipe.incarnation}")
        pipe.done.wait(200)
    finally:
        for p in pipes:
            p.stop_event.set()
        pipe.join(60)
    if pipe.is_alive():
        report.violations.append(f"pipeline {pipe.incarnation} did not finish: stuck in {_thread_at(pipe)}")
    if pipe.crash:
        report.violations.append(f"pipeline crashed: {pipe.crash!r}")
    if pipe.fatal:
        report.violations.append(f"pipeline: {pipe.fatal}")
    out = read_partitions(cluster.bootstrap(), dst, partitions, name="rc-reader", isolation="read_committed")
    everything = read_partitions(cluster.bootstrap(), dst, partitions, name="ru-reader")
    aborted_ids = {f"{p.incarnation}.{t}".encode() for p in pipes for t in p.aborted_txns}
    aborted = {r.value for r in everything if r.value.rsplit(b"#", 1)[-1] in aborted_ids}

    def source_of(v: bytes) -> bytes | None:
        if not v.startswith(b"out-") or b"#" not in v:
            return None
        return v[4:].rsplit(b"#", 1)[0]

    committed = sum(len(p.committed_txns) for p in pipes)
    report.acked = committed
    report.errors = Counter(e.error for e in h.errors)
    report.note(f"{len(pipes)} pipeline(s); {committed} transactions committed, "
                f"{sum(len(p.aborted_txns) for p in pipes)} aborted; "

                f"read_committed output {len(out)} records, read_uncommitted {len(everything)}")
    report.violations += check_exactly_once(values, out, source_of)
    report.violations += check_no_aborted(out, aborted)
    report.violations += check_commits_monotonic(h.commits)
    report.violations += check_consumers_agree(
        [dataclasses.replace(r, consumer="rc") for r in out] +
        [dataclasses.replace(r, consumer="ru") for r in everything if r.value not in aborted])
    return report
