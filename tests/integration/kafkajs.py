"""Runs kafkajs (Node.js) against a broker: tests/integration/js/client.js.

scripts/test.sh installs Node and `npm ci`s the pinned kafkajs into
tests/integration/js/node_modules. One call creates a topic, produces
`count` values and consumes them back in a group, with the TLS and SASL
settings given; the script answers one JSON line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

JS_DIR = Path(__file__).parent / "js"
# Bound on one kafkajs run: connect, create, produce, join a group, consume.
RUN_TIMEOUT_S = 90


def available() -> bool:
    """Whether node and the installed kafkajs are present."""
    return shutil.which("node") is not None and (JS_DIR / "node_modules" / "kafkajs").is_dir()


def round_trip(
    bootstrap: str,
    topic: str,
    *,
    count: int = 10,
    ssl: dict | None = None,
    sasl: dict | None = None,
    retries: int = 3,
    timeout_ms: int = 30_000,
) -> dict:
    """Produces and consumes `count` values; returns the script's JSON answer
    (`ok` true with `produced`/`consumed`, or `ok` false with kafkajs's
    error `error`/`message`/`type`)."""
    args = {
        "bootstrap": bootstrap,
        "topic": topic,
        "count": count,
        "ssl": ssl,
        "sasl": sasl,
        "retries": retries,
        "timeout_ms": timeout_ms,
    }
    done = subprocess.run(
        ["node", str(JS_DIR / "client.js"), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=JS_DIR,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"kafkajs printed nothing (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(lines[-1])


def registry_available() -> bool:
    """Whether node and the installed @kafkajs/confluent-schema-registry are present."""
    return available() and (JS_DIR / "node_modules" / "@kafkajs" / "confluent-schema-registry").is_dir()


def registry_round_trip(bootstrap: str, registry_url: str, topic: str, *, count: int = 5,
                        timeout_ms: int = 30_000) -> dict:
    """Runs js/registry.js: registers an Avro, a JSON and a Protobuf schema
    with @kafkajs/confluent-schema-registry, produces `count` values encoded
    with each through kafkajs and decodes them back; returns its JSON answer."""
    args = {"bootstrap": bootstrap, "registry": registry_url, "topic": topic, "count": count,
            "timeout_ms": timeout_ms}
    done = subprocess.run(
        ["node", str(JS_DIR / "registry.js"), json.dumps(args)],
        capture_output=True, text=True, timeout=3 * RUN_TIMEOUT_S, cwd=JS_DIR,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"registry.js printed nothing (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(lines[-1])

