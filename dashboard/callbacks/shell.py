"""Shell callbacks: URL <-> filter controls, the "n of N" banner, chips, navigation links.

The URL query string is the single source of truth for the filters. A filter change reaches the
page's cards in one wave of requests: the browser computes the cards' state (ids.STATE: data cut
and filter query) from the same input as the server's `sync_state`, which runs beside them and
keeps the URL, the controls and the messages canonical (assets/shell.js holds the browser's
steps: the state, the page options <-> URL, the navigation links). The state is only a request:
every card parses and checks it again (dashboard/state.py). The functions below are plain
functions; the @callback wrappers only wire them.
"""
from __future__ import annotations

import hashlib
import json
import logging
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import dash
import dash_bootstrap_components as dbc
from dash import ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, html, no_update

from dashboard import access, audit, data, exports, ids, state as request_state
from dashboard.components import iter_components
from dashboard.filters import LABELS, NON_FILTER_PARAMS, Filters
from dashboard.snapshots import SnapshotError
from dashboard import wire

log = logging.getLogger(__name__)
AGE_BOUNDS = (18, 100)
CONTROL_KEYS = list(ids.LIST_CONTROLS)
# the filter controls' (id, prop): the list controls, age, enrollment start and end
CONTROL_PROPS = [*[(ids.LIST_CONTROLS[k], "value") for k in CONTROL_KEYS], (ids.F_AGE, "value"),
                 (ids.F_ENROLLED, "start_date"), (ids.F_ENROLLED, "end_date")]
# sync_state's outputs: search, state, message, snapshot options and value, site options, the list
# controls, age, enrollment start and end; NO_CHANGE leaves them all as they are
NO_CHANGE = (no_update,) * (6 + len(CONTROL_KEYS) + 3)


def snapshot_options() -> list[dict]:
    """Every complete data cut, newest first. Cuts are validated when chosen (a large registry
    has many); one already known to be rejected is shown disabled."""
    options = []
    for s in reversed(request_state.servable(data.complete_snapshots())):
        report = data.known_report(s)
        rejected = report is not None and not report.ok
        options.append({"label": f"{s.snapshot_id} (cut-off {s.cutoff_date:%d %b %Y})"
                                 + (" — rejected" if rejected else ""),
                        "value": s.snapshot_id, "disabled": rejected})
    return options


def site_options(snapshot) -> list[dict]:
    return [{"label": f"{site_id} · {name}", "value": site_id}
            for site_id, name in data.sites(snapshot)]


def parse_search(search: str | None):
    """(snapshot, filters, messages) from a URL query string; never raises for bad values."""
    params = dict(parse_qsl((search or "").lstrip("?"), keep_blank_values=True))
    messages = []
    wanted = params.get("snapshot") or "latest"
    try:
        snapshot = request_state.resolve(wanted)
    except SnapshotError:
        snapshot = request_state.resolve("latest")
        messages.append(f"snapshot {wanted!r} is not available; showing the latest cut, {snapshot.snapshot_id}")
    filters, problems = Filters.from_query(search or "", known_sites=request_state.site_ids(snapshot))
    return snapshot, filters, messages + problems


def filters_from_controls(values: dict, age, start, end) -> Filters:
    pairs = [(k, ",".join(map(str, v))) for k, v in values.items() if v]
    if age and age[0] > AGE_BOUNDS[0]:
        pairs.append(("age_min", str(age[0])))
    if age and age[1] < AGE_BOUNDS[1]:
        pairs.append(("age_max", str(age[1])))
    if start:
        pairs.append(("enrolled_from", str(start)[:10]))
    if end:
        pairs.append(("enrolled_to", str(end)[:10]))
    return Filters.parse_pairs(pairs, strict=False)[0]


def build_search(snapshot_id: str, filters: Filters, current_search: str | None, latest_id: str) -> str:
    """Canonical query string: filters, then page options kept from the current URL, then the
    snapshot (omitted when it is the latest, so a link follows new data cuts)."""
    kept = [(k, v) for k, v in parse_qsl((current_search or "").lstrip("?"))
            if k in NON_FILTER_PARAMS and k != "snapshot"]
    pairs = filters.to_pairs() + kept
    if snapshot_id != latest_id:
        pairs.append(("snapshot", snapshot_id))
    query = urlencode(pairs, safe=",")
    return "?" + query if query else ""


def message_alert(messages: list[str], heading: str = "Some filters in this link could not be used: "):
    if not messages:
        return None
    return dbc.Alert([html.Strong(heading),
                      html.Ul([html.Li(m) for m in messages], className="mb-0")],
                     color="warning", dismissable=True, className="py-2 mt-2 mb-0 small", id="url-alert")


# The browser's step (assets/shell.js): the cards' state from the URL (load, back, forward) or
# from a control, a removed chip or "clear all"; the controls a chip or "clear all" changes; and
# URL_SEEN when the URL brought filters the page did not show, which the server step checks
clientside_callback(
    ClientsideFunction(namespace="shell", function_name="filterState"),
    Output(ids.STATE, "data"),
    Output(ids.URL_SEEN, "data"),
    *[Output(ident, prop) for ident, prop in CONTROL_PROPS],
    Input(ids.URL, "search"),
    *[Input(ident, prop) for ident, prop in CONTROL_PROPS],
    Input({"type": "filter-chip", "key": ALL, "value": ALL}, "n_clicks"),
    Input(ids.CLEAR_ALL, "n_clicks"),
    State(ids.STATE, "data"),
    State(ids.SNAPSHOT, "options"),
)


# The server step: checks the URL a page was opened or navigated with, and turns a control's
# change into the canonical URL. Its one declared output feeds nothing the cards read; the URL,
# the controls and their choices are set as side updates (SIDE_OUTPUTS, dash.set_props), which
# the browser's renderer does not count as outputs, so it never holds the cards back for this.
@callback(
    Output(ids.URL_MESSAGE, "children"),
    Input(ids.URL_SEEN, "data"),
    Input(ids.SNAPSHOT, "value"),
    *[Input(ident, prop) for ident, prop in CONTROL_PROPS],
    State(ids.URL, "search"),
    State(ids.URL, "pathname"),
    prevent_initial_call=True,
)
def _sync(seen_url, snapshot_value, *rest):
    n = len(CONTROL_KEYS)
    values = dict(zip(CONTROL_KEYS, rest[:n]))
    age, start, end, search, pathname = rest[n:]
    # the URL first: on load, back and forward the browser's step also sets the controls from it
    seen = f"{ids.URL_SEEN}.data" in ctx.triggered_prop_ids
    trigger = ids.URL if seen else ctx.triggered_id
    try:
        out = sync_state(trigger, search, snapshot_value, values, age, start, end)
    except SnapshotError:
        # the cut chosen at the start of this request was rejected while it ran (a file changed
        # under it): list the folders again and choose afresh, which falls back to a good cut
        data.forget_listing()
        out = sync_state(trigger, search, snapshot_value, values, age, start, end)
    if seen and str(seen_url).startswith("nav:"):
        # back or forward to filters the page did not show (the browser's step tells; a page's
        # load is recorded by _route)
        snapshot, filters, _ = parse_search(search)
        record_filter_change(pathname, {"snapshot": snapshot.snapshot_id, "query": filters.to_query()})
    elif trigger != ids.URL and out != NO_CHANGE:
        record_filter_change(pathname, out[1])      # a person's change: recorded once, here
    message, side = side_updates(out, trigger, snapshot_value, values, age, start, end)
    for (ident, prop), value in side.items():
        dash.set_props(ident, {prop: value})
    return message


# what the server step sets as side updates: (id, prop), in sync_state's order
SIDE_OUTPUTS = [(ids.URL, "search"), (ids.SNAPSHOT, "options"), (ids.SNAPSHOT, "value"), (ids.F_SITE, "options"),
                *CONTROL_PROPS]


def side_updates(out: tuple, trigger, snapshot_value, values: dict, age, start, end) -> tuple:
    """(the message, {(id, prop): value}) from sync_state's outputs: the state left out (the browser
    computes it), and every control and list of choices left out that already shows what it would
    be set to (a control set to its own value is drawn again, and sets off both steps again)."""
    if out == NO_CHANGE:
        return no_update, {}
    search, _, message, options, snapshot, sites, *rest = out
    n = len(CONTROL_KEYS)
    controls, (age_out, start_out, end_out) = rest[:n], rest[n:]
    lists_kept = trigger not in (ids.URL, ids.SNAPSHOT)     # a filter control: same cut, same lists
    given = [values.get(k) or [] for k in CONTROL_KEYS]
    kept = [search is no_update, lists_kept, snapshot == snapshot_value, lists_kept,
            *[c is no_update or list(c) == list(g) for c, g in zip(controls, given)],
            age_out is no_update or list(age_out) == list(age or AGE_BOUNDS),
            start_out == (str(start)[:10] if start else None), end_out == (str(end)[:10] if end else None)]
    values_out = [search, options, snapshot, sites, *controls, age_out, start_out, end_out]
    return message, {key: value for key, value, same in zip(SIDE_OUTPUTS, values_out, kept) if not same}


def record_filter_change(path, state: dict) -> None:
    """The audit line of a filter change: one per change, not one per card it updates."""
    filters, _ = Filters.from_query(state.get("query", ""))
    audit.record("page-view", access.current_user(), path=path, snapshot=state.get("snapshot"),
                 filters=filters.to_dict())


def record_page_view(path, search) -> None:
    """The audit line of a page's load or navigation: its path, data cut and filters."""
    try:
        snapshot, filters, _ = parse_search(search)
        cut = snapshot.snapshot_id
    except SnapshotError:
        cut, filters = None, Filters.from_query(search or "")[0]
    audit.record("page-view", access.current_user(), path=path, snapshot=cut, filters=filters.to_dict())


def sync_state(trigger, search, snapshot_value, values, age, start, end):
    """The shell's state machine (see module docstring). Returns the callback's outputs, with the
    canonical state second. A change that leaves snapshot and filters as the page shows them (a
    page option changed, a page link was followed, a control echoed the URL) changes nothing."""
    latest = request_state.resolve("latest")
    options = snapshot_options()
    if trigger in (None, ids.URL):
        snapshot, filters, messages = parse_search(search)
        url_out, message = no_update, message_alert(messages)
        shown = (snapshot_value, filters_from_controls(values, age, start, end).to_query())
        if (snapshot.snapshot_id, filters.to_query()) == shown and not messages:
            return NO_CHANGE            # the controls already show this URL
    else:
        try:
            snapshot = request_state.resolve(snapshot_value or "latest")
        except SnapshotError as e:
            query = Filters.from_query(search or "")[0].to_query()
            return (no_update, {"snapshot": latest.snapshot_id, "query": query},
                    message_alert([f"{e}; showing the latest valid cut, {latest.snapshot_id}."],
                                  "This data cut cannot be shown: "), snapshot_options(),
                    latest.snapshot_id, site_options(latest), *[no_update] * len(CONTROL_KEYS), no_update, no_update,
                    no_update)
        filters = filters_from_controls(values, age, start, end)
        known = set(request_state.site_ids(snapshot))
        filters = filters.without("site") if not set(filters.site) <= known else filters
        shown, shown_filters, _ = parse_search(search)
        if (snapshot.snapshot_id, filters.to_query()) == (shown.snapshot_id, shown_filters.to_query()):
            # a control echoing what the URL shows (its values that could be used): nothing changed,
            # keep any message about the others
            return NO_CHANGE
        new_search = build_search(snapshot.snapshot_id, filters, search, latest.snapshot_id)
        url_out = new_search if new_search != (search or "") else no_update
        message = None
    state = {"snapshot": snapshot.snapshot_id, "query": filters.to_query()}
    controls = [list(getattr(filters, k)) for k in CONTROL_KEYS]
    age_value = [filters.age_min or AGE_BOUNDS[0], filters.age_max or AGE_BOUNDS[1]]
    return (url_out, state, message, options, snapshot.snapshot_id, site_options(snapshot), *controls,
            age_value, filters.enrolled_from and filters.enrolled_from.isoformat(),
            filters.enrolled_to and filters.enrolled_to.isoformat())


def chip_label(key: str, value) -> str:
    return f"{LABELS[key]} {value}" if key in ("age_min", "age_max") else f"{LABELS[key]}: {value}"


def newer_cut(snapshot):
    """The latest valid cut the user may be served, when it is not `snapshot` (None when it is)."""
    latest = request_state.resolve("latest")
    return None if latest.snapshot_id == snapshot.snapshot_id else latest


def cut_marker(snapshot) -> str | None:
    """The marker of a page showing a data cut that is not the latest (None on the latest)."""
    latest = newer_cut(snapshot)
    if latest is None:
        return None
    return (f"A newer data cut is available: {latest.snapshot_id} (cut-off {latest.cutoff_date:%d %b %Y}). "
            f"This page shows the older cut {snapshot.snapshot_id} (cut-off {snapshot.cutoff_date:%d %b %Y}).")


def banner_parts(state: dict | None):
    snapshot, filters, scope = request_state.state_context(state)
    n = exports.n_patients(snapshot, filters, scope.pooled())      # a count of the whole cohort, suppressed below
    total = exports.n_total(snapshot, scope.pooled())
    count = [html.Strong(access.count_text(n, scope)), f" of {access.count_text(total, scope)} patients"]
    cutoff = f"Data cut {snapshot.snapshot_id} · cut-off {snapshot.cutoff_date:%d %b %Y}"
    chips = []
    for key, value in filters.to_pairs():
        for item in (value.split(",") if key in ids.LIST_CONTROLS else [value]):
            # a button, so that a keyboard reaches it and Enter or Space removes the filter
            label = chip_label(key, item)
            chips.append(html.Button([label, html.Span(" ×", className="chip-x", **{"aria-hidden": "true"})],
                                     id=ids.chip(key, item), type="button", n_clicks=0, title="Remove this filter",
                                     className="badge rounded-pill text-bg-primary border-0 me-1 filter-chip",
                                     **{"aria-label": f"Remove filter {label}"}))
    if not chips:
        chips = [html.Span("No filter: all patients in the data cut.", className="text-muted small")]
    return count, cutoff, chips, filters.is_empty()


@callback(
    Output(ids.BANNER_COUNT, "children"),
    Output(ids.BANNER_CUTOFF, "children"),
    Output(ids.CHIPS, "children"),
    Output(ids.CLEAR_ALL, "style"),
    Output(ids.CUT_MARKER_TEXT, "children"),
    Output(ids.CUT_MARKER, "style"),
    Output(ids.SHOWN_CUT, "data"),
    Input(ids.STATE, "data"),
)
def _banner(state):
    count, cutoff, chips, empty = banner_parts(state)
    snapshot = request_state.state_context(state)[0]
    marker = cut_marker(snapshot)
    return wire.plain((count, cutoff, chips, {"display": "none"} if empty else {},
                       marker, {} if marker else {"display": "none"},
                       snapshot.snapshot_id if following_latest(state) else ""))


def following_latest(state) -> bool:
    """Whether the page's state asks for the latest cut (its URL names none)."""
    return isinstance(state, dict) and state.get("snapshot") in (None, "", "latest")


# New data cuts go live without a reload: every CUT_POLL tick an open page offers the cuts now
# under the data root (a new one is validated on its first look, once per process). A page that
# follows the latest cut (no snapshot in its URL) and was drawn on a cut that is no longer the
# latest is pinned to the cut it shows (its URL names it, so every card, the next page option
# included, keeps reading that cut); the banner's marker then offers the newer one.
@callback(
    Output(ids.CUT_POLL_SEEN, "data"),
    Input(ids.CUT_POLL, "n_intervals"),
    State(ids.CUT_POLL_SEEN, "data"),
    State(ids.SHOWN_CUT, "data"),
    State(ids.STATE, "data"),
    State(ids.URL, "search"),
    prevent_initial_call=True,
)
def _poll_cuts(_, seen, shown_cut, state, search):
    try:
        latest = request_state.resolve("latest")     # validates any new cut, newest first
    except SnapshotError:       # no cut to serve: the cards say so on their next update
        return no_update
    options = snapshot_options()
    signature = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]
    if signature != seen:
        dash.set_props(ids.SNAPSHOT, {"options": options})
    pin = pinned_search(shown_cut, state, search, latest)
    if pin is not None:
        dash.set_props(ids.URL, {"search": pin})
    return signature if signature != seen else no_update


def pinned_search(shown_cut, state, search, latest) -> str | None:
    """The URL that keeps a page on the cut it shows, when the page follows the latest cut and a
    newer one (`latest`) has gone live since it was drawn (None otherwise). `shown_cut` is the cut
    the banner last drew for a state following the latest cut, "" for one naming its cut: a page
    just sent from a named cut to the latest one is not pinned back before its banner answers."""
    if not following_latest(state) or not isinstance(shown_cut, str) or not shown_cut:
        return None
    if latest.snapshot_id == shown_cut:
        return None
    try:
        shown = request_state.resolve(shown_cut)
    except SnapshotError:       # the cut shown is gone: the cards say so on their next update
        return None
    filters, _ = Filters.from_query(search or "", known_sites=request_state.site_ids(shown))
    return build_search(shown.snapshot_id, filters, search, latest.snapshot_id)


# the marker's button: the same page and filters on the latest cut (the URL without its snapshot)
clientside_callback(
    """function (clicks, search) {
        if (!clicks) { return window.dash_clientside.no_update; }
        const p = new URLSearchParams(search || "");
        p.delete("snapshot");
        const q = p.toString().replace(/%2C/g, ",");
        return q ? "?" + q : "";
    }""",
    Output(ids.URL, "search", allow_duplicate=True),
    Input(ids.SHOW_LATEST, "n_clicks"),
    State(ids.URL, "search"),
    prevent_initial_call=True,
)


# navigation keeps the filters: every page link carries them (assets/shell.js)
clientside_callback(
    ClientsideFunction(namespace="shell", function_name="navHrefs"),
    Output(ids.nav_link(ALL), "href"),
    Input(ids.URL, "search"),
    State(ids.nav_link(ALL), "id"),
)


# --- routing ------------------------------------------------------------------------------------
def page_for(pathname: str | None) -> dict | None:
    path = (pathname or "/").rstrip("/") or "/"
    exact = next((p for p in dash.page_registry.values() if p["path"] == path), None)
    return exact or next((p for p in dash.page_registry.values() if path_variables(p, path) is not None), None)


def path_variables(page: dict, path: str) -> dict | None:
    """{name: value} of a page's path_template (/patient/<patient_id>) matching the path, one segment per
    variable (URL-decoded); None when it has no template or does not match. The page checks the values."""
    template = page.get("path_template")
    if not template:
        return None
    parts, wanted = path.strip("/").split("/"), template.strip("/").split("/")
    if len(parts) != len(wanted):
        return None
    values = {}
    for part, want in zip(parts, wanted):
        if want.startswith("<") and want.endswith(">") and part:
            values[want[1:-1]] = unquote(part)
        elif part != want:
            return None
    return values


def render_page(pathname: str | None, search: str | None):
    """The page layout for a path, given the page options in the query string (?endpoint=pfs).
    Our own router, on the path only: Dash's would re-render the page on every filter change."""
    page = page_for(pathname)
    if page is None:
        return html.Div([html.H1("Page not found", className="h4 mt-2"),
                         html.P(["No page at ", html.Code(pathname or ""), ". ",
                                 html.A("Go to the overview", href="/"), "."])]), "Not found"
    layout = page["layout"]
    if callable(layout):
        options = {k: v for k, v in parse_qsl((search or "").lstrip("?")) if k in NON_FILTER_PARAMS}
        path = (pathname or "/").rstrip("/") or "/"
        layout = layout(**options, **(path_variables(page, path) or {}))
    return layout, page["title"]


@callback(
    Output(ids.PAGE_CONTENT, "children"),
    Output(ids.PAGE_TITLE, "data"),
    Output(ids.PAGE_DEFAULTS, "data"),
    Output(ids.ROUTED, "data"),
    Input(ids.URL, "pathname"),
    State(ids.URL, "search"),
    State(ids.ROUTED, "data"),
)
def _route(pathname, search, routed):
    record_page_view(pathname, search)
    if routed == pathname:
        # the page content is already this page's: the shell's layout was served with it (the
        # browser's location tells its path only once the page is drawn)
        return no_update, no_update, no_update, no_update
    layout, title = render_page(pathname, search)
    return layout, title, page_option_spec(pathname), pathname


def opened_view() -> tuple[str | None, str]:
    """(path, query string) of the page whose shell layout is being served, from the Referer of the
    browser's /_dash-layout request (the security headers keep it on same-origin requests); (None,
    "") when it is unknown (no request, another origin, no Referer), and the router renders the
    page once the browser has told its path."""
    import flask
    if not flask.has_request_context() or not flask.request.path.endswith("_dash-layout"):
        return None, ""
    referrer = urlsplit(flask.request.referrer or "")
    if referrer.netloc != flask.request.host:
        return None, ""
    return referrer.path or "/", ("?" + referrer.query) if referrer.query else ""


def opened_page() -> dict:
    """{(id, prop): value} the shell's layout is served with for the page being opened, so its cards
    are asked for at once with the shell's own callbacks, not after the router's answer: the page's
    content, title, options' spec and path, and the shell as the server step would set it from the
    URL (the data-cut list, which the browser's step checks the URL's cut against; the controls; the
    message about values that could not be used). Empty when the page is unknown."""
    path, search = opened_view()
    if path is None:
        return {}
    try:
        layout, title = render_page(path, search)
        spec = page_option_spec(path)
    except Exception:           # the shell is served whatever a page does; the router then shows its error
        log.exception("the page %s could not be drawn in the shell's layout", path[:200])
        return {}
    opened = {(ids.PAGE_CONTENT, "children"): layout, (ids.PAGE_TITLE, "data"): title,
              (ids.PAGE_DEFAULTS, "data"): spec, (ids.ROUTED, "data"): path}
    try:
        _, _, message, options, snapshot, sites, *controls = sync_state(ids.URL, search, None, {}, None, None, None)
    except SnapshotError:       # no cut to serve: the server step says so once the page asks
        return opened
    return {**opened, (ids.URL_MESSAGE, "children"): message, (ids.SNAPSHOT, "options"): options,
            (ids.SNAPSHOT, "value"): snapshot, (ids.F_SITE, "options"): sites, **dict(zip(CONTROL_PROPS, controls))}


def page_option_spec(pathname: str | None) -> dict:
    """What the browser needs to set the page's options from a URL (back, forward): each option's
    value with none in the URL, and the values its control allows (None: any number; "text": a
    short text, a group level checked by the export). A value outside them is the default, as the
    layout would render it."""
    if page_for(pathname) is None:
        return {"defaults": {}, "allowed": {}}
    from dashboard.security import page_option_rules
    defaults = page_option_defaults(render_page(pathname, "")[0])
    rules = page_option_rules()
    allowed = {}
    for key in defaults:
        kind, values = rules.get(key, ("number", None))
        allowed[key] = None if kind == "number" else "text" if kind == "text" else sorted(map(str, values))
    return {"defaults": defaults, "allowed": allowed}


clientside_callback("function(title) { if (title) { document.title = title; } return null; }",
                    Output(ids.PAGE_TITLE, "clear_data"), Input(ids.PAGE_TITLE, "data"))


# page controls (ids.page_option) keep their value in the URL, so a shared link restores them;
# back and forward set them from the URL (assets/shell.js)
clientside_callback(
    ClientsideFunction(namespace="shell", function_name="pageOptions"),
    Output(ids.URL, "search"),
    Output({"type": "page-option", "key": ALL}, "value"),
    Input(ids.URL, "search"),
    Input({"type": "page-option", "key": ALL}, "value"),
    State(ids.PAGE_DEFAULTS, "data"),
    prevent_initial_call=True,
)


def page_option_defaults(layout) -> dict:
    """{key: value} of the page-option controls as a page renders them with no option in the URL."""
    return {c.id["key"]: getattr(c, "value", None) for c in iter_components(layout)
            if isinstance(getattr(c, "id", None), dict) and c.id.get("type") == "page-option"}
