"""The web dashboard in a real browser (issue 11): Debian's chromium,
headless, driven by python3-selenium through chromium-driver, against a
real consumer and redis-server. The page loads with no console errors and
shows the queues with the counts Redis holds; clicking Pause (with the
admin token entered in the page) pauses the queue in Redis; retrying a dead
job from its page runs it, and Delete there deletes another; a job's
`<script>` is shown as text and never runs. Screenshots are kept in build/test-artifacts/.

Skipped, with the reason, where chromium, chromium-driver or
python3-selenium cannot be found (scripts/deps.sh test installs them)."""
import os
import shutil
import tempfile
import time

import pytest

from conftest import BIN, ROOT, jobq, key, scale, wait_for, wait_result, xadd
from dashboard_util import TOKEN, dash, make_dead  # noqa: F401 (dash is a fixture)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER and HAVE_SELENIUM),
    reason="browser tests need chromium, chromium-driver and python3-selenium "
           "(apt-get install chromium chromium-driver python3-selenium, or scripts/deps.sh test); "
           "found: chromium=%s chromedriver=%s selenium=%s" % (CHROMIUM, DRIVER, HAVE_SELENIUM))

ARTIFACTS = os.path.join(ROOT, "build", "test-artifacts")


@pytest.fixture
def browser():
    """A headless chromium with a fresh profile, no network of its own
    (no background traffic, no updates, no sync), logging the console."""
    profile = tempfile.mkdtemp(prefix="jobq-chromium-")
    o = webdriver.ChromeOptions()
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run",
              "--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage",
              "--window-size=1500,1200",
              "--user-data-dir=" + profile):
        o.add_argument(a)
    o.binary_location = CHROMIUM
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(DRIVER), options=o)
    drv.set_page_load_timeout(scale(30))
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def shot(drv, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, name)
    drv.save_screenshot(path)
    assert os.path.getsize(path) > 10000
    return path


def console_errors(drv):
    return [e for e in drv.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def retry(fn, what, timeout=10):
    """Runs fn until it returns a true value; the page redraws every 1.5 s,
    so an element may go stale between finding and using it."""
    def attempt():
        try:
            return fn()
        except (StaleElementReferenceException, WebDriverException):
            return None
    return wait_for(attempt, timeout=timeout, interval=0.1, what=what)


def cell(drv, table, key_, cls):
    return drv.find_element(By.CSS_SELECTOR, '#%s tr[data-key="%s"] td.%s' % (table, key_, cls)).text


def test_page_shows_the_queues_with_no_console_errors(r, redis_server, dash, browser):
    c, base = dash(token=TOKEN)
    done = [xadd(r, type="noop") for _ in range(5)]
    for j in done:
        wait_result(r, j)
    xadd(r, type="nosuch", id="typo-1")
    wait_result(r, "typo-1")
    r.zadd(key("scheduled"), {"later-1": int(time.time() * 1000) + 3600000})
    r.hset(key("job:later-1"), mapping={"type": "noop"})
    xadd(r, "mail", type="noop")  # a second queue no consumer serves
    r.sadd("jobq:queues", "mail")
    browser.get(base + "/")
    retry(lambda: cell(browser, "queues", "default", "processed") == "5", "default's row")
    assert cell(browser, "queues", "default", "dead") == "1"
    assert cell(browser, "queues", "default", "scheduled") == "1"
    assert cell(browser, "queues", "mail", "ready") == "1"
    retry(lambda: browser.find_elements(By.CSS_SELECTOR, "#workers tbody tr"), "a worker row")
    assert "live" in browser.find_element(By.CSS_SELECTOR, "#workers tbody tr").text
    assert browser.find_element(By.ID, "readonly").is_displayed() is False
    # The throughput chart is drawn by the page: an SVG with a bar.
    retry(lambda: browser.find_elements(By.CSS_SELECTOR, '#queues tr[data-key="default"] svg rect.p'),
          "a bar in default's chart")
    # Live: a job done now shows within a refresh or two.
    wait_result(r, xadd(r, type="noop"))
    retry(lambda: cell(browser, "queues", "default", "processed") == "6", "the new count")
    shot(browser, "dashboard-overview.png")
    assert console_errors(browser) == []


def test_read_only_page_says_why_and_marks_stale_workers(r, dash, browser):
    # A long heartbeat period, so that a worker that stopped beating stays
    # in <p>:workers long enough to be seen (workers drop those silent for
    # three periods).
    _, base = dash("--heartbeat-ms", "60000")
    make_dead(r, "d1")
    now = int(time.time() * 1000)
    r.hset("jobq:worker:ghost:1", mapping={"host": "ghost", "pid": 1, "queues": "default",
                                           "processed": 3, "rss_bytes": 1 << 20})
    r.zadd("jobq:workers", {"ghost:1": now - 150000})  # 2.5 periods ago
    browser.get(base + "/")
    retry(lambda: browser.find_element(By.ID, "readonly").is_displayed(), "the read-only banner")
    pause = retry(lambda: browser.find_element(By.CSS_SELECTOR, '#queues tr[data-key="default"] button'),
                  "the pause button")
    assert not pause.is_enabled()
    assert "--admin-token" in pause.get_attribute("title")
    assert not browser.find_element(By.ID, "token-form").is_displayed()
    ghost = retry(lambda: browser.find_element(By.CSS_SELECTOR, '#workers tr[data-key="ghost:1"]'), "the ghost")
    assert "stale" in ghost.get_attribute("class") and "stale" in ghost.text
    live = [tr for tr in browser.find_elements(By.CSS_SELECTOR, "#workers tbody tr")
            if tr.get_attribute("data-key") != "ghost:1"]
    assert live and all("live" in tr.text for tr in live)
    assert console_errors(browser) == []


def test_pause_with_the_token_pauses_the_queue_in_redis(r, dash, browser):
    _, base = dash(token=TOKEN)
    r.sadd("jobq:queues", "default")
    browser.get(base + "/")
    retry(lambda: cell(browser, "queues", "default", "paused") == "no", "default's row")
    # Without the token the server refuses, and the page says so.
    retry(lambda: browser.find_element(By.CSS_SELECTOR, '#queues tr[data-key="default"] button').click() or True,
          "a click on Pause")
    retry(lambda: "admin token" in browser.find_element(By.ID, "message").text, "the refusal")
    assert not r.exists(key("paused"))
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "token-use").click()
    retry(lambda: browser.find_element(By.CSS_SELECTOR, '#queues tr[data-key="default"] button').click() or True,
          "a click on Pause")
    wait_for(lambda: r.get(key("paused")) == b"1", what="the queue paused in Redis")
    retry(lambda: cell(browser, "queues", "default", "paused") == "paused", "the paused badge")
    button = retry(lambda: browser.find_element(By.CSS_SELECTOR, '#queues tr[data-key="default"] button'),
                   "the resume button")
    retry(lambda: button.text == "Resume" or browser.find_element(
        By.CSS_SELECTOR, '#queues tr[data-key="default"] button').text == "Resume", "Resume")
    retry(lambda: browser.find_element(By.CSS_SELECTOR, '#queues tr[data-key="default"] button').click() or True,
          "a click on Resume")
    wait_for(lambda: not r.exists(key("paused")), what="the queue resumed in Redis")
    shot(browser, "dashboard-pause.png")
    assert [e for e in console_errors(browser) if "401" not in e["message"]] == []


def test_retry_and_delete_a_dead_job_from_its_page(r, dash, browser):
    """The queue's dead tab (the jobs pages; the old dead panel is gone),
    the job's page, Retry there; then Delete of another, on a second
    click."""
    _, base = dash(token=TOKEN)
    evil = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">"
    make_dead(r, "order-17", payload={"order": 17, "note": evil}, error="card declined " + evil)
    make_dead(r, "order-18", payload={"order": 18})
    browser.get(base + "/")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "token-use").click()
    retry(lambda: browser.find_element(By.CSS_SELECTOR, '#queues tr[data-key="default"] td.name').click() or True,
          "a click on the queue")
    retry(lambda: browser.find_element(By.CSS_SELECTOR, '#jobs-tabs button[data-state="dead"]').click() or True,
          "a click on the dead tab")
    row = retry(lambda: browser.find_element(By.CSS_SELECTOR, '#jobs tr[data-key="order-17"]'), "the dead job")
    assert evil in row.text, "the error is shown as text"
    retry(lambda: browser.find_element(By.CSS_SELECTOR, '#jobs tr[data-key="order-17"] td.id').click() or True,
          "a click on the dead job")
    retry(lambda: browser.find_element(By.ID, "job-page").is_displayed(), "the job's page")
    retry(lambda: browser.find_element(By.CSS_SELECTOR, "#job-page .badge").text == "dead", "state dead")
    payload = browser.find_element(By.ID, "job-page-payload").text
    assert '"order": 17' in payload and evil.replace('"', '\\"') in payload
    assert browser.execute_script("return window.pwned === undefined")
    assert browser.find_elements(By.CSS_SELECTOR, "#job-page img, #jobs img, #job-page script") == []
    shot(browser, "dashboard-dead-job.png")
    retry(lambda: browser.find_element(By.ID, "job-retry").click() or True, "a click on Retry")
    res = wait_result(r, "order-17")
    assert res["state"] == b"done" and res["attempts"] == b"1"
    assert r.zscore(key("dead"), "order-17") is None
    retry(lambda: not browser.find_element(By.ID, "job-page").is_displayed(), "the job's page closed")
    assert browser.current_url.endswith("#jobs/default/dead")
    retry(lambda: browser.find_elements(By.CSS_SELECTOR, '#jobs tr[data-key="order-17"]') == [],
          "the job gone from the dead list")

    retry(lambda: browser.find_element(By.CSS_SELECTOR, '#jobs tr[data-key="order-18"] td.id').click() or True,
          "a click on the other dead job")
    retry(lambda: browser.find_element(By.ID, "job-delete").click() or True, "a first click on Delete")
    retry(lambda: browser.find_element(By.ID, "job-delete").text == "Click again to delete", "armed")
    assert r.zscore(key("dead"), "order-18") is not None, "one click deletes nothing"
    browser.find_element(By.ID, "job-delete").click()
    wait_for(lambda: r.zscore(key("dead"), "order-18") is None, what="order-18 deleted")
    assert not r.exists(key("job:order-18"))
    retry(lambda: browser.find_elements(By.CSS_SELECTOR, '#jobs tr[data-key="order-18"]') == [],
          "the deleted job gone from the list")
    assert console_errors(browser) == []


def test_schedules_list_shows_next_run_and_lag(r, redis_server, dash, browser):
    """A schedule of a queue no consumer serves (its tick passes unfired)
    and one of a served queue, written with redis-cli as PROTOCOL §13 says."""
    c, base = dash("--queues", "default")
    now = int(time.time() * 1000)
    for q, name, due in (("default", "beat", 0), ("idle", "late", now - 5000)):
        redis_server.cli("HSET", "jobq:{%s}:schedule:%s" % (q, name), "every", "60000")
        redis_server.cli("HSET", "jobq:{%s}:schedule:%s:job" % (q, name), "type", "noop")
        redis_server.cli("ZADD", "jobq:{%s}:schedules" % q, str(due), name)
        r.sadd("jobq:queues", q)
    browser.get(base + "/")
    retry(lambda: cell(browser, "schedules", "idle/late", "lag").endswith(" s"), "the late one's lag")
    assert "UTC" in cell(browser, "schedules", "idle/late", "next")
    # The served one gets its first tick from a worker: a time, no lag.
    retry(lambda: "UTC" in cell(browser, "schedules", "default/beat", "next"), "beat's next run")
    assert cell(browser, "schedules", "default/beat", "lag") == "–"
    shot(browser, "dashboard-schedules.png")
    assert console_errors(browser) == []


def test_limits_and_running_jobs_with_progress(r, redis_server, dash, browser):
    """A concurrency of 1 with three sleeps queued (two held back), and a
    job reporting progress (tests/plugins/progress.c) beside it."""
    redis_server.cli("HSET", "jobq:{one}:limit", "concurrency", "1")
    c, base = dash("--queues", "default,one", "--plugin",
                   os.path.join(BIN, "plugins", "test-progress.so"))
    sleeps = [xadd(r, "one", type="sleep", payload={"ms": 20000}) for _ in range(3)]
    jid = xadd(r, type="steps", payload={"steps": 100, "ms": 100})
    browser.get(base + "/")
    retry(lambda: cell(browser, "limits", "one", "held") == "2", "one's held back jobs")
    assert cell(browser, "limits", "one", "blocked") == "concurrency"
    assert cell(browser, "limits", "one", "leases") == "1"
    retry(lambda: cell(browser, "running", "default/" + jid, "msg").startswith("step "), "the progress")
    assert cell(browser, "running", "default/" + jid, "pct").endswith("%")
    assert cell(browser, "running", "default/" + jid, "type") == "steps"
    assert cell(browser, "running", "one/" + sleeps[0], "pct") == ""
    shot(browser, "dashboard-limits-running.png")
    assert console_errors(browser) == []
    # Cancelled, so that the consumer stops without waiting for them.
    for j in sleeps:
        assert jobq("-q", "one", "cancel", j, redis_url=redis_server.url).returncode in (0, 1)
    assert jobq("cancel", jid, redis_url=redis_server.url).returncode in (0, 1)


def test_browse_a_queues_jobs_and_cancel_one_from_its_page(r, redis_server, dash, browser):
    """Issue 27's pages and issue 26's button: a queue's ready and dead
    jobs through the tabs, one job's page, and Cancel there with the token
    (the job then ends `cancelled`, and its page says so)."""
    c, base = dash("--queues", "held", token=TOKEN)
    assert jobq("pause", "held", redis_url=redis_server.url).returncode == 0
    c.wait_log(r"queue held paused")
    evil = "<img src=x onerror=\"window.pwned = 1\">"
    ids = [xadd(r, "held", type="echo", payload={"i": i, "note": evil}, notify="1") for i in range(3)]
    make_dead(r, "gone-1", queue="held", error="boom " + evil)
    browser.get(base + "/")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "token-use").click()
    retry(lambda: browser.find_element(By.CSS_SELECTOR, '#queues tr[data-key="held"] td.name').click() or True,
          "a click on the queue")
    retry(lambda: [tr.get_attribute("data-key") for tr in
                   browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")] == ids, "the ready jobs")
    assert browser.current_url.endswith("#jobs/held/ready")
    browser.find_element(By.CSS_SELECTOR, '#jobs-tabs button[data-state="dead"]').click()
    row = retry(lambda: browser.find_element(By.CSS_SELECTOR, '#jobs tr[data-key="gone-1"]'), "the dead job")
    assert evil in row.text and "Cancel" not in row.text
    browser.find_element(By.CSS_SELECTOR, '#jobs-tabs button[data-state="ready"]').click()
    retry(lambda: browser.find_element(By.CSS_SELECTOR, '#jobs tr[data-key="%s"] td.id' % ids[1]).click() or True,
          "a click on a ready job")
    retry(lambda: browser.find_element(By.ID, "job-page").is_displayed(), "the job's page")
    assert browser.find_element(By.CSS_SELECTOR, "#job-page .jid").text == ids[1]
    retry(lambda: browser.find_element(By.CSS_SELECTOR, "#job-page .badge").text == "ready", "state ready")
    assert '"i": 1' in browser.find_element(By.ID, "job-page-payload").text
    retry(lambda: browser.find_element(By.CSS_SELECTOR, "#job-page-actions button.cancel").click() or True,
          "a click on Cancel")
    retry(lambda: "cancel requested" in browser.find_element(By.ID, "message").text, "the outcome")
    assert r.zscore(key("cancel", "held"), ids[1]) is not None
    assert jobq("resume", "held", redis_url=redis_server.url).returncode == 0
    assert wait_result(r, ids[1], queue="held")["state"] == b"cancelled"
    retry(lambda: browser.find_element(By.CSS_SELECTOR, "#job-page .badge").text == "cancelled",
          "the page shows cancelled")
    assert browser.find_elements(By.CSS_SELECTOR, "#job-page-actions button.cancel") == []
    assert browser.execute_script("return window.pwned === undefined")
    shot(browser, "dashboard-job-page.png")
    assert console_errors(browser) == []
