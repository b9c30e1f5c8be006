"""Issue 15 in a real browser: against `python app.py --auth local` on a small registry, an
investigator of S01 signs in through the form and the waterfall holds only S01's bars; a sponsor
signs in and the banner shows "<5" for a filter the export command (run with the files' own access)
counts 1 to 4 patients in. Screenshots land in test-artifacts/roles-*.png."""
import collections
import json
import os

import pytest
from argon2 import PasswordHasher

from browser_helpers import ARTIFACTS, export, wait_idle
from conftest import running_app

pytestmark = pytest.mark.browser
PASSWORD = "a long enough passphrase"
PATIENT_ID = r"^S\d\d-\d+$"


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    from dashboard.generate import generate_registry
    root = tmp_path_factory.mktemp("roles")
    generate_registry(root, n_patients=240, n_sites=6, seed=7, last_cut_only=True, progress=False)
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory, small_root):
    tmp = tmp_path_factory.mktemp("roles-server")
    hashed = PasswordHasher().hash(PASSWORD)
    (tmp / "users.json").write_text(json.dumps({"users": {
        "lin": {"role": "investigator", "sites": ["S01"], "password": hashed},
        "acme": {"role": "sponsor", "sites": [], "password": hashed}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env.update(DASHBOARD_AUDIT_LOG=str(tmp / "audit.log"))
    with running_app(small_root, tmp / "server.log", "--auth", "local", "--users", str(tmp / "users.json"),
                     env=env) as url:
        yield url


def sign_in(page, url, name, path):
    page.goto(url + path)
    page.wait_for_selector("#sign-in-form")
    page.fill("#sign-in-name", name)
    page.fill("#sign-in-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + path)


def waterfall_trace_text(page) -> list[str]:
    """Every string the waterfall's traces hold in the browser (x, text, customdata, hovertext)."""
    gid = json.dumps({"figure": "response-waterfall", "type": "figure"}, separators=(",", ":"))
    return page.evaluate(
        """(gid) => { const gd = document.getElementById(gid).querySelector('.js-plotly-plot');
                      const out = [];
                      const walk = v => { if (typeof v === 'string') out.push(v);
                                          else if (v && typeof v === 'object') Object.values(v).forEach(walk); };
                      gd._fullData.forEach(t => ['x', 'text', 'customdata', 'hovertext', 'ids'].forEach(k => walk(t[k])));
                      return out; }""", gid)


def test_an_investigator_sees_only_their_sites_bars(page, server, small_root):
    committee = export(small_root, "waterfall")
    sites = collections.Counter(r["site_id"] for r in committee["rows"])
    assert sites["S01"] > 0 and len(sites) > 1                # other sites have bars too
    sign_in(page, server, "lin", "/response")
    page.wait_for_selector("#response-waterfall .js-plotly-plot .main-svg", timeout=90000) \
        if page.locator("#response-waterfall").count() else None
    wait_idle(page)
    page.wait_for_function("""() => { const el = document.getElementById('{"figure":"response-waterfall","type":"figure"}');
                                      const gd = el && el.querySelector('.js-plotly-plot');
                                      return gd && gd._fullData && gd._fullData.length > 0; }""", timeout=90000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "roles-investigator-waterfall.png"), full_page=True)
    import re
    ids = {s for s in waterfall_trace_text(page) if re.match(PATIENT_ID, s)}
    assert ids, "the waterfall shows the investigator's own patients"
    assert {i.split("-")[0] for i in ids} == {"S01"}
    assert len(ids) == sites["S01"]                           # every S01 bar, and only those


def test_a_sponsor_sees_less_than_5_in_a_small_cell(page, server, small_root):
    patients = export(small_root, "patients")["rows"]
    cells = collections.Counter((p["site_id"], p["bclc_stage"]) for p in patients)
    site, stage = next(k for k, n in sorted(cells.items()) if 1 <= n <= 4)
    sign_in(page, server, "acme", "/enrollment")
    page.goto(f"{server}/enrollment?site={site}&bclc={stage}")
    page.wait_for_function("() => { const s = document.querySelector('#banner-count strong');"
                           " return s !== null && s.innerText === '<5'; }", timeout=60000)
    wait_idle(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "roles-sponsor-small-cell.png"), full_page=True)
    assert page.inner_text("#banner-count strong") == "<5"
    assert page.inner_text("#banner-count") == f"<5 of {len(patients)} patients"     # the total is not small
