"""Accessibility of every page in headless Debian Chromium (Playwright) against `python app.py` on the
synthetic registry: axe-core (axe-playwright-python, WCAG 2.1 A/AA rules) finds no serious or critical
violation on any page, unfiltered and filtered; the shell works from the keyboard (skip link, chips,
the filter panel's hide/show button) and names its filter controls by their labels."""
import pytest

from browser_helpers import ARTIFACTS, banner_when, wait_idle

pytestmark = pytest.mark.browser

axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")

PAGES = ["/", "/enrollment", "/survival", "/response", "/safety", "/downstaging", "/quality",
         "/patient/S01-0001"]
FILTERED = "?bclc=B,C&sex=F&age_min=40"
SEVERE = {"serious", "critical"}


def severe_violations(page) -> list[str]:
    """axe-core's serious and critical violations of the page as drawn, one line each."""
    result = axe_module.Axe().run(page, options={"runOnly": {"type": "tag",
                                                            "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
    return [f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
            for v in result.response["violations"] if v["impact"] in SEVERE]


def open_page(page, url):
    page.goto(url)
    page.wait_for_selector("#banner-count strong", timeout=30000)
    wait_idle(page)
    page.wait_for_timeout(500)          # assets/a11y.js repairs after the next animation frame


@pytest.mark.parametrize("query", ["", FILTERED], ids=["unfiltered", "filtered"])
@pytest.mark.parametrize("path", PAGES)
def test_axe_finds_no_serious_or_critical_violation(page, live_server, path, query):
    open_page(page, live_server + path + query)
    assert severe_violations(page) == []
    assert page.console_errors == []


def test_the_page_declares_its_language_and_landmarks(page, live_server):
    open_page(page, live_server + "/survival")
    assert page.get_attribute("html", "lang") == "en"
    assert page.locator("main#main").count() == 1
    assert page.get_by_role("complementary", name="Filters").count() == 1
    assert page.get_by_role("navigation").count() >= 1


def test_filter_controls_are_named_by_their_labels(page, live_server):
    """A screen reader announces "BCLC stage", not the value ("All") six times."""
    open_page(page, live_server + "/")
    names = []
    page.click("#filter-panel-title")
    for _ in range(7):                  # Tab through the panel: each stop is the dropdown's button
        page.keyboard.press("Tab")
        names.append(page.evaluate("""() => { const el = document.activeElement;
            return (el.getAttribute('aria-labelledby') || '').split(' ')
                   .map((i) => document.getElementById(i)).filter(Boolean).map((n) => n.textContent).join(' '); }"""))
    labels = ("Data cut", "Sites", "BCLC stage", "Child-Pugh class", "Etiology", "Sex", "ECOG performance status")
    assert [n.split(" ")[0] for n in names] == [label.split(" ")[0] for label in labels], names
    assert names[2] == "BCLC stage All"
    # Enter opens the focused dropdown (ECOG's), its options listed
    page.keyboard.press("Enter")
    page.wait_for_selector(".dash-dropdown-option", timeout=5000)
    assert page.locator(".dash-dropdown-option", has_text="0").count() >= 1


def test_skip_link_is_first_and_moves_focus_to_the_page(page, live_server):
    open_page(page, live_server + "/safety")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to main content"
    assert page.locator(".skip-link").is_visible()          # shown while focused
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    assert page.url.endswith("/safety#main")


def test_a_chip_is_removed_from_the_keyboard(page, live_server):
    open_page(page, live_server + "/?sex=F&bclc=C")
    chip = page.get_by_role("button", name="Remove filter Sex: F")
    chip.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => !window.location.search.includes('sex=')", timeout=10000)
    assert "bclc=C" in page.url
    banner_when(page, lambda n: n > 0)
    assert page.get_by_role("button", name="Remove filter Sex: F").count() == 0


def test_the_filter_panel_hides_and_stays_hidden(page, live_server):
    """A projector's 1280x720: the panel hidden gives the page the whole width, kept after a reload."""
    page.set_viewport_size({"width": 1280, "height": 720})
    open_page(page, live_server + "/survival")
    toggle = page.locator("#filter-toggle")
    assert toggle.get_attribute("aria-expanded") == "true"
    width_before = page.locator("#main").bounding_box()["width"]
    toggle.click()
    assert not page.locator("#filter-sidebar").is_visible()
    assert toggle.get_attribute("aria-expanded") == "false"
    assert toggle.inner_text() == "Show filters"
    assert page.locator("#main").bounding_box()["width"] > width_before + 200
    open_page(page, live_server + "/survival")
    assert not page.locator("#filter-sidebar").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "filters_hidden_1280x720.png"))
    page.locator("#filter-toggle").click()
    assert page.locator("#filter-sidebar").is_visible()
    assert page.locator("#filter-toggle").get_attribute("aria-expanded") == "true"


def test_focus_is_visible(page, live_server):
    open_page(page, live_server + "/")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")          # past the skip link: the navbar's brand
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineWidth")
    assert float(outline.replace("px", "")) >= 2


def test_page_option_dropdowns_are_named_by_their_labels(page, live_server):
    """A page option's dropdown (Survival's "Group by", the Cox "Reference group") is announced by its label."""
    open_page(page, live_server + "/survival")
    names = page.evaluate("""() => Array.from(document.querySelectorAll('#page-content button.dash-dropdown'))
        .map((b) => (b.getAttribute('aria-labelledby') || '').split(' ').map((i) => document.getElementById(i))
                    .filter(Boolean).map((n) => n.textContent).join(' '))""")
    assert any(n.startswith("Group by") for n in names), names
    assert any(n.startswith("Reference group") for n in names), names
    assert all(n and not n.startswith(("All", "Default")) for n in names), names
