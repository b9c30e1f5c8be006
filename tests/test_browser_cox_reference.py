"""The Cox reference group in headless Debian Chromium against `python app.py` on the synthetic
registry: the default reference (BCLC B), a reference chosen in the control (kept in the URL as
?ref=), a link with ?ref=, an unknown level. The table is compared with `python -m dashboard export
cox [--ref]` for the same options (its numbers are checked against R in tests/test_cox_reference.py).
Screenshots (1366x768) land in test-artifacts/ to be looked at."""
import re

import pytest

from browser_helpers import ARTIFACTS, export, wait_idle
from test_browser_survival import expected_cox, open_survival, option, shown_table, wait_text

pytestmark = pytest.mark.browser


def reference_line(page) -> str:
    return page.inner_text("#survival-reference").strip()


def first_rows(page) -> list[str]:
    return list(shown_table(page, "survival-cox-table"))


def test_reference_default_chosen_and_from_a_link(page, live_server, synthetic_root):
    ARTIFACTS.mkdir(exist_ok=True)
    open_survival(page, live_server + "/survival")
    assert reference_line(page) == "Reference: BCLC stage B (n = 353), the default."
    assert first_rows(page) == ["B", "A", "C"]
    assert shown_table(page, "survival-cox-table") == expected_cox(export(synthetic_root, "cox"))
    page.locator("#card-cox").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "cox-reference-default.png"))

    # choose C in the control: the URL keeps it, the table follows
    page.click(f"#survival-ref {option('ref')}")
    page.locator(".dash-dropdown-option", has_text=re.compile(r"^C \(n = 240\)$")).first.click()
    wait_text(page, "#survival-reference", "BCLC stage C")
    assert reference_line(page) == "Reference: BCLC stage C (n = 240)."
    assert first_rows(page) == ["C", "A", "B"]
    assert shown_table(page, "survival-cox-table") == expected_cox(export(synthetic_root, "cox", ref="C"))
    page.wait_for_function("() => location.search.includes('ref=C')", timeout=10000)
    page.locator("#card-cox").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "cox-reference-chosen.png"))

    # a link with ?ref= and a grouping that has no such level: the message, the default
    open_survival(page, live_server + "/survival?by=sex&ref=C")
    text = page.inner_text("#card-cox")
    assert "Reference 'C' is not a group of Sex in this filter (M, F); the default, M, is used." in text
    assert reference_line(page) == "Reference: Sex M (n = 433), the default."
    wait_idle(page)
    page.locator("#card-cox").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "cox-reference-unknown.png"))
    assert page.console_errors == []


def test_the_issue_filter_and_a_one_patient_group_drawn_dashed(page, live_server, synthetic_root):
    """?child_pugh=B&etiology=HBV (issue 19): the reference is B (30 patients), not A (1 patient, 0
    events); A is drawn dashed with open circles, as the footnote says (n counted in
    tests/test_cox_reference.py with pandas from the parquet files)."""
    ARTIFACTS.mkdir(exist_ok=True)
    open_survival(page, live_server + "/survival?child_pugh=B&etiology=HBV")
    assert reference_line(page) == "Reference: BCLC stage B (n = 30), the default."
    assert shown_table(page, "survival-cox-table") == expected_cox(
        export(synthetic_root, "cox", "child_pugh=B", "etiology=HBV"))
    styles = page.evaluate("""() => {
        const gid = JSON.stringify({figure: 'km-curve', type: 'figure'});
        const gd = document.getElementById(gid).querySelector('.js-plotly-plot');
        return gd._fullData.filter(t => t.meta === 'km').map(t => [t.name, t.line.dash, t.mode,
                                                                  t.marker ? t.marker.symbol : null]); }""")
    assert styles[0] == ["A (n = 1) †", "dash", "lines+markers", "circle-open"]
    assert [s[1:3] for s in styles[1:]] == [["solid", "lines"], ["solid", "lines"]]
    assert "drawn dashed with open circles" in page.inner_text("#card-km-curve")
    page.screenshot(path=str(ARTIFACTS / "cox-reference-issue-filter.png"))
    assert page.console_errors == []
