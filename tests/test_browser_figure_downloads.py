"""A figure downloaded as SVG or PNG carries its provenance (issue 20): in headless Debian Chromium against
`python app.py` on the synthetic registry, the card's SVG and PNG buttons give files named like the figure's
export (page_figure_cut_date) whose image has a caption line under the figure: the registry, the data cut,
the filters and n, as the banner shows them. Expected text: the banner of the same page."""
import struct

import pytest

from browser_helpers import ARTIFACTS, wait_idle

pytestmark = pytest.mark.browser


def open_survival(page, url):
    page.goto(url + "/survival?bclc=B,C&sex=F")
    page.wait_for_selector("#banner-count strong", timeout=30000)
    wait_idle(page)


def button(page, kind: str, figure: str):
    return page.locator(f'[id=\'{{"figure":"{figure}","type":"download-{kind}"}}\']')


def downloaded(page, url, kind: str):
    """The Kaplan-Meier card's download of that kind (svg, png), named page_figure_..."""
    open_survival(page, url)
    with page.expect_download() as info:
        button(page, kind, "km-curve").click()
    download = info.value
    assert download.suggested_filename.startswith("survival_km-curve_") and download.suggested_filename.endswith("." + kind)
    return download


def test_svg_download_has_the_caption(page, live_server):
    download = downloaded(page, live_server, "svg")
    svg = open(download.path(), encoding="utf-8").read()
    cutoff = page.inner_text("#banner-cutoff")
    count = page.inner_text("#banner-count")
    caption = f"HCC DEB-TACE Registry · {cutoff} · BCLC: B, BCLC: C, Sex: F · {count}"
    assert caption.replace("·", "&#183;") in svg or caption in svg, (caption, svg[-2000:])
    assert "Months since first DEB-TACE" in svg            # the figure itself is in the file
    assert page.console_errors == []


def test_png_download_is_the_figure_and_its_caption(page, live_server):
    download = downloaded(page, live_server, "png")
    data = open(download.path(), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    box = page.locator('[id=\'{"figure":"km-curve","type":"figure"}\'] .js-plotly-plot').bounding_box()
    # scale 2, and 36 px more for the caption row (the box has sub-pixel sizes)
    assert abs(width - 2 * box["width"]) <= 2 and abs(height - 2 * (box["height"] + 36)) <= 2, (width, height, box)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "km_curve_download.png").write_bytes(data)
    # the toolbar's camera (no caption) is gone from card graphs
    assert page.locator('[id=\'{"figure":"km-curve","type":"figure"}\'] [data-title="Download plot as a png"]').count() == 0
