"""The Overview's "Since data cut X" panel: what changed since a previous cut (docs/changes.md).

The previous cut is a page option (`?since=ID`): the request layer lets only a snapshot id through
(dashboard/security.py SNAPSHOT_OPTIONS), and `compared_cut` checks it again against the cuts this
user may be served that are older than the shown one. Numbers come from the `changes` export, as
the command line prints them for the same user.
"""
from __future__ import annotations

import json

import logging
from urllib.parse import parse_qsl

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html

from dashboard import data, exports, ids, state as request_state, wire
from dashboard.access import AccessDenied
from dashboard.components import RowsTable
from dashboard.exports.changes import ALL, KIND_LABELS, KINDS, ChangesError, older_cuts
from dashboard.snapshots import SNAPSHOT_ID, SnapshotError

log = logging.getLogger(__name__)

# the previous cut's page option: a native select, which keeps a value the URL gives it before the panel
# has sent its options (a dcc.Dropdown clears such a value); "" is the default, the cut before, shown as
# the select's placeholder. The panel
# sets its options only, never its value: a callback from the filter state to a page option's value
# would close a loop through the URL, and the renderer would send every card twice on opening the page
SINCE = ids.page_option("since")
TITLE, BODY = "changes-title", "changes-body"
ROW_LABELS = {"new_patient": "new patient", "death": "death", "progression": "progression (TTP)",
              "grade3plus_ae": "grade >= 3 AE", "downstaged": "downstaged to Milan"}
MONTH_DAYS = 30.4375
RATES = ("os_1y", "orr", "dcr", "downstaged_milan", "converted_resection")
DAYS = ("median_os_days", "median_followup_days")
METRIC_LABELS = {
    "os_1y": "1-year overall survival", "median_os_days": "Median overall survival",
    "enrolled": "Patients enrolled", "target": "Enrollment target",
    "median_followup_days": "Median follow-up (reverse KM)", "orr": "Objective response rate (mRECIST)",
    "dcr": "Disease control rate (mRECIST)", "grade3plus_patients": "Patients with a grade >= 3 AE",
    "grade5_patients": "Patients with a grade 5 AE", "downstaged_milan": "Downstaged to Milan",
    "converted_resection": "Converted to resectable",
}


def changes_section():
    """The panel's layout: a title, the previous-cut selector and the body a callback fills."""
    return html.Div([
        html.H2("Since the previous data cut", id=TITLE, className="h5 mt-3"),
        html.Div([
            html.Label("Compare with data cut", className="filter-label me-2",
                       htmlFor=json.dumps(SINCE, sort_keys=True, separators=(",", ":"))),   # the select's DOM id
            html.Div(dbc.Select(id=SINCE, options=[], value="", placeholder="the cut before", size="sm",
                                style={"width": "18rem"}), id="changes-since"),
        ], className="d-flex align-items-center mb-2"),
        dcc.Loading(html.Div(id=BODY), type="circle", delay_show=250),
    ], id="changes-panel", className="mb-4")


def url_since(search: str | None) -> str | None:
    """The `since` of a URL's query string (the last one), or None."""
    values = [v for k, v in parse_qsl((search or "").lstrip("?")) if k == "since"]
    return values[-1] if values else None


def compared_cut(shown, asked: str | None):
    """(previous cut or None, choices, message): the cut to compare the shown one with, the older
    cuts this user may be served (newest first), and why an asked-for cut is not used (or None)."""
    choices = list(reversed(older_cuts(shown, request_state.servable(data.complete_snapshots()))))
    if not choices:
        return None, [], None
    message = None
    if asked:
        match = [s for s in choices if s.snapshot_id == asked] if SNAPSHOT_ID.match(asked) else []
        if match:
            try:
                return data.resolve(asked), choices, None
            except SnapshotError as e:
                message = f"Data cut {asked[:64]} cannot be compared with: {e}"
        else:
            message = (f"Data cut {asked[:64]} is not an older data cut you can be shown; "
                       f"compared with the one before instead.")
    for candidate in choices:            # the one before; a rejected one is skipped
        try:
            return data.resolve(candidate.snapshot_id), choices, message
        except SnapshotError:
            continue
    return None, choices, message


@callback(
    Output(TITLE, "children"), Output(BODY, "children"), Output(SINCE, "options"), Output(SINCE, "placeholder"),
    Output(SINCE, "disabled"),
    Input(ids.STATE, "data"), Input(SINCE, "value"), State(ids.URL, "search"),
)
def _changes(state, chosen, search):
    # the option's own change decides; otherwise (load, a filter) the URL's value when the option has none
    asked = chosen if ctx.triggered_id == SINCE or chosen else url_since(search)
    try:
        out = changes_panel(state, asked if isinstance(asked, str) else None)
    except (SnapshotError, ChangesError, AccessDenied) as e:
        out = "Since the previous data cut", html.P(str(e), className="text-danger small"), [], "", True
    return wire.plain(out)      # plain JSON values: Dash sends them without walking the components


def changes_panel(state, asked: str | None):
    """Title, body, the select's options (the older cuts, newest first), its placeholder (shown for
    "", the default: the cut before) and whether it is disabled, for the shell's state and the
    asked-for previous cut."""
    shown, filters, scope = request_state.state_context(state)
    previous, choices, message = compared_cut(shown, asked)
    if previous is None:
        text = (f"Data cut {shown.snapshot_id} is the oldest data cut: there is nothing to compare it with."
                if not choices else "No older data cut could be read to compare with.")
        return "Since the previous data cut", html.P(text, className="text-muted", id="changes-none"), \
            [], "no older data cut", True
    default = choices[0].snapshot_id
    options = [{"label": f"{s.snapshot_id} (cut-off {s.cutoff_date:%d %b %Y})", "value": s.snapshot_id}
               for s in choices]
    exp = exports.run_export("changes", shown, filters, scope, since=previous.snapshot_id)
    body = [html.P(f"What data cut {shown.snapshot_id} has that data cut {previous.snapshot_id} did not, for the "
                   "current filter (each cut's own patient attributes).", className="text-muted small"),
            html.Div(message, className="alert alert-warning py-1 small") if message else None,
            html.Div([html.Div(counts_table(exp, scope), className="col-lg-6"),
                      html.Div(metrics_table(exp.extra.get("metrics", [])), className="col-lg-6")],
                     className="row"),
            listing(exp, scope)]
    return (f"Since data cut {previous.snapshot_id}", html.Div([b for b in body if b is not None]), options,
            f"{default} (the cut before)", False)


def counts_table(exp, scope):
    """Patients per kind and site: from the rows (patient-level roles: the rows they may see) or the
    de-identified counts (site 'all' the totals)."""
    if "n" in exp.rows.columns:
        cells = {(r.site_id, r.kind): r.n for r in exp.rows.itertuples(index=False)}
        sites = [s for s in dict.fromkeys(exp.rows["site_id"]) if s != ALL]
    else:
        counts = exp.rows.groupby(["site_id", "kind"]).size().to_dict()
        sites = sorted(exp.rows["site_id"].unique())
        cells = {**counts, **{(ALL, k): int((exp.rows["kind"] == k).sum()) for k in KINDS}}
    shown_sites = [ALL] + [s for s in sites if any(cells.get((s, k)) not in (0, None) for k in KINDS)]
    total = "Your sites" if scope.patient_level and scope.patient_sites is not None else "All sites"
    rows = [[total if s == ALL else s] + [count(cells.get((s, k), 0)) for k in KINDS] for s in shown_sites]
    note = None
    if scope.patient_sites is not None and scope.patient_level:
        note = f"Your sites only ({', '.join(scope.patient_sites)})."
    elif not scope.patient_level:
        note = "Counts of 1-4 are shown as <5; – marks a count withheld so that a <5 cannot be worked out."
    return html.Div([
        html.H3("New since the previous cut", className="h6"),
        RowsTable(["Site"] + [KIND_LABELS[k] for k in KINDS], rows, id="changes-counts",
                  className="table table-sm mb-1", column_classes=[None] + ["text-end"] * len(KINDS), strong=(0,)),
        html.Div("Sites with nothing new are left out." + (" " + note if note else ""), className="small text-muted"),
    ])


def count(n) -> str:
    return "–" if n is None else n if isinstance(n, str) else f"{int(n):,}"


def metrics_table(metrics: list[dict]):
    """The headline numbers of both cuts side by side."""
    if not metrics:
        return html.Div([html.H3("Headline numbers", className="h6"),
                         html.P("The headline numbers are not available.", className="small text-muted")])
    rows = [[metric_label(m["name"]), metric_text(m["name"], m["previous"]), metric_text(m["name"], m["current"]),
             metric_text(m["name"], m["difference"], signed=True)] for m in metrics]
    return html.Div([
        html.H3("Headline numbers", className="h6"),
        RowsTable(["Number", "Previous", "Current", "Difference"], rows, id="changes-metrics", className="table table-sm mb-1",
                  column_classes=[None, "text-end", "text-end", "text-end"]),
        html.Div("Rates in %, differences in percentage points; medians in months. – : not estimable, not reached "
                 "or not shown for your role.", className="small text-muted"),
    ])


def metric_label(name: str) -> str:
    metric, _, group = name.partition(":")
    label = METRIC_LABELS.get(metric, metric)
    return f"{label}, BCLC {group}" if group else label     # the headline's groups are BCLC stages


def metric_text(name: str, value, signed: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    metric = name.partition(":")[0]
    sign = "+" if signed and value > 0 else ""
    if metric in RATES:
        return f"{sign}{100 * value:.1f}" + (" pp" if signed else "%")
    if metric in DAYS:
        return f"{sign}{value / MONTH_DAYS:.1f} mo"
    return f"{sign}{value:,.0f}" if float(value).is_integer() else f"{sign}{value:,.1f}"


def listing(exp, scope):
    """The patient-level rows, one table component, for a role that may see them."""
    if "patient_id" not in exp.rows.columns:
        return html.P("Patient-level rows are not available to your role.", className="small text-muted mt-2")
    rows = [[r.site_id, ROW_LABELS[r.kind], r.patient_id, f"{r.date:%Y-%m-%d}"]
            for r in exp.rows.itertuples(index=False)]
    if not rows:
        return html.P("Nothing new in this comparison.", className="small text-muted mt-2", id="changes-listing")
    table = RowsTable(["Site", "What", "Patient", "Date"], rows, id="changes-listing",
                      className="table table-sm table-hover mb-0", links={2: "/patient/"})     # the patient view
    return html.Div([html.H3(f"Patients ({len(rows):,} rows)", className="h6 mt-2"),
                     html.Div(table, style={"maxHeight": "320px", "overflowY": "auto"})])
