"""Sign-in 'local' in headless Chromium (Playwright) against `python app.py --auth local`: a person
signs in through the form, sees the Overview with their name in the navbar, signs out and is back
at the sign-in page; no Content-Security-Policy violation and no console error on the way.
A screenshot of the sign-in page lands in test-artifacts/sign-in.png."""
import json
import os

import pytest
from argon2 import PasswordHasher

from browser_helpers import ARTIFACTS
from conftest import running_app

pytestmark = pytest.mark.browser
PASSWORD = "carol's long passphrase"

LISTEN = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@pytest.fixture
def local_server(tmp_path, synthetic_root):
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"users": {"carol": {"role": "committee", "sites": [],
                                                     "password": PasswordHasher().hash(PASSWORD)}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env.update(DASHBOARD_AUDIT_LOG=str(tmp_path / "audit.log"))
    with running_app(synthetic_root, tmp_path / "server.log", "--auth", "local", "--users", str(users),
                     env=env) as url:
        yield url


def test_sign_in_see_the_overview_sign_out(page, local_server):
    page.add_init_script(LISTEN)
    failed = []
    page.on("response", lambda r: r.status >= 400 and failed.append((r.status, r.url)))
    page.goto(local_server + "/survival")
    page.wait_for_url("**/sign-in?next=%2Fsurvival")
    page.wait_for_selector("#sign-in-form")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sign-in.png"))
    assert page.evaluate("getComputedStyle(document.querySelector('.btn-primary')).backgroundColor") \
        == "rgb(13, 110, 253)"                           # Bootstrap's CSS from assets/ applied

    page.fill("#sign-in-name", "carol")
    page.fill("#sign-in-password", "not the password")
    page.click("button[type=submit]")
    page.wait_for_selector("#sign-in-message")
    assert page.inner_text("#sign-in-message") == "Wrong user name or password."

    page.fill("#sign-in-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(local_server + "/survival")
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60000)
    page.click("a.nav-link[href='/']")
    page.wait_for_selector("#overview-patients", timeout=60000)
    assert page.inner_text(".navbar-user") == "carol · committee"
    page.screenshot(path=str(ARTIFACTS / "sign-in-overview.png"))

    page.click("button.sign-out")
    page.wait_for_url("**/sign-in?signed_out=1")
    assert page.inner_text("#sign-in-message") == "You are signed out."
    page.goto(local_server + "/")                       # the pages are closed again
    page.wait_for_url("**/sign-in?next=%2F")
    assert page.evaluate("window.__csp") == []
    # the one failed load: the wrong password's answer (401, which the browser reports as an error)
    assert failed == [(401, local_server + "/sign-in")]
    assert page.console_errors == ["Failed to load resource: the server responded with a status of 401 (UNAUTHORIZED)"]


def test_a_page_whose_session_ended_goes_to_sign_in_and_back(page, local_server):
    """The session ends while the page is open (idle timeout, sign-out in another tab: here the
    cookie is dropped); the next filter change is answered 401, and the page goes to the sign-in
    form instead of leaving stale cards, then back to the same view after signing in."""
    page.goto(local_server + "/survival?bclc=B")
    page.fill("#sign-in-name", "carol")
    page.fill("#sign-in-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(local_server + "/survival?bclc=B")
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60000)
    page.context.clear_cookies()
    page.evaluate("() => { window.history.pushState(null, '', '/survival?bclc=C');"
                  " window.dispatchEvent(new PopStateEvent('popstate')); }")
    page.wait_for_url("**/sign-in?next=%2Fsurvival%3Fbclc%3DC", timeout=30000)
    page.fill("#sign-in-name", "carol")
    page.fill("#sign-in-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(local_server + "/survival?bclc=C")
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60000)
    # the 401s of the callbacks in flight when the session ended
    page.console_errors[:] = [e for e in page.console_errors if "401 (UNAUTHORIZED)" not in e]
