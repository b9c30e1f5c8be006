"""Downloads shared by every figure card: CSV from the figure's export, SVG in the browser."""
from dash import MATCH, ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, no_update

from dashboard import exports, ids
from dashboard.callbacks.shell import state_context


def csv_download(spec: dict | None, state: dict | None):
    """The dcc.Download payload: the export's CSV, named page_figure_snapshot_date.csv."""
    if not spec:
        return no_update
    snapshot, filters, scope = state_context(state)
    exp = exports.run_export(spec["export"], snapshot, filters, scope, **spec.get("options", {}))
    return dcc.send_string(exports.to_csv(exp), spec["filename"] + ".csv")


@callback(
    Output({"type": "download", "figure": MATCH}, "data"),
    Input({"type": "download-csv", "figure": MATCH}, "n_clicks"),
    State({"type": "figure-export", "figure": MATCH}, "data"),
    State(ids.STATE, "data"),
    prevent_initial_call=True,
)
def _csv(n_clicks, spec, state):
    return csv_download(spec, state) if n_clicks else no_update


clientside_callback(
    ClientsideFunction(namespace="registry", function_name="downloadSvg"),
    Output({"type": "download-svg", "figure": MATCH}, "title"),
    Input({"type": "download-svg", "figure": MATCH}, "n_clicks"),
    State({"type": "figure-export", "figure": MATCH}, "data"),
    prevent_initial_call=True,
)
