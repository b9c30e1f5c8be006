"""Data-quality page callbacks: state -> the data-quality export -> counts per site and the findings grid;
the CSV download of the same export, named after the cut and the filter."""
from __future__ import annotations

import datetime as dt
import logging

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update, set_props
from dash.exceptions import PreventUpdate

from dashboard import access, audit, components, exports, ids
from dashboard.access import SUPPRESSED, AccessDenied
from dashboard.components import Static, empty_message
from dashboard.exports.quality import counts
from dashboard.figures.common import NO_PATIENTS
from dashboard.quality import RULES
from dashboard.state import cached_view, site_ids, state_context

log = logging.getLogger(__name__)

PAGE = "quality"
EXPORT = "data-quality"
COUNTS, COUNTS_NOTE, GRID, GRID_NOTE = "quality-counts", "quality-counts-note", "quality-grid", "quality-grid-note"
DOWNLOAD_BUTTON, DOWNLOAD = "quality-download-csv", "quality-download"

# grid columns: export column -> header, initial width
GRID_COLUMNS = {"site_id": ("Site", 100), "patient_id": ("Patient", 125), "table": ("Table", 165),
                "rule": ("Rule", 280), "detail": ("Detail", 380),
                "n_findings": ("Findings", 110), "n_patients": ("Patients", 110)}


def file_name(snapshot_id: str, filters, today: dt.date | None = None) -> str:
    """quality_data-quality_<cut>_<filter>_<date>.csv: the filter is its URL query made file-safe
    (site=S01,S02&bclc=B -> site-S01-S02-bclc-B; 'all-patients' without a filter)."""
    return components.file_name(PAGE, EXPORT, snapshot_id, today, filters=filters) + ".csv"


def count_cell(n):
    if n == 0:
        return html.Td("·", className="text-end text-muted")
    return html.Td(n, className="text-end")


def counts_table(count_rows, sites: list[str], total: bool):
    """The rules with a finding down, sites across, each cell the findings of the rule at the site
    (count_rows: the export's counts per site and rule); totals only when `total` (never beside a
    "<5", which a total would give away by subtraction). Returns (table, the rules with none)."""
    by_cell = {(r["table"], r["rule"], r["site_id"]): r["n_findings"] for r in count_rows.to_dict("records")}
    fired = [r for r in RULES if any((r.table, r.label, s) in by_cell for s in sites)]
    quiet = [r for r in RULES if r not in fired]
    head = html.Thead(html.Tr([html.Th("Rule (table)")] + [html.Th(s, className="text-end") for s in sites]
                              + ([html.Th("Total", className="text-end")] if total else [])))
    body = []
    for r in fired:
        cells = [by_cell.get((r.table, r.label, s), 0) for s in sites]
        label = html.Td([r.label, html.Span(f" ({r.table})", className="text-muted")], className="quality-rule",
                        style={"minWidth": "16rem", "maxWidth": "28rem", "whiteSpace": "normal"})
        body.append(html.Tr([label] + [count_cell(n) for n in cells]
                            + ([html.Td(html.Strong(sum(cells)), className="text-end")] if total else [])))
    if total and fired:
        sums = [sum(by_cell.get((r.table, r.label, s), 0) for r in fired) for s in sites]
        body.append(html.Tr([html.Td(html.Strong("All rules"))]
                            + [html.Td(html.Strong(n), className="text-end") for n in sums]
                            + [html.Td(html.Strong(sum(sums)), className="text-end")]))
    table = Static(dbc.Table([head, html.Tbody(body)], bordered=False, hover=True, size="sm",
                             className="table-one mb-0", id="quality-counts-table")) if fired else \
        html.P("No finding among the patients in the current filter.", id="quality-none", className="mb-0")
    return table, quiet


def grid_columns(columns) -> list[dict]:
    """Column definitions of the grid for the export's columns (findings, or a sponsor's counts)."""
    defs = []
    for c in columns:
        header, width = GRID_COLUMNS.get(c, (c, 150))
        col = {"field": c, "headerName": header, "width": width}
        if c in ("rule", "detail"):     # long texts wrap; the page holds 50 rows, so row heights stay cheap
            col.update(flex=1, minWidth=width, wrapText=True, autoHeight=True,
                       cellStyle={"lineHeight": "1.35", "paddingTop": "6px", "paddingBottom": "6px"})
        if c.startswith("n_"):          # a number or "<5": no number type (the grid would print "<5" as invalid)
            col.update(type="rightAligned", cellDataType=False, filter="agTextColumnFilter")
        defs.append(col)
    return defs


def page_content(state):
    """(counts table, counts note, grid columns, grid rows, grid note) for the shell's state."""
    snapshot, filters, scope = state_context(state)
    exp = exports.run_export(EXPORT, snapshot, filters, scope)
    in_scope = scope.bound_sites() if scope.patient_level else scope.sites
    sites = [s for s in (filters.site or site_ids(snapshot)) if in_scope is None or s in in_scope]
    n = exp.n_patients
    in_all = f": {exp.extra['n_findings']} in all" if "n_findings" in exp.extra else ""
    who = ("" if scope.patient_level else f" Findings and patients per site and rule; {SUPPRESSED}: 1 to 4, not "
           "shown for your role; no total beside a \"<5\".")
    whose = " of your own sites" if scope.patient_level and scope.patient_sites is not None else ""
    note = (f"Findings of the {len(RULES)} data-quality rules (each defined in docs/quality.md) among the {n} "
            f"patients{whose} in the current filter, data cut {snapshot.snapshot_id} (cut-off "
            f"{snapshot.cutoff_date.isoformat()}){in_all}. Cell = findings (rows of the grid below); "
            f"· none.{who}")
    if n == 0:
        return empty_message(NO_PATIENTS), note, grid_columns(exp.rows.columns), [], ""
    table, quiet = counts_table(counts(exp.rows) if scope.patient_level else exp.rows, sites, total=scope.patient_level)
    if quiet:       # folded: the grid stays near the top of the page
        note = [note, Static(html.Details([
            html.Summary(f"{len(quiet)} rule{'s' if len(quiet) != 1 else ''} with no finding"),
            html.Ul([html.Li(f"{r.label} ({r.table})") for r in quiet], className="mb-0")], id="quality-quiet"))]
    grid_note = (f"{len(exp.rows)} rows. Click a header to sort; type under it to filter. "
                 "The CSV holds every row of the export, whatever the grid's own sort and filter.")
    return table, note, grid_columns(exp.rows.columns), exports.records(exp.rows), grid_note


@callback(Output(COUNTS, "children"), Output(COUNTS_NOTE, "children"), Output(GRID, "columnDefs"),
          Output(GRID, "rowData"), Output(GRID_NOTE, "children"), Input(ids.STATE, "data"))
@cached_view("quality.page")
def _page(state):
    return page_content(state)


def csv_download(state):
    """The dcc.Download payload of the data-quality export for the state, recorded in the audit log;
    no_update when the user's role may not have it."""
    snapshot, filters, scope = state_context(state)
    user = access.current_user()
    facts = dict(figure=GRID, export=EXPORT, snapshot=snapshot.snapshot_id, filters=filters.to_dict(), options={})
    try:
        exp = exports.run_export(EXPORT, snapshot, filters, scope)
    except AccessDenied as refused:
        log.warning("CSV download refused: %s", refused)
        audit.record("download-refused", user, **facts)
        return no_update
    audit.record_required("download", user, **facts, rows=len(exp.rows))     # nothing leaves unrecorded
    return dcc.send_string(exports.to_csv(exp), file_name(snapshot.snapshot_id, filters))


@callback(Output(DOWNLOAD, "data"), Input(DOWNLOAD_BUTTON, "n_clicks"), State(ids.STATE, "data"),
          prevent_initial_call=True)
def _download(n_clicks, state):
    if not n_clicks:
        raise PreventUpdate
    try:
        payload = csv_download(state)
    except audit.AuditError as e:
        set_props(ids.ERROR_NOTICE, {"children": f"Download refused: {e}; the error was logged.",
                                     "is_open": True, "color": "danger"})
        return no_update
    if payload is no_update:
        raise PreventUpdate
    return payload
