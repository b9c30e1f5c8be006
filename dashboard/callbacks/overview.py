"""Overview page: the headline numbers and the snapshot's facts for the current filter."""
import datetime as dt
from urllib.parse import urlencode

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


# --- the headline ------------------------------------------------------------------------------
DAYS_PER_MONTH = 30.4375
WITHHELD = "–"
NOT_SHOWN = "not shown for your role (small numbers)"

# metric -> (page, page options) of the view that shows it; a BCLC stage's value: the default grouping
LINKS = {
    "os_1y": ("/survival", {"by": "none"}), "median_os_days": ("/survival", {"by": "none"}),
    "median_followup_days": ("/survival", {"by": "none"}), "os_by_stage": ("/survival", {}),
    "enrolled": ("/enrollment", {}), "orr": ("/response", {"by": "none"}), "dcr": ("/response", {"by": "none"}),
    "grade3plus_patients": ("/safety", {"measure": "grade3"}), "grade5_patients": ("/safety", {}),
    "downstaged_milan": ("/downstaging", {"measure": "milan", "by": "none"}),
    "converted_resection": ("/downstaging", {"measure": "resectable", "by": "none"}),
}


def link(metric: str, filters, cut: str) -> str:
    """The page and view showing `metric`, with the filters and the data cut the Overview shows (as the
    navigation keeps them, assets/shell.js navHrefs), then the view's page options."""
    page, options = LINKS[metric]
    pairs = filters.to_pairs() + ([("snapshot", cut)] if cut and cut != "latest" else []) + list(options.items())
    query = urlencode(pairs, safe=",")
    return page + ("?" + query if query else "")


def is_withheld(exp, metric: str, group: str) -> bool:
    """True when the export withheld this value for the user's role (small numbers)."""
    return f"{metric}/{group}" in exp.extra.get("withheld", ())


def pct(p) -> str:
    return f"{100 * p:.1f}%"


def months(days) -> str:
    return "NR" if days is None else f"{days / DAYS_PER_MONTH:.1f}"


def estimate(exp, row, kind: str) -> tuple[str, str | None]:
    """(value text, CI text or None) of a headline row: a probability as %, days as months; "NR" for a
    median not reached, WITHHELD when the user's role may not see it, "not estimable" otherwise."""
    if is_withheld(exp, row["metric"], row["group"]):
        return WITHHELD, NOT_SHOWN
    value, lower, upper = row["value"], row["ci_lower"], row["ci_upper"]
    if kind == "months":
        if not row["n"]:
            return "—", "no patient"
        ci = None if lower is None and upper is None else f"95% CI {months(lower)}–{months(upper)}"
        return ("NR" if value is None else f"{months(value)} mo"), ci
    if value is None:
        return "—", "not estimable"
    ci = f"95% CI {pct(lower)[:-1]}–{pct(upper)}" if lower is not None and upper is not None else "95% CI —"
    return pct(value), ci


def count_of(row) -> str:
    """A count metric's value: "196", "<5", WITHHELD."""
    value = row["value"]
    if isinstance(value, str) or value is None:
        return value or WITHHELD
    return f"{int(value):,}"


def share_of(row) -> str:
    """A count's share of its patients ("32.7%"), or "" where the count or the patients are not shown."""
    value, n = row["value"], row["n"]
    if isinstance(value, str) or value is None or not isinstance(n, (int, float)) or not n:
        return ""
    return pct(value / n)


def achieved_of(row) -> str:
    """"143 of 570" from a rate and its denominator (the count the rate was computed from)."""
    n = row["n"]
    if isinstance(n, str) or row["value"] is None:
        return f"of {n} eligible" if n else "no eligible patient"
    return f"{round(row['value'] * n):,} of {n:,}"


def tile(label, body, id_):
    """A headline tile: label, then its numbers; four to a row from 1200 px wide."""
    return html.Div(html.Div(html.Div([html.Div(label, className="text-muted small text-uppercase headline-label"),
                                       *body], className="card-body py-2 px-3"), className="h-100 card"),
                    className="col-xl-3 col-md-6 col-12 mb-2", id=id_)


def big(text, href, id_):
    """A headline number: a link to the page and view that shows it."""
    return html.A(text, href=href, className="headline-value fs-5 fw-bold text-decoration-none", id=id_)


def small_line(children):
    return html.Div(children, className="small text-muted headline-note")


def headline_view(state, cut: str):
    """The headline for the state's cut and filters, from the headline export as the user's scope may see it:
    one Static component; every number a link to the page and view that shows it."""
    snapshot, filters, scope = state_context(state)
    exp = exports.run_export("headline", snapshot, filters, scope)
    rows = {(r["metric"], r["group"]): r for r in exp.rows.astype(object).where(exp.rows.notna(), None)
            .to_dict("records")}
    stages = [g for m, g in rows if m == "os_1y" and g != "all"]
    href = {m: link(m, filters, cut) for m in LINKS}

    def with_ci(metric, kind, id_):
        value, ci = estimate(exp, rows[(metric, "all")], kind)
        return [big(value, href[metric], id_), small_line(ci)]

    def by_stage(metric, kind):
        items = []
        for g in stages:
            value, ci = estimate(exp, rows[(metric, g)], kind)
            n = rows[(metric, g)]["n"]
            items += [" · " if items else "BCLC ", html.A(f"{g} {value}", href=href["os_by_stage"],
                                                          title=f"BCLC {g}, n = {n}" + (f"; {ci}" if ci else ""),
                                                          className="headline-stage")]
        return small_line(items) if items else None

    enrolled, target = rows[("enrolled", "all")], rows[("target", "all")]
    target_text = f" of {int(target['value']):,} target" if target["value"] is not None else " (no target set)"
    orr, dcr = (estimate(exp, rows[(m, "all")], "pct") for m in ("orr", "dcr"))
    ds, cv = rows[("downstaged_milan", "all")], rows[("converted_resection", "all")]
    grade3, grade5 = rows[("grade3plus_patients", "all")], rows[("grade5_patients", "all")]
    tiles = [
        tile("1-year overall survival (primary)", [*with_ci("os_1y", "pct", "headline-os-1y"),
                                                   by_stage("os_1y", "pct")], "headline-tile-os"),
        tile("Median overall survival", [*with_ci("median_os_days", "months", "headline-median-os"),
                                         by_stage("median_os_days", "months")], "headline-tile-median"),
        tile("Enrolled", [big(count_of(enrolled), href["enrolled"], "headline-enrolled"),
                          html.Span(target_text, className="small"), small_line(accrual_text(exp))],
             "headline-tile-enrolled"),
        tile("Median follow-up (reverse KM)", with_ci("median_followup_days", "months", "headline-followup"),
             "headline-tile-followup"),
        tile("Response (mRECIST, all patients)", [
            html.Div([html.Span("ORR ", className="small"), big(orr[0], href["orr"], "headline-orr"),
                      html.Span(" DCR ", className="small ms-2"), big(dcr[0], href["dcr"], "headline-dcr")]),
            small_line(f"ORR {orr[1]}; DCR {dcr[1]}" if orr[1] != NOT_SHOWN else NOT_SHOWN)],
            "headline-tile-response"),
        tile("Patients with adverse events", [
            html.Div([html.Span("grade ≥ 3 ", className="small"),
                      big(count_of(grade3), href["grade3plus_patients"], "headline-grade3"),
                      html.Span(" grade 5 ", className="small ms-2"),
                      big(count_of(grade5), href["grade5_patients"], "headline-grade5")]),
            small_line(ae_note(grade3, grade5))],
            "headline-tile-safety"),
        tile("Downstaged to within Milan", [
            big(estimate(exp, ds, "pct")[0], href["downstaged_milan"], "headline-downstaged"),
            html.Span(" " + achieved_of(ds), className="small"),
            small_line(f"{estimate(exp, ds, 'pct')[1] or ''}; outside Milan at baseline")], "headline-tile-milan"),
        tile("Converted to resectable", [
            big(estimate(exp, cv, "pct")[0], href["converted_resection"], "headline-converted"),
            html.Span(" " + achieved_of(cv), className="small"),
            small_line(f"{estimate(exp, cv, 'pct')[1] or ''}; not resectable at baseline")], "headline-tile-resection"),
    ]
    return Static(html.Div(tiles, className="row g-2 headline", id="overview-headline-tiles"))


def ae_note(grade3, grade5) -> str:
    """The shares of patients with a worst grade >= 3 and 5 (where their counts are shown)."""
    shares = [f"{label} {share}" for label, share in (("≥ 3:", share_of(grade3)), ("5:", share_of(grade5))) if share]
    n = grade3["n"]
    return (f"{', '.join(shares)} of {n:,} patients; " if shares and not isinstance(n, str) else "") + \
        "worst CTCAE grade of any AE"


def accrual_text(exp) -> str:
    """'accrual closed, last enrolment 31 Dec 2024' / 'accrual open: 3 sites enrolled in the last 90 days'."""
    extra = exp.extra
    window = extra["accrual_window_days"]
    if exp.n_patients == 0:
        return "no patient in the filter"
    if extra.get("accrual_open") is None:
        return "accrual status: not shown for your role"
    if extra["accrual_open"]:
        sites = extra["n_sites_recruiting"]
        return f"accrual open: {sites} site{'s' if sites != 1 else ''} enrolled in the last {window} days"
    last = extra.get("last_enrolment_date")
    when = f", last enrolment {dt.date.fromisoformat(last):%d %b %Y}" if last else ""
    return f"accrual closed{when} (none in the last {window} days)"


@callback(Output("overview-headline", "children"), Input(ids.STATE, "data"))
def _headline(state):
    cut = str((state or {}).get("snapshot") or "latest") if isinstance(state, dict) else "latest"
    return _headline_cached(state, cut)


@cached_view("overview.headline")
def _headline_cached(state, cut):
    return headline_view(state, cut)


def overview_cards(state):
    """The snapshot's facts for the filter, from the overview export as the user's scope may see
    them (pooled over every site, counts 1-4 "<5" when the scope suppresses)."""
    snapshot, filters, scope = state_context(state)
    facts = exports.run_export("overview", snapshot, filters, scope).rows.iloc[0]
    report = data.report_for(snapshot)
    cards = [
        stat_card("Data cut", snapshot.snapshot_id, f"cut-off {snapshot.cutoff_date:%d %b %Y}", "overview-snapshot"),
        stat_card("Patients", shown(facts["n_patients"]), "in the current filter", "overview-patients"),
        stat_card("Sites", f"{facts['n_sites_enrolling']} of {facts['n_sites']}", sites_note(state),
                  "overview-sites"),
        stat_card("Deaths", shown(facts["n_deaths"]), "OS events", "overview-deaths"),
        stat_card("Data quality", f"{len(report.warnings)} warning(s)", f"source: {snapshot.source}"),
    ]
    return Static(html.Div(cards, className="row"))


def sites_note(state) -> str:
    """Sites with patients in the filter, and whether accrual is open (the headline export's accrual status)."""
    snapshot, filters, scope = state_context(state)
    extra = exports.run_export("headline", snapshot, filters, scope).extra
    status = {True: "accrual open", False: "accrual closed", None: ""}[extra.get("accrual_open")]
    return "with patients in the filter" + (f"; {status}" if status else "")


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
