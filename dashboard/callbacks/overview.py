"""Overview page: snapshot facts for the current filter."""
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, html

from dashboard import data, exports, ids
from dashboard.state import state_context
from dashboard.state import cached_view
from dashboard import wire


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
    deaths = int(data.value("select count(death_date) as d from cohort", snapshot, filters, scope))
    cards = [
        stat_card("Data cut", snapshot.snapshot_id, f"cut-off {snapshot.cutoff_date:%d %b %Y}", "overview-snapshot"),
        stat_card("Patients", f"{n:,}", "in the current filter", "overview-patients"),
        stat_card("Sites", f"{active} of {len(sites)}", "enrolling in the current filter", "overview-sites"),
        stat_card("Deaths", f"{deaths:,}", "OS events", "overview-deaths"),
        stat_card("Data quality", f"{len(report.warnings)} warning(s)", f"source: {snapshot.source}"),
    ]
    return dbc.Row([dbc.Col(c, xs=12, sm=6, lg=True, className="mb-3") for c in cards])


@callback(Output("overview-cards", "children"), Input(ids.STATE, "data"))
@cached_view("overview.overview")
def _overview(state):
    return overview_cards(state)


def quality_rows():
    """Every complete snapshot already validated, with its report, newest first (cuts nobody has
    opened yet are validated when chosen: a stress-size registry has many large cuts)."""
    return [(s, r) for s in reversed(data.complete_snapshots()) if (r := data.known_report(s)) is not None]


def quality_panel(state):
    """Rejected cuts (with their errors) and the shown cut's warnings: table, column, rule, keys."""
    shown, _, _ = state_context(state)
    parts = []
    rejected = [(s, r) for s, r in quality_rows() if not r.ok]
    if rejected:
        parts.append(dbc.Alert([html.Strong(f"{len(rejected)} data cut(s) rejected; not served:"), html.Ul([
            html.Li([f"{s.snapshot_id}: {len(r.errors)} error(s), e.g. ", html.Code(str(r.errors[0]))])
            for s, r in rejected])], color="danger", className="small", id="overview-rejected"))
    warnings = data.report_for(shown).warnings
    if not warnings:
        parts.append(html.P(f"Data cut {shown.snapshot_id}: no warning.", className="small"))
        return parts
    head = html.Thead(html.Tr([html.Th("Table.column"), html.Th("Rule"), html.Th("Rows", className="text-end"),
                               html.Th("Examples")]))
    body = html.Tbody([html.Tr([html.Td(html.Code(f"{w.table}.{w.column}" if w.column else w.table)), html.Td(w.rule),
                                html.Td(f"{w.count:,}", className="text-end"), html.Td(", ".join(w.examples),
                                                                                       className="small")])
                       for w in warnings])
    parts.append(dbc.Table([head, body], size="sm", bordered=False, hover=True, className="small bg-white",
                           id="overview-warnings"))
    return parts


@callback(Output("overview-quality", "children"), Input(ids.STATE, "data"))
def _quality(state):
    return wire.plain(quality_panel(state))
