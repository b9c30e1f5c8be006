"""Survival page callbacks: state + page options -> one SurvivalAnalysis (one Kaplan-Meier fit
per group) -> the curve figure, the summary table and the hazard ratios, whose CSVs are the
km-curve, km-risk-table, km-summary and cox exports of the same options."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, clientside_callback, html

from dashboard import ids
from dashboard.state import state_context
from dashboard.components import card_outputs, empty_message, export_spec, fid, graph_config
from dashboard.exports import survival as km
from dashboard.figures import survival as figs
from dashboard.figures.common import NO_PATIENTS, empty_figure
from dashboard.grouping import GROUPINGS
from dashboard.state import cached_view

PAGE = "survival"
Y_TITLES = {"os": "Overall survival", "ttp": "Free of progression", "pfs": "Progression-free survival",
            "local_ttp": "Free of local progression"}
DAGGER = "†"


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


def risk_options(opts: dict, analysis: km.SurvivalAnalysis) -> dict:
    """The km-risk-table export's options: the page's options at the figure's x ticks (computed
    here from the fit, never taken from a client)."""
    return {**opts, "times": times_option(figs.tick_days(analysis.max_days()))}


def _page_options(params: dict) -> dict:
    return options(params.get("endpoint"), params.get("by"), params.get("ci"))


def _risk_download(params, snapshot, filters, scope):
    opts = _page_options(params)
    return "km-risk-table", risk_options(opts, km.survival_analysis(snapshot, filters, scope, **opts))


# figure -> (export, options) of its CSV download from the page options (dashboard/callbacks/downloads.py)
DOWNLOADS = {**{figure: (lambda params, *context, figure=figure: (figure, _page_options(params)))
                for figure in ("km-curve", "km-summary", "cox")},
             "km-risk-table": _risk_download}


def group_labels(analysis: km.SurvivalAnalysis) -> dict:
    """Legend text per group: level (n = ...), with a dagger under SMALL_GROUP patients."""
    out = {}
    for level, fit in analysis.fits.items():
        name = "All patients" if analysis.by == "none" else str(level)
        out[level] = f"{name} (n = {fit.n})" + (f" {DAGGER}" if fit.n < km.SMALL_GROUP else "")
    return out


# --- tables ------------------------------------------------------------------------------------
def swatch(colour):
    return html.Span(className="group-swatch me-2", style={"backgroundColor": colour, "display": "inline-block",
                                                            "width": "0.8rem", "height": "0.8rem",
                                                            "borderRadius": "2px", "verticalAlign": "-1px"})


def group_cell(level, by, colour, n):
    name = "All patients" if by == "none" else str(level)
    return html.Td([swatch(colour), name, html.Sup(DAGGER) if n < km.SMALL_GROUP else None], className="text-nowrap")


def summary_table(summary, by, colours):
    head = html.Thead(html.Tr([html.Th(GROUPINGS[by] if by != "none" else "Group"), html.Th("n", className="text-end"),
                               html.Th("Events", className="text-end"),
                               html.Th("Median, months (95% CI)", className="text-end")] +
                              [html.Th(f"{label} (95% CI)", className="text-end")
                               for label in ("6-month, %", "1-year, %", "2-year, %")]))
    body = []
    for r in summary.to_dict("records"):
        body.append(html.Tr([
            group_cell(r["group"], by, colours[r["group"]], r["n"]),
            html.Td(r["n"], className="text-end"), html.Td(r["events"], className="text-end"),
            html.Td(fmt_median(r["median_days"], r["median_ci_lower_days"], r["median_ci_upper_days"]),
                    className="text-end text-nowrap"),
            *[html.Td(fmt_surv(r[f"surv_{t}"], r[f"surv_{t}_ci_lower"], r[f"surv_{t}_ci_upper"]),
                      className="text-end text-nowrap") for t in km.FIXED_TIMES],
        ], **{"data-group": str(r["group"])}))
    return dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="mb-2 small survival-table",
                     id="survival-summary-table")


def logrank_text(analysis) -> str:
    lr = analysis.logrank_dict()
    if lr is None:
        return "Log-rank test: needs two or more groups."
    if lr["df"] < 1:        # analysis plan: no event, or fewer than two groups with expected > 0
        return "Log-rank test: not estimable (fewer than two groups with an expected event)."
    return f"Log-rank test: χ² = {lr['chisq']:.2f} on {lr['df']} df, p = {fmt_p(lr['p_value'])}".replace(
        "p = <", "p <") + " (descriptive)."


def followup_text(analysis) -> str:
    med, lo, hi = analysis.median_followup
    if med is None:
        return "Median follow-up (reverse Kaplan-Meier of OS): not estimable."
    return f"Median follow-up (reverse Kaplan-Meier of OS): {fmt_median(med, lo, hi)} months."


def cox_table(cox, by, colours, analysis):
    head = html.Thead(html.Tr([html.Th(GROUPINGS[by]), html.Th("HR (95% CI)", className="text-end"),
                               html.Th("p", className="text-end")]))
    body = []
    for i, r in enumerate(cox.to_dict("records")):
        n = analysis.fits[r["group"]].n
        hr = "1 (reference)" if i == 0 else fmt_hr(r["hazard_ratio"], r["ci_lower"], r["ci_upper"])
        body.append(html.Tr([group_cell(r["group"], by, colours[r["group"]], n),
                             html.Td(hr, className="text-end text-nowrap"),
                             html.Td("" if i == 0 else fmt_p(r["p_value"]), className="text-end")],
                            **{"data-group": str(r["group"])}))
    return dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="mb-2 small survival-table",
                     id="survival-cox-table")


# --- footnotes ---------------------------------------------------------------------------------
def ci_note(ci) -> str:
    return (f"95% pointwise confidence intervals, {km.CI_TYPES[ci]} transform, Greenwood variance; median CI "
            "by Brookmeyer-Crowley (where the bands cross 50%), as R's survival package computes it.")


def small_note(analysis):
    small = analysis.small_groups()
    if not small:
        return None
    return html.Span(f" {DAGGER} Fewer than {km.SMALL_GROUP} patients ({', '.join(map(str, small))}): drawn, "
                     "but the estimates are unstable.", className="text-danger")


def curve_note(analysis):
    return [f"Kaplan-Meier estimates. {km.ENDPOINT_DEFINITIONS[analysis.endpoint]} Vertical ticks: censored "
            "patients. Under the curves at each tick: at risk (time ≥ t), cumulative events and censored (time ≤ "
            f"t). Months = days / 30.4375. {ci_note(analysis.ci)}", small_note(analysis)]


def summary_note(analysis):
    return [f"{km.ENDPOINT_DEFINITIONS[analysis.endpoint]} {ci_note(analysis.ci)} NR: not reached. —: not "
            "estimable (no patient of the group followed that long); CI —: no interval from the transform (R's NA, "
            "e.g. log-log where S is 1 or 0). 6 months, 1 year, 2 years = S at 182, 365, "
            "730 days. Median follow-up counts every patient in the filter. p-values are descriptive "
            "(observational registry, no adjustment).", small_note(analysis)]


def cox_note(analysis):
    return (f"Cox proportional hazards, {GROUPINGS[analysis.by]} as a factor, reference = the first level "
            f"({analysis.levels[0]}); Efron ties; Wald 95% CI and p. Not estimable: a group without events. "
            "p-values are descriptive.")


# --- the callback ------------------------------------------------------------------------------
def survival_view(state, endpoint="os", by="bclc_stage", ci="log-log", bands=None):
    """Every output of the page from one SurvivalAnalysis: (figure, config, curve spec, curve note,
    summary table, summary spec, summary note, cox table, cox spec, cox note, risk spec)."""
    snapshot, filters, scope = state_context(state)
    opts = options(endpoint, by, ci)
    a = km.survival_analysis(snapshot, filters, scope, **opts)
    sid = snapshot.snapshot_id
    ticks = figs.tick_days(a.max_days())
    specs = {name: export_spec(PAGE, figure, name, sid, opts) for figure, name in
             (("km-curve", "km-curve"), ("km-summary", "km-summary"), ("cox", "cox"))}
    risk_spec = export_spec(PAGE, "km-risk-table", "km-risk-table", sid, risk_options(opts, a))
    if a.n_patients == 0:
        none = empty_message(NO_PATIENTS)
        return (empty_figure(NO_PATIENTS), graph_config("km-curve", specs["km-curve"]["filename"]),
                specs["km-curve"], None, none, specs["km-summary"], None, none, specs["cox"], None, risk_spec)
    colours = figs.group_colours(a.by, a.levels)
    title = km.ENDPOINTS[a.endpoint] + ("" if a.by == "none" else f" by {GROUPINGS[a.by]}")
    fig = figs.km_figure(a.curve(), a.risk_table(ticks), a.levels, colours, group_labels(a),
                         show_ci=bool(bands), title=title, y_title=Y_TITLES[a.endpoint],
                         ticks=[t / figs.DAYS_PER_MONTH for t in ticks])
    summary = html.Div([summary_table(a.summary(), a.by, colours),
                        html.Div(logrank_text(a), id="survival-logrank", className="small"),
                        html.Div(followup_text(a), id="survival-followup", className="small")])
    cox = (empty_message("Hazard ratios need a grouping: choose one under 'Group by'.") if a.by == "none"
           else cox_table(a.cox, a.by, colours, a))
    return (fig, graph_config("km-curve", specs["km-curve"]["filename"]), specs["km-curve"], curve_note(a),
            summary, specs["km-summary"], summary_note(a), cox, specs["cox"],
            None if a.by == "none" else cox_note(a), risk_spec)


@callback(
    *card_outputs("km-curve"), *card_outputs("km-summary", table=True), *card_outputs("cox", table=True),
    Output(fid("figure-export", "km-risk-table"), "data"),
    Input(ids.STATE, "data"),
    Input(ids.page_option("endpoint"), "value"),
    Input(ids.page_option("by"), "value"),
    Input(ids.page_option("ci"), "value"),
    State(ids.page_option("bands"), "value"),
)
@cached_view("survival.survival")
def _survival(state, endpoint, by, ci, bands):
    return survival_view(state, endpoint, by, ci, bands)


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
