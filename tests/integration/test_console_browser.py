"""The web console in a real browser: Debian's headless Chromium driven over
WebDriver (chromedriver + selenium). Creates a topic in the UI, produces over
the HTTP API, sees the messages, and sees a consumer group's lag. Screenshots
go to target/console-screenshots/ (kept as CI artifacts). The Balance view
runs against a real three-node cluster: a broker decommissioned from the
browser is drained by the balancer, then brought back into service. With
`http_auth` on, the login form refuses a wrong password, shows the signed-in
principal and data for the right one, and logging out leaves nothing behind."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import faults
from harness import REPO_ROOT
from http_client import Http

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException, StaleElementReferenceException, TimeoutException)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = REPO_ROOT / "target" / "console-screenshots"
# Every UI wait is on a condition; this is only the deadline.
UI_TIMEOUT_S = 20
# Bound on the balancer draining a decommissioned broker's replicas (the
# cluster runs faults.BALANCE_SETTINGS: a balancing round every 500 ms).
DRAIN_TIMEOUT_S = 90


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
    # The console re-renders tables and panels when its data refreshes, so
    # an element found by a condition can go stale before it is read; the
    # condition is then simply evaluated again on the next poll.
    return WebDriverWait(driver, UI_TIMEOUT_S, ignored_exceptions=(StaleElementReferenceException,))


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


def test_console_table_tab_lists_a_compacted_topics_keys_and_searches_by_prefix(broker, browser, topic_name):
    http = Http(broker)
    d = browser
    http.create_topic(topic_name, 2, {"cleanup.policy": "compact"})
    plain = f"{topic_name}-plain"
    http.create_topic(plain, 1)
    records = [{"key": f"user-{i % 6}", "value": {"n": i}} for i in range(30)]
    records += [{"key": f"order-{i}", "value": f"order value {i}"} for i in range(3)]
    http.produce(topic_name, records)

    # A topic that is not compacted has no Table tab.
    d.get(http.url(f"/#/topic/{plain}"))
    wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#partition-table tbody tr")))
    assert not d.find_element(By.ID, "tp-tab-table").is_displayed()

    d.get(http.url(f"/#/topic/{topic_name}"))
    wait(d).until(EC.element_to_be_clickable((By.ID, "tp-tab-table"))).click()
    rows = (By.CSS_SELECTOR, "#kv-keys tbody tr.kv-row")
    wait(d).until(lambda d: len(d.find_elements(*rows)) == 9)
    cells = [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in d.find_elements(*rows)]
    # Keys in byte order, each with its latest value.
    assert [c[0] for c in cells] == [f"order-{i}" for i in range(3)] + [f"user-{i}" for i in range(6)]
    assert json.loads(cells[0][1]) == "order value 0"  # stored as JSON text
    assert json.loads(cells[3][1]) == {"n": 24}
    assert json.loads(cells[8][1]) == {"n": 29}
    shot(d, "07-topic-table")

    # The prefix search narrows the table.
    box = d.find_element(By.ID, "kv-prefix")
    box.send_keys("order-")
    d.find_element(By.ID, "kv-search").click()
    # The search repaints the table: a row read mid-repaint is read again.
    swait(d).until(lambda d: [r.find_element(By.TAG_NAME, "td").text for r in d.find_elements(*rows)]
                  == [f"order-{i}" for i in range(3)])
    assert "starting with" in d.find_element(By.ID, "kv-summary").text


@pytest.fixture
def cluster3(tmp_path):
    c = faults.Cluster(tmp_path / "cluster", size=3, settings=faults.BALANCE_SETTINGS)
    print(f"cluster work dir (node logs): {c.workdir}")
    try:
        yield c.start()
    finally:
        c.stop()


def broker_row(d, node_id: int) -> dict:
    """What the Balance view shows for one broker ({} while it is not listed),
    read in one script so a refresh cannot repaint the row halfway."""
    return d.execute_script("""
        const row = document.querySelector(`#balance-brokers tr[data-broker="${arguments[0]}"]`);
        if (!row) return {};
        return { replicas: row.querySelector("td.replicas").textContent.trim(),
                 state: row.querySelector("td.state").textContent.trim() };""", node_id)


def balance_status(http: Http) -> dict | None:
    """GET /v1/cluster/balance, or None while no controller answers (503)."""
    got, data = http.call("GET", "/v1/cluster/balance")
    return data if got == 200 else None


def click_and_confirm(d, selector: str) -> None:
    """Clicks the button and accepts the confirm dialog. A refresh may repaint
    the row between finding the button and clicking it; that click did not
    happen, so it is retried on the new button."""

    def click(d):
        d.find_element(By.CSS_SELECTOR, selector).click()
        return True

    WebDriverWait(d, UI_TIMEOUT_S, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
        click, message=f"cannot click {selector}")
    wait(d).until(EC.element_to_be_clickable((By.ID, "confirm-ok"))).click()


def broker_load(d, http: Http, node_id: int) -> dict:
    """Broker `node_id`'s entry of GET /v1/cluster/balance."""
    status = wait(d).until(lambda _: balance_status(http), message="GET /v1/cluster/balance never answered 200")
    return next(b for b in status["brokers"] if b["node_id"] == node_id)


def until(d, timeout_s: float, condition, describe) -> None:
    """Waits for `condition`; on time-out fails with `describe()`, the state
    seen last (WebDriverWait's message is fixed before it starts waiting)."""
    try:
        WebDriverWait(d, timeout_s).until(condition)
    except TimeoutException:
        raise AssertionError(f"after {timeout_s}s: {describe()}") from None


def test_console_balance_view_decommissions_and_recommissions_a_broker(cluster3, browser, topic_name):
    c = cluster3
    http = Http(c.nodes[1])
    d = browser
    c.create_topic(topic_name, 6, 2)

    # 1. The view lists the three brokers with the replica counts the API
    # reports, once no move is in flight (the counts then stand still).
    d.get(http.url("/#/balance"))
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "bal-enabled"), "on"))
    seen = {}

    def shows_api_counts(d):
        status = balance_status(http)
        if status is None or status["moves"]:
            return False
        seen["api"] = {b["node_id"]: b["replicas"] for b in status["brokers"]}
        seen["ui"] = {i: broker_row(d, i).get("replicas") for i in (1, 2, 3)}
        return seen["ui"] == {i: str(n) for i, n in seen["api"].items()}

    until(d, DRAIN_TIMEOUT_S, shows_api_counts, lambda: f"the view's replica counts vs the API's: {seen}")
    assert set(seen["api"]) == {1, 2, 3}
    # 6 partitions x 2 replicas, plus replicas of internal topics if any.
    assert sum(seen["api"].values()) >= 12
    assert seen["api"][3] > 0, "broker 3 holds nothing to drain"
    assert all(broker_row(d, i)["state"] == "in service" for i in (1, 2, 3))
    shot(d, "07-balance")

    # 2. Decommission broker 3 from the browser: the balancer moves its
    # replicas to brokers 1 and 2 and the view says it is safe to stop.
    click_and_confirm(d, '#balance-brokers tr[data-broker="3"] button[data-decommission]')
    until(d, DRAIN_TIMEOUT_S,
          lambda d: broker_row(d, 3) == {"replicas": "0", "state": "decommissioned: safe to stop"},
          lambda: f"broker 3 not shown drained: view {broker_row(d, 3)}, API {balance_status(http)}")
    api_b3 = broker_load(d, http, 3)
    assert api_b3["decommissioning"] and api_b3["drained"] and api_b3["replicas"] == 0
    # Node 1 serves the topic from its own image, which may trail the
    # controller's by a moment.
    wait(d).until(lambda _: all(3 not in p["replicas"] for p in http.get(f"/v1/topics/{topic_name}")["partitions"]),
                  message="a partition still lists broker 3")
    shot(d, "08-balance-drained")

    # 3. Recommission it: back in service, with a Decommission button again.
    click_and_confirm(d, '#balance-brokers tr[data-broker="3"] button[data-recommission]')
    until(d, UI_TIMEOUT_S, lambda d: broker_row(d, 3).get("state") == "in service",
          lambda: f"broker 3 not shown in service: {broker_row(d, 3)}")
    wait(d).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, '#balance-brokers tr[data-broker="3"] button[data-decommission]')))
    api_b3 = broker_load(d, http, 3)
    assert not api_b3["decommissioning"]
    shot(d, "09-balance-recommissioned")

    # 4. A refused call shows the error body's message. With brokers 1 and 2
    # decommissioning, taking broker 3 too would leave none in service.
    for i in (1, 2):
        http.ok("POST", f"/v1/cluster/brokers/{i}/decommission", status=202)
    until(d, UI_TIMEOUT_S, lambda d: all(broker_row(d, i).get("state") != "in service" for i in (1, 2)),
          lambda: f"brokers 1 and 2 not shown decommissioning: {[broker_row(d, i) for i in (1, 2)]}")
    click_and_confirm(d, '#balance-brokers tr[data-broker="3"] button[data-decommission]')
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "toast"), "would leave no broker in service"))
    assert "error" in d.find_element(By.ID, "toast").get_attribute("class")
    shot(d, "10-balance-refused")
    assert not broker_load(d, http, 3)["decommissioning"]
    assert broker_row(d, 3).get("state") == "in service"
    for i in (1, 2):
        http.ok("DELETE", f"/v1/cluster/brokers/{i}/decommission", status=204)



def test_console_balance_view_on_a_single_node_shows_the_balancer_off(broker, browser):
    """A single node has no balancer and, today, lists no broker load: the
    view says so, and null totals read "unknown"."""
    http = Http(broker)
    http.wait_ready()
    d = browser
    status = http.get("/v1/cluster/balance")
    assert status["enabled"] is False and status["moves"] == [] and status["brokers"] == []
    d.get(http.url("/#/balance"))
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "bal-enabled"), "off"))
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "bal-brokers"), "the balancer runs only in a cluster"))
    assert d.find_element(By.ID, "bal-move-count").text == "0"
    assert d.find_element(By.ID, "bal-bytes-left").text == "0 B"
    # No copy rate was ever measured: null reads "unknown".
    assert status["rate_bytes_per_s"] is None
    assert d.find_element(By.ID, "bal-rate").text == "unknown"
    assert d.find_element(By.ID, "bal-moves").text == "No partition is moving."


# -- sign-in with http_auth on ------------------------------------------------

CONSOLE_USER = ("operator", "operator-secret")
AUTH_KEY = "sluice.console.auth"


@pytest.fixture
def auth_broker(broker_factory, tmp_path):
    """A PLAINTEXT Kafka listener (so the test can produce without SASL) and
    an HTTP listener that needs credentials: the SCRAM user CONSOLE_USER."""
    config = tmp_path / "http-auth.toml"
    config.write_text(f"""
[[sasl.bootstrap_users]]
name = "{CONSOLE_USER[0]}"
password = "{CONSOLE_USER[1]}"
mechanism = "SCRAM-SHA-512"

[http_auth]
enabled = true
""")
    return broker_factory.new(extra_args=["--config", str(config)])


def stored_auth(d):
    return d.execute_script(f"return sessionStorage.getItem('{AUTH_KEY}');")


def login_visible(d) -> bool:
    return d.find_element(By.ID, "login").is_displayed()


def sign_in(d, user: str, password: str) -> None:
    for field, text in (("login-user", user), ("login-password", password)):
        el = d.find_element(By.ID, field)
        el.clear()
        el.send_keys(text)
    d.find_element(By.ID, "login-submit").click()


def test_console_sign_in_shows_data_only_to_the_signed_in_user(auth_broker, browser, topic_name):
    import confluent_kafka as ck
    from confluent_kafka.admin import AdminClient, NewTopic

    http = Http(auth_broker)
    http.wait_ready()
    admin = AdminClient({"bootstrap.servers": auth_broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=1)])[topic_name].result(30)
    producer = ck.Producer({"bootstrap.servers": auth_broker.bootstrap})
    producer.produce(topic_name, key=b"before", value=b'{"n":1}')
    assert producer.flush(30) == 0
    d = browser
    topic_rows = (By.CSS_SELECTOR, f'tr[data-topic="{topic_name}"]')

    # 1. Unauthenticated: the login form, no principal, no data.
    d.get(http.url("/#/topics"))
    wait(d).until(lambda d: login_visible(d))
    assert not d.find_element(By.ID, "principal").is_displayed()
    assert not d.find_element(By.ID, "logout").is_displayed()
    assert d.find_elements(*topic_rows) == []
    assert topic_name not in d.find_element(By.ID, "view").text
    shot(d, "10-login")

    # 2. A wrong password: an error on the form, still no data, no token.
    sign_in(d, CONSOLE_USER[0], "not-the-password")
    wait(d).until(lambda d: d.find_element(By.ID, "login-error").text.strip() != "")
    refusal = d.find_element(By.ID, "login-error").text
    # The console's background calls keep getting 401 while signed out;
    # one of them (the heartbeat, run here to completion) must not wipe
    # the reason off the form.
    d.execute_async_script("heartbeat().then(() => arguments[0]())")
    assert d.find_element(By.ID, "login-error").text == refusal
    assert login_visible(d)
    assert stored_auth(d) is None
    assert d.find_elements(*topic_rows) == []
    assert topic_name not in d.find_element(By.ID, "view").text
    assert not d.find_element(By.ID, "principal").is_displayed()
    shot(d, "11-login-refused")

    # 3. The right password: the principal, a stored token, the topic list.
    sign_in(d, *CONSOLE_USER)
    wait(d).until(lambda d: not login_visible(d))
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "principal"), f"User:{CONSOLE_USER[0]}"))
    assert d.find_element(By.ID, "logout").is_displayed()
    wait(d).until(EC.presence_of_element_located(topic_rows))
    stored = json.loads(stored_auth(d))
    assert stored["principal"] == f"User:{CONSOLE_USER[0]}" and stored["token"]
    assert CONSOLE_USER[1] not in stored_auth(d)
    # The token the console holds is a real one.
    status, _, body = http.raw("GET", "/v1/auth/whoami", headers={"authorization": "Bearer " + stored["token"]})
    assert status == 200 and json.loads(body)["principal"] == f"User:{CONSOLE_USER[0]}"
    shot(d, "12-signed-in")

    # 4. The live tail works with the token (fetch-based stream).
    d.get(http.url(f"/#/tail/{topic_name}"))
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "tail-status"), "live"))
    producer.produce(topic_name, key=b"live-signed-in", value=b'{"n":2}')
    assert producer.flush(30) == 0
    wait(d).until(lambda d: "live-signed-in" in d.find_element(By.ID, "tail-table").text)

    # 5. Log out: the login form again, the token gone and revoked, and
    # nothing of the signed-in session left on the page or streaming.
    d.find_element(By.ID, "logout").click()
    wait(d).until(lambda d: login_visible(d))
    assert stored_auth(d) is None
    assert not d.find_element(By.ID, "principal").is_displayed()
    status, _, _ = http.raw("GET", "/v1/auth/whoami", headers={"authorization": "Bearer " + stored["token"]})
    assert status == 401
    view_text = d.find_element(By.ID, "view").text
    assert "live-signed-in" not in view_text and topic_name not in view_text, view_text
    assert d.find_elements(By.ID, "tail-records") == []
    d.execute_async_script("heartbeat().then(() => arguments[0]())")
    assert d.find_element(By.ID, "login-error").text == "Signed out."
    shot(d, "13-signed-out")

    # 6. Signing in again brings the data back.
    sign_in(d, *CONSOLE_USER)
    wait(d).until(lambda d: not login_visible(d))
    d.get(http.url("/#/topics"))
    wait(d).until(EC.presence_of_element_located(topic_rows))


# -- the Schemas page -----------------------------------------------------------

def test_console_schemas_page_lists_subjects_shows_versions_diffs_and_sets_the_level(broker, browser):
    """Two versions registered on the registry's own listener show up in the
    console (which reaches the registry through /v1/registry on the HTTP
    listener): the subject list, the version's text, the line diff from the
    previous version, and a level set from the page that the registry keeps."""
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    http = Http(broker)
    http.wait_ready()
    sr = SchemaRegistryClient({"url": f"http://127.0.0.1:{broker.registry_port}"})
    v1 = json.dumps({"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]})
    v2 = json.dumps({"type": "record", "name": "Order", "fields": [
        {"name": "id", "type": "long"}, {"name": "note", "type": "string", "default": ""}]})
    sr.register_schema("orders-value", Schema(v1, "AVRO"))
    second = sr.register_schema("orders-value", Schema(v2, "AVRO"))
    d = browser
    d.get(http.url("/#/schemas"))
    row = wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-subject="orders-value"]')))
    assert "AVRO" in row.text and str(second) in row.text, row.text
    row.find_element(By.CSS_SELECTOR, "a").click()
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "sr-schema-title"), f"Version 2 · id {second}"))
    assert '"note"' in d.find_element(By.ID, "sr-schema").text
    # The diff is drawn after the title, once the previous version is fetched.
    seen = {}

    def note_added(d):
        seen["added"] = d.execute_script(
            "return [...document.querySelectorAll('#sr-diff .add')].map((a) => a.textContent)")
        return any('"note"' in a for a in seen["added"])

    until(d, UI_TIMEOUT_S, note_added, lambda: f"lines added in the diff: {seen}")
    shot(d, "schemas-diff")
    Select = pytest.importorskip("selenium.webdriver.support.select").Select
    Select(d.find_element(By.ID, "sr-subject-level")).select_by_visible_text("FULL")
    d.find_element(By.ID, "sr-set-level").click()

    def level_is_full(_):
        status, body = http.call("GET", "/v1/registry/config/orders-value")
        return status == 200 and body.get("compatibilityLevel") == "FULL"

    wait(d).until(level_is_full)


def test_console_message_browser_decodes_records_written_with_a_schema(broker, browser, topic_name):
    """Records that confluent-kafka's AvroSerializer wrote show in the
    message browser as their decoded JSON with the schema's type and id, not
    as binary; a record whose schema id is unknown says why it was not
    decoded."""
    import struct

    from confluent_kafka import Producer
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    http = Http(broker)
    http.wait_ready()
    sr = SchemaRegistryClient({"url": f"http://127.0.0.1:{broker.registry_port}"})
    schema = json.dumps({"type": "record", "name": "Payment", "fields": [
        {"name": "payer", "type": "string"}, {"name": "cents", "type": "long"}]})
    serialize = AvroSerializer(sr, schema)
    ctx = SerializationContext(topic_name, MessageField.VALUE)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    producer.produce(topic_name, key=b"k1", value=serialize({"payer": "ada-lovelace", "cents": 4200}, ctx))
    producer.produce(topic_name, key=b"k2", value=b"\x00" + struct.pack(">i", 424242) + b"\x02")
    assert producer.flush(30) == 0
    schema_id = sr.get_latest_version(f"{topic_name}-value").schema_id

    d = browser
    d.get(http.url(f"/#/messages/{topic_name}/0"))
    wait(d).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.msg-row")) == 2)
    rows = d.find_elements(By.CSS_SELECTOR, "tr.msg-row")
    assert f"AVRO · id {schema_id}" in rows[0].text, rows[0].text
    assert "ada-lovelace" in rows[0].text and "4200" in rows[0].text, rows[0].text
    assert "schema 424242: not decoded" in rows[1].text, rows[1].text
    rows[0].click()
    pre = wait(d).until(EC.visibility_of_element_located((By.CSS_SELECTOR, "tr.msg-detail pre.value")))
    assert json.loads(pre.text) == {"payer": "ada-lovelace", "cents": 4200}
    shot(d, "messages-schema-decoded")


# -- issue 19: dialogs, not-found pages, layout, charts, theme ----------------

Keys = pytest.importorskip("selenium.webdriver.common.keys").Keys


def modal_open(d) -> bool:
    return d.execute_script("return !document.getElementById('modal').hidden")


def swait(d):
    """A wait that retries when a refresh repaints the element it looks at."""
    return WebDriverWait(d, UI_TIMEOUT_S, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))


def click(d, selector: str) -> None:
    """Clicks `selector`, again if a refresh replaced it before the click."""
    def clicked(d):
        d.find_element(By.CSS_SELECTOR, selector).click()
        return True

    swait(d).until(clicked, message=f"cannot click {selector}")


def test_console_esc_and_navigation_close_dialogs(broker, browser, topic_name):
    http = Http(broker)
    http.wait_ready()
    http.create_topic(topic_name, 1)
    d = browser
    d.get(http.url("/#/topics"))

    # Esc closes the create-topic dialog.
    wait(d).until(EC.element_to_be_clickable((By.ID, "create-topic-btn"))).click()
    wait(d).until(EC.visibility_of_element_located((By.ID, "new-topic-name")))
    assert modal_open(d)
    shot(d, "19-dialog-open")
    d.find_element(By.ID, "new-topic-name").send_keys(Keys.ESCAPE)
    wait(d).until(lambda d: not modal_open(d))

    # Esc on a confirm answers "no": the topic is still there.
    row = wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-topic="{topic_name}"]')))
    row.find_element(By.CSS_SELECTOR, "button[data-delete]").click()
    wait(d).until(EC.visibility_of_element_located((By.ID, "confirm-ok")))
    d.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait(d).until(lambda d: not modal_open(d))
    assert http.call("GET", f"/v1/topics/{topic_name}")[0] == 200

    # A dialog does not survive navigation to another page.
    wait(d).until(EC.element_to_be_clickable((By.ID, "create-topic-btn"))).click()
    wait(d).until(EC.visibility_of_element_located((By.ID, "new-topic-name")))
    # (The backdrop covers the sidebar; a hash change is what any link,
    # bookmark or typed address does.)
    d.execute_script("location.hash = '#/groups'")
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "page-title"), "Consumer groups"))
    assert not modal_open(d)
    assert d.find_elements(By.ID, "new-topic-name") == []
    # And the browser's Back button is navigation too.
    d.get(http.url("/#/topics"))
    wait(d).until(EC.element_to_be_clickable((By.ID, "create-topic-btn"))).click()
    wait(d).until(EC.visibility_of_element_located((By.ID, "new-topic-name")))
    d.back()
    wait(d).until(lambda d: not modal_open(d))


def test_console_missing_group_and_topic_show_a_not_found_page(broker, browser):
    http = Http(broker)
    http.wait_ready()
    d = browser
    assert http.call("GET", "/v1/groups/nope")[0] == 404
    for path in ("/#/groups/nope", "/#/group/nope"):
        d.get(http.url(path))
        box = wait(d).until(EC.visibility_of_element_located((By.ID, "not-found")))
        assert "No consumer group “nope”" in box.text, box.text
        # Nothing of a group page: no cards, panels or buttons that act on it.
        for gone in ("g-cards", "g-reset", "g-delete", "g-offsets", "g-members"):
            assert d.find_elements(By.ID, gone) == [], gone
        assert box.find_element(By.CSS_SELECTOR, "a").get_attribute("href").endswith("#/groups")
    shot(d, "19-group-not-found")
    d.get(http.url("/#/topic/no-such-topic"))
    box = wait(d).until(EC.visibility_of_element_located((By.ID, "not-found")))
    assert "No topic “no-such-topic”" in box.text
    assert d.find_elements(By.ID, "tp-add-partitions") == []


def card_rows(d, container: str) -> list[int]:
    """How many cards each visual row of `container` holds, top to bottom."""
    return d.execute_script("""
        const rows = new Map();
        for (const c of document.querySelectorAll(arguments[0] + " > .card")) {
          const top = Math.round(c.getBoundingClientRect().top);
          rows.set(top, (rows.get(top) || 0) + 1);
        }
        return [...rows.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);""", container)


def test_console_stat_cards_fill_balanced_rows_at_every_width(broker, browser):
    http = Http(broker)
    http.wait_ready()
    d = browser
    d.get(http.url("/#/overview"))
    wait(d).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ov-cards .card")) == 7)
    seen = {}
    for width in (1400, 1280, 1100, 960, 800, 640):
        d.set_window_size(width, 900)

        def balanced(d):
            rows = card_rows(d, "#ov-cards")
            seen[width] = rows
            return sum(rows) == 7 and max(rows) - min(rows) <= 1

        until(d, UI_TIMEOUT_S, balanced, lambda: f"card rows per width: {seen}")
        if width == 1400:
            shot(d, "19-cards-1400")
    # At 1400 px the seven cards are not six plus one.
    assert seen[1400] != [6, 1]


def niceness(labels: list[str]) -> tuple[float, str]:
    """The step between tick labels like "0/s", "20/s" or "5 KiB/s", checked
    to be 1, 2 or 5 times a power of ten, with every label a multiple."""
    import math
    import re

    units = {re.sub(r"^[\d.]+\s*", "", label) for label in labels[1:]}
    assert len(units) == 1, labels
    values = [float(re.match(r"[\d.]+", label).group()) for label in labels]
    assert values[0] == 0, labels
    step = values[1]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 5), labels
    for i, v in enumerate(values):
        assert math.isclose(v, i * step, rel_tol=1e-9, abs_tol=1e-9), labels
    return step, units.pop()


def test_console_chart_axes_use_round_tick_values(broker, browser, topic_name):
    http = Http(broker)
    http.wait_ready()
    d = browser
    d.get(http.url("/#/overview"))
    wait(d).until(lambda d: d.find_element(By.ID, "chart-msgs").get_attribute("data-ticks"))
    ticks = d.execute_script("""
        const c = document.getElementById("chart-msgs");
        const at = Date.now() - 1000;
        drawLineChart(c, [{ color: "#14b8a6", points: [[at - 5000, 12], [at, 38]] }], { unit: "rate" });
        const rate = JSON.parse(c.dataset.ticks);
        drawLineChart(c, [{ color: "#3b82f6", points: [[at - 5000, 100], [at, 5000]] }], { unit: "bytes" });
        const bytes = JSON.parse(c.dataset.ticks);
        drawLineChart(c, [{ color: "#3b82f6", points: [[at, 3.3 * 1024 * 1024]] }], { unit: "bytes" });
        return { rate, bytes, mib: JSON.parse(c.dataset.ticks) };""")
    assert ticks["rate"] == ["0/s", "10/s", "20/s", "30/s", "40/s"], ticks
    assert ticks["bytes"] == ["0 KiB/s", "1 KiB/s", "2 KiB/s", "3 KiB/s", "4 KiB/s", "5 KiB/s"], ticks
    assert niceness(ticks["mib"])[1] == "MiB/s", ticks

    # The live charts too, once the broker has measured some traffic.
    http.create_topic(topic_name, 1)

    def traffic_charted(d):
        http.produce(topic_name, [{"value": {"n": i, "pad": "x" * 300}} for i in range(37)])
        c = d.find_element(By.ID, "chart-msgs")
        return int(c.get_attribute("data-points") or 0) >= 2

    WebDriverWait(d, 60).until(traffic_charted)
    for chart in ("chart-msgs", "chart-bytes"):
        labels = json.loads(d.find_element(By.ID, chart).get_attribute("data-ticks"))
        assert len(labels) >= 3, labels
        niceness(labels)
    shot(d, "19-chart-ticks")


def sidebar_width(d) -> float:
    return d.execute_script("return document.querySelector('.sidebar').getBoundingClientRect().width")


def test_console_sidebar_collapses_when_narrow_and_remembers_the_toggle(broker, browser):
    http = Http(broker)
    http.wait_ready()
    d = browser
    d.set_window_size(800, 900)
    d.get(http.url("/#/overview"))
    wait(d).until(lambda d: sidebar_width(d) < 80)
    assert not d.find_element(By.CSS_SELECTOR, "#nav-topics .nav-label").is_displayed()
    # The icons still navigate.
    d.find_element(By.ID, "nav-topics").click()
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "page-title"), "Topics"))
    shot(d, "19-sidebar-800")

    d.set_window_size(1400, 900)
    wait(d).until(lambda d: sidebar_width(d) > 200)
    assert d.find_element(By.CSS_SELECTOR, "#nav-topics .nav-label").is_displayed()
    d.find_element(By.ID, "side-toggle").click()
    wait(d).until(lambda d: sidebar_width(d) < 80)
    d.refresh()
    wait(d).until(EC.presence_of_element_located((By.ID, "topics-table")))
    assert sidebar_width(d) < 80, "the collapse was not remembered"
    assert d.execute_script("return localStorage.getItem('sluice.console.sidebar')") == "collapsed"
    shot(d, "19-sidebar-collapsed")
    # Expanding by hand is remembered too, even at a narrow width.
    d.find_element(By.ID, "side-toggle").click()
    wait(d).until(lambda d: sidebar_width(d) > 200)
    d.set_window_size(800, 900)
    d.refresh()
    wait(d).until(EC.presence_of_element_located((By.ID, "topics-table")))
    assert sidebar_width(d) > 200


def luminance(css_color: str) -> float:
    """Relative luminance (WCAG) of an rgb()/rgba()/#rrggbb colour."""
    import re

    if css_color.startswith("#"):
        rgb = [int(css_color[i:i + 2], 16) for i in (1, 3, 5)]
    else:
        rgb = [int(float(x)) for x in re.findall(r"[\d.]+", css_color)[:3]]

    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def page_colors(d) -> dict:
    return d.execute_script("""
        const panel = document.querySelector(".panel");
        const chart = document.getElementById("chart-msgs");
        const badge = document.querySelector(".badge");
        return { badgeBg: badge ? getComputedStyle(badge).backgroundColor : null,
                 badgeInk: badge ? getComputedStyle(badge).color : null,
                 bg: getComputedStyle(document.body).backgroundColor,
                 panel: panel ? getComputedStyle(panel).backgroundColor : null,
                 ink: getComputedStyle(document.body).color,
                 chartInk: chart ? chart.dataset.ink : null };""")


def emulate_color_scheme(d, scheme: str) -> None:
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]})


def test_console_dark_mode_follows_the_system_and_the_toggle_is_remembered(broker, browser):
    http = Http(broker)
    http.wait_ready()
    d = browser
    ready = (lambda d: d.find_element(By.ID, "chart-msgs").get_attribute("data-ink"))

    # The system says dark: the console is dark, charts readable on it.
    emulate_color_scheme(d, "dark")
    d.get(http.url("/#/overview"))
    wait(d).until(ready)
    c = page_colors(d)
    assert luminance(c["bg"]) < 0.05 and luminance(c["panel"]) < 0.05, c
    assert contrast(c["ink"], c["panel"]) >= 7, c
    assert contrast(c["chartInk"], c["panel"]) >= 4.5, c
    # Badges (the broker table's role) are readable on their own background.
    wait(d).until(lambda d: page_colors(d)["badgeInk"])
    c = page_colors(d)
    assert contrast(c["badgeInk"], c["badgeBg"]) >= 4.5, c
    shot(d, "19-dark-overview")

    # The toggle switches to light, and a reload keeps it over the system's dark.
    d.find_element(By.ID, "theme-toggle").click()
    wait(d).until(lambda d: luminance(page_colors(d)["bg"]) > 0.8)
    d.refresh()
    wait(d).until(ready)
    c = page_colors(d)
    assert luminance(c["bg"]) > 0.8, c
    assert d.execute_script("return localStorage.getItem('sluice.console.theme')") == "light"
    assert contrast(c["chartInk"], c["panel"]) >= 4.5, c
    wait(d).until(lambda d: page_colors(d)["badgeInk"])
    c = page_colors(d)
    assert contrast(c["badgeInk"], c["badgeBg"]) >= 4.5, c
    shot(d, "19-light-overview")

    # Chosen dark holds over a light system too.
    emulate_color_scheme(d, "light")
    d.find_element(By.ID, "theme-toggle").click()
    d.refresh()
    wait(d).until(ready)
    assert luminance(page_colors(d)["bg"]) < 0.05
    d.get(http.url("/#/topics"))
    wait(d).until(EC.presence_of_element_located((By.ID, "topics-table")))
    shot(d, "19-dark-topics")


def test_console_charts_keep_their_history_across_a_reload(broker, browser, topic_name):
    """The overview charts come from the broker's history buffer
    (GET /v1/metrics/history), so the points drawn before a reload are
    drawn again right after it."""
    http = Http(broker)
    http.wait_ready()
    http.create_topic(topic_name, 1)
    d = browser

    def busy_history(_):
        http.produce(topic_name, [{"value": {"n": i}} for i in range(25)])
        samples = http.get("/v1/metrics/history")["samples"]
        return sum(1 for s in samples if s["messages_in_per_s"] > 0) >= 2

    # A sample every 5 s: two with traffic need about 10 s.
    WebDriverWait(d, 60).until(busy_history, message="the history never showed two busy samples")
    history = http.get("/v1/metrics/history")
    assert history["interval_ms"] == 5000 and history["retention_ms"] == 15 * 60 * 1000
    d.get(http.url("/#/overview"))
    chart = (By.ID, "chart-msgs")
    wait(d).until(lambda d: int(d.find_element(*chart).get_attribute("data-points") or 0) >= 2)
    before_first = int(d.find_element(*chart).get_attribute("data-first-t"))
    before_points = int(d.find_element(*chart).get_attribute("data-points"))
    assert before_first <= history["samples"][-1]["t_ms"]
    shot(d, "19-history-before-reload")

    d.refresh()
    # The first drawing after the reload already has the earlier points.
    wait(d).until(lambda d: d.find_element(*chart).get_attribute("data-points") is not None)
    after_first = int(d.find_element(*chart).get_attribute("data-first-t"))
    after_points = int(d.find_element(*chart).get_attribute("data-points"))
    assert after_first == before_first, (before_first, after_first)
    assert after_points >= before_points, (before_points, after_points)
    shot(d, "19-history-after-reload")


def test_console_topic_configs_show_defaults_edit_and_reset_and_add_partitions(broker, browser, topic_name):
    http = Http(broker)
    http.wait_ready()
    http.create_topic(topic_name, 1, {"retention.ms": "3600000"})
    listed = {c["name"]: c for c in http.get(f"/v1/topics/{topic_name}/configs")["configs"]}
    assert listed["retention.ms"] == {"name": "retention.ms", "value": "3600000", "is_default": False,
                                      "source": "TOPIC_CONFIG", "sensitive": False, "editable": True}
    assert listed["segment.bytes"]["is_default"] and listed["segment.bytes"]["value"]
    d = browser
    d.get(http.url(f"/#/topic/{topic_name}"))

    def config_row(name):
        return d.find_element(By.CSS_SELECTOR, f'#topic-configs tr[data-config="{name}"]')

    def cells(name):
        row = config_row(name)
        return row.find_element(By.CSS_SELECTOR, "td.value").text, row.find_element(By.CSS_SELECTOR, "td.source").text

    assert swait(d).until(lambda d: cells("retention.ms")) == ("3600000", "override")
    assert swait(d).until(lambda d: cells("segment.bytes")) == (listed["segment.bytes"]["value"], "default")
    shot(d, "19-topic-configs")

    # Edit a default into an override.
    click(d, '#topic-configs tr[data-config="max.message.bytes"] button[data-edit]')
    box = wait(d).until(EC.visibility_of_element_located((By.ID, "cfg-edit-value")))
    box.clear()
    box.send_keys("200000")
    d.find_element(By.ID, "cfg-edit-save").click()
    wait(d).until(lambda d: not modal_open(d))
    assert http.get(f"/v1/topics/{topic_name}")["configs"]["max.message.bytes"] == "200000"
    swait(d).until(lambda d: cells("max.message.bytes") == ("200000", "override"))
    # A bad value is refused with the broker's message, in the dialog.
    click(d, '#topic-configs tr[data-config="max.message.bytes"] button[data-edit]')
    box = wait(d).until(EC.visibility_of_element_located((By.ID, "cfg-edit-value")))
    box.clear()
    box.send_keys("lots")
    d.find_element(By.ID, "cfg-edit-save").click()
    wait(d).until(lambda d: d.find_element(By.ID, "cfg-edit-error").text.strip() != "")
    d.find_element(By.ID, "cfg-edit-cancel").click()

    # Reset an override to the default.
    click(d, '#topic-configs tr[data-config="retention.ms"] button[data-reset]')
    swait(d).until(lambda d: cells("retention.ms")[1] == "default")
    assert "retention.ms" not in http.get(f"/v1/topics/{topic_name}")["configs"]
    # Overrides only.
    d.find_element(By.ID, "cfg-overrides-only").click()
    swait(d).until(lambda d: [r.get_attribute("data-config") for r in d.find_elements(By.CSS_SELECTOR, "#topic-configs tbody tr")]
                   == ["max.message.bytes"])

    # Add partitions: 1 -> 3.
    d.find_element(By.ID, "tp-add-partitions").click()
    count = wait(d).until(EC.visibility_of_element_located((By.ID, "ap-count")))
    count.clear()
    count.send_keys("3")
    d.find_element(By.ID, "ap-submit").click()
    wait(d).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#partition-table tbody tr")) == 3)
    assert len(http.get(f"/v1/topics/{topic_name}")["partitions"]) == 3
    shot(d, "19-topic-partitions-added")


def test_console_group_offsets_reset_to_an_offset_and_a_time_and_members_show_assignments(broker, browser, topic_name):
    import confluent_kafka as ck

    http = Http(broker)
    http.wait_ready()
    http.create_topic(topic_name, 2)
    base_ms = int(time.time() * 1000) - 60_000
    http.produce(topic_name, [{"key": f"k{i}", "value": {"n": i}, "partition": 0, "timestamp_ms": base_ms + i * 1000}
                              for i in range(10)])
    group = f"{topic_name}-g"
    consume_and_commit(broker.bootstrap, topic_name, group, commit_offset=5)
    d = browser
    d.get(http.url(f"/#/group/{group}"))
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "group-total-lag"), "5"))
    cards = d.execute_script("return document.getElementById('g-cards').textContent")
    assert "classic" in cards and "consumer" in cards, cards  # group type, protocol type

    def committed(partition=0):
        offsets = {(o["topic"], o["partition"]): o["committed_offset"] for o in http.get(f"/v1/groups/{group}")["offsets"]}
        return offsets.get((topic_name, partition))

    Select = pytest.importorskip("selenium.webdriver.support.select").Select
    # To an offset.
    d.find_element(By.ID, "g-reset").click()
    Select(wait(d).until(EC.visibility_of_element_located((By.ID, "reset-to")))).select_by_value("offset")
    box = d.find_element(By.ID, "reset-offset")
    box.clear()
    box.send_keys("2")
    shot(d, "19-group-reset-dialog")
    d.find_element(By.ID, "reset-submit").click()
    wait(d).until(lambda d: not modal_open(d))
    assert committed() == 2
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "group-total-lag"), "8"))
    # To a time: the first record at or after record 7's timestamp.
    d.find_element(By.ID, "g-reset").click()
    Select(wait(d).until(EC.visibility_of_element_located((By.ID, "reset-to")))).select_by_value("timestamp")
    d.execute_script("""
        const ms = arguments[0], t = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
        document.getElementById("reset-time").value = t.toISOString().slice(0, 19);""", base_ms + 7000)
    d.find_element(By.ID, "reset-submit").click()
    wait(d).until(lambda d: not modal_open(d))
    assert committed() == 7
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "group-total-lag"), "3"))

    # A live member: its assigned partitions show with their lag; a reset
    # is refused while it is there, with the broker's reason.
    c = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.subscribe([topic_name])
        deadline = time.monotonic() + 30
        while not c.assignment() and time.monotonic() < deadline:
            c.poll(0.2)
        assert c.assignment(), "the consumer got no assignment"
        # Read in one script, so a refresh cannot repaint the row halfway.
        read_chips = """
            const row = document.querySelector("#group-members tr[data-member]");
            if (!row) return null;
            return { count: row.querySelector("td.assigned-count").textContent,
                     chips: Object.fromEntries([...row.querySelectorAll("td.assignment .badge")]
                       .map((b) => [b.dataset.tp, b.textContent])) };"""
        seen = {}

        def assigned_both(d):
            seen["row"] = d.execute_script(read_chips)
            return seen["row"] is not None and seen["row"]["count"] == "2"

        until(d, UI_TIMEOUT_S, assigned_both, lambda: f"member row: {seen}")
        chips = seen["row"]["chips"]
        assert set(chips) == {f"{topic_name}-0", f"{topic_name}-1"}, chips
        assert chips[f"{topic_name}-0"].endswith("· 3"), chips
        shot(d, "19-group-members")
        d.find_element(By.ID, "g-reset").click()
        wait(d).until(EC.visibility_of_element_located((By.ID, "reset-submit"))).click()
        wait(d).until(lambda d: "active members" in d.find_element(By.ID, "reset-error").text)
        d.find_element(By.ID, "reset-cancel").click()
    finally:
        c.close()


def test_console_brokers_page_lists_brokers_and_this_brokers_configs(broker, browser):
    http = Http(broker)
    http.wait_ready()
    cluster = http.get("/v1/cluster")
    node = cluster["node_id"]
    configs = {c["name"]: c for c in http.get(f"/v1/cluster/brokers/{node}/configs")["configs"]}
    assert configs["node.id"]["value"] == str(node) and not configs["node.id"]["editable"]
    d = browser
    d.get(http.url("/#/overview"))
    wait(d).until(EC.element_to_be_clickable((By.ID, "nav-brokers"))).click()
    row = wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, f'#brokers tr[data-broker="{node}"]')))
    assert "this broker" in row.text
    cfg = wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, '#broker-config-table tr[data-config="num.partitions"]')))
    assert cfg.find_element(By.CSS_SELECTOR, "td.value").text == configs["num.partitions"]["value"]
    d.find_element(By.ID, "broker-cfg-filter").send_keys("log.retention")
    names = {r.get_attribute("data-config") for r in d.find_elements(By.CSS_SELECTOR, "#broker-config-table tbody tr")}
    assert names and all("log.retention" in n for n in names), names
    shot(d, "19-brokers")
    # A broker this one does not know: the API's reason, not a config table.
    d.get(http.url(f"/#/brokers/{node + 1}"))
    err = wait(d).until(EC.presence_of_element_located((By.ID, "broker-configs-error")))
    assert f"broker {node + 1} is not registered" in err.text
    assert d.find_elements(By.ID, "broker-config-table") == []


def test_console_deletes_records_of_a_partition_and_a_group(broker, browser, topic_name):
    http = Http(broker)
    http.wait_ready()
    http.create_topic(topic_name, 2)
    http.produce(topic_name, [{"value": {"n": i}, "partition": 0} for i in range(10)]
                 + [{"value": {"n": i}, "partition": 1} for i in range(4)])
    d = browser
    d.get(http.url(f"/#/topic/{topic_name}"))
    Select = pytest.importorskip("selenium.webdriver.support.select").Select

    def start_offset(p):
        return next(x for x in http.get(f"/v1/topics/{topic_name}")["partitions"] if x["partition"] == p)["log_start_offset"]

    # Partition 0: everything before offset 6.
    click(d, 'button[data-delete-records="0"]')
    Select(wait(d).until(EC.visibility_of_element_located((By.ID, "dr-mode")))).select_by_value("offset")
    box = d.find_element(By.ID, "dr-offset")
    box.clear()
    box.send_keys("6")
    shot(d, "19-delete-records-dialog")
    d.find_element(By.ID, "dr-submit").click()
    wait(d).until(lambda d: not modal_open(d))
    assert start_offset(0) == 6
    swait(d).until(lambda d: d.find_element(By.CSS_SELECTOR, '#partition-table tr[data-partition="0"] td.start-offset').text == "6")
    # Partition 1: everything (before=end).
    click(d, 'button[data-delete-records="1"]')
    wait(d).until(EC.visibility_of_element_located((By.ID, "dr-submit"))).click()
    wait(d).until(lambda d: not modal_open(d))
    assert start_offset(1) == 4

    # A group with committed offsets and no members can be deleted.
    group = f"{topic_name}-g"
    consume_and_commit(broker.bootstrap, topic_name, group, commit_offset=8)
    d.get(http.url(f"/#/group/{group}"))
    wait(d).until(EC.element_to_be_clickable((By.ID, "g-delete"))).click()
    wait(d).until(EC.element_to_be_clickable((By.ID, "confirm-ok"))).click()
    wait(d).until(lambda d: d.current_url.endswith("#/groups"))
    assert http.call("GET", f"/v1/groups/{group}")[0] == 404
    shot(d, "19-group-deleted")


def test_console_message_browser_reads_all_partitions_filters_and_exports(broker, browser, topic_name, tmp_path):
    import csv

    http = Http(broker)
    http.wait_ready()
    http.create_topic(topic_name, 3)
    # Whole seconds: the time inputs hold seconds.
    base_ms = (int(time.time()) - 120) * 1000
    records = [{"key": f"user-{i}", "value": {"n": i, "colour": "red" if i % 3 == 0 else "blue"},
                "partition": i % 3, "timestamp_ms": base_ms + i * 1000,
                "headers": [{"key": "source", "value": "web" if i % 2 else "app"}]} for i in range(30)]
    http.produce(topic_name, records)
    d = browser
    d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    d.get(http.url(f"/#/messages/{topic_name}"))
    rows = (By.CSS_SELECTOR, "tr.msg-row")

    # All partitions, newest first page: records of every partition, by time.
    wait(d).until(lambda d: len(d.find_elements(*rows)) == 30)
    parts = {r.get_attribute("data-partition") for r in d.find_elements(*rows)}
    assert parts == {"0", "1", "2"}
    assert "30 scanned" in d.find_element(By.ID, "msg-scan").text

    def shown_keys():
        # One script: typing in a filter repaints the table.
        return d.execute_script(
            "return [...document.querySelectorAll('tr.msg-row')].map((r) => r.cells[3].textContent.trim())")

    assert shown_keys() == [f"user-{i}" for i in range(30)]
    assert not d.find_element(By.ID, "msg-at-field").is_displayed(), "no offset box for Newest"

    # Oldest first, a page of 20, then the next page from the cursor.
    Select = pytest.importorskip("selenium.webdriver.support.select").Select
    Select(d.find_element(By.ID, "msg-mode")).select_by_value("first")
    Select(d.find_element(By.ID, "msg-limit")).select_by_visible_text("20")
    d.find_element(By.ID, "msg-load").click()
    wait(d).until(lambda d: shown_keys() == [f"user-{i}" for i in range(20)])
    wait(d).until(EC.element_to_be_clickable((By.ID, "msg-more"))).click()
    wait(d).until(lambda d: shown_keys() == [f"user-{i}" for i in range(30)])
    Select(d.find_element(By.ID, "msg-limit")).select_by_visible_text("50")

    # Search on the broker: value and header, then a time range.
    d.find_element(By.ID, "msg-value").send_keys('"red"')
    d.find_element(By.ID, "msg-header").send_keys("source=web")
    d.find_element(By.ID, "msg-load").click()
    expected = [f"user-{i}" for i in range(30) if i % 3 == 0 and i % 2]
    wait(d).until(lambda d: shown_keys() == expected)
    shot(d, "19-messages-search")
    for box in ("msg-value", "msg-header"):
        d.find_element(By.ID, box).clear()
    d.execute_script("""
        const set = (id, ms) => { const t = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
          document.getElementById(id).value = t.toISOString().slice(0, 19); };
        set("msg-from-ts", arguments[0]); set("msg-to-ts", arguments[1]);""", base_ms + 10_000, base_ms + 14_000)
    d.find_element(By.ID, "msg-load").click()
    wait(d).until(lambda d: shown_keys() == [f"user-{i}" for i in range(10, 15)])

    # Export what is shown, as JSON and CSV.
    d.find_element(By.ID, "msg-export-json").click()
    d.find_element(By.ID, "msg-export-csv").click()
    json_file, csv_file = tmp_path / f"{topic_name}-records.json", tmp_path / f"{topic_name}-records.csv"
    wait(d).until(lambda _: json_file.exists() and csv_file.exists())
    exported = json.loads(json_file.read_text())
    assert [r["key"] for r in exported] == [f"user-{i}" for i in range(10, 15)]
    assert json.loads(exported[0]["value"]) == records[10]["value"]
    assert exported[0]["headers"] == [{"key": "source", "value": "app"}]
    assert exported[0]["timestamp_ms"] == base_ms + 10_000 and exported[0]["partition"] == 1
    with csv_file.open(newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["key"] for r in table] == [f"user-{i}" for i in range(10, 15)]
    assert json.loads(table[1]["value"]) == records[11]["value"]
    assert json.loads(table[1]["headers"]) == [{"key": "source", "value": "web"}]

    # Produce with headers from the topic page; the browser finds it by header.
    d.get(http.url(f"/#/topic/{topic_name}"))
    wait(d).until(EC.element_to_be_clickable((By.ID, "tp-produce"))).click()
    wait(d).until(EC.visibility_of_element_located((By.ID, "p-key"))).send_keys("with-headers")
    for name, value in (("trace-id", "abc123"), ("tenant", "acme")):
        d.find_element(By.ID, "p-add-header").click()
        row = d.find_elements(By.CSS_SELECTOR, ".p-header")[-1]
        row.find_element(By.CSS_SELECTOR, ".p-header-key").send_keys(name)
        row.find_element(By.CSS_SELECTOR, ".p-header-value").send_keys(value)
    shot(d, "19-produce-headers")
    d.find_element(By.ID, "p-send").click()
    wait(d).until(lambda d: not modal_open(d))
    got = http.get(f"/v1/topics/{topic_name}/records?from=beginning&key_contains=with-headers")["records"]
    assert len(got) == 1 and [(h["key"], h["value"]) for h in got[0]["headers"]] == [("trace-id", "abc123"), ("tenant", "acme")]
    d.get(http.url(f"/#/messages/{topic_name}"))
    wait(d).until(lambda d: len(d.find_elements(*rows)) == 31)
    d.find_element(By.ID, "msg-header").send_keys("tenant=acme")
    d.find_element(By.ID, "msg-load").click()
    wait(d).until(lambda d: shown_keys() == ["with-headers"])
