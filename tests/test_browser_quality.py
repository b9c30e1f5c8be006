"""The Data quality page in headless Debian Chromium (Playwright) against `python app.py` on the synthetic
registry: the grid (dash-ag-grid) draws under the Content-Security-Policy with the rows of `python -m
dashboard export data-quality`, sorts on a header click, filters from the site filter, the CSV downloads
with the cut and the filter in its name, and a filter with no patient shows a message, not a traceback.
Screenshots land in test-artifacts/quality-*.png."""
import re

import pandas as pd
import pytest

from browser_helpers import ARTIFACTS, export, wait_idle

pytestmark = pytest.mark.browser

LISTEN = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def open_quality(page, url: str):
    page.add_init_script(LISTEN)
    page.goto(url)
    page.wait_for_selector("#quality-counts-table, #quality-counts .alert, #quality-none", timeout=90000)
    wait_idle(page)


def total_rows(page) -> int:
    """The grid's row count from its pagination summary ('1 to 50 of 263')."""
    page.wait_for_function("() => /of \\d/.test(document.querySelector('#quality-grid .ag-paging-row-summary-panel')"
                           "?.innerText || '')")
    text = page.inner_text("#quality-grid .ag-paging-row-summary-panel")
    return int(re.search(r"of ([\d,]+)", text).group(1).replace(",", ""))


def column_cells(page, col: str) -> list[str]:
    """The shown rows' cells of a column, top to bottom."""
    return page.evaluate("""(col) => Array.from(document.querySelectorAll('#quality-grid .ag-center-cols-container .ag-row'))
        .sort((a, b) => Number(a.getAttribute('row-index')) - Number(b.getAttribute('row-index')))
        .map(r => r.querySelector(`[col-id="${col}"]`).innerText.trim())""", col)


def test_the_grid_shows_sorts_and_downloads_the_export(page, live_server, synthetic_root):
    expected = export(synthetic_root, "data-quality")
    rows = pd.DataFrame(expected["rows"])
    assert len(rows) > 50                                         # more than one page of the grid
    open_quality(page, live_server + "/quality")
    page.wait_for_selector("#quality-grid .ag-row", timeout=30000)
    assert total_rows(page) == len(rows)
    assert column_cells(page, "patient_id")[:5] == rows.patient_id.tolist()[:5]    # the export's order
    page.screenshot(path=str(ARTIFACTS / "quality-top.png"))

    # sort: a click on the Patient header sorts ascending, a second descending
    header = page.locator("#quality-grid .ag-header-cell[col-id='patient_id'] .ag-header-cell-label")
    header.click()
    page.wait_for_timeout(300)
    assert column_cells(page, "patient_id")[0] == rows.patient_id.min()
    header.click()
    page.wait_for_timeout(300)
    shown = column_cells(page, "patient_id")
    assert shown[0] == rows.patient_id.max() and shown == sorted(shown, reverse=True)

    # the counts table: one row per rule with a finding, the total of each the export's
    table = page.evaluate("""() => Array.from(document.querySelectorAll('#quality-counts-table tbody tr'))
        .map(tr => Array.from(tr.cells).map(td => td.innerText.trim()))""")
    per_rule = rows.groupby("rule").size()
    for cells in table[:-1]:
        rule = re.sub(r" \([a-z_]+\)$", "", cells[0])
        assert int(cells[-1]) == per_rule[rule], cells
    assert table[-1][0] == "All rules" and int(table[-1][-1]) == len(rows)

    # the CSV: the export's rows, named after the cut and the filter
    page.locator("#quality-grid").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "quality-grid.png"))
    with page.expect_download(timeout=30000) as info:
        page.click("#quality-download-csv")
    download = info.value
    assert re.fullmatch(rf"quality_data-quality_{expected['snapshot_id']}_all-patients_\d{{4}}-\d{{2}}-\d{{2}}\.csv",
                        download.suggested_filename)
    csv = pd.read_csv(download.path(), dtype=str, keep_default_na=False)
    assert csv.to_dict("records") == rows.astype(str).to_dict("records")
    assert page.evaluate("window.__csp") == [] and page.console_errors == []


def test_the_site_filter_narrows_the_page_and_its_csv(page, live_server, synthetic_root):
    expected = pd.DataFrame(export(synthetic_root, "data-quality", "site=S03")["rows"])
    open_quality(page, live_server + "/quality?site=S03")
    page.wait_for_selector("#quality-grid .ag-row", timeout=30000)
    assert total_rows(page) == len(expected) > 0
    assert set(column_cells(page, "site_id")) == {"S03"}
    heads = page.evaluate("() => Array.from(document.querySelectorAll('#quality-counts-table thead th'))"
                          ".map(th => th.innerText.trim())")
    assert heads == ["Rule (table)", "S03", "Total"]
    with page.expect_download(timeout=30000) as info:
        page.click("#quality-download-csv")
    assert "_site-S03_" in info.value.suggested_filename
    csv = pd.read_csv(info.value.path(), dtype=str, keep_default_na=False)
    assert len(csv) == len(expected) and set(csv.site_id) == {"S03"}
    assert page.console_errors == []


def test_a_filter_with_no_patient_shows_a_message(page, live_server, synthetic_root):
    assert export(synthetic_root, "data-quality", "age_min=100", "age_max=100")["n_patients"] == 0
    open_quality(page, live_server + "/quality?age_min=100&age_max=100")
    text = page.inner_text("#quality-page")
    assert "No patients in the current filter" in text
    assert "Traceback" not in page.content() and "Error" not in text
    assert page.locator("#quality-grid .ag-row").count() == 0
    page.screenshot(path=str(ARTIFACTS / "quality-empty.png"))
    assert page.console_errors == []


def test_the_navbar_link_keeps_the_filter(page, live_server, synthetic_root):
    expected = export(synthetic_root, "data-quality", "site=S05")["rows"]
    page.goto(live_server + "/?site=S05")
    page.wait_for_selector("a.nav-link[href*='site=S05']:has-text('Data quality')", timeout=60000)
    page.click("a.nav-link:has-text('Data quality')")
    page.wait_for_url(re.compile(r"/quality\?.*site=S05"))
    page.wait_for_selector("#quality-grid .ag-row", timeout=60000)
    wait_idle(page)
    assert total_rows(page) == len(expected) and set(column_cells(page, "site_id")) == {"S05"}
    assert page.console_errors == []
