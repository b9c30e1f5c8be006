"""Overview page: snapshot facts for the current filter."""
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, html

from dashboard import data, exports, ids
from dashboard.components import Static
from dashboard.access import Scope, count_text
from dashboard.state import state_context
from dashboard.state import cached_view
from dashboard import wire


def stat_card(label, value, note=None, id_=None):
    """A card in a grid column, as html with Bootstrap's classes (the DOM dbc.Col(dbc.Card(dbc.CardBody))
    gave), so that the cards are sent as one Static component."""
    value_div = html.Div(value, className="stat-value", **({"id": id_} if id_ else {}))
    return html.Div(html.Div(html.Div([
        html.Div(label, className="text-muted small text-uppercase"),
        value_div,
        html.Div(note, className="small text-muted") if note else None,
    ], className="card-body"), className="h-100 card"), className="mb-3 col-lg col-sm-6 col-12")


def shown(n) -> str:
    """A count from a (possibly suppressed) export for a card: "<5" or the number with separators."""
    return n if isinstance(n, str) else f"{n:,}"


def overview_cards(state):
    """The snapshot's facts for the filter, from the overview export as the user's scope may see
    them (pooled over every site, counts 1-4 "<5" when the scope suppresses)."""
    snapshot, filters, scope = state_context(state)
    facts = exports.run_export("overview", snapshot, filters, scope).rows.iloc[0]
    report = data.report_for(snapshot)
    cards = [
        stat_card("Data cut", snapshot.snapshot_id, f"cut-off {snapshot.cutoff_date:%d %b %Y}", "overview-snapshot"),
        stat_card("Patients", shown(facts["n_patients"]), "in the current filter", "overview-patients"),
        stat_card("Sites", f"{facts['n_sites_enrolling']} of {facts['n_sites']}", "enrolling in the current filter",
                  "overview-sites"),
        stat_card("Deaths", shown(facts["n_deaths"]), "OS events", "overview-deaths"),
        stat_card("Data quality", f"{len(report.warnings)} warning(s)", f"source: {snapshot.source}"),
    ]
    return Static(html.Div(cards, className="row"))


@callback(Output("overview-cards", "children"), Input(ids.STATE, "data"))
@cached_view("overview.overview")
def _overview(state):
    return overview_cards(state)


def quality_rows():
    """Every complete snapshot already validated, with its report, newest first (cuts nobody has
    opened yet are validated when chosen: a stress-size registry has many large cuts)."""
    return [(s, r) for s in reversed(data.complete_snapshots()) if (r := data.known_report(s)) is not None]


# the findings count rows of every site: a scope without every site's patients sees them suppressed
EVERY_SITE_SUPPRESSED = Scope(suppress=True)


def finding_text(finding, scope) -> str:
    """A finding as validate prints it; for a scope that may not see every site's patients, its row
    count suppressed and no example keys (they name patients)."""
    if scope.patient_sites is None:
        return str(finding)
    where = f"{finding.table}.{finding.column}" if finding.column else finding.table
    count = count_text(finding.count, EVERY_SITE_SUPPRESSED)
    rows = f" ({count} row{'s' if finding.count != 1 else ''})" if finding.count else ""
    return f"{finding.level.upper()} {where}: {finding.rule}{rows}"


def quality_panel(state):
    """Rejected cuts (with their errors) and the shown cut's warnings: table, column, rule, keys.
    The findings are of every site, and their example keys name patients: a scope with every site's
    patients sees them all; any other sees the row counts suppressed and no example."""
    shown, _, scope = state_context(state)
    every_site = scope.patient_sites is None
    counted = scope if every_site else EVERY_SITE_SUPPRESSED
    parts = []
    rejected = [(s, r) for s, r in quality_rows() if not r.ok]
    if rejected:
        parts.append(dbc.Alert([html.Strong(f"{len(rejected)} data cut(s) rejected; not served:"), html.Ul([
            html.Li([f"{s.snapshot_id}: {len(r.errors)} error(s), e.g. ", html.Code(finding_text(r.errors[0], scope))])
            for s, r in rejected])], color="danger", className="small", id="overview-rejected"))
    warnings = data.report_for(shown).warnings
    if not warnings:
        parts.append(html.P(f"Data cut {shown.snapshot_id}: no warning.", className="small"))
        return parts
    head = html.Thead(html.Tr([html.Th("Table.column"), html.Th("Rule"), html.Th("Rows", className="text-end"),
                               html.Th("Examples")]))
    hidden = "not shown for your role"
    body = html.Tbody([html.Tr([html.Td(html.Code(f"{w.table}.{w.column}" if w.column else w.table)), html.Td(w.rule),
                                html.Td(count_text(w.count, counted), className="text-end"),
                                html.Td(", ".join(w.examples) if every_site else hidden, className="small")])
                       for w in warnings])
    parts.append(Static(dbc.Table([head, body], size="sm", bordered=False, hover=True, className="small bg-white",
                                  id="overview-warnings")))
    return parts


@callback(Output("overview-quality", "children"), Input(ids.STATE, "data"))
def _quality(state):
    return wire.plain(quality_panel(state))
