"""End-to-end: headless Debian Chromium (Playwright) against `python app.py` on the synthetic
registry. Screenshots land in test-artifacts/ to be looked at."""
import re

import pytest

from browser_helpers import ARTIFACTS, banner_n, banner_when, export, graph_data, pick, wait_idle

pytestmark = pytest.mark.browser


def test_home_page_shows_the_snapshot_and_numbers(page, live_server, synthetic_root):
    page.goto(live_server + "/")
    wait_idle(page)
    latest = export(synthetic_root, "patients")
    assert page.inner_text("#overview-snapshot") == latest["snapshot_id"]
    assert int(page.inner_text("#overview-patients").replace(",", "")) == latest["n_patients"]
    assert banner_when(page, lambda n: n == latest["n_patients"]) == latest["n_patients"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home-1366.png"), full_page=True)
    assert page.console_errors == []


def test_two_sites_change_banner_and_accrual_in_agreement_with_export(page, live_server, synthetic_root):
    page.goto(live_server + "/enrollment")
    wait_idle(page)
    total = banner_n(page)
    pick(page, "f-site", "S01 ·", "S02 ·")
    page.wait_for_url(re.compile(r"site=S01(%2C|,)S02"))
    wait_idle(page)
    expected = export(synthetic_root, "enrollment", "site=S01,S02")
    assert banner_when(page, lambda n: n == expected["n_patients"]) == expected["n_patients"] < total
    traces = graph_data(page, "accrual")
    cumulative = next(t for t in traces if t["name"] == "Enrolled (cumulative)")
    assert cumulative["y"][-1] == expected["n_patients"]
    bars = next(t for t in graph_data(page, "enrollment-by-site") if t["name"] == "Enrolled")
    assert sorted(bars["x"]) == sorted(r["n_enrolled"] for r in expected["rows"])
    assert page.console_errors == []


def test_shared_link_restores_the_view_and_navigation_keeps_filters(browser, page, live_server, synthetic_root):
    page.goto(live_server + "/enrollment")
    wait_idle(page)
    pick(page, "f-bclc", "C")
    page.wait_for_url(re.compile(r"bclc=C"))
    wait_idle(page)
    expected = export(synthetic_root, "patients", "bclc=C")["n_patients"]
    n = banner_when(page, lambda x: x == expected)
    assert n == expected
    shared = page.url
    # a new browser context = a colleague opening the link
    other = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    other.goto(shared)
    wait_idle(other)
    assert banner_when(other, lambda x: x == n) == n
    assert "BCLC: C" in other.inner_text("#filter-chips")
    # to another page and back: the filter stays
    page.click("a.nav-link:has-text('Overview')")
    page.wait_for_url(re.compile(r"/\?.*bclc=C"))
    wait_idle(page)
    assert banner_when(page, lambda x: x == n) == n
    page.go_back()
    page.wait_for_url(re.compile(r"/enrollment\?.*bclc=C"))
    wait_idle(page)
    assert banner_when(page, lambda x: x == n) == n
    assert page.console_errors == []


def test_back_button_restores_the_previous_filter(page, live_server):
    page.goto(live_server + "/enrollment?bclc=B")
    wait_idle(page)
    n_b = banner_n(page)
    pick(page, "f-bclc", "C")
    page.wait_for_url(re.compile(r"bclc=B(%2C|,)C"))
    wait_idle(page)
    assert banner_when(page, lambda n: n > n_b) > n_b
    page.go_back()
    page.wait_for_url(re.compile(r"bclc=B$"))
    wait_idle(page)
    assert banner_when(page, lambda n: n == n_b) == n_b


def test_chip_removal_and_clear_all(page, live_server):
    page.goto(live_server + "/enrollment?bclc=B&sex=F")
    wait_idle(page)
    n_both = banner_n(page)
    page.click(".filter-chip:has-text('Sex: F')")
    page.wait_for_url(re.compile(r"\?bclc=B$"))
    wait_idle(page)
    assert banner_when(page, lambda n: n > n_both) > n_both
    page.click("#clear-all-filters")
    page.wait_for_url(re.compile(r"/enrollment$"))
    wait_idle(page)
    assert "No filter" in page.inner_text("#filter-chips")


def test_invalid_url_value_shows_a_message_not_a_crash(page, live_server, synthetic_root):
    page.goto(live_server + "/enrollment?bclc=Z&age_min=abc&sex=F")
    wait_idle(page)
    # wait_idle can pass before the first callback has started (measured: the message appeared
    # 0.3-2.1 s after the page's first paint, and then stayed); wait for it, up to 20 s
    page.wait_for_function("() => (document.querySelector('#url-message') || {}).innerText", timeout=20000)
    alert = page.inner_text("#url-message")
    assert "bclc" in alert and "age_min" in alert
    expected = export(synthetic_root, "patients", "sex=F")["n_patients"]
    assert banner_when(page, lambda n: n == expected) == expected
    assert page.console_errors == []


def test_a_filter_with_no_patients_shows_messages_not_broken_figures(page, live_server):
    page.goto(live_server + "/enrollment?bclc=0&age_max=20")
    wait_idle(page)
    assert banner_when(page, lambda n: n == 0) == 0
    wait_idle(page)                 # the cards answer after the banner; on a slow machine, later
    page.locator("#card-baseline-table").get_by_text("No patients in the current filter").wait_for(timeout=20000)
    assert "No patients in the current filter" in page.inner_text("#card-baseline-table")
    texts = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
                               .map(gd => (gd.layout.annotations || []).map(a => a.text).join(' '))""")
    assert any("No patients" in t for t in texts)
    assert page.console_errors == []


@pytest.mark.parametrize("width,height", [(1366, 768), (1920, 1080)])
def test_enrollment_screenshots(browser, live_server, width, height):
    pg = browser.new_context(viewport={"width": width, "height": height}).new_page()
    pg.goto(live_server + "/enrollment?bclc=B,C")
    wait_idle(pg)
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"enrollment-{width}x{height}.png"), full_page=False)
    pg.screenshot(path=str(ARTIFACTS / f"enrollment-{width}x{height}-full.png"), full_page=True)
