"""The Overview's headline in headless Debian Chromium (Playwright) at 1366x768 against `python app.py` on
the synthetic registry: it is inside the viewport without scrolling, below the shell's navbar and beside
its filter panel; its numbers are the headline export's for the same filters; a number opens the page and
view it names with the filters kept. Screenshot: test-artifacts/overview_headline.png."""
import pytest

from browser_helpers import ARTIFACTS, banner_when, export, wait_idle

pytestmark = pytest.mark.browser


def open_overview(page, url: str):
    page.goto(url)
    page.wait_for_selector("#headline-os-1y", timeout=20000)
    wait_idle(page)


def test_headline_is_visible_without_scrolling(page, live_server, synthetic_root):
    open_overview(page, live_server + "/")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "overview_headline.png"))
    assert page.evaluate("() => window.scrollY") == 0
    box = page.locator("#overview-headline").bounding_box()
    nav = page.locator("nav").first.bounding_box()
    viewport = page.viewport_size
    assert box["y"] >= nav["y"] + nav["height"]                 # below the navbar
    assert box["y"] + box["height"] <= viewport["height"], box   # its last tile ends inside the window
    assert box["x"] + box["width"] <= viewport["width"]
    for ident in ("headline-os-1y", "headline-median-os", "headline-enrolled", "headline-followup", "headline-orr",
                  "headline-dcr", "headline-grade3", "headline-grade5", "headline-downstaged", "headline-converted"):
        b = page.locator(f"#{ident}").bounding_box()
        assert b and 0 <= b["y"] and b["y"] + b["height"] <= viewport["height"], ident
    # the numbers are the export's (python -m dashboard export headline, the same registry)
    doc = export(synthetic_root, "headline")
    os1 = next(r for r in doc["rows"] if (r["metric"], r["group"]) == ("os_1y", "all"))
    assert page.inner_text("#headline-os-1y") == f"{100 * os1['value']:.1f}%"
    grade5 = next(r for r in doc["rows"] if r["metric"] == "grade5_patients")
    assert page.inner_text("#headline-grade5") == f"{int(grade5['value']):,}"
    assert "accrual closed, last enrolment" in page.inner_text("#headline-tile-enrolled")
    assert page.console_errors == []


def test_a_headline_number_opens_its_page_with_the_filter_kept(page, live_server, synthetic_root):
    open_overview(page, live_server + "/?sex=F")
    n = banner_when(page, lambda n: n < 600)
    doc = export(synthetic_root, "headline", "sex=F")
    orr = next(r for r in doc["rows"] if r["metric"] == "orr")
    assert page.inner_text("#headline-orr") == f"{100 * orr['value']:.1f}%"
    page.click("#headline-os-1y")
    page.wait_for_url("**/survival?**", timeout=20000)
    assert "sex=F" in page.url and "by=none" in page.url
    page.wait_for_selector("#survival-summary-table", timeout=20000)
    wait_idle(page)
    assert banner_when(page, lambda m: m == n) == n              # the same patients
    assert page.inner_text("#survival-by").find("No grouping") >= 0
    os1 = next(r for r in doc["rows"] if (r["metric"], r["group"]) == ("os_1y", "all"))
    assert f"{100 * os1['value']:.1f}%" in page.inner_text("#survival-summary-table")
    page.go_back()
    page.wait_for_selector("#headline-downstaged", timeout=20000)
    wait_idle(page)
    page.click("#headline-downstaged")
    page.wait_for_url("**/downstaging?**", timeout=20000)
    assert "sex=F" in page.url and "measure=milan" in page.url
    assert page.console_errors == []
