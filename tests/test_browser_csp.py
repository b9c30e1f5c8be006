"""Every page under the Content-Security-Policy (dashboard/security.py) in Chromium: no violation
reported (no `securitypolicyviolation` event, no console error), the figures drawn, a filter
changed and a CSV downloaded as a user does."""
import re

import pytest

from browser_helpers import pick, wait_idle

pytestmark = pytest.mark.browser

PAGES = ["/", "/enrollment", "/survival", "/response", "/safety", "/downstaging"]
# a card with a CSV button on each page (the overview has none)
CSV = {"/enrollment": "accrual", "/survival": "km-summary", "/response": "response-waterfall",
       "/safety": "ae-incidence-table", "/downstaging": "downstaging-flow"}

LISTEN = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
    e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sourceFile || '') + ':' + e.lineNumber));
"""


def settle(page, timeout_ms: int = 60000):
    """wait_idle with room for a cold server (the first load of a page computes every card)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-dash-is-loading=\"true\"]') && "
        "!document.querySelector('._dash-loading-callback')", timeout=timeout_ms)
    wait_idle(page)


@pytest.mark.parametrize("path", PAGES)
def test_a_page_under_the_policy_has_no_violation(page, live_server, path):
    page.add_init_script(LISTEN)
    response = page.goto(live_server + path)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    settle(page)
    page.wait_for_function("() => document.querySelector('#banner-count strong') !== null", timeout=30000)
    if path != "/":
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30000)
        assert page.locator(".js-plotly-plot .main-svg").count() > 0      # plotly drew under the policy
    else:
        page.wait_for_selector("#overview-patients", timeout=30000)
    # one filter changed through its control
    pick(page, "f-bclc", "C")
    page.wait_for_url(re.compile(r"bclc=C"))
    settle(page)
    if path in CSV:
        button = page.locator(f"#card-{CSV[path]} button", has_text="Download data (CSV)")
        with page.expect_download(timeout=30000) as info:
            button.click()
        download = info.value
        assert download.suggested_filename.endswith(".csv")
        text = open(download.path(), encoding="utf-8").read()
        assert text.count("\n") >= 1
    settle(page)
    violations = page.evaluate("window.__csp")
    assert violations == [], violations
    assert [e for e in page.console_errors if "Content Security Policy" in e or "Refused" in e] == []
    assert page.console_errors == []


@pytest.mark.parametrize("link", ["/safety?events=x&within_days=abc&by=q&level=zz",
                                  "/response?scope=zz&sort=q&by=nonsense", "/survival?by=foo&endpoint=bar&bands=zz",
                                  "/downstaging?measure=x&by=y", "/enrollment?mode=x&sort=y"])
def test_a_hand_edited_link_with_unknown_page_options_loads_politely(page, live_server, link):
    """The page draws its defaults for options it does not know, and no request is refused: the
    shell once copied such a value from the URL into the control, and its cards' updates were
    refused (400, a page option outside its choices)."""
    refused = []
    page.on("response", lambda r: "_dash-update-component" in r.url and r.status >= 400 and refused.append(r.status))
    page.goto(live_server + link)
    settle(page)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30000)
    page.wait_for_timeout(1500)
    settle(page)
    assert refused == [] and page.console_errors == []
