"""The Overview's "Since data cut" panel in headless Debian Chromium against `python app.py` on the
synthetic registry: it shows with the cut before the latest by default, its counts equal the
changes export, a chosen cut goes into the URL and a link with since= opens on it. Screenshots in
test-artifacts/changes-*.png to be looked at."""
import pytest

from browser_helpers import ARTIFACTS, export, wait_idle

pytestmark = pytest.mark.browser


def title_is(page, text: str):
    page.wait_for_function("(t) => { const el = document.getElementById('changes-title');"
                           " return el && el.innerText === t; }", arg=text, timeout=30000)
    wait_idle(page)


def counts_row(page, label: str) -> list[str]:
    """The cells of a row of the counts table."""
    return page.evaluate("""(label) => { const rows = [...document.querySelectorAll('#changes-counts tr')];
                              const row = rows.find(r => r.cells[0] && r.cells[0].innerText.trim() === label);
                              return row ? [...row.cells].map(c => c.innerText.trim()) : null; }""", label)


def test_panel_shows_the_cut_before_by_default_and_follows_the_url(page, live_server, synthetic_root):
    page.goto(live_server + "/")
    title_is(page, "Since data cut 2025-09-30")
    rows = export(synthetic_root, "changes", since="2025-09-30")["rows"]
    kinds = ["new_patient", "death", "progression", "grade3plus_ae", "downstaged"]
    assert counts_row(page, "All sites") == ["All sites"] + [str(sum(r["kind"] == k for r in rows)) for k in kinds]
    metrics = {m["name"]: m for m in export(synthetic_root, "changes", since="2025-09-30")["metrics"]}
    enrolled = metrics["enrolled"]
    assert page.evaluate("""() => [...document.querySelectorAll('#changes-metrics tr')]
                              .map(r => [...r.cells].map(c => c.innerText.trim()))
                              .find(c => c[0] === 'Patients with a grade >= 3 AE')""") == [
        "Patients with a grade >= 3 AE", f"{metrics['grade3plus_patients']['previous']:,}",
        f"{metrics['grade3plus_patients']['current']:,}", f"{metrics['grade3plus_patients']['difference']:+,}"]
    assert enrolled["previous"] == enrolled["current"] == 600
    listed = page.locator("#changes-listing tbody tr").count()
    assert listed == len(rows) > 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "changes-overview.png"), full_page=True)
    page.locator("#changes-panel").screenshot(path=str(ARTIFACTS / "changes-panel.png"))

    page.locator("#changes-since select").select_option("2025-03-31")
    title_is(page, "Since data cut 2025-03-31")
    page.wait_for_function("() => location.search.includes('since=2025-03-31')", timeout=10000)
    rows = export(synthetic_root, "changes", since="2025-03-31")["rows"]
    assert page.locator("#changes-listing tbody tr").count() == len(rows)

    page.goto(live_server + "/?bclc=C&since=2024-12-31")
    title_is(page, "Since data cut 2024-12-31")
    rows = export(synthetic_root, "changes", "bclc=C", since="2024-12-31")["rows"]
    assert counts_row(page, "All sites")[2] == str(sum(r["kind"] == "death" for r in rows))
    assert page.locator("#changes-since select").input_value() == "2024-12-31"
    page.go_back()
    title_is(page, "Since data cut 2025-03-31")
    assert page.console_errors == []


def test_the_oldest_cut_says_there_is_nothing_to_compare(page, live_server):
    page.goto(live_server + "/?snapshot=2023-03-31")
    page.wait_for_selector("#changes-none", timeout=30000)
    assert "nothing to compare it with" in page.inner_text("#changes-none")
    assert page.console_errors == []
