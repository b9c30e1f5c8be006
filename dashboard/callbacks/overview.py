"""Overview page: snapshot facts for the current filter."""
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, html

from dashboard import data, exports, ids
from dashboard.callbacks.shell import state_context


def stat_card(label, value, note=None, id_=None):
    value_div = html.Div(value, className="stat-value", **({"id": id_} if id_ else {}))
    return dbc.Card(dbc.CardBody([
        html.Div(label, className="text-muted small text-uppercase"),
        value_div,
        html.Div(note, className="small text-muted") if note else None,
    ]), className="h-100")


def overview_cards(state):
    snapshot, filters, scope = state_context(state)
    n = exports.n_patients(snapshot, filters, scope)
    sites = data.query("enrollment", snapshot, filters, scope)
    active = int((sites["n_enrolled"] > 0).sum())
    report = data.report_for(snapshot)
    deaths = int(data.execute("select count(death_date) as d from cohort", snapshot, filters, scope)["d"].iloc[0])
    cards = [
        stat_card("Data cut", snapshot.snapshot_id, f"cut-off {snapshot.cutoff_date:%d %b %Y}", "overview-snapshot"),
        stat_card("Patients", f"{n:,}", "in the current filter", "overview-patients"),
        stat_card("Sites", f"{active} of {len(sites)}", "enrolling in the current filter", "overview-sites"),
        stat_card("Deaths", f"{deaths:,}", "OS events", "overview-deaths"),
        stat_card("Data quality", f"{len(report.warnings)} warning(s)", f"source: {snapshot.source}"),
    ]
    return dbc.Row([dbc.Col(c, xs=12, sm=6, lg=True, className="mb-3") for c in cards])


@callback(Output("overview-cards", "children"), Input(ids.STATE, "data"))
def _overview(state):
    return overview_cards(state)
