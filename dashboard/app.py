"""The Dash application: shell layout (navigation, filter panel, banner) around the pages.

Filter state lives in the URL query string and the browser (a dcc.Store); the server keeps no
mutable state between requests.
"""
from __future__ import annotations

import gc
import logging
import os
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids
from dashboard.contract import BCLC_STAGES, CHILD_PUGH_CLASSES, ETIOLOGIES
from dashboard.filters import UNKNOWN
from dashboard.access import AccessDenied
from dashboard.snapshots import SnapshotError

ROOT = Path(__file__).resolve().parent.parent
PAGES = [  # (path, label) in navigation order; each has a module in dashboard/pages
    ("/", "Overview"),
    ("/enrollment", "Enrollment"),
    ("/survival", "Survival"),
    ("/response", "Tumour response"),
    ("/safety", "Safety"),
    ("/downstaging", "Downstaging"),
]
TOOL_PAGES = [("/quality", "Data quality")]     # navigation after the analysis pages; not benchmarked or warmed

log = logging.getLogger(__name__)


def _multi(id_, label, options, placeholder="All"):
    return html.Div([
        dbc.Label(label, html_for=id_, className="filter-label"),
        dcc.Dropdown(id=id_, options=options, multi=True, placeholder=placeholder, value=[]),
    ], className="mb-2")


def filter_panel():
    opts = lambda values, labels=None: [{"label": (labels or {}).get(v, v), "value": v} for v in values]
    return html.Aside([
        html.H2("Filters", className="h6 text-uppercase text-muted mb-2", id="filter-panel-title"),
        html.Div([
            dbc.Label("Data cut", html_for=ids.SNAPSHOT, className="filter-label"),
            dcc.Dropdown(id=ids.SNAPSHOT, clearable=False, options=[], value=None),
        ], className="mb-3"),
        _multi(ids.F_SITE, "Sites", []),
        _multi(ids.F_BCLC, "BCLC stage", opts(BCLC_STAGES + (UNKNOWN,))),
        _multi(ids.F_CHILD_PUGH, "Child-Pugh class", opts(CHILD_PUGH_CLASSES + (UNKNOWN,))),
        _multi(ids.F_ETIOLOGY, "Etiology", opts(ETIOLOGIES + (UNKNOWN,))),
        _multi(ids.F_SEX, "Sex", opts(("M", "F"), {"M": "Male", "F": "Female"})),
        _multi(ids.F_ECOG, "ECOG performance status", opts(("0", "1", "2", "3", "4", UNKNOWN))),
        html.Div([
            dbc.Label("Age (years)", html_for=ids.F_AGE, className="filter-label"),
            dcc.RangeSlider(id=ids.F_AGE, min=18, max=100, step=1, value=[18, 100],
                            marks={18: "18", 40: "40", 60: "60", 80: "80", 100: "100"},
                            tooltip={"placement": "bottom", "always_visible": False}),
        ], className="mb-3"),
        html.Div([
            dbc.Label("Enrolled between", html_for=ids.F_ENROLLED, className="filter-label"),
            dcc.DatePickerRange(id=ids.F_ENROLLED, display_format="YYYY-MM-DD",
                                start_date_placeholder_text="from", end_date_placeholder_text="to",
                                clearable=True),
        ], className="mb-2"),
    ], id=ids.FILTER_PANEL, className="filter-panel", **{"aria-labelledby": "filter-panel-title"})


def navbar():
    links = [dbc.NavItem(dbc.NavLink(label, href=path, id=ids.nav_link(path), active="exact"))
             for path, label in PAGES + TOOL_PAGES]
    return dbc.Navbar(dbc.Container([
        dbc.NavbarBrand("HCC DEB-TACE Registry", href="/", className="fw-semibold"),
        dbc.Nav(links, navbar=True, className="me-auto"),
        user_menu(),
    ], fluid=True), color="dark", dark=True, className="mb-0 py-1")


def user_menu():
    """The navbar's right end: "demo: no sign-in" without sign-in; else the user's name, role and
    sites, and a sign-out button when the sign-in has a session (a form posting its CSRF token)."""
    import flask
    user = flask.g.get("user") if flask.has_request_context() else None
    if user is None:
        return None
    if user.demo:
        return dbc.Badge("demo: no sign-in", color="warning", text_color="dark", className="demo-badge",
                         title="Anyone who reaches this address sees this demo; only synthetic data is served.")
    sites = f" ({', '.join(user.sites)})" if user.sites else ""
    parts = [html.Span(f"{user.name} · {user.role}{sites}", className="navbar-text text-light small me-2 navbar-user")]
    token = flask.session.get("csrf") if flask.session.get("sid") else None
    if isinstance(token, str):
        parts.append(html.Form([
            dcc.Input(type="hidden", name="csrf", value=token),
            html.Button("Sign out", type="submit", className="btn btn-outline-light btn-sm sign-out"),
        ], action="/sign-out", method="POST", className="d-inline m-0"))
    return html.Div(parts, className="d-flex align-items-center")


def banner():
    return html.Div([
        html.Div([
            html.Span(id=ids.BANNER_COUNT, className="banner-count me-3"),
            html.Span(id=ids.BANNER_CUTOFF, className="text-muted"),
        ], className="d-flex align-items-baseline flex-wrap"),
        html.Div([
            html.Button([html.Span("Hide filters", className="when-shown"), html.Span("Show filters", className="when-hidden")],
                        id=ids.FILTER_TOGGLE, type="button", className="btn btn-outline-dark btn-sm py-0 me-2 filter-toggle",
                        title="Hide or show the filter panel (kept for your next visit)",
                        **{"aria-controls": "filter-sidebar", "aria-expanded": "true"}),
            html.Div(id=ids.CHIPS, className="d-inline"),
            dbc.Button("Clear all", id=ids.CLEAR_ALL, color="link", size="sm", className="ms-1 p-0 align-baseline"),
        ], className="mt-1"),
        html.Div([
            html.Span(id=ids.CUT_MARKER_TEXT),
            dbc.Button("Show the latest cut", id=ids.SHOW_LATEST, color="warning", size="sm",
                       className="ms-2 py-0 align-baseline", n_clicks=0),
        ], id=ids.CUT_MARKER, className="alert alert-warning py-2 mt-2 mb-0 small cut-marker", role="status",
            style={"display": "none"}),
        html.Div(id=ids.URL_MESSAGE),
        dbc.Alert(id=ids.ERROR_NOTICE, color="danger", is_open=False, dismissable=True,
                  className="py-2 mt-2 mb-0 small"),
    ], className="banner sticky-top")


def cut_poll_seconds() -> float:
    """How often an open page looks for a new data cut: $REGISTRY_CUT_POLL_SECONDS, else 30 s (a new
    cut is offered within a minute)."""
    try:
        return max(1.0, float(os.environ.get("REGISTRY_CUT_POLL_SECONDS", "30")))
    except ValueError:
        return 30.0


def layout():
    from dashboard.callbacks.shell import opened_page
    from dashboard.components import iter_components
    shell = html.Div([
        dcc.Location(id=ids.URL, refresh="callback-nav"),
        dcc.Store(id=ids.STATE, storage_type="memory"),
        dcc.Store(id=ids.URL_SEEN, storage_type="memory"),
        dcc.Store(id=ids.PAGE_TITLE),
        dcc.Store(id=ids.PAGE_DEFAULTS),
        dcc.Store(id=ids.ROUTED),
        dcc.Store(id=ids.SHOWN_CUT),
        dcc.Store(id=ids.CUT_POLL_SEEN),
        dcc.Interval(id=ids.CUT_POLL, interval=cut_poll_seconds() * 1000),
        html.A("Skip to main content", href="#main", className="visually-hidden-focusable skip-link"),
        navbar(),
        dbc.Container(dbc.Row([
            dbc.Col(filter_panel(), lg=3, xl=2, className="pt-3 sidebar", id="filter-sidebar"),
            dbc.Col(html.Main([banner(), html.Div(id=ids.PAGE_CONTENT)], id="main", tabIndex="-1"),
                    lg=9, xl=10, className="pt-2 main-col"),
        ]), fluid=True),
    ])
    opened = opened_page()      # the page being opened and the shell's values for it, when the request tells
    if opened:
        for component in list(iter_components(shell)):
            for (ident, prop), value in opened.items():
                if getattr(component, "id", None) == ident:
                    setattr(component, prop, value)
    return shell


def report_callback_error(err: Exception):
    """Any callback failure: logged in full on the server, a short notice in the browser,
    never a traceback. A data cut that is gone (deleted, or rejected since the page was opened)
    is said so, once per update, instead of "Something went wrong" on every card."""
    if isinstance(err, SnapshotError):
        cut = _requested_cut()
        log.warning("callback on a data cut that is not available (%s): %s", cut, err)
        text = (f"Data cut {cut} is no longer available (deleted or rejected since this page was opened); "
                "reload the page to see the latest cut." if cut not in (None, "", "latest") else
                "No valid data cut is available right now; the error was logged. Reload the page later.")
        dash.set_props(ids.ERROR_NOTICE, {"children": text, "is_open": True, "color": "warning"})
        return
    if isinstance(err, AccessDenied):
        log.warning("callback refused: %s", err)
        dash.set_props(ids.ERROR_NOTICE, {"children": f"Not available for your role: {err}", "is_open": True,
                                          "color": "warning"})
        return
    log.exception("callback failed", exc_info=err)
    dash.set_props(ids.ERROR_NOTICE, {
        "children": "Something went wrong while updating this view; the error was logged. "
                    "Try another filter or reload the page.",
        "is_open": True, "color": "danger"})


def _requested_cut() -> str | None:
    """The data cut the failed update asked for: the snapshot of its filter-state input or state."""
    try:
        context = dash.callback_context
        state = {**context.states, **context.inputs}.get(f"{ids.STATE}.data")
        cut = state.get("snapshot") if isinstance(state, dict) else None
        return cut[:64] if isinstance(cut, str) else None
    except Exception:       # outside a callback: no context to read
        return None


def create_app() -> dash.Dash:
    from dashboard import cache
    cache.check_folder()        # refuse to start on a cache folder others could write (dashboard/cache.py)
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder=str(ROOT / "dashboard" / "pages"),
        assets_folder=str(ROOT / "assets"),
        serve_locally=True,
        suppress_callback_exceptions=True,
        title="HCC DEB-TACE Registry",
        update_title=None,
        on_error=report_callback_error,
    )
    app.index_string = app.index_string.replace("<html>", '<html lang="en">', 1)
    app.layout = layout
    import dashboard.callbacks  # noqa: F401  (registers every callback)
    from dashboard import auth
    auth.install(app)                   # the user of each request, before Dash's own hooks run
    set_up_before_first_request(app)
    from dashboard import security
    security.install(app)               # after set-up: the CSP lists the hashes of every inline script
    freeze_startup_objects()
    return app


_registered: dict = {"map": {}, "list": [], "scripts": []}


def set_up_before_first_request(app: dash.Dash) -> None:
    """Dash sets itself up (the callback map, its pages router, the scripts) on its first request,
    and requests that arrive meanwhile find no callback: 500 "Callback function not found" for 5-6
    of the first concurrent requests to a fresh worker. Run that set-up now, before the process (or
    gunicorn's preloading parent) serves anything. Dash moves the callbacks registered with
    dash.callback into the first app set up; a copy is kept so every app of the process gets them
    (tests and the warmer create more than one)."""
    from dash import _callback
    _registered["map"].update(_callback.GLOBAL_CALLBACK_MAP)
    outputs = {c["output"] for c in _registered["list"]}
    _registered["list"].extend(c for c in _callback.GLOBAL_CALLBACK_LIST if c["output"] not in outputs)
    _registered["scripts"].extend(s for s in _callback.GLOBAL_INLINE_SCRIPTS if s not in _registered["scripts"])
    _callback.GLOBAL_CALLBACK_MAP.update(_registered["map"])
    _callback.GLOBAL_CALLBACK_LIST[:] = _registered["list"]
    _callback.GLOBAL_INLINE_SCRIPTS[:] = _registered["scripts"]
    with app.server.test_request_context("/"):
        app.server.preprocess_request()         # Dash's before_request hooks: _setup_server, the pages router


def freeze_startup_objects() -> None:
    """Exempt what exists now (imported modules, the app: about 160,000 objects, all kept for the
    life of the process) from Python's garbage collector, which otherwise walks all of them in
    each full collection: measured 75-100 ms on this 2-core host, a pause that lands on whichever
    page update is running (one in the benchmark's Tumour response run). After the freeze a full
    collection walks only objects made since: under a millisecond after every page ran 10 times.
    Also what gunicorn's preloading parent wants: the workers share these pages untouched."""
    gc.collect()
    gc.freeze()
