"""The patient view in headless Debian Chromium (Playwright) against `python app.py` on the synthetic registry:
a click on a patient id of the Safety listing, on an earlier data cut, opens /patient/<id> on that same cut,
with the timeline drawn and the sessions table that the patient-record export gives for that cut. Screenshot:
test-artifacts/patient-view.png (1366x768)."""
import os

import pytest

from access_support import write_users
from browser_helpers import ARTIFACTS, export, wait_idle
from conftest import running_app

pytestmark = pytest.mark.browser


def test_safety_listing_link_opens_the_patient_view_on_the_same_cut(live_server, synthetic_root, page):
    from dashboard import data
    cuts = [s.snapshot_id for s in data.complete_snapshots(synthetic_root)]
    cut = cuts[-2]                                   # an earlier cut: the link must keep it
    page.goto(f"{live_server}/safety?snapshot={cut}")
    page.wait_for_selector("#safety-listing-grid tbody tr td a", timeout=60000)
    wait_idle(page)
    link = page.locator("#safety-listing-grid tbody tr td a").first
    pid = link.inner_text().strip()
    assert link.get_attribute("href") == f"/patient/{pid}?snapshot={cut}"
    link.click()
    page.wait_for_selector("#patient-timeline .js-plotly-plot", timeout=60000)
    wait_idle(page)
    assert page.url == f"{live_server}/patient/{pid}?snapshot={cut}"
    assert page.inner_text("#patient-heading") == f"Patient {pid}"
    assert cut in page.inner_text("#banner-cutoff")
    traces = page.evaluate("""() => document.querySelector('#patient-timeline .js-plotly-plot')._fullData
                              .map(t => ({name: t.name, n: (t.x || []).length}))""")
    sessions = export(synthetic_root, "patient-record", snapshot=cut, patient_id=pid, part="sessions")["rows"]
    assert {"name": "DEB-TACE session", "n": len(sessions)} in traces
    shown = page.evaluate("""() => Array.from(document.querySelectorAll('#patient-sessions tbody tr'))
                             .map(tr => tr.cells[1].innerText.trim())""")
    assert shown == [r["treatment_date"] for r in sessions]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "patient-view.png"))
    page.screenshot(path=str(ARTIFACTS / "patient-view-full.png"), full_page=True)
    assert page.console_errors == []


def test_a_sponsor_gets_no_patient_view(synthetic_root, page, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    users = tmp_path / "users.json"
    write_users(users)
    env = {**os.environ, "DASHBOARD_AUTH": "header", "DASHBOARD_TRUSTED_PROXIES": "127.0.0.1",
           "DASHBOARD_USERS": str(users)}
    with running_app(synthetic_root, tmp_path / "server.log", env=env) as url:
        page.set_extra_http_headers({"X-Remote-User": "sponsor"})
        page.goto(f"{url}/patient/S01-0001")
        page.wait_for_selector("#patient-notice", timeout=60000)
        wait_idle(page)
        assert "not available for your role" in page.inner_text("#patient-notice")
        assert page.locator("#patient-timeline").count() == 0
        page.screenshot(path=str(ARTIFACTS / "patient-view-sponsor.png"))
        content = page.inner_text("#page-content")
        assert "Patient S01-0001" not in content and "Months from first" not in content
        assert page.console_errors == []
