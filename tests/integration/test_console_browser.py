"""The web console in a real browser: Debian's headless Chromium driven over
WebDriver (chromedriver + selenium). Creates a topic in the UI, produces over
the HTTP API, sees the messages, and sees a consumer group's lag. Screenshots
go to target/console-screenshots/ (kept as CI artifacts)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from harness import REPO_ROOT
from http_client import Http

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = REPO_ROOT / "target" / "console-screenshots"
# Every UI wait is on a condition; this is only the deadline.
UI_TIMEOUT_S = 20


@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium and chromium-driver are required (apt-get install chromium chromium-driver); "
                    "scripts/test.sh installs them")
    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1440,900",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(UI_TIMEOUT_S)
    yield driver
    driver.quit()


def shot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000, f"screenshot {path} looks empty"
    return path


def wait(driver):
    return WebDriverWait(driver, UI_TIMEOUT_S)


def consume_and_commit(bootstrap: str, topic: str, group: str, commit_offset: int) -> None:
    """A real consumer joins `group`, reads, and commits `commit_offset` for
    partition 0, then leaves; the group keeps the committed offset."""
    import confluent_kafka as ck

    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 30
        got = None
        while got is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got = m
        assert got is not None, "consumer received nothing"
        c.commit(offsets=[ck.TopicPartition(topic, 0, commit_offset)], asynchronous=False)
    finally:
        c.close()


def test_console_create_topic_browse_messages_and_see_group_lag(broker, browser, topic_name):
    http = Http(broker)
    http.wait_ready()
    d = browser

    # 0. The overview loads and shows the cluster.
    d.get(http.url("/"))
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "cluster-pill"), ":"))
    wait(d).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ov-cards .card")) >= 6)
    assert d.find_element(By.ID, "page-title").text == "Overview"

    # 1. Create a topic in the console.
    d.find_element(By.ID, "nav-topics").click()
    wait(d).until(EC.element_to_be_clickable((By.ID, "create-topic-btn"))).click()
    name_input = wait(d).until(EC.visibility_of_element_located((By.ID, "new-topic-name")))
    name_input.send_keys(topic_name)
    parts = d.find_element(By.ID, "new-topic-partitions")
    parts.clear()
    parts.send_keys("2")
    d.find_element(By.ID, "create-topic-submit").click()
    wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-topic="{topic_name}"]')))
    described = http.get(f"/v1/topics/{topic_name}")
    assert len(described["partitions"]) == 2
    shot(d, "01-topics")

    # 2. Produce through the API: JSON values with keys, all to partition 0.
    n = 12
    records = [{"key": f"user-{i}", "value": {"order": i, "item": "book", "price": 9.5 + i},
                "partition": 0, "headers": [{"key": "source", "value": "test"}]} for i in range(n)]
    offsets = http.produce(topic_name, records)
    assert [o["offset"] for o in offsets] == list(range(n))

    # 3. See the messages in the browser, and one pretty-printed.
    d.get(http.url(f"/#/messages/{topic_name}/0"))
    wait(d).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.msg-row")) == n)
    rows = d.find_elements(By.CSS_SELECTOR, "tr.msg-row")
    assert "user-11" in rows[-1].text and '"order":11' in rows[-1].text.replace(" ", "")
    rows[0].click()
    pre = wait(d).until(EC.visibility_of_element_located((By.CSS_SELECTOR, "tr.msg-detail pre.value")))
    assert json.loads(pre.text) == records[0]["value"]
    key_filter = d.find_element(By.ID, "msg-key")
    key_filter.send_keys("user-1")  # user-1, user-10, user-11
    wait(d).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.msg-row")) == 3)
    shot(d, "02-messages")

    # 3b. Live tail: records produced after Start appear without a reload.
    d.get(http.url(f"/#/tail/{topic_name}"))
    # "live" appears on the EventSource's open event: the stream's start
    # offsets are fixed, so the record produced next must arrive.
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "tail-status"), "live"))
    http.produce(topic_name, [{"key": "live-1", "value": {"live": True}, "partition": 1}])
    wait(d).until(lambda d: "live-1" in d.find_element(By.ID, "tail-table").text)
    shot(d, "05-live-tail")

    # 4. A consumer group's lag.
    group = f"{topic_name}-group"
    consume_and_commit(broker.bootstrap, topic_name, group, commit_offset=5)
    d.get(http.url(f"/#/group/{group}"))
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "group-total-lag"), str(n - 5)))
    row = wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-tp="{topic_name}-0"]')))
    assert row.find_element(By.CSS_SELECTOR, "td.lag").text == str(n - 5)
    shot(d, "03-group-lag")
    d.get(http.url("/#/groups"))
    cell = wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-group="{group}"] td.lag-total')))
    assert cell.text == str(n - 5)

    # 5. The overview again, now with data, for the screenshot set.
    d.get(http.url("/#/overview"))
    wait(d).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ov-topics tr")) >= 2)
    shot(d, "00-overview")
    d.get(http.url(f"/#/topic/{topic_name}"))
    wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#partition-table tbody tr")))
    shot(d, "04-topic")

    # 6. The API reference page lists every operation of the OpenAPI document.
    spec = http.get("/v1/openapi.json")
    d.find_element(By.ID, "nav-api").click()
    wait(d).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".op")) > 0)
    shown = {e.get_attribute("id") for e in d.find_elements(By.CSS_SELECTOR, ".op")}
    documented = {"op-" + op["operationId"] for item in spec["paths"].values() for op in item.values()}
    assert shown == documented
    shot(d, "06-api")
