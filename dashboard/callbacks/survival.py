"""Survival page callbacks: state + page options -> the km-summary, km-curve, km-risk-table and cox
exports as the user's scope may see them (one SurvivalAnalysis per request underneath) -> the
curve figure, the summary table and the hazard ratios. Every number on the page is read from those
export rows, so a small cell hidden in an export is hidden on the card too (dashboard/exports/
survival.py says which)."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, clientside_callback, html

from dashboard import exports, ids
from dashboard.access import MIN_GROUP
from dashboard.state import state_context
from dashboard.components import Static, card_outputs, empty_message, export_spec, fid, graph_config
from dashboard.exports import survival as km
from dashboard.figures import survival as figs
from dashboard.figures.common import NO_PATIENTS, empty_figure
from dashboard.grouping import GROUPINGS
from dashboard.state import cached_view

PAGE = "survival"
Y_TITLES = {"os": "Overall survival", "ttp": "Free of progression", "pfs": "Progression-free survival",
            "local_ttp": "Free of local progression"}
DAGGER = "†"
WITHHELD = "–"      # an estimate or count not shown for the user's role (the note says why)


# --- formatting (the page's numbers; tests compare them with the exports) ------------------------
def fmt_months(days) -> str:
    """Days as months with one decimal; 'NR' where not reached (None)."""
    return "NR" if days is None or days != days else f"{days / figs.DAYS_PER_MONTH:.1f}"


def fmt_median(median, lower, upper) -> str:
    return f"{fmt_months(median)} ({fmt_months(lower)}–{fmt_months(upper)})"


def fmt_pct(p) -> str:
    return "—" if p is None or p != p else f"{100 * p:.1f}"


def fmt_surv(s, lower, upper) -> str:
    """S(t) with its CI as percentages; '—' where not estimable."""
    if s is None or s != s:
        return "—"
    if lower is None or upper is None or lower != lower or upper != upper:
        return f"{fmt_pct(s)}% (CI —)"      # R: NA, e.g. the log-log CI where S is 1 or 0
    return f"{fmt_pct(s)}% ({fmt_pct(lower)}–{fmt_pct(upper)})"


def fmt_p(p) -> str:
    if p is None or p != p:
        return "—"
    return "< 0.0001" if p < 0.0001 else f"{p:.2g}" if p < 0.1 else f"{p:.2f}"


def fmt_count(n) -> str:
    """A count as its export row gives it: the number, "<5", or WITHHELD (None: withheld so that a "<5"
    cannot be worked out from the pooled row)."""
    return WITHHELD if n is None else str(n)


def fmt_hr(hr, lower, upper) -> str:
    if hr is None or hr != hr:
        return "not estimable"
    return f"{hr:.2f} ({lower:.2f}–{upper:.2f})"


def times_option(days) -> str:
    """The --times option of the risk-table export: the tick days, exactly."""
    return ",".join(repr(float(t)).removesuffix(".0") for t in days)


def options(endpoint, by, ci) -> dict:
    """The page's control values as export options (unknown values fall back to the defaults)."""
    return {"endpoint": endpoint if endpoint in km.ENDPOINTS else "os",
            "by": by if by in GROUPINGS else "bclc_stage",
            "ci": ci if ci in km.CI_TYPES else "log-log"}


def risk_times(curve: exports.Export) -> str:
    """The risk table's times: the figure's x ticks, up to the last time of the curves drawn
    (the same for the page and its CSV; computed from the server's rows, never taken from a client)."""
    rows = curve.rows
    return times_option(figs.tick_days(float(rows["time_days"].max()) if len(rows) else 0.0))


def ref_option(ref) -> dict:
    """The cox export's --ref from the page's reference control: {} for the default (none chosen),
    a short text otherwise (the export checks it against the groups)."""
    return {"ref": ref[:64]} if isinstance(ref, str) and ref else {}


def page_exports(snapshot, filters, scope, opts: dict, ref=None) -> dict[str, exports.Export]:
    """The page's four exports as the scope may see them, the risk table at the figure's ticks, the
    hazard ratios against the chosen reference group (`ref`; None: the default)."""
    def run(name, **more):
        return exports.run_export(name, snapshot, filters, scope, **opts, **more)
    curve = run("km-curve")
    return {"km-summary": run("km-summary"), "km-curve": curve,
            "km-risk-table": run("km-risk-table", times=risk_times(curve)), "cox": run("cox", **ref_option(ref))}


def _page_options(params: dict) -> dict:
    return options(params.get("endpoint"), params.get("by"), params.get("ci"))


def _risk_download(params, snapshot, filters, scope):
    opts = _page_options(params)
    return "km-risk-table", {**opts, "times": risk_times(exports.run_export("km-curve", snapshot, filters, scope,
                                                                            **opts))}


# figure -> (export, options) of its CSV download from the page options (dashboard/callbacks/downloads.py)
DOWNLOADS = {**{figure: (lambda params, *context, figure=figure: (figure, _page_options(params)))
                for figure in ("km-curve", "km-summary")},
             "cox": lambda params, *context: ("cox", {**_page_options(params), **ref_option(params.get("ref"))}),
             "km-risk-table": _risk_download}


def group_labels(summary: exports.Export) -> dict:
    """Legend text per group: level (n = ...), with a dagger under SMALL_GROUP patients."""
    by = summary.extra["by"]
    out = {}
    for r in summary.rows.to_dict("records"):
        if r["group"] == km.POOLED:
            continue
        name = "All patients" if by == "none" else str(r["group"])
        out[r["group"]] = f"{name} (n = {fmt_count(r['n'])})" + (f" {DAGGER}" if few(r["n"]) else "")
    return out


def few(n) -> bool:
    """A group drawn although under SMALL_GROUP patients (never so under suppression, where n is
    "<5" and the group is not drawn)."""
    return isinstance(n, (int, float)) and n < km.SMALL_GROUP


# --- tables ------------------------------------------------------------------------------------
def swatch(colour):
    return html.Span(className="group-swatch me-2", style={"backgroundColor": colour, "display": "inline-block",
                                                            "width": "0.8rem", "height": "0.8rem",
                                                            "borderRadius": "2px", "verticalAlign": "-1px"})


def group_cell(level, by, colour, n):
    if level == km.POOLED:          # the pooled row under the groups: no curve, no swatch
        return html.Td(html.Strong(km.POOLED), className="text-nowrap")
    name = "All patients" if by == "none" else str(level)
    return html.Td([swatch(colour), name, html.Sup(DAGGER) if few(n) else None], className="text-nowrap")


def summary_table(summary, by, colours, not_shown=()):
    """One row per group, then the pooled row (with a grouping); the estimates of a group in
    `not_shown` are WITHHELD."""
    head = html.Thead(html.Tr([html.Th(GROUPINGS[by] if by != "none" else "Group"), html.Th("n", className="text-end"),
                               html.Th("Events", className="text-end"),
                               html.Th("Median, months (95% CI)", className="text-end")] +
                              [html.Th(f"{label} (95% CI)", className="text-end")
                               for label in ("6-month, %", "1-year, %", "2-year, %")]))
    body = []
    for r in summary.to_dict("records"):
        hidden = r["group"] in not_shown
        body.append(html.Tr([
            group_cell(r["group"], by, colours.get(r["group"]), r["n"]),
            html.Td(fmt_count(r["n"]), className="text-end"), html.Td(fmt_count(r["events"]), className="text-end"),
            html.Td(WITHHELD if hidden else fmt_median(r["median_days"], r["median_ci_lower_days"],
                                                       r["median_ci_upper_days"]),
                    className="text-end text-nowrap"),
            *[html.Td(WITHHELD if hidden else fmt_surv(r[f"surv_{t}"], r[f"surv_{t}_ci_lower"],
                                                       r[f"surv_{t}_ci_upper"]),
                      className="text-end text-nowrap") for t in km.FIXED_TIMES],
        ], **{"data-group": str(r["group"])}, className="survival-pooled" if r["group"] == km.POOLED else None))
    return Static(dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="mb-2 small survival-table",
                            id="survival-summary-table"))


def withheld(exp: exports.Export, what: str) -> bool:
    """True when the export's rules for the user's role withheld `what` (SmallGroups' `withheld`)."""
    return what in exp.extra.get("withheld", ())


def logrank_text(summary: exports.Export) -> str:
    """The log-rank line from the km-summary export's `logrank`."""
    lr = summary.extra["logrank"]
    if withheld(summary, "logrank"):
        return f"Log-rank test: not shown for your role (fewer than two groups of {MIN_GROUP} or more patients)."
    if lr is None:
        return "Log-rank test: needs two or more groups."
    if lr["df"] < 1:        # analysis plan: no event, or fewer than two groups with expected > 0
        return "Log-rank test: not estimable (fewer than two groups with an expected event)."
    return f"Log-rank test: χ² = {lr['chisq']:.2f} on {lr['df']} df, p = {fmt_p(lr['p_value'])}".replace(
        "p = <", "p <") + " (descriptive)."


def followup_text(summary: exports.Export) -> str:
    if withheld(summary, "median_followup"):
        return (f"Median follow-up (reverse Kaplan-Meier of OS): not shown for your role (fewer than {MIN_GROUP} "
                "patients in the filter).")
    med, lo, hi = (summary.extra[k] for k in km.FOLLOWUP)
    if med is None:
        return "Median follow-up (reverse Kaplan-Meier of OS): not estimable."
    return f"Median follow-up (reverse Kaplan-Meier of OS): {fmt_median(med, lo, hi)} months."


def reference_text(cox: exports.Export) -> str:
    """'Reference: BCLC stage B (n = 353)', and why a chosen reference was not used."""
    reference = cox.extra.get("reference")
    if reference is None:
        return ""
    n = cox.extra["group_n"].get(str(reference))
    text = f"Reference: {km.groups_text(cox.extra['by'], [reference])} (n = {fmt_count(n)})"
    text += "." if reference != cox.extra.get("reference_default") else ", the default."
    return text


def reference_message(cox: exports.Export):
    """The export's message for a reference level that is not a group here (None otherwise)."""
    note = cox.extra.get("reference_note")
    return html.Div(note, id="survival-ref-message", className="small text-danger mb-1") if note else None


def cox_table(cox: exports.Export, colours):
    """The cox export's rows, the reference group's first; the reference level reads '1 (reference)'."""
    by, reference, sizes = cox.extra["by"], cox.extra["reference"], cox.extra["group_n"]
    head = html.Thead(html.Tr([html.Th(GROUPINGS[by]), html.Th("HR (95% CI)", className="text-end"),
                               html.Th("p", className="text-end")]))
    body = []
    for r in cox.rows.to_dict("records"):
        ref = r["group"] == reference
        hr = "1 (reference)" if ref else fmt_hr(r["hazard_ratio"], r["ci_lower"], r["ci_upper"])
        body.append(html.Tr([group_cell(r["group"], by, colours[r["group"]], sizes[r["group"]]),
                             html.Td(hr, className="text-end text-nowrap"),
                             html.Td("" if ref else fmt_p(r["p_value"]), className="text-end")],
                            **{"data-group": str(r["group"])}))
    return html.Div([reference_message(cox), html.Div(reference_text(cox), id="survival-reference", className="small mb-1"),
                     Static(dbc.Table([head, html.Tbody(body)], size="sm", hover=True,
                                      className="mb-2 small survival-table", id="survival-cox-table"))])


# --- footnotes ---------------------------------------------------------------------------------
def ci_note(ci) -> str:
    return (f"95% pointwise confidence intervals, {km.CI_TYPES[ci]} transform, Greenwood variance; median CI "
            "by Brookmeyer-Crowley (where the bands cross 50%), as R's survival package computes it.")


def small_note(exp: exports.Export):
    """The notes on small groups: drawn under SMALL_GROUP patients (a role that sees every number),
    or, for a role with small-cell suppression, what its rules left out (the export's note)."""
    small = [g for g, n in exp.extra["group_n"].items() if few(n)]
    notes = []
    if small:
        notes.append(html.Span(f" {DAGGER} Fewer than {km.SMALL_GROUP} patients ({', '.join(map(str, small))}): "
                               "drawn dashed with open circles; the estimates are unstable.", className="text-danger"))
    if exp.extra.get("note"):
        notes.append(html.Span(" " + exp.extra["note"], className="text-warning-emphasis access-note"))
    return notes


def curve_note(curve: exports.Export):
    endpoint, ci = curve.extra["endpoint"], curve.extra["ci"]
    return [f"Kaplan-Meier estimates. {km.ENDPOINT_DEFINITIONS[endpoint]} Vertical ticks: censored "
            "patients. Under the curves at each tick: at risk (time ≥ t), cumulative events and censored (time ≤ "
            f"t). Months = days / 30.4375. {ci_note(ci)}", *small_note(curve)]


# what each placeholder of the summary table means (tests/test_median_edges.py checks them against the cells)
NR_NOTE = ("NR: not reached (R prints NA): the curve, or for a CI bound its pointwise band, never falls to 50% "
           "where it is defined. A median with NR at both ends of its CI (a single patient who died, say): the "
           "curve falls to 0 at once, where the bands are undefined, so R gives no bound either.")
S_NOTE = ("—: not estimable (no patient of the group followed that long). 100.0% (100.0–100.0): no event yet, "
          "with the interval R gives, (1, 1): before the group's first follow-up time, and with the log or plain "
          "transform. CI —: no interval from the transform (R's NA): log-log where S is 1 after a censoring, "
          "or where S is 0.")


def summary_note(summary: exports.Export):
    endpoint, ci = summary.extra["endpoint"], summary.extra["ci"]
    return [f"{km.ENDPOINT_DEFINITIONS[endpoint]} {ci_note(ci)} {NR_NOTE} {S_NOTE} 6 months, 1 year, 2 years = S at 182, 365, "
            "730 days. Median follow-up counts every patient in the filter. p-values are descriptive "
            "(observational registry, no adjustment).", *small_note(summary)]


def cox_note(cox: exports.Export):
    return [f"Cox proportional hazards, {GROUPINGS[cox.extra['by']]} as a factor, against the reference group "
            f"({cox.extra['reference']}; chosen under 'Reference group', by default BCLC B for BCLC stage, otherwise "
            "the largest group); Efron ties; Wald 95% CI and p. Not estimable: a group without events, or every "
            "group when the reference has none. p-values are descriptive.", *small_note(cox)]


# --- the callback ------------------------------------------------------------------------------
def survival_view(state, endpoint="os", by="bclc_stage", ci="log-log", bands=None, ref=None):
    """Every output of the page from the four exports: (figure, config, curve spec, curve note,
    summary table, summary spec, summary note, cox table, cox spec, cox note, risk spec); the hazard
    ratios against `ref` (None: the default reference)."""
    snapshot, filters, scope = state_context(state)
    opts = options(endpoint, by, ci)
    ex = page_exports(snapshot, filters, scope, opts, ref)
    summary, curve, risk, cox = (ex[name] for name in ("km-summary", "km-curve", "km-risk-table", "cox"))
    sid = snapshot.snapshot_id
    specs = {name: export_spec(PAGE, name, name, sid, opts) for name in ("km-curve", "km-summary")}
    specs["cox"] = export_spec(PAGE, "cox", "cox", sid, {**opts, **ref_option(ref)})
    risk_spec = export_spec(PAGE, "km-risk-table", "km-risk-table", sid, {**opts, "times": risk_times(curve)})
    config = graph_config("km-curve")
    if summary.n_patients == 0:
        none = empty_message(NO_PATIENTS)
        return (empty_figure(NO_PATIENTS), config, specs["km-curve"], None, none, specs["km-summary"], None, none,
                specs["cox"], None, risk_spec)
    levels = [g for g in summary.rows["group"] if g != km.POOLED]
    colours = figs.group_colours(opts["by"], levels)     # every group's colour, drawn or not: the same for every role
    drawn = [lv for lv in levels if lv not in curve.extra.get("not_drawn", ())]
    title = km.ENDPOINTS[opts["endpoint"]] + ("" if opts["by"] == "none" else f" by {GROUPINGS[opts['by']]}")
    if drawn:
        fig = figs.km_figure(curve.rows, risk.rows, drawn, colours, group_labels(summary),
                             show_ci=bool(bands), title=title, y_title=Y_TITLES[opts["endpoint"]],
                             ticks=[t / figs.DAYS_PER_MONTH for t in risk.extra["times"]],
                             small=[g for g, n in curve.extra["group_n"].items() if few(n)])
    else:
        fig = empty_figure(curve.extra["note"])
    not_shown = [*summary.extra.get("not_drawn", ()), *([km.POOLED] if withheld(summary, "pooled") else [])]
    tables = html.Div([summary_table(summary.rows, opts["by"], colours, not_shown),
                       html.Div(logrank_text(summary), id="survival-logrank", className="small"),
                       html.Div(followup_text(summary), id="survival-followup", className="small")])
    if opts["by"] == "none":
        hazards, hazards_note = empty_message("Hazard ratios need a grouping: choose one under 'Group by'."), None
    elif cox.rows.empty:
        hazards = html.Div([reference_message(cox), empty_message(cox.extra.get("note") or "No hazard ratio to show.")])
        hazards_note = None
    else:
        hazards, hazards_note = cox_table(cox, colours), cox_note(cox)
    return (fig, config, specs["km-curve"], curve_note(curve), tables, specs["km-summary"], summary_note(summary),
            hazards, specs["cox"], hazards_note, risk_spec)


@callback(
    *card_outputs("km-curve"), *card_outputs("km-summary", table=True), *card_outputs("cox", table=True),
    Output(fid("figure-export", "km-risk-table"), "data"),
    Input(ids.STATE, "data"),
    Input(ids.page_option("endpoint"), "value"),
    Input(ids.page_option("by"), "value"),
    Input(ids.page_option("ci"), "value"),
    State(ids.page_option("bands"), "value"),
    Input(ids.page_option("ref"), "value"),
)
@cached_view("survival.survival")
def _survival(state, endpoint, by, ci, bands, ref):
    return survival_view(state, endpoint, by, ci, bands, ref)


def reference_options(state, endpoint="os", by="bclc_stage", ci="log-log", ref=None) -> list[dict]:
    """The reference control's choices: each group of the grouping in the filter, 'level (n = ..)'
    with n as the user's role sees it (the km-summary export's group_n); none without a grouping.
    A chosen `ref` that is not such a group stays a choice, 'C (not a group here)', so the control
    keeps it and the hazard ratios' message says why the default is used (a dropdown drops a value
    missing from its options)."""
    opts = options(endpoint, by, ci)
    chosen = ref_option(ref).get("ref")
    if opts["by"] == "none":
        groups = {}
    else:
        snapshot, filters, scope = state_context(state)
        groups = exports.run_export("km-summary", snapshot, filters, scope, **opts).extra["group_n"]
    out = [{"label": f"{g} (n = {fmt_count(n)})", "value": g} for g, n in groups.items()]
    if chosen is not None and chosen not in groups:
        out.append({"label": f"{chosen} (not a group here)", "value": chosen})
    return out


@callback(
    Output(ids.page_option("ref"), "options"),
    Input(ids.STATE, "data"),
    Input(ids.page_option("endpoint"), "value"),
    Input(ids.page_option("by"), "value"),
    Input(ids.page_option("ci"), "value"),
    State(ids.page_option("ref"), "value"),
)
@cached_view("survival.reference_options")
def _reference_options(state, endpoint, by, ci, ref):
    return reference_options(state, endpoint, by, ci, ref)


# The bands switch only shows or hides the band traces already drawn: nothing is recomputed.
clientside_callback(
    """function (bands, fig) {
        if (!fig || !fig.data) { return window.dash_clientside.no_update; }
        const show = Array.isArray(bands) && bands.length > 0;
        const data = fig.data.map(t => t.meta === "%s" ? Object.assign({}, t, {visible: show}) : t);
        return Object.assign({}, fig, {data: data});
    }""" % figs.CI_BAND,
    Output(fid("figure", "km-curve"), "figure", allow_duplicate=True),
    Input(ids.page_option("bands"), "value"),
    State(fid("figure", "km-curve"), "figure"),
    prevent_initial_call=True,
)
