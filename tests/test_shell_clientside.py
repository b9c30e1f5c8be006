"""The shell's browser-side steps (assets/shell.js), run in headless Chromium as the renderer calls
them: the cards' state from a URL or from the controls, chips and "clear all"; the page options
<-> URL; the navigation links. The expected queries are the server's own: Filters.to_query() of
the same filters (dashboard/filters.py), so the browser asks for what the server would."""
import json
import re
from pathlib import Path

import pytest

from dashboard import ids
from dashboard.filters import KEYS, LIST_KEYS, Filters

pytestmark = pytest.mark.browser

SHELL_JS = Path(__file__).resolve().parents[1] / "assets" / "shell.js"
NO = "NO_UPDATE"
CUTS = [{"label": "2025-03-31", "value": "2025-03-31", "disabled": False},
        {"label": "2024-12-31", "value": "2024-12-31", "disabled": False},
        {"label": "2024-09-30 rejected", "value": "2024-09-30", "disabled": True}]


@pytest.fixture(scope="module")
def js(browser):
    page = browser.new_context().new_page()
    page.set_content("<html><body></body></html>")
    page.evaluate(f"() => {{ window.dash_clientside = {{no_update: {json.dumps(NO)}}}; }}")
    page.add_script_tag(content=SHELL_JS.read_text())
    yield page
    page.close()


def call(js, function: str, args: list, triggered: list, inputs_list=None):
    """A shell function's result, with Dash's callback context as the renderer sets it."""
    return js.evaluate("""([fn, args, triggered, inputsList]) => {
        window.dash_clientside.callback_context = {triggered: triggered, inputs_list: inputsList};
        return window.dash_clientside.shell[fn].apply(null, args);
    }""", [function, args, [{"prop_id": p, "value": v} for p, v in triggered], inputs_list or []])


def filter_state(js, search="", lists=None, age=(18, 100), start=None, end=None, triggered=(), current=None,
                 cuts=CUTS, clear=None):
    lists = lists or {}
    args = [search, *[lists.get(k, []) for k in LIST_KEYS], list(age), start, end, [], clear, current, cuts]
    out = call(js, "filterState", args, list(triggered))
    state, seen, *controls = out
    return state, seen, dict(zip([*LIST_KEYS, "age", "start", "end"], controls))


def test_the_filter_keys_are_the_servers():
    text = SHELL_JS.read_text()
    list_keys = json.loads(re.search(r"const LIST_KEYS = (\[.*?\]);", text).group(1).replace("'", '"'))
    extra = json.loads(re.search(r"LIST_KEYS\.concat\((\[.*?\])\)", text).group(1).replace("'", '"'))
    assert list_keys == list(LIST_KEYS) == list(ids.LIST_CONTROLS)
    assert list_keys + extra == list(KEYS)


@pytest.mark.parametrize("search", [
    "?bclc=B,C&sex=F",
    "?sex=F&bclc=C,B&endpoint=pfs",                     # order of keys: canonical; of values: as given
    "?etiology=HBV%2BHCV,MASLD&ecog=0,unknown&age_min=50&age_max=75",
    "?enrolled_from=2023-07-01&enrolled_to=2024-06-30&site=S01,S03",
    "?bclc=B,B,&child_pugh=A",                           # repeated and empty items dropped
    "",
])
def test_state_from_a_url_is_the_servers_canonical_query(js, search):
    state, seen, controls = filter_state(js, search)
    assert state == {"snapshot": "latest", "query": Filters.from_query(search)[0].to_query()}
    assert seen.startswith("load:")               # the first call: the server checks the URL
    expected = Filters.from_query(search)[0]
    for key in LIST_KEYS:
        assert controls[key] == (list(getattr(expected, key)) or NO)
    age = [expected.age_min or 18, expected.age_max or 100]
    assert controls["age"] == (NO if age == [18, 100] else age)


def test_state_from_the_controls_is_the_servers_canonical_query(js):
    lists = {"bclc": ["C", "B"], "etiology": ["HBV+HCV"], "site": ["S02"]}
    state, seen, controls = filter_state(js, "?endpoint=pfs", lists=lists, age=(28, 100),
                                         start="2023-01-01T00:00:00", triggered=[("f-bclc.value", ["C", "B"])])
    expected = Filters(site=("S02",), bclc=("C", "B"), etiology=("HBV+HCV",), age_min=28,
                       enrolled_from=Filters.parse_pairs([("enrolled_from", "2023-01-01")])[0].enrolled_from)
    assert state == {"snapshot": "latest", "query": expected.to_query()}
    assert seen == NO and set(controls.values()) == {NO}      # a person's change: the controls stay


def test_the_cut_named_in_the_url_when_it_is_offered(js):
    assert filter_state(js, "?snapshot=2024-12-31")[0]["snapshot"] == "2024-12-31"
    assert filter_state(js, "?snapshot=1999-01-01")[0]["snapshot"] == "latest"     # not there
    assert filter_state(js, "?snapshot=2024-09-30")[0]["snapshot"] == "latest"     # rejected
    assert filter_state(js, "?snapshot=2024-12-31", cuts=[])[0]["snapshot"] == "2024-12-31"   # list not known yet
    # a control keeps the URL's cut
    state = filter_state(js, "?snapshot=2024-12-31", lists={"sex": ["M"]}, triggered=[("f-sex.value", ["M"])])[0]
    assert state == {"snapshot": "2024-12-31", "query": "sex=M"}


def test_nothing_changes_when_the_state_is_the_one_shown(js):
    current = {"snapshot": "latest", "query": "bclc=B"}
    # the server's canonical URL after a person's change (or a page option): no new state, no check
    state, seen, controls = filter_state(js, "?bclc=B&endpoint=pfs", lists={"bclc": ["B"]}, current=current,
                                         triggered=[("url.search", "?bclc=B&endpoint=pfs")])
    assert (state, seen) == (NO, NO) and set(controls.values()) == {NO}
    # back to other filters: a new state, and the server checks the URL and the controls follow it
    state, seen, controls = filter_state(js, "?bclc=C", lists={"bclc": ["B"]}, current=current,
                                         triggered=[("url.search", "?bclc=C")])
    assert state == {"snapshot": "latest", "query": "bclc=C"} and seen.startswith("nav:")
    assert controls["bclc"] == ["C"] and controls["sex"] == NO


def test_a_chip_removes_its_value_and_a_drawn_chip_nothing(js):
    chip = json.dumps({"key": "bclc", "type": "filter-chip", "value": "B"}, separators=(",", ":")) + ".n_clicks"
    lists = {"bclc": ["B", "C"], "sex": ["F"]}
    state, seen, controls = filter_state(js, "?bclc=B,C&sex=F", lists=lists, triggered=[(chip, 1)])
    assert state["query"] == "bclc=C&sex=F" and controls["bclc"] == ["C"] and controls["sex"] == NO
    assert filter_state(js, "?bclc=B,C&sex=F", lists=lists, triggered=[(chip, 0)])[0] == NO
    age_chip = json.dumps({"key": "age_min", "type": "filter-chip", "value": "50"}, separators=(",", ":")) + ".n_clicks"
    state, _, controls = filter_state(js, "", lists=lists, age=(50, 75), triggered=[(age_chip, 1)])
    assert state["query"] == "bclc=B,C&sex=F&age_max=75" and controls["age"] == [18, 75]


def test_clear_all_empties_only_the_controls_that_hold_a_filter(js):
    lists = {"bclc": ["B"], "sex": ["F"]}
    state, _, controls = filter_state(js, "?bclc=B&sex=F&age_min=40&snapshot=2024-12-31", lists=lists,
                                      age=(40, 100), clear=1, triggered=[("clear-all-filters.n_clicks", 1)])
    assert state == {"snapshot": "2024-12-31", "query": ""}
    assert controls["bclc"] == [] and controls["sex"] == [] and controls["site"] == NO
    assert controls["age"] == [18, 100] and controls["start"] == NO
    assert filter_state(js, "", clear=None, triggered=[("clear-all-filters.n_clicks", None)])[0] == NO


SPEC = {"defaults": {"endpoint": "os", "by": "bclc_stage", "bands": []},
        "allowed": {"endpoint": ["os", "pfs", "ttp"], "by": ["bclc_stage", "sex"], "bands": ["ci", "risk"]}}
OPTION_IDS = [{"id": {"type": "page-option", "key": k}, "property": "value"} for k in ("endpoint", "by", "bands")]


def page_options(js, search, values, triggered):
    return call(js, "pageOptions", [search, values, SPEC], triggered, [{"id": "url", "property": "search"}, OPTION_IDS])


def test_a_page_option_writes_the_url_leaving_defaults_out(js):
    option = '{"key":"endpoint","type":"page-option"}.value'
    url, values = page_options(js, "?bclc=B", ["pfs", "bclc_stage", []], [(option, "pfs")])
    assert url == "?bclc=B&endpoint=pfs" and values == [NO, NO, NO]
    url, _ = page_options(js, "?bclc=B&endpoint=pfs", ["os", "bclc_stage", []], [(option, "os")])
    assert url == "?bclc=B"                                       # back to the default: out of the URL
    url, _ = page_options(js, "?bclc=B", ["os", "bclc_stage", ["ci", "risk"]],
                          [('{"key":"bands","type":"page-option"}.value', ["ci", "risk"])])
    assert url == "?bclc=B&bands=ci,risk"
    assert page_options(js, "?bclc=B", ["os", "bclc_stage", []], [(option, "os")])[0] == NO   # an echo


def test_back_and_forward_set_the_page_options_from_the_url(js):
    values = ["pfs", "sex", ["ci"]]
    assert page_options(js, "?endpoint=ttp&bands=ci,risk", values, [("url.search", "")])[1] == \
        ["ttp", "bclc_stage", ["ci", "risk"]]                   # an option not in the URL: its default
    # a value the control cannot hold (a hand-edited link): the default, as the layout renders it
    assert page_options(js, "?endpoint=evil&by=sex", values, [("url.search", "")])[1] == ["os", NO, []]


def test_navigation_keeps_filters_and_cut_not_page_options(js):
    links = [{"type": "nav-link", "page": "/"}, {"type": "nav-link", "page": "/survival"}]
    hrefs = call(js, "navHrefs", ["?bclc=B&endpoint=pfs&snapshot=2024-12-31&sex=F", links], [])
    assert hrefs == ["/?bclc=B&snapshot=2024-12-31&sex=F", "/survival?bclc=B&snapshot=2024-12-31&sex=F"]
    assert call(js, "navHrefs", ["", links], []) == ["/", "/survival"]
