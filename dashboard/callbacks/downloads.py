"""Downloads shared by every figure card: CSV from the figure's export, SVG in the browser.

The server decides what a CSV download runs: the button's figure id names the figure, the figure
maps to its export on the server (each page module's DOWNLOADS), and the export's options come from
the page options of the URL, validated by the functions the page's cards use. The card's store
(figure-export) is read only by the browser's SVG download; a client cannot name an export or
its options."""
from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from dash.exceptions import PreventUpdate
from dash import MATCH, ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, dcc, no_update, set_props

from dashboard import access, audit, exports, ids
from dashboard.access import AccessDenied
from dashboard.callbacks import downstaging, enrollment, forest, response, safety, survival
from dashboard.state import state_context
from dashboard.components import file_name
from dashboard.filters import NON_FILTER_PARAMS

log = logging.getLogger(__name__)

# figure -> (page, the function giving (export name, options) from the page options and the state)
FIGURES = {figure: (module.PAGE, choose) for module in (enrollment, survival, response, safety, downstaging, forest)
           for figure, choose in module.DOWNLOADS.items()}


def page_options(search: str | None) -> dict:
    """The page options of a URL query string (?endpoint=pfs&by=sex), as the page's layout reads
    them; the page's own functions validate each value."""
    if not isinstance(search, str):
        return {}
    return {k: v for k, v in parse_qsl(search.lstrip("?")) if k in NON_FILTER_PARAMS and k != "snapshot"}


def export_for(figure: str, search: str | None, state: dict | None):
    """(page, export name, options, snapshot, filters, scope) of a figure's CSV, or None for a
    figure no page has."""
    if figure not in FIGURES:
        return None
    page, choose = FIGURES[figure]
    snapshot, filters, scope = state_context(state)
    name, options = choose(page_options(search), snapshot, filters, scope)
    return page, name, options, snapshot, filters, scope


def csv_download(figure: str, search: str | None, state: dict | None):
    """The dcc.Download payload: the figure's export as CSV, named page_figure_options_snapshot_filter_date.csv;
    no_update for an unknown figure or an export the user's role may not have (no file: a 204)."""
    chosen = export_for(figure, search, state)
    if chosen is None:
        log.warning("CSV download of an unknown figure %.80r refused", figure)
        return no_update
    page, name, options, snapshot, filters, scope = chosen
    user = access.current_user()
    facts = dict(figure=figure, export=name, snapshot=snapshot.snapshot_id, filters=filters.to_dict(), options=options)
    try:
        exp = exports.run_export(name, snapshot, filters, scope, **options)
    except AccessDenied as refused:
        log.warning("CSV download refused: %s", refused)
        audit.record("download-refused", user, **facts)
        return no_update
    audit.record_required("download", user, **facts, rows=len(exp.rows))    # nothing leaves unrecorded
    return dcc.send_string(exports.to_csv(exp), file_name(page, figure, snapshot.snapshot_id, options=options, filters=filters) + ".csv")


@callback(
    Output({"type": "download", "figure": MATCH}, "data"),
    Input({"type": "download-csv", "figure": MATCH}, "n_clicks"),
    State(ids.URL, "search"),
    State(ids.STATE, "data"),
    prevent_initial_call=True,
)
def _csv(n_clicks, search, state):
    figure = ctx.inputs_list[0]["id"].get("figure")      # the clicked button's own id (checked by dashboard.security)
    try:
        payload = csv_download(figure, search, state) if n_clicks and isinstance(figure, str) else no_update
    except audit.AuditError as e:
        set_props(ids.ERROR_NOTICE, {"children": f"Download refused: {e}; the error was logged.",
                                     "is_open": True, "color": "danger"})
        return no_update            # the notice above is the response's only update
    if payload is no_update:
        raise PreventUpdate         # 204: nothing to send
    return payload


# the card's SVG and PNG buttons: drawn in the browser with a caption (assets/registry.js registry_download)
for _kind, _function in (("svg", "downloadSvg"), ("png", "downloadPng")):
    clientside_callback(
        ClientsideFunction(namespace="registry", function_name=_function),
        Output({"type": f"download-{_kind}", "figure": MATCH}, "title"),
        Input({"type": f"download-{_kind}", "figure": MATCH}, "n_clicks"),
        State({"type": "figure-export", "figure": MATCH}, "data"),
        prevent_initial_call=True,
    )
