"""Tumour response page callbacks: state + scope/grouping switches -> response exports ->
figures and tables. Clicking a patient (waterfall bar, spider line, swimmer lane) stores it as
the highlighted patient, and the other figures redraw with that patient emphasised."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, html, no_update

from dashboard import exports, ids
from dashboard.access import SUPPRESSED
from dashboard.analytics import response as resp
from dashboard.exports import response as response_exports
from dashboard.state import request_scope, state_context
from dashboard.components import RowsTable, Static, card_outputs, empty_message, export_spec, fid, graph_config
from dashboard.figures import response as figs
from dashboard.figures.common import NO_PATIENTS, empty_figure
from dashboard.grouping import GROUPINGS
from dashboard.state import cached_view
from dashboard.wire import Element

PAGE = "response"
WATERFALL, BOR, SUMMARY, SPIDER, SWIMMER, CONSISTENCY = (
    "response-waterfall", "response-bor", "response-summary", "response-spider", "response-swimmer",
    "response-consistency")
# controls whose value lives in the URL (?scope=local&by=site_id&sort=time_asc)
SCOPE, BY, SORT = ids.page_option("scope"), ids.page_option("by"), ids.page_option("sort")
HIGHLIGHT = "response-highlight"                 # dcc.Store: the highlighted patient id
HIGHLIGHT_LABEL, HIGHLIGHT_CLEAR = "response-highlight-label", "response-highlight-clear"
# links to the highlighted patient's view (/patient/<id> + the page's query string): top bar, swimmer pager
OPEN_PATIENT, OPEN_PATIENT_SWIMMER = "response-open-patient", "response-open-patient-swimmer"
SWIMMER_PAGE, SWIMMER_SIZE, SWIMMER_COUNT = "response-swimmer-page", "response-swimmer-size", "response-swimmer-count"
NOT_EVALUABLE = "response-not-evaluable"

SCOPE_CHOICES = {"overall": "Overall (all target lesions)", "local": "Local (treated target lesions)"}
RESPONSE_FIELD = {"overall": "overall_response", "local": "local_response"}
SIZES = (25, 50, 100)
DEFAULT_SIZE = 50
BOR_NOTE = ("BOR = best recorded response at post-baseline scans up to and including the first PD, ranked "
            "CR > PR > SD > PD > NE; no post-baseline scan: NE. No confirmation of response is required "
            "(registry practice).")
NOT_FOR_ROLE = "Patient-level view: not available for the sponsor role."
SUPPRESSED_NOTE = f"Counts from 1 to 4 are shown as {SUPPRESSED} and their percentages withheld. "
EVALUABLE_NOTE = ("Evaluable = the patient has a best percent change (a waterfall bar): a baseline sum > 0 and at "
                  "least one fully measured post-baseline scan up to the first PD.")


COLOUR_NOTE = ("Colour = the response the measurements imply (mRECIST on the best change: CR −100%, PR ≤ −30%, "
               "PD ≥ +20%, else SD); hatched bars marked × are patients whose recorded BOR contradicts it (hover: "
               "\"recorded PR, measurements imply SD\"), with the data-quality check's exceptions (a PD explained by "
               "a new lesion or non-target progression; a PR at 0 mm with a non-target lesion present; NE).")
CLICK_HINT = ("Click a bar, spider line or swimmer lane: that patient is followed in every plot and an "
              "\"Open patient\" link to their patient view appears (above the plots and under the swimmer).")


def _scope(scope) -> str:
    return scope if scope in resp.SCOPES else "overall"


def _by(by) -> str:
    return by if by in GROUPINGS else "bclc_stage"


def _scope_options(params: dict) -> dict:
    return {"response_scope": _scope(params.get("scope"))}


# figure -> (export, options) of its CSV download from the page options (dashboard/callbacks/downloads.py);
# the cards below build their store's spec from the same validated values
DOWNLOADS = {
    WATERFALL: lambda params, *context: ("waterfall", _scope_options(params)),
    BOR: lambda params, *context: ("response-summary", {**_scope_options(params), "by": _by(params.get("by"))}),
    SUMMARY: lambda params, *context: ("response-summary", {**_scope_options(params), "by": _by(params.get("by"))}),
    SPIDER: lambda params, *context: ("spider", _scope_options(params)),
    SWIMMER: lambda params, *context: ("swimmer", _scope_options(params)),
    CONSISTENCY: lambda params, *context: ("response-consistency", _scope_options(params)),
}


def scope_note(scope: str, summary=None) -> str:
    """What the scope means; local, with the response-summary export's extra: the follow-ups that had no
    local response recorded, which count as NE."""
    if scope == "local":
        text = ("Local response: mRECIST target rules applied to the DEB-TACE-treated target lesions only "
                "(untreated and new lesions ignored), response category from local_response.")
        scans = (summary or {}).get("n_scans_not_assessed")
        if scans not in (None, 0):
            text += (f" {scans} follow-up scan(s) of {summary['n_patients_not_assessed']} patient(s) have no local "
                     "response recorded (the treated lesions were not assessed apart): each counts as NE, as "
                     "mRECIST scores an assessment not done, so those patients' best local response is NE unless "
                     "another scan was assessed.")
        return text
    return "Overall response: all target lesions, response category from overall_response."


def _spec(figure, export, snapshot, options):
    return export_spec(PAGE, figure, export, snapshot.snapshot_id, options)


def _n_word(n: int, word="patient") -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def not_evaluable_text(n_not_evaluable, reasons: dict, n, drawn: bool = True) -> str:
    """'30 of 600 patients not evaluable (no bar): 28 with no follow-up scan, 2 with no baseline sum.'
    Counts may be "<5" (a suppressing scope's); `drawn` False: the bars are not drawn, so no word of them."""
    if n_not_evaluable == 0:
        return f"All {_n_word(n)} evaluable" + (" (every patient has a bar)." if drawn else ".")
    parts = ", ".join(f"{v} with {k}" for k, v in reasons.items() if v)
    return f"{n_not_evaluable} of {_n_word(n)} not evaluable{' (no bar)' if drawn else ''}: {parts}."


def own_sites_note(scope) -> list[str]:
    """For a scope whose patient-level rows are those of some sites only (an investigator's): which
    (a note's first part; none for every site)."""
    sites = scope.patient_sites
    if not sites:
        return []
    return [f"Patients of your site{'s' if len(sites) > 1 else ''} ({', '.join(sites)}) only. "]


# --- cards ------------------------------------------------------------------------------------
def waterfall_card(state, scope="overall", highlight=None):
    """The waterfall's outputs. The counts and the bars drawn come from waterfall_bars, not from the
    `waterfall` export (every evaluable patient's row: the CSV download's): the same numbers and
    bars (tests/test_response_fast.py checks the card against the one drawn from the export). For
    a role without patient-level access the bars are de-identified, or not drawn (with a note) when
    fewer than access.MIN_GROUP patients are evaluable (tests/test_access_response.py)."""
    snapshot, filters, sites = state_context(state)
    scope = _scope(scope)
    patient_level = sites.patient_level
    bars = response_exports.waterfall_bars(snapshot, filters, sites, scope, highlight if patient_level else None)
    spec = _spec(WATERFALL, "waterfall", snapshot, {"response_scope": scope})
    if bars["n_patients"] == 0:
        return empty_figure(NO_PATIENTS), graph_config(WATERFALL), spec, NO_PATIENTS
    note = [html.Strong(not_evaluable_text(bars["n_not_evaluable"], bars["not_evaluable_reasons"],
                                           bars["n_patients"], drawn=not bars["withheld"]), id=NOT_EVALUABLE), " ",
            *own_sites_note(sites),
            f"Bar = best (lowest) % change from baseline in the sum of viable target diameters (mRECIST) over "
            f"post-baseline scans up to and including the first PD; a CR (all target lesions 0 mm) is −100%. "
            f"{COLOUR_NOTE} "
            f"Bars above +{figs.CAP:.0f}% are cut at +{figs.CAP:.0f}% (▲, true value printed). Dashed lines: +20% "
            "(a guide only: mRECIST PD is measured from the nadir) and −30% (PR). ", scope_note(scope), " ",
            BOR_NOTE, f" {CLICK_HINT}" if patient_level else
            " Bars are de-identified: no patient, site or date."]
    if bars["withheld"]:
        withheld = response_exports.not_drawn_note(bars["n_evaluable"])
        note.insert(0, html.Strong(withheld + " ", id="response-waterfall-not-drawn"))
        return empty_figure(withheld.replace(": ", ":<br>")), graph_config(WATERFALL), spec, note
    n = bars["n_evaluable"]
    if n > figs.MAX_BARS:
        note.append(f" {n:,} evaluable patients: {figs.MAX_BARS:,} evenly spaced bars of the sorted order "
                    "are drawn (first and last included; narrower bars could not be seen); the counts, the rates and "
                    "the CSV use every patient.")
    fig = (figs.waterfall_bars_figure(bars["rows"], n, bars["implied_counts"], highlight,
                                      n_contradicts=bars["n_contradicts"]) if n else empty_figure(figs.NO_BAR))
    return fig, graph_config(WATERFALL), spec, note


def _summary_export(state, scope, by):
    """(snapshot, options, the response-summary export): what the BOR chart and the ORR/DCR table read."""
    snapshot, filters, sites = state_context(state)
    options = {"response_scope": _scope(scope), "by": _by(by)}
    return snapshot, options, exports.run_export("response-summary", snapshot, filters, sites, **options)


def bor_card(state, scope="overall", by="bclc_stage", summary=None):
    """The BOR chart's outputs; `summary`: _summary_export's result when the caller has it."""
    snapshot, options, exp = summary or _summary_export(state, scope, by)
    scope, by = options["response_scope"], options["by"]
    spec = _spec(BOR, "response-summary", snapshot, options)
    note = [f"% of every patient in the group (intention to treat), by {GROUPINGS[by]}. NE = no post-baseline "
            f"scan, or only NE recorded. † fewer than {resp.SMALL_GROUP} patients: drawn, interpret with care. ",
            *_suppressed_note(exp.rows), scope_note(scope, exp.extra), " BOR definition: see the waterfall."]
    return figs.bor_figure(exp.rows), graph_config(BOR), spec, note


def _suppressed_note(rows) -> list[str]:
    """SUPPRESSED_NOTE when some cell of the rows is suppressed, else nothing."""
    return [SUPPRESSED_NOTE] if (rows.astype(object) == SUPPRESSED).to_numpy().any() else []


def _rate(est, lo, hi, x: int | None, n: int):
    """A rate cell: '60.9% 215/353' over its 95% CI '55.6–66.0'."""
    if est is None or est != est:
        return "–"
    return [Element("Span", [Element("Span", f"{100 * est:.1f}%", "fw-semibold"),
                             Element("Span", f" {x}/{n}", "text-muted")], style={"whiteSpace": "nowrap"}),
            Element("Br"), Element("Span", f"{100 * lo:.1f}–{100 * hi:.1f}", "text-muted small")]


def summary_table(rows):
    """ORR and DCR per group with both denominators: all patients (ITT) and evaluable patients.
    Head and body are wire.Element (the html components' JSON without their constructors: building
    the components and converting them took ~5 ms of a Tumour response update, the elements ~0.5)."""
    right = "text-end"
    head = Element("Thead", [
        Element("Tr", [Element("Th", "", colSpan=2),
                       Element("Th", "All patients (ITT)", "text-center", colSpan=2),
                       Element("Th", "Evaluable patients", "text-center", colSpan=3)]),
        Element("Tr", [Element("Th", "Group"), Element("Th", "n", right), Element("Th", "ORR", right),
                       Element("Th", "DCR", right), Element("Th", "n", right),
                       Element("Th", "ORR", right), Element("Th", "DCR", right)]),
    ])
    body = []
    for r in rows.to_dict("records"):
        key = str(r["group"])
        label = ("All patients" if key == "all" else key) + (" †" if r["is_small_group"] else "")
        n, n_ev = r["n"], r["n_evaluable"]
        # the numerators, back from the rates (x = rate * n, exactly): a rate is shown only with its
        # counts (a suppressed count, "<5", comes with its rate withheld)
        x = {k: None if r[k] is None or r[k] != r[k] else round(r[k] * (n_ev if "evaluable" in k else n))
             for k in ("orr", "dcr", "orr_evaluable", "dcr_evaluable")}
        body.append(Element("Tr", [
            Element("Td", label, "fw-semibold" if key == "all" else None),
            Element("Td", n, right),
            Element("Td", _rate(r["orr"], r["orr_ci_lower"], r["orr_ci_upper"], x["orr"], n),
                    right, id=f"response-orr-{key}"),
            Element("Td", _rate(r["dcr"], r["dcr_ci_lower"], r["dcr_ci_upper"], x["dcr"], n),
                    right, id=f"response-dcr-{key}"),
            Element("Td", n_ev, right),
            Element("Td", _rate(r["orr_evaluable"], r["orr_evaluable_ci_lower"], r["orr_evaluable_ci_upper"],
                                x["orr_evaluable"], n_ev), right, id=f"response-orr-evaluable-{key}"),
            Element("Td", _rate(r["dcr_evaluable"], r["dcr_evaluable_ci_lower"], r["dcr_evaluable_ci_upper"],
                                x["dcr_evaluable"], n_ev), right, id=f"response-dcr-evaluable-{key}"),
        ], "table-light" if key == "all" else None))
    return Static(dbc.Table([head, html.Tbody(body)], bordered=False, hover=True, size="sm", className="mb-0",
                            style={"fontSize": "0.85rem"}, id="response-summary-grid"))


def summary_card(state, scope="overall", by="bclc_stage", summary=None):
    """The ORR/DCR table's outputs; `summary`: _summary_export's result when the caller has it."""
    snapshot, options, exp = summary or _summary_export(state, scope, by)
    scope = options["response_scope"]
    spec = _spec(SUMMARY, "response-summary", snapshot, options)
    note = ["ORR = (CR + PR) / N and DCR = (CR + PR + SD) / N: % and x/N over the exact (Clopper-Pearson) 95% CI. "
            "'All patients': N = every patient in the group and filter (intention to treat). 'Evaluable': N = "
            "the group's evaluable patients, x = their responses. ", EVALUABLE_NOTE,
            f" † fewer than {resp.SMALL_GROUP} patients: interpret with care. ", *_suppressed_note(exp.rows),
            scope_note(scope, exp.extra), " ", BOR_NOTE]
    if exp.n_patients == 0:
        return empty_message(NO_PATIENTS), spec, note
    return summary_table(exp.rows), spec, note


def not_for_role(figure: str):
    """A patient-level card's (figure, config, spec, footnote) for a role without patient-level
    access: one sentence, no axes, no export spec (the CSV download is refused on the server)."""
    return empty_figure(NOT_FOR_ROLE.replace(": ", ":<br>"), height=120), graph_config(figure), None, ""


def spider_card(state, scope="overall", highlight=None):
    snapshot, filters, sites = state_context(state)
    scope = _scope(scope)
    if not sites.patient_level:
        return not_for_role(SPIDER)
    # computed for the card, not stored: the card's view is cached, and pickling the points (2.5 ms
    # at 600 patients, on the page's slowest card) cost about what reading them back saves
    exp = exports.compute_export("spider", snapshot, filters, sites, response_scope=scope)
    spec = _spec(SPIDER, "spider", snapshot, {"response_scope": scope})
    if exp.n_patients == 0:
        return empty_figure(NO_PATIENTS), graph_config(SPIDER), spec, NO_PATIENTS
    sample = (f" (a fixed pseudo-random sample of the {exp.extra['n_patients_evaluable']:,} evaluable patients: "
              "more lines would be unreadable; the CSV has the same rows)"
              if exp.extra["n_patients_evaluable"] > exp.extra["n_patients_drawn"] else
              " (the evaluable patients of the waterfall)")
    note = [*own_sites_note(sites),
            f"{exp.extra['n_patients_drawn']} of {_n_word(exp.n_patients)} drawn{sample}. Each line: % change from baseline in the sum of viable target diameters at every fully "
            "measured scan, baseline included, over months since the first DEB-TACE (days / 30.4375); scans after "
            f"the first PD are drawn too. Colour = BOR. Points above +{figs.CAP:.0f}% are drawn at the cap (▲). ",
            scope_note(scope), f" {CLICK_HINT}"]
    return figs.spider_figure(exp.rows, highlight), graph_config(SPIDER), spec, note


def swimmer_card(state, scope="overall", sort="time_desc", page=1, size=DEFAULT_SIZE, highlight=None,
                 follow_highlight=False):
    """The swimmer card's outputs plus the pager's page count, its active page and the lane count
    text. With follow_highlight, the page turns to the highlighted patient's lane."""
    snapshot, filters, sites = state_context(state)
    scope = _scope(scope)
    if not sites.patient_level:
        return (*not_for_role(SWIMMER), 1, 1, "")
    sort = sort if sort in resp.SWIMMER_SORTS else "time_desc"
    size = int(size) if size and int(size) in SIZES else DEFAULT_SIZE
    spec = _spec(SWIMMER, "swimmer", snapshot, {"response_scope": scope})
    # the lane order (one id per patient, cached), then the marks of this page's lanes only: the
    # `swimmer` export (every lane's marks) is for the CSV download, never loaded here
    order = response_exports.swimmer_lanes(snapshot, filters, sites, scope, sort)
    pages = resp.n_pages(len(order), size)
    if follow_highlight and resp.page_of(order, highlight, size):
        page = resp.page_of(order, highlight, size)
    page = min(max(1, int(page or 1)), pages)
    lanes = resp.page_slice(order, page, size)
    count = (f"Showing lanes {(page - 1) * size + 1}–{(page - 1) * size + len(lanes)} of {len(order)} patients "
             f"(sorted by {resp.SWIMMER_SORTS[sort]})" if order else NO_PATIENTS)
    note = "".join(own_sites_note(sites)) + (
            "Lane: first DEB-TACE (day 0) to death or last contact (last known alive), coloured by BOR. Marks: "
            "| each DEB-TACE session; ● each post-baseline scan, coloured by the recorded "
            f"{RESPONSE_FIELD[scope]}; ◆ first progression (PD) of the scope; × death; ▶ alive at last contact "
            f"(off-study patients end without a mark). Months = days / 30.4375. {scope_note(scope)} The CSV "
            f"holds every lane of the filter (longest time on study first), not only this page. {CLICK_HINT}")
    if order:
        events = response_exports.swimmer_page_rows(snapshot, filters, sites, scope, lanes)
        fig = figs.swimmer_figure(events, lanes, highlight)
    else:
        fig = empty_figure(NO_PATIENTS)
    return fig, graph_config(SWIMMER), spec, note, pages, page, count


def _signed_pct(v) -> str:
    return "" if v is None or v != v else f"{v:+.1f}%"


CONSISTENCY_MAX_ROWS = 200       # rows drawn in the table; the CSV holds every disagreeing scan


def consistency_cap_note(n_shown: int, n_total: int):
    """'First 200 of 9,291 disagreeing scans shown (by patient, then scan date); the CSV has all.'"""
    return html.Div(f"First {n_shown:,} of {n_total:,} disagreeing scans shown (by patient, then scan date); "
                    "the CSV has all.", id="response-consistency-cap", className="small text-muted mb-1")


def consistency_table(rows, max_rows: int | None = None):
    """The disagreeing scans, at most `max_rows` (CONSISTENCY_MAX_ROWS) of them, the first in the
    export's order, with a note saying how many the CSV has when some are not shown: at 100,000
    patients thousands of table rows were most of the page's time and of its JSON. One RowsTable
    (a Dash component for the table, not one per cell)."""
    n_total = len(rows)
    rows = rows.head(CONSISTENCY_MAX_ROWS if max_rows is None else max_rows)

    def mm(v):
        return "" if v is None or v != v else f"{v:g}"

    right = "text-end"
    header = (("Patient", None), ("Visit", None), ("Scan date", None), ("Recorded", None), ("Implied", None),
              ("Sum, mm", right), ("Baseline", right), ("Nadir before", right), ("vs baseline", right),
              ("vs nadir", right))
    columns = [rows[c].tolist() for c in ("patient_id", "visit", "imaging_date", "recorded", "implied", "sum_mm",
                                          "baseline_mm", "nadir_before_mm", "pct_change", "pct_from_nadir")]
    body = [[patient, visit, str(date)[:10], recorded, implied, mm(sum_mm), mm(baseline), mm(nadir),
             _signed_pct(change), _signed_pct(from_nadir)]
            for patient, visit, date, recorded, implied, sum_mm, baseline, nadir, change, from_nadir
            in zip(*columns)]
    grid = RowsTable([h for h, _ in header], body, id="response-consistency-grid",
                     className="table table-sm table-hover table-one mb-0",
                     column_classes=[c for _, c in header], strong=(3, 4))
    table = html.Div(grid, style={"maxHeight": "420px", "overflowY": "auto"})
    return html.Div([consistency_cap_note(len(rows), n_total), table]) if n_total > len(rows) else table


def consistency_card(state, scope="overall"):
    snapshot, filters, sites = state_context(state)
    scope = _scope(scope)
    if not sites.patient_level:
        return empty_message(NOT_FOR_ROLE), None, ""
    # computed for the card, not stored (the view is cached; at 100,000 patients the export's 9,000
    # disagreeing scans took 6 ms to pickle and 8 to read back)
    exp = exports.compute_export("response-consistency", snapshot, filters, sites, response_scope=scope)
    spec = _spec(CONSISTENCY, "response-consistency", snapshot, {"response_scope": scope})
    flagged, checked = exp.extra["n_patients_flagged"], exp.extra["n_patients_checked"]
    rule = ("Implied target-lesion response (mRECIST): CR = every target lesion 0 mm; PD = sum ≥ 20% above "
            "(and above) the nadir of the earlier measured scans, baseline included; PR = sum ≤ 30% below "
            "baseline; else SD. Only fully measured scans with a baseline sum > 0 are checked.")
    exempt = (" A recorded PD explained by a new lesion or non-target progression, and a recorded PR with every "
              "target at 0 mm while a non-target lesion persists, are not disagreements (as the validator)."
              if scope == "overall" else " Local response ignores new and non-target lesions.")
    note = [*own_sites_note(sites), html.Strong(f"{flagged} of {_n_word(checked)} checked disagree at "
                                               f"{_n_word(len(exp.rows), 'scan')}. ", id="response-consistency-count"),
            rule, exempt, " ", scope_note(scope)]
    if exp.n_patients == 0:
        return empty_message(NO_PATIENTS), spec, note
    if exp.rows.empty:
        return empty_message("Every checked scan's recorded response agrees with its measurements."), spec, note
    return consistency_table(exp.rows), spec, note


def highlighted(trigger, current, waterfall_click=None, spider_click=None, swimmer_click=None):
    """The highlighted patient after a click, None after 'clear', else unchanged. The patient id is
    customdata[0] of the clicked point; in the waterfall it is the clicked bar's x (its category),
    which its customdata does not repeat."""
    if trigger == HIGHLIGHT_CLEAR:
        return None
    figure = trigger.get("figure") if isinstance(trigger, dict) else None
    click = {WATERFALL: waterfall_click, SPIDER: spider_click, SWIMMER: swimmer_click}.get(figure)
    try:
        point = click["points"][0]
        if figure == WATERFALL and point.get("x") is not None:
            return str(point["x"])
        return str(point["customdata"][0])
    except (TypeError, KeyError, IndexError, AttributeError):
        return current


def highlight_label(patient):
    if not patient:
        return ("Click a bar of the waterfall (or a spider line or swimmer lane) to follow one patient and get a link "
                "to their patient view.")
    return [html.Span("Following "), html.Strong(patient, id="response-highlight-patient"),
            html.Span(" in every plot. ")]


# --- wiring -----------------------------------------------------------------------------------
@callback(*card_outputs(WATERFALL), Input(ids.STATE, "data"), Input(SCOPE, "value"), Input(HIGHLIGHT, "data"))
@cached_view("response.waterfall")
def _waterfall(state, scope, highlight):
    return waterfall_card(state, scope, highlight)


# the BOR chart and the ORR/DCR table: one callback, as they have the same inputs and read the same
# export (one request and one cached result per update instead of two)
@callback(*card_outputs(BOR), *card_outputs(SUMMARY, table=True), Input(ids.STATE, "data"), Input(SCOPE, "value"),
          Input(BY, "value"))
@cached_view("response.bor-summary")
def _bor_summary(state, scope, by):
    summary = _summary_export(state, scope, by)          # read once for both cards
    return (*bor_card(state, scope, by, summary), *summary_card(state, scope, by, summary))


@callback(*card_outputs(SPIDER), Input(ids.STATE, "data"), Input(SCOPE, "value"), Input(HIGHLIGHT, "data"))
@cached_view("response.spider")
def _spider(state, scope, highlight):
    return spider_card(state, scope, highlight)


@callback(*card_outputs(SWIMMER), Output(SWIMMER_PAGE, "max_value"), Output(SWIMMER_PAGE, "active_page"),
          Output(SWIMMER_COUNT, "children"),
          Input(ids.STATE, "data"), Input(SCOPE, "value"), Input(SORT, "value"), Input(SWIMMER_PAGE, "active_page"),
          Input(SWIMMER_SIZE, "value"), Input(HIGHLIGHT, "data"))
def _swimmer(state, scope, sort, page, size, highlight):
    trigger = ctx.triggered_id
    if trigger in (ids.STATE, SCOPE, SORT, SWIMMER_SIZE):
        page = 1
    return _swimmer_view(state, scope, sort, page, size, highlight, trigger == HIGHLIGHT)


@cached_view("response.swimmer")
def _swimmer_view(state, scope, sort, page, size, highlight, follow_highlight):
    # cached per page (and lanes per page, highlight, follow): a page seen before comes back at once
    return swimmer_card(state, scope, sort, page, size, highlight, follow_highlight=follow_highlight)


@callback(*card_outputs(CONSISTENCY, table=True), Input(ids.STATE, "data"), Input(SCOPE, "value"))
@cached_view("response.consistency")
def _consistency(state, scope):
    return consistency_card(state, scope)


@callback(Output(HIGHLIGHT, "data"), Input(fid("figure", WATERFALL), "clickData"),
          Input(fid("figure", SPIDER), "clickData"), Input(fid("figure", SWIMMER), "clickData"),
          Input(HIGHLIGHT_CLEAR, "n_clicks"), State(HIGHLIGHT, "data"), prevent_initial_call=True)
def _highlight(waterfall_click, spider_click, swimmer_click, _clear, current):
    # a de-identified waterfall's bar is a number, not a patient: nothing to follow
    new = highlighted(ctx.triggered_id, current, waterfall_click, spider_click, swimmer_click) \
        if request_scope().patient_level else None
    return no_update if new == current else new


@callback(Output(HIGHLIGHT_LABEL, "children"), Output(HIGHLIGHT_CLEAR, "disabled"), Input(HIGHLIGHT, "data"))
def _highlight_label(patient):
    if not request_scope().patient_level:
        return "", True             # a de-identified waterfall: no patient to follow
    return highlight_label(patient), not patient


# the "Open patient X" links: the highlighted patient's view with the page's query string (data cut,
# filters), drawn in the browser; hidden with no patient (a sponsor never has one: _highlight)
clientside_callback(
    ClientsideFunction(namespace="registry", function_name="openPatientLinks"),
    Output(OPEN_PATIENT, "href"), Output(OPEN_PATIENT, "children"), Output(OPEN_PATIENT, "style"),
    Output(OPEN_PATIENT_SWIMMER, "href"), Output(OPEN_PATIENT_SWIMMER, "children"),
    Output(OPEN_PATIENT_SWIMMER, "style"),
    Input(HIGHLIGHT, "data"), Input(ids.URL, "search"),
)
