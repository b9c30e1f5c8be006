"""Issue 15 in a real browser (headless Debian Chromium): behind the trusted-proxy header sign-in, an
investigator of S01 sees only S01's bars in the Tumour response waterfall, and a sponsor sees
de-identified bars, "<5" in a small cell of the ORR/DCR table and one sentence instead of the
patient-level cards. Screenshots land in test-artifacts/access-response-*.png.

Expected values: the exports run in this process with no user (every site, nothing suppressed)."""
import os

import pytest

from access_support import write_users
from browser_helpers import ARTIFACTS, wait_idle
from conftest import running_app
from dashboard import data, exports
from dashboard.access import SUPPRESSED, Scope
from dashboard.filters import Filters

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """300 patients at 6 sites (seed 5): 3 of BCLC A (tests/test_access_response.py uses it too)."""
    from dashboard.generate import generate_registry
    root = tmp_path_factory.mktemp("browser-access-response")
    generate_registry(root, n_patients=300, n_sites=6, seed=5, last_cut_only=True, progress=False)
    return root


@pytest.fixture(scope="module")
def signed_in_server(registry, tmp_path_factory):
    """`python app.py` with the header sign-in, trusting this host as its proxy."""
    users = tmp_path_factory.mktemp("users") / "users.json"
    write_users(users)
    env = {**os.environ, "DASHBOARD_AUTH": "header", "DASHBOARD_TRUSTED_PROXIES": "127.0.0.1",
           "DASHBOARD_USERS": str(users)}
    with running_app(registry, registry / "server.log", env=env) as url:
        yield url


def open_as(browser, url: str, user: str):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, extra_http_headers={"X-Remote-User": user})
    page = context.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(url)
    page.wait_for_function("() => { const el = document.getElementById('card-response-waterfall');"
                           " return !!el && !!el.querySelector('.js-plotly-plot .main-svg'); }", timeout=30000)
    wait_idle(page)
    page.wait_for_timeout(500)
    return context, page, errors


WATERFALL_BARS = """() => {
  const gd = document.getElementById('{"figure":"response-waterfall","type":"figure"}').querySelector('.js-plotly-plot');
  // the patients' bars, not the legend entry of the contradiction marks (a bar of height 0)
  return gd._fullData.filter(t => t.type === 'bar' && !String(t.name).startsWith('Recorded BOR contradicts')).map(t => ({x: Array.from(t.x), custom: Array.from(t.customdata || []),
                                                                hover: t.hovertemplate}));
}"""


def test_an_investigator_sees_only_own_site_bars(browser, signed_in_server, registry):
    snapshot = data.resolve("latest", registry)
    own = exports.compute_export("waterfall", snapshot, Filters(), Scope(sites=("S01",))).rows
    every = exports.compute_export("waterfall", snapshot, Filters(), Scope()).rows
    assert set(every["site_id"]) > {"S01"}                 # other sites' bars exist to be left out
    context, page, errors = open_as(browser, signed_in_server + "/response", "investigator")
    try:
        bars = page.evaluate(WATERFALL_BARS)
        drawn = [x for t in bars for x in t["x"]]
        assert sorted(drawn) == sorted(own["patient_id"])
        assert all(x.startswith("S01-") for x in drawn)
        assert "Patients of your site (S01) only." in page.inner_text("#card-response-waterfall")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "access-response-investigator.png"), full_page=True)
        assert not errors, errors
    finally:
        context.close()


def test_a_sponsor_sees_de_identified_bars_and_a_suppressed_cell(browser, signed_in_server, registry):
    snapshot = data.resolve("latest", registry)
    summary = exports.compute_export("response-summary", snapshot, Filters(), Scope(), by="bclc_stage").rows
    small = summary.loc[summary["n"].between(1, 4), "group"].tolist()
    assert small == ["A"]                                   # the cell that must read "<5"
    every = exports.compute_export("waterfall", snapshot, Filters(), Scope()).rows
    context, page, errors = open_as(browser, signed_in_server + "/response", "sponsor")
    try:
        bars = page.evaluate(WATERFALL_BARS)
        assert sum(len(t["x"]) for t in bars) == len(every)
        assert not any(x.startswith("S") for t in bars for x in t["x"])
        assert all("site" not in t["hover"] for t in bars)
        row = page.locator("#response-summary-grid tbody tr", has_text="A †")
        cells = row.locator("td").all_inner_texts()
        assert cells[1] == SUPPRESSED and cells[2] == "–"
        for card in ("#card-response-spider", "#card-response-swimmer", "#card-response-consistency"):
            assert "not available for the sponsor role" in page.inner_text(card)
        assert not page.locator("#error-notice").is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "access-response-sponsor.png"), full_page=True)
        assert not errors, errors
    finally:
        context.close()
