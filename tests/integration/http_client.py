"""A tiny client for Sluice's HTTP API, on the standard library only, used by
test_http_api.py, test_metrics.py and test_console_browser.py."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

from util import wait_until

# The HTTP listener starts right after the logs are recovered; /ready turns
# 200 once the Kafka listener is up too.
READY_TIMEOUT_S = 30.0


class Http:
    def __init__(self, broker):
        self.base = f"http://127.0.0.1:{broker.http_port}"

    def url(self, path: str) -> str:
        return self.base + path

    def raw(self, method: str, path: str, data: bytes | None = None,
            headers: dict | None = None, timeout: float = 30.0):
        """(status, headers, body bytes); never raises for an HTTP status."""
        req = urllib.request.Request(self.url(path), data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                return res.status, dict(res.headers), res.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def call(self, method: str, path: str, body=None):
        """(status, parsed JSON or None)."""
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        status, _, raw = self.raw(method, path, data, headers)
        return status, (json.loads(raw) if raw else None)

    def ok(self, method: str, path: str, body=None, status: int = 200):
        got, data = self.call(method, path, body)
        assert got == status, f"{method} {path}: expected {status}, got {got}: {data}"
        return data

    def get(self, path: str):
        return self.ok("GET", path)

    def wait_ready(self) -> None:
        def ready():
            try:
                return self.raw("GET", "/ready", timeout=1.0)[0] == 200
            except OSError:
                return False

        wait_until(ready, READY_TIMEOUT_S, f"{self.base}/ready to answer 200")

    def create_topic(self, name: str, partitions: int = 1, configs: dict | None = None):
        return self.ok("POST", "/v1/topics",
                       {"name": name, "partitions": partitions, "configs": configs or {}}, status=201)

    def produce(self, topic: str, records: list[dict]):
        return self.ok("POST", f"/v1/topics/{topic}/records", {"records": records})["offsets"]


def assert_error(status_body, status: int, error_code: str | None = None):
    """An error answer: the status, and a JSON body with error_code and message."""
    got, body = status_body
    assert got == status, f"expected {status}, got {got}: {body}"
    assert isinstance(body, dict) and set(body) == {"error_code", "message"}, body
    assert body["message"], body
    if error_code is not None:
        assert body["error_code"] == error_code, body
    return body


def metric(http: Http, name: str) -> int:
    """The value of an unlabelled integer metric from `/metrics`."""
    status, _, body = http.raw("GET", "/metrics")
    assert status == 200
    m = re.search(rb"^" + re.escape(name.encode()) + rb" (\d+)", body, re.M)
    assert m, f"{name} not exported"
    return int(m.group(1))
