"""Enrollment page callbacks: state -> exports (data + analytics) -> figures."""
import dash_bootstrap_components as dbc
from dash import Input, callback, html

from dashboard import exports, ids
from dashboard.analytics.baseline import baseline_wide
from dashboard.callbacks.shell import state_context
from dashboard.components import card_outputs, empty_message, export_spec, graph_config
from dashboard.figures import enrollment as figs
from dashboard.figures.common import NO_PATIENTS
from dashboard.cache import cached_view

PAGE = "enrollment"


def accrual_card(state, mode="pooled"):
    snapshot, filters, scope = state_context(state)
    exp = exports.run_export("accrual", snapshot, filters, scope)
    spec = export_spec(PAGE, "accrual", "accrual", snapshot.snapshot_id)
    target = exp.rows.loc[exp.rows.site_id == "all", "target_enrollment"].max()
    note = (f"Enrolled = first DEB-TACE on or before the cut-off {snapshot.cutoff_date}. "
            f"{exp.n_patients} patients in the current filter; target {0 if target != target else int(target)} "
            "(sum of the selected sites' targets; dotted lines: each site's own target).")
    return figs.accrual_figure(exp.rows, per_site=mode == "site"), graph_config("accrual", spec["filename"]), spec, note


def enrollment_card(state, sort="site"):
    snapshot, filters, scope = state_context(state)
    exp = exports.run_export("enrollment", snapshot, filters, scope)
    spec = export_spec(PAGE, "enrollment-by-site", "enrollment", snapshot.snapshot_id)
    note = "Outline: the site's target enrollment; bar: patients enrolled in the current filter (% of target)."
    return (figs.enrollment_bars(exp.rows, sort), graph_config("enrollment-by-site", spec["filename"]), spec, note)


def baseline_card(state):
    snapshot, filters, scope = state_context(state)
    exp = exports.run_export("baseline-table", snapshot, filters, scope)
    spec = export_spec(PAGE, "baseline-table", "baseline-table", snapshot.snapshot_id)
    note = ("n (%) of the column's patients; continuous: median (IQR, quartiles as R's quantile type 7). "
            "Missing values are counted in their own rows.")
    if exp.n_patients == 0:
        return empty_message(NO_PATIENTS), spec, note
    return table_one(baseline_wide(exp.rows), exp.rows), spec, note


def table_one(wide, long):
    groups = [c for c in wide.columns if c not in ("variable", "label", "level")]
    n_by_group = long.drop_duplicates("group").set_index("group")["n_group"]
    head = html.Thead(html.Tr([html.Th("Characteristic")] +
                              [html.Th([g, html.Br(), html.Span(f"N = {n_by_group[g]}", className="fw-normal")],
                                       className="text-end") for g in groups]))
    rows, last = [], None
    for rec in wide.to_dict("records"):
        if rec["variable"] == "n":
            continue
        inline = rec["level"] == "median (IQR)"
        if rec["label"] != last and not inline:
            rows.append(html.Tr([html.Td(rec["label"], className="var-label", colSpan=len(groups) + 1)]))
        last = rec["label"]
        label = (html.Td([html.Span(rec["label"], className="var-label"), ", median (IQR)"]) if inline
                 else html.Td(rec["level"], className="level"))
        rows.append(html.Tr([label] + [html.Td(rec[g] if rec[g] == rec[g] else "", className="text-end")
                                       for g in groups]))
    return dbc.Table([head, html.Tbody(rows)], bordered=False, hover=True, size="sm", className="table-one mb-0",
                     id="baseline-table-grid")


def followup_card(state):
    snapshot, filters, scope = state_context(state)
    exp = exports.run_export("followup-status", snapshot, filters, scope)
    spec = export_spec(PAGE, "followup-status", "followup-status", snapshot.snapshot_id)
    med, lo, hi = (exp.extra[k] for k in ("median_followup_days", "median_followup_ci_lower_days",
                                          "median_followup_ci_upper_days"))
    fmt = lambda d: "NR" if d is None else f"{d / 30.4375:.1f}"
    median = ("Median follow-up (reverse Kaplan-Meier): not estimable" if med is None else
              f"Median follow-up (reverse Kaplan-Meier): {fmt(med)} months (95% CI {fmt(lo)}-{fmt(hi)}).")
    note = [html.Strong(median, id="median-followup"), html.Br(),
            "Died: death date known by the cut-off; off study: off-study date recorded, alive. "
            "Months = days / 30.4375."]
    return figs.followup_figure(exp.rows), graph_config("followup-status", spec["filename"]), spec, note


@callback(*card_outputs("accrual"), Input(ids.STATE, "data"), Input(ids.page_option("mode"), "value"))
@cached_view("enrollment.accrual")
def _accrual(state, mode):
    return accrual_card(state, mode)


@callback(*card_outputs("enrollment-by-site"), Input(ids.STATE, "data"), Input(ids.page_option("sort"), "value"))
@cached_view("enrollment.enrollment")
def _enrollment(state, sort):
    return enrollment_card(state, sort)


@callback(*card_outputs("baseline-table", table=True), Input(ids.STATE, "data"))
@cached_view("enrollment.baseline")
def _baseline(state):
    return baseline_card(state)


@callback(*card_outputs("followup-status"), Input(ids.STATE, "data"))
@cached_view("enrollment.followup")
def _followup(state):
    return followup_card(state)
