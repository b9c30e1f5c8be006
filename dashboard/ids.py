"""Component ids, in one place. Pattern-matching ids are dicts built by the helpers below."""

URL = "url"
PAGE_CONTENT = "page-content"     # filled by the shell's router on a change of path only
ROUTED = "page-routed"            # dcc.Store: the path whose page the shell's layout was served with
PAGE_TITLE = "page-title-sink"
PAGE_DEFAULTS = "page-option-defaults"   # the page options' values with none in the URL, and their choices
STATE = "filter-state"            # dcc.Store: {"snapshot": id, "query": canonical filter query}
URL_SEEN = "url-seen"             # dcc.Store: "load:"/"nav:" + a timestamp when a URL brought filters the page did not show
SNAPSHOT = "snapshot-select"
URL_MESSAGE = "url-message"
ERROR_NOTICE = "error-notice"
BANNER_COUNT = "banner-count"
BANNER_CUTOFF = "banner-cutoff"
CUT_MARKER = "cut-marker"         # shown when the page's data cut is not the latest one
CUT_MARKER_TEXT = "cut-marker-text"
SHOW_LATEST = "show-latest-cut"   # the marker's button: the same view on the latest cut
SHOWN_CUT = "shown-cut"           # dcc.Store: the cut the banner last drew for a page following the latest ("" otherwise)
CUT_POLL = "cut-poll"             # dcc.Interval: looks for new data cuts while a page is open
CUT_POLL_SEEN = "cut-poll-seen"   # dcc.Store: the data-cut list the poll last offered
CHIPS = "filter-chips"
CLEAR_ALL = "clear-all-filters"
FILTER_TOGGLE = "filter-toggle"
FILTER_PANEL = "filter-panel"

F_SITE = "f-site"
F_BCLC = "f-bclc"
F_CHILD_PUGH = "f-child-pugh"
F_ETIOLOGY = "f-etiology"
F_SEX = "f-sex"
F_ECOG = "f-ecog"
F_AGE = "f-age"
F_ENROLLED = "f-enrolled"

# filter key -> control id of the multi-select filters
LIST_CONTROLS = {"site": F_SITE, "bclc": F_BCLC, "child_pugh": F_CHILD_PUGH,
                 "etiology": F_ETIOLOGY, "sex": F_SEX, "ecog": F_ECOG}


def nav_link(page: str) -> dict:
    return {"type": "nav-link", "page": page}


def chip(key: str, value: str) -> dict:
    return {"type": "filter-chip", "key": key, "value": value}


def page_option(key: str) -> dict:
    """A page control whose value lives in the URL (?endpoint=pfs): key = the query parameter."""
    return {"type": "page-option", "key": key}


def download_button(figure: str) -> dict:
    return {"type": "download-csv", "figure": figure}


def download(figure: str) -> dict:
    return {"type": "download", "figure": figure}
