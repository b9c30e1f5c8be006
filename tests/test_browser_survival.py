"""The Survival page in headless Debian Chromium (Playwright) against `python app.py` on the
synthetic registry: change endpoint, grouping and CI type; the table, the numbers under the
curves and the CSV agree with `python -m dashboard export` for the same filters and options.
Screenshots land in test-artifacts/ to be looked at."""
import json
import re
import subprocess
import sys

import pytest

from browser_helpers import ARTIFACTS, ROOT, export, wait_idle
from dashboard.callbacks.survival import fmt_hr, fmt_median, fmt_p, fmt_surv
from dashboard.exports.survival import FIXED_TIMES
from dashboard.figures.survival import DAYS_PER_MONTH

pytestmark = pytest.mark.browser


def option(key: str) -> str:
    """CSS selector of a page option control (a pattern-matching id, serialised by Dash)."""
    return "[id='" + json.dumps({"key": key, "type": "page-option"}, separators=(",", ":")) + "']"


def open_survival(page, url: str):
    """Go to the page and wait until its table and figure are drawn."""
    page.goto(url)
    page.wait_for_selector("#survival-summary-table, #card-km-summary .alert", timeout=20000)
    page.wait_for_selector("#card-km-curve .js-plotly-plot", timeout=20000)
    wait_idle(page)


def wait_text(page, selector: str, text: str):
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                           arg=[selector, text], timeout=20000)
    wait_idle(page)


def choose_grouping(page, label: str):
    page.click(f"#survival-by {option('by')}")
    page.locator(".dash-dropdown-option", has_text=re.compile(rf"^{re.escape(label)}$")).first.click()


def shown_table(page, table_id: str) -> dict[str, list[str]]:
    """Rows of a page table: group (without the small-group dagger) -> the other cells' text."""
    rows = page.evaluate("""(id) => Array.from(document.querySelectorAll('#' + id + ' tbody tr'))
                              .map(tr => Array.from(tr.cells).map(td => td.innerText.trim()))""", table_id)
    return {r[0].replace("†", "").strip(): r[1:] for r in rows}


def expected_summary(doc) -> dict[str, list[str]]:
    """The summary export formatted as the page formats it."""
    return {r["group"] if doc["by"] != "none" else "All patients": [
        str(r["n"]), str(r["events"]),
        fmt_median(r["median_days"], r["median_ci_lower_days"], r["median_ci_upper_days"]),
        *[fmt_surv(r[f"surv_{t}"], r[f"surv_{t}_ci_lower"], r[f"surv_{t}_ci_upper"]) for t in FIXED_TIMES]]
        for r in doc["rows"]}


def expected_cox(doc) -> dict[str, list[str]]:
    return {r["group"]: (["1 (reference)", ""] if i == 0 else
                         [fmt_hr(r["hazard_ratio"], r["ci_lower"], r["ci_upper"]), fmt_p(r["p_value"])])
            for i, r in enumerate(doc["rows"])}


def risk_numbers(page) -> dict[str, dict]:
    """The numbers under the curves as drawn: trace name -> {x (months), text} (gd._fullData
    holds decoded arrays)."""
    return page.evaluate("""() => {
        const holder = document.getElementById(JSON.stringify({figure: 'km-curve', type: 'figure'}));
        const gd = holder.querySelector('.js-plotly-plot');
        const out = {};
        gd._fullData.filter(t => t.meta === 'risk-table').forEach(t => {
            out[t.name] = {x: Array.from(t.x), text: Array.from(t.text)}; });
        return out; }""")


def band_visibility(page) -> list:
    return page.evaluate("""() => {
        const holder = document.getElementById(JSON.stringify({figure: 'km-curve', type: 'figure'}));
        return holder.querySelector('.js-plotly-plot').data
            .filter(t => t.meta === 'ci-band').map(t => t.visible); }""")


def assert_page_matches_exports(page, root, *filters, **options):
    summary = export(root, "km-summary", *filters, **options)
    assert shown_table(page, "survival-summary-table") == expected_summary(summary)
    lr = summary["logrank"]
    logrank = page.inner_text("#survival-logrank")
    if lr is None:
        assert "needs two or more groups" in logrank
    else:
        assert f"χ² = {lr['chisq']:.2f} on {lr['df']} df" in logrank
    if options.get("by") != "none":
        assert shown_table(page, "survival-cox-table") == expected_cox(export(root, "cox", *filters, **options))
    drawn = risk_numbers(page)
    ticks = next(iter(drawn.values()))["x"]
    times = ",".join(repr(m * DAYS_PER_MONTH) for m in ticks)
    risk = export(root, "km-risk-table", *filters, times=times, **options)["rows"]
    for group in {r["group"] for r in risk}:
        expected = [str(r["n_at_risk"]) for r in risk if r["group"] == group]
        assert drawn[f"{group} at risk"]["text"] == expected
    return summary


def test_default_view_is_os_by_bclc_stage_and_matches_the_exports(page, live_server, synthetic_root):
    open_survival(page, live_server + "/survival")
    assert page.is_checked(f"{option('endpoint')} input[value='os']")
    assert page.is_checked(f"{option('ci')} input[value='log-log']")
    assert "BCLC stage" in page.inner_text("#survival-by")
    summary = assert_page_matches_exports(page, synthetic_root, by="bclc_stage")
    assert [r["group"] for r in summary["rows"]] == list(shown_table(page, "survival-summary-table"))
    assert "Overall survival by BCLC stage" in page.inner_text("#card-km-curve")
    assert "log-log" in page.inner_text("#card-km-summary")
    assert page.console_errors == []


def test_change_endpoint_grouping_and_ci_type(page, live_server, synthetic_root):
    open_survival(page, live_server + "/survival?bclc=B,C")
    page.click("#survival-endpoint label:has-text('Progression-free survival')")
    page.wait_for_url(re.compile(r"endpoint=pfs"))
    wait_text(page, "#card-km-curve", "Progression-free survival by BCLC stage")
    choose_grouping(page, "Sex")
    page.wait_for_url(re.compile(r"by=sex"))
    wait_text(page, "#card-km-curve", "Progression-free survival by Sex")
    page.locator("#survival-ci label", has_text="log (R").click()
    page.wait_for_url(re.compile(r"ci=log(&|$)"))
    wait_text(page, "#card-km-summary", "log (R's default)")
    assert "Progression-free survival by Sex" in page.inner_text("#card-km-curve")
    assert "log (R's default)" in page.inner_text("#card-km-summary")
    summary = assert_page_matches_exports(page, synthetic_root, "bclc=B,C", endpoint="pfs", by="sex", ci="log")
    groups = [r for r in summary["rows"] if r["group"] != "All patients"]
    assert summary["rows"][-1]["group"] == "All patients" and summary["rows"][-1]["n"] == summary["n_patients"]
    assert summary["n_patients"] == sum(r["n"] for r in groups) < 600
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "survival-pfs-by-sex-log.png"), full_page=True)
    assert page.console_errors == []


def test_bands_switch_shows_the_bands_without_recomputing(page, live_server):
    open_survival(page, live_server + "/survival")
    assert band_visibility(page) and not any(band_visibility(page))
    requests = []
    page.on("request", lambda r: "_dash-update-component" in r.url and requests.append(r.post_data or ""))
    page.click("#survival-bands label")
    page.wait_for_url(re.compile(r"bands=on"))
    wait_idle(page)
    assert all(band_visibility(page))
    assert not any("km-curve" in body and "page-option" in body and "figure-export" in body for body in requests), \
        "toggling the bands re-ran the survival callback"
    page.set_viewport_size({"width": 1920, "height": 1080})
    wait_idle(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "survival-os-bands-1920.png"), full_page=True)
    assert page.console_errors == []


def test_shared_link_restores_options_and_the_csv_is_the_export(page, live_server, synthetic_root):
    open_survival(page, live_server + "/survival?endpoint=ttp&by=ecog_group&ci=plain&bands=on&sex=F")
    assert page.is_checked(f"{option('endpoint')} input[value='ttp']")
    assert page.is_checked(f"{option('ci')} input[value='plain']")
    assert page.is_checked(f"{option('bands')} input[value='on']")
    assert all(band_visibility(page))
    assert_page_matches_exports(page, synthetic_root, "sex=F", endpoint="ttp", by="ecog_group", ci="plain")
    with page.expect_download() as download:
        page.click("#card-km-summary button:has-text('Download data (CSV)')")
    csv = open(download.value.path(), encoding="utf-8").read()
    expected = subprocess.run([sys.executable, "-m", "dashboard", "export", "km-summary", "--data", str(synthetic_root),
                               "--filter", "sex=F", "--endpoint", "ttp", "--by", "ecog_group", "--ci", "plain",
                               "--format", "csv"], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert csv == expected
    assert download.value.suggested_filename.startswith("survival_km-summary_")
    assert page.console_errors == []


def test_no_grouping_and_no_patients(page, live_server):
    open_survival(page, live_server + "/survival?by=none")
    assert list(shown_table(page, "survival-summary-table")) == ["All patients"]
    assert "Hazard ratios need a grouping" in page.inner_text("#card-cox")
    open_survival(page, live_server + "/survival?bclc=0&age_max=20")
    assert "No patients in the current filter" in page.inner_text("#card-km-summary")
    assert page.console_errors == []
