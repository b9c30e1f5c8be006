"""The Survival page's "Subgroup forest plot" card in headless Debian Chromium (Playwright) against
`python app.py` on the synthetic registry, at 1366x768: the card draws one marker per estimable subgroup
HR of the `forest` export (python -m dashboard export forest, same options), the comparison controls
change it, the single-arm switch redraws it. Screenshots land in test-artifacts/ to be looked at."""
import json
import re

import pytest

from browser_helpers import ARTIFACTS, export, wait_idle

pytestmark = pytest.mark.browser


def option(key: str) -> str:
    return "[id='" + json.dumps({"key": key, "type": "page-option"}, separators=(",", ":")) + "']"


def forest_points(page) -> list[float]:
    """The HR (or S(365) %) markers as drawn (gd._fullData holds decoded arrays)."""
    return page.evaluate("""() => {
        const holder = document.getElementById(JSON.stringify({figure: 'forest', type: 'figure'}));
        const gd = holder && holder.querySelector('.js-plotly-plot');
        if (!gd || !gd._fullData) { return null; }
        return gd._fullData.flatMap(t => Array.from(t.x || [])); }""")


def wait_points(page, count: int):
    page.wait_for_function("""(n) => {
        const holder = document.getElementById(JSON.stringify({figure: 'forest', type: 'figure'}));
        const gd = holder && holder.querySelector('.js-plotly-plot');
        return gd && gd._fullData && gd._fullData.flatMap(t => Array.from(t.x || [])).length === n; }""",
                           arg=count, timeout=30000)
    wait_idle(page)


def test_forest_card_draws_the_export_and_switches(page, live_server, synthetic_root):
    want = export(synthetic_root, "forest")
    hrs = sorted(r["hazard_ratio"] for r in want["rows"] if r["hazard_ratio"] is not None)
    page.goto(live_server + "/survival")
    page.wait_for_selector("#card-forest .js-plotly-plot", timeout=30000)
    wait_points(page, len(hrs))
    assert sorted(forest_points(page)) == pytest.approx(hrs, rel=1e-12)
    page.locator("#card-forest").scroll_into_view_if_needed()
    page.locator("#card-forest").screenshot(path=str(ARTIFACTS / "survival-forest-bclc-c-vs-b-1366.png"))
    page.screenshot(path=str(ARTIFACTS / "survival-forest-viewport-1366.png"))

    page.click(f"#forest-by {option('forest_by')}")
    page.locator(".dash-dropdown-option", has_text=re.compile(r"^Sex$")).first.click()
    sex = export(synthetic_root, "forest", by="sex", ref="M", compare="F")
    wait_points(page, sum(r["hazard_ratio"] is not None for r in sex["rows"]))
    assert "forest_by=sex" in page.url and "forest_ref=M" in page.url and "forest_compare=F" in page.url

    page.goto(live_server + "/survival?forest_form=single-arm")
    single = export(synthetic_root, "forest", form="single-arm")
    wait_points(page, sum(r["surv_365"] is not None and r["surv_365_ci_lower"] is not None for r in single["rows"]))
    page.locator("#card-forest").screenshot(path=str(ARTIFACTS / "survival-forest-single-arm-1366.png"))
    assert not page.console_errors, page.console_errors


# --- a sponsor, signed in through the form (the fixtures of tests/test_browser_roles.py) ------------
from test_browser_roles import server, sign_in, small_root  # noqa: E402,F401


def test_sponsor_sees_no_small_count_on_the_forest_card(page, server):
    """The sponsor's card: no events/n cell with a count of 1-4 (the export's rules, tests/test_access_forest.py),
    "<5" where the committee sees one."""
    sign_in(page, server, "acme", "/survival")
    page.wait_for_selector("#card-forest .js-plotly-plot", timeout=30000)
    page.wait_for_function("""() => {
        const holder = document.getElementById(JSON.stringify({figure: 'forest', type: 'figure'}));
        const gd = holder && holder.querySelector('.js-plotly-plot');
        return gd && gd.layout && (gd.layout.annotations || []).length > 10; }""", timeout=30000)
    wait_idle(page)
    texts = page.evaluate("""() => {
        const holder = document.getElementById(JSON.stringify({figure: 'forest', type: 'figure'}));
        return holder.querySelector('.js-plotly-plot').layout.annotations.map(a => a.text); }""")
    cells = [c for t in texts for c in re.findall(r"^(\S+)/(\S+)$", t)]
    assert cells and not any(v in {"1", "2", "3", "4"} for c in cells for v in c)
    assert any("<5" in v for c in cells for v in c)
    page.locator("#card-forest").scroll_into_view_if_needed()
    page.locator("#card-forest").screenshot(path=str(ARTIFACTS / "survival-forest-sponsor-1366.png"))
    assert not page.console_errors, page.console_errors
