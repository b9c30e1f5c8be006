"""The audit log as a real browser fills it (headless Chromium, `python app.py` with
DASHBOARD_AUDIT_LOG set): one page-view line per page load, navigation and filter change, whatever
the number of card callbacks behind it; one download line per CSV, with the rows the file has."""
import json
import os
import re
import time

import pytest

from browser_helpers import pick, wait_idle
from conftest import running_app


@pytest.fixture(scope="module")
def audited_server(synthetic_root, tmp_path_factory):
    log = tmp_path_factory.mktemp("audit") / "audit.log"
    env = {**os.environ, "DASHBOARD_AUDIT_LOG": str(log), "DASHBOARD_AUTH": "none"}
    with running_app(synthetic_root, log.with_name("server.log"), env=env) as url:
        yield url, log


def audit_lines(log, event):
    text = log.read_text() if log.exists() else ""
    return [json.loads(line) for line in text.splitlines() if json.loads(line)["event"] == event]


def wait_lines(log, event, n, timeout_s=30):
    """The log's lines of that event once there are n (the server writes them while the page's
    callbacks run; a cold server's first ones can come after the page looks settled)."""
    deadline = time.time() + timeout_s
    lines = audit_lines(log, event)
    while len(lines) < n and time.time() < deadline:
        time.sleep(0.1)
        lines = audit_lines(log, event)
    return lines


def settle(page):
    # the shell's banner and a drawn figure first: on a cold server the page can look idle before
    # its cards' callbacks have started
    page.wait_for_selector("#banner-count strong", timeout=60000)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60000)
    page.wait_for_function("() => !document.querySelector('[data-dash-is-loading=\"true\"]') && "
                           "!document.querySelector('._dash-loading-callback')", timeout=60000)
    wait_idle(page)


def test_page_views_and_downloads_from_a_browser(page, audited_server):
    url, log = audited_server
    requests = []
    page.on("request", lambda r: "/_dash-update-component" in r.url and requests.append(r))
    page.goto(url + "/response?bclc=B")
    settle(page)
    views = wait_lines(log, "page-view", 1)
    assert [(v["user"], v["path"], v["filters"]) for v in views] == [("demo", "/response", {"bclc": ["B"]})]
    deadline = time.time() + 30
    while len(requests) <= 3 and time.time() < deadline:
        page.wait_for_timeout(100)
    assert len(requests) > 3, "the page's cards ran callbacks of their own, which wrote no line"

    pick(page, "f-bclc", "C")
    page.wait_for_url(re.compile(r"bclc=B(%2C|,)C"))
    settle(page)
    views = wait_lines(log, "page-view", 2)
    assert [(v["path"], v["filters"]) for v in views[1:]] == [("/response", {"bclc": ["B", "C"]})]

    page.click("a.nav-link:has-text('Survival')")
    page.wait_for_url(re.compile(r"/survival\?.*bclc=B"))
    settle(page)
    views = wait_lines(log, "page-view", 3)
    assert [(v["path"], v["filters"]) for v in views[2:]] == [("/survival", {"bclc": ["B", "C"]})]

    with page.expect_download(timeout=30000) as info:
        page.click("#card-km-summary button:has-text('Download data (CSV)')")
    text = open(info.value.path(), encoding="utf-8").read()
    (download,) = wait_lines(log, "download", 1)
    assert (download["figure"], download["export"], download["filters"]) == ("km-summary", "km-summary",
                                                                             {"bclc": ["B", "C"]})
    assert download["rows"] == len(text.strip().splitlines()) - 1
    assert len(audit_lines(log, "page-view")) == 3

    page.go_back()                  # the page before, same filters: the router's line
    page.wait_for_url(re.compile(r"/response\?bclc=B(%2C|,)C$"))
    settle(page)
    page.go_back()                  # the same page, the filter before: the sync's line
    page.wait_for_url(re.compile(r"/response\?bclc=B$"))
    settle(page)
    views = wait_lines(log, "page-view", 5)
    assert [(v["path"], v["filters"]) for v in views[3:]] == [("/response", {"bclc": ["B", "C"]}),
                                                              ("/response", {"bclc": ["B"]})]
    assert page.console_errors == []
