"""Print (Chromium's print to PDF, A4 portrait) of every page against `python app.py` on the synthetic
registry, checked on the PDF's text (pypdf): page 1 starts with the banner (n, data cut, filters) and holds
the page's first figure card whole; no navigation, filter panel or button text anywhere."""
import io
import re
import unicodedata

import pytest

from browser_helpers import ARTIFACTS, wait_idle

pytestmark = pytest.mark.browser
pypdf = pytest.importorskip("pypdf")

# page -> its first figure card must be on the first printed page (Safety opens with its event listing,
# a table that may run over pages: its first rows are checked instead)
PAGES = ["/", "/enrollment", "/survival", "/response", "/downstaging", "/safety"]
# the shell's text that only the screen has: buttons, the skip link, the navbar's links
SCREEN_ONLY = ["Hide filters", "Show filters", "Clear all", "Skip to main content", "Show the latest cut",
               "Overview Enrollment Survival"]


def printed(page, url) -> list[str]:
    page.goto(url)
    page.wait_for_selector("#banner-count strong", timeout=30000)
    wait_idle(page)
    pdf = page.pdf(format="A4", print_background=True)
    return [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def flat(text: str) -> str:
    """Whitespace collapsed and the PDF's ligatures (ﬁ, ﬂ, ﬀ) as letters."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text))


@pytest.mark.parametrize("path", PAGES)
def test_print_shows_the_banner_and_a_figure_first_and_no_controls(page, live_server, path):
    pages = printed(page, live_server + path + "?bclc=B,C&sex=F")
    first = flat(pages[0])
    assert re.match(r"^\d+ of 600 patients Data cut 2025-12-31", first), first[:200]
    assert "BCLC: B" in first and "Sex: F" in first
    if path == "/safety":
        assert "Serious safety signals" in first
    elif path == "/":
        assert "1-year overall survival" in first
    else:
        header = page.locator(".card:has(.js-plotly-plot) .card-header").first.inner_text().split("\n")[0]
        assert header and flat(header) in first, (header, first[:600])
    everything = flat(" ".join(pages))
    for text in SCREEN_ONLY:
        assert text not in everything, text
    assert "HCC DEB-TACE Registry" not in first          # the navbar's brand
    # nothing clickable is printed: the buttons of the cards (downloads, options) and of the shell (a
    # dropdown prints as its chosen value, its arrow hidden)
    page.emulate_media(media="print")
    visible = page.evaluate("""() => Array.from(document.querySelectorAll('button, .btn, nav, aside'))
        .filter((el) => el.getClientRects().length > 0 && !el.classList.contains('filter-chip') &&
                        !el.classList.contains('dash-dropdown'))
        .map((el) => el.tagName + ' ' + el.textContent.slice(0, 40))""")
    assert visible == []


def test_print_screenshot(page, live_server):
    """The survival page as printed (print media, A4 width), for a person to look at."""
    page.goto(live_server + "/survival?bclc=B,C")
    page.wait_for_selector("#banner-count strong", timeout=30000)
    wait_idle(page)
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 794, "height": 1123})
    page.wait_for_timeout(1000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "print_survival_a4.png"))
    assert not page.locator("#filter-sidebar").is_visible()
    assert not page.locator("nav.navbar").is_visible()
