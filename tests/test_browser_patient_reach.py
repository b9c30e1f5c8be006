"""Reaching the patient view from the Tumour response figures, in headless Debian Chromium (Playwright) against
`python app.py` on the synthetic registry: a click on a waterfall bar (or a swimmer lane) offers "Open patient X",
which opens /patient/X with the same query string (an earlier data cut and a filter), and the patient view's Back
returns to the figures on that cut; a sponsor's de-identified waterfall offers no link. Screenshots (1366x768):
test-artifacts/reach-*.png."""
import os
from urllib.parse import quote

import pytest

from access_support import write_users
from browser_helpers import ARTIFACTS, export, wait_idle
from conftest import running_app
from test_browser_response import bar_ids, gid, open_page, traces, wait_for_traces

pytestmark = pytest.mark.browser


def _earlier_cut(root) -> str:
    from dashboard import data
    return [s.snapshot_id for s in data.complete_snapshots(root)][-2]


def test_waterfall_click_opens_the_patient_view_on_the_same_cut_and_filter(page, live_server, synthetic_root):
    cut = _earlier_cut(synthetic_root)
    query = f"?snapshot={cut}&bclc=C"
    open_page(page, f"{live_server}/response{query}")
    assert not page.locator("#response-open-patient").is_visible()
    bars = page.locator(f"[id='{gid('response-waterfall')}'] .bars path")
    bars.nth(60).click(force=True)              # a PR bar (the earlier cut, BCLC C: 26 CR bars come first)
    page.wait_for_selector("#response-highlight-patient", timeout=20000)
    pid = page.inner_text("#response-highlight-patient")
    # the bar clicked is a patient of this cut and filter (the waterfall export's rows, from the command line)
    rows = export(synthetic_root, "waterfall", "bclc=C", snapshot=cut)["rows"]
    assert pid in {r["patient_id"] for r in rows} and pid in bar_ids(page)
    link = page.locator("#response-open-patient")
    link.wait_for(state="visible")
    assert link.inner_text().startswith(f"Open patient {pid}")
    assert link.get_attribute("href") == f"/patient/{quote(pid)}{query}"
    assert page.locator("#response-open-patient-swimmer").get_attribute("href") == f"/patient/{quote(pid)}{query}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "reach-waterfall-link.png"))
    link.click()
    page.wait_for_selector("#patient-heading", timeout=60000)
    wait_idle(page)
    assert page.url == f"{live_server}/patient/{quote(pid)}{query}"
    assert page.inner_text("#patient-heading") == f"Patient {pid}"
    assert cut in page.inner_text("#banner-cutoff")
    page.screenshot(path=str(ARTIFACTS / "reach-patient-view.png"))
    # Back: the Tumour response page again, same cut and filter
    page.click("#patient-back")
    wait_for_traces(page, "response-waterfall", "ts.some(t => t.type === 'bar')")
    assert page.url == f"{live_server}/response{query}"
    assert page.console_errors == []


def test_swimmer_lane_click_offers_that_patients_view(page, live_server, synthetic_root):
    open_page(page, f"{live_server}/response?bclc=B")
    wait_for_traces(page, "response-swimmer", "ts.some(t => t.type === 'bar')")
    wait_idle(page)
    page.locator(f"[id='{gid('response-swimmer')}'] .bars path").nth(2).click(force=True)
    page.wait_for_selector("#response-highlight-patient", timeout=20000)
    pid = page.inner_text("#response-highlight-patient")
    lanes = {y for t in traces(page, "response-swimmer") if t["type"] == "bar" for y in t["y"]}
    assert pid in lanes
    link = page.locator("#response-open-patient-swimmer")
    link.wait_for(state="visible")
    assert link.get_attribute("href") == f"/patient/{quote(pid)}?bclc=B"
    link.click()
    page.wait_for_selector("#patient-heading", timeout=60000)
    assert page.inner_text("#patient-heading") == f"Patient {pid}"
    assert page.console_errors == []


def test_a_sponsor_gets_no_patient_link_from_the_waterfall(synthetic_root, page, tmp_path):
    users = tmp_path / "users.json"
    write_users(users)
    env = {**os.environ, "DASHBOARD_AUTH": "header", "DASHBOARD_TRUSTED_PROXIES": "127.0.0.1",
           "DASHBOARD_USERS": str(users)}
    with running_app(synthetic_root, tmp_path / "server.log", env=env) as url:
        page.set_extra_http_headers({"X-Remote-User": "sponsor"})
        open_page(page, f"{url}/response")
        page.locator(f"[id='{gid('response-waterfall')}'] .bars path").nth(10).click(force=True)
        wait_idle(page)
        page.wait_for_timeout(1000)
        assert page.locator("#response-highlight-patient").count() == 0
        assert not page.locator("#response-open-patient").is_visible()
        assert page.locator("#response-open-patient").get_attribute("href") in (None, "")
        assert "/patient/" not in page.url
        assert page.console_errors == []


def test_waterfall_colours_follow_the_measurements_on_screen(page, live_server, synthetic_root):
    """The bars in the browser: each trace's patients are those the `waterfall` export (command line) gives that
    implied response, and the marked bars are its `contradicts` rows. Screenshot: reach-waterfall-colours.png."""
    open_page(page, f"{live_server}/response")
    rows = export(synthetic_root, "waterfall")["rows"]
    shown = {t["name"]: t["x"] for t in traces(page, "response-waterfall")}
    for level in ("CR", "PR", "SD", "PD"):
        ids = [r["patient_id"] for r in rows if r["implied_response"] == level]
        assert shown[f"{level} ({len(ids)})"] == ids
    marked = [r["patient_id"] for r in rows if r["contradicts"]]
    assert f"Recorded BOR contradicts ({len(marked)})" in shown            # the legend entry, with every patient
    assert shown["Recorded BOR contradicts"] == marked                      # the marks at the bars' tips
    # entries in rows, not one column (a scatter's entry stacked the six entries 116 px high over the bars)
    height = page.evaluate("(gid) => document.getElementById(gid).querySelector('.legend').getBoundingClientRect()"
                           ".height", gid("response-waterfall"))
    assert height < 70
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#card-response-waterfall").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "reach-waterfall-colours.png"))
    assert page.console_errors == []
