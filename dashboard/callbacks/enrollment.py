"""Enrollment page callbacks: state -> exports (data + analytics) -> figures."""
import dash_bootstrap_components as dbc
from dash import Input, callback, html

from dashboard import exports, ids
from dashboard.access import MIN_GROUP
from dashboard.analytics.baseline import baseline_wide_rows
from dashboard.exports.enrollment import FEW_FOR_MEDIAN
from dashboard.state import state_context
from dashboard.components import Static, card_outputs, empty_message, export_spec, graph_config
from dashboard.figures import enrollment as figs
from dashboard.figures.common import NO_PATIENTS
from dashboard.state import cached_view
from dashboard.wire import Element

PAGE = "enrollment"
# figure -> (export, options) of its CSV download (dashboard/callbacks/downloads.py): no page option
DOWNLOADS = {figure: (lambda params, *context, name=name: (name, {})) for figure, name in (
    ("accrual", "accrual"), ("enrollment-by-site", "enrollment"), ("baseline-table", "baseline-table"),
    ("followup-status", "followup-status"))}


SUPPRESSED_NOTE = "For your role, counts from 1 to 4 are shown as <5, without their percentage."


def shown_n(n) -> str:
    """An export's n_patients (a number, or "<5" when suppressed) for a sentence."""
    return n if isinstance(n, str) else f"{n:,}"


def accrual_card(state, mode="pooled"):
    snapshot, filters, scope = state_context(state)
    exp = exports.run_export("accrual", snapshot, filters, scope)
    spec = export_spec(PAGE, "accrual", "accrual", snapshot.snapshot_id)
    target = exp.rows.loc[exp.rows.site_id == "all", "target_enrollment"].max()
    n_sites, with_target = exp.extra.get("n_sites", 0), exp.extra.get("n_sites_with_target", 0)
    label = "Target (sum of sites)"
    if with_target == 0:
        targets = ("no target line: no selected site has a target recorded; dotted lines: each site's own target "
                   "where recorded")
    elif with_target < n_sites:
        label = f"Target (sum of {with_target} of {n_sites} sites)"
        targets = (f"target {int(target)}, the sum over the {with_target} of {n_sites} selected sites that have a "
                   "target recorded (the others have none); dotted lines: each site's own target where recorded")
    else:
        targets = f"target {int(target)} (sum of the selected sites' targets; dotted lines: each site's own target)"
    subgroup = exp.extra.get("subgroup", False)
    if subgroup:
        targets = ("dark: patients in the filter; light: every patient enrolled (no filter); " + targets +
                   ". A subgroup is not measured against the target")
    note = (f"Enrolled = first DEB-TACE on or before the cut-off {snapshot.cutoff_date}. "
            f"{shown_n(exp.n_patients)} patients in the current filter; {targets}. A site without a recorded "
            "activation date is counted from its first enrolment.")
    if scope.suppress:
        note += " " + SUPPRESSED_NOTE + " Months whose cumulative count is under 5 are not drawn."
    fig = figs.accrual_figure(exp.rows, per_site=mode == "site", target_label=label, subgroup=subgroup)
    return fig, graph_config("accrual"), spec, note


def enrollment_card(state, sort="site"):
    snapshot, filters, scope = state_context(state)
    exp = exports.run_export("enrollment", snapshot, filters, scope)
    spec = export_spec(PAGE, "enrollment-by-site", "enrollment", snapshot.snapshot_id)
    subgroup = exp.extra.get("subgroup", False)
    if subgroup:
        note = ("Filtered: dark bar and first number = the site's patients in the current filter; light bar and "
                "\"of N\" = every patient the site enrolled (no filter); outline = the site's target. No "
                "\"% of target\" under a filter: a subgroup is not measured against the site's target.")
    else:
        note = "Outline: the site's target enrollment; bar: patients enrolled (% of target)."
    if exp.rows["target_enrollment"].isna().any():
        note += " A site without a recorded target has no outline" + ("." if subgroup else " and no percentage.")
    if scope.suppress:
        note += " " + SUPPRESSED_NOTE
    return (figs.enrollment_bars(exp.rows, sort, subgroup=subgroup), graph_config("enrollment-by-site"),
            spec, note)


def baseline_card(state):
    snapshot, filters, scope = state_context(state)
    exp = exports.run_export("baseline-table", snapshot, filters, scope)
    spec = export_spec(PAGE, "baseline-table", "baseline-table", snapshot.snapshot_id)
    note = ("n (%) of the column's patients; continuous: median (IQR, quartiles as R's quantile type 7). "
            "Missing values are counted in their own rows.")
    if scope.suppress:
        note += (f" {SUPPRESSED_NOTE} A median (IQR) of fewer than {MIN_GROUP} patients is not shown "
                 f"({FEW_FOR_MEDIAN}).")
    if exp.n_patients == 0:
        return empty_message(NO_PATIENTS), spec, note
    return table_one(exp.rows), spec, note


def table_one(long):
    """Table 1 from the export's long rows (baseline_wide_rows: one row per variable and level,
    one column per group). Its cells, rows and head are wire.Element (a label row's one cell spans
    every column), the same JSON as the html components: at 600 patients (stages B and C) building
    the ~400 components (each a validating constructor, then to_plotly_json in wire.plain) from
    baseline_wide's DataFrame took 9.7 ms, the elements from plain lists 0.7."""
    groups, records = baseline_wide_rows(long)
    n_by_group = {}
    for group, n_group in zip(long["group"].tolist(), long["n_group"].tolist()):
        n_by_group.setdefault(group, n_group)            # the group's first row, as drop_duplicates kept it
    head = Element("Thead", Element("Tr", [Element("Th", "Characteristic")] + [
        Element("Th", [g, Element("Br"), Element("Span", f"N = {n_by_group[g]}", "fw-normal")], "text-end")
        for g in groups]))
    rows, last = [], None
    for variable, label, level, texts in records:
        if variable == "n":
            continue
        inline = level == "median (IQR)"
        if label != last and not inline:
            rows.append(Element("Tr", [Element("Td", label, "var-label", colSpan=len(groups) + 1)]))
        last = label
        first = (Element("Td", [Element("Span", label, "var-label"), ", median (IQR)"]) if inline
                 else Element("Td", level, "level"))
        rows.append(Element("Tr", [first] + [Element("Td", "" if text is None else text, "text-end")
                                             for text in texts]))
    return Static(dbc.Table([head, html.Tbody(rows)], bordered=False, hover=True, size="sm",
                            className="table-one mb-0", id="baseline-table-grid"))


def followup_card(state):
    snapshot, filters, scope = state_context(state)
    exp = exports.run_export("followup-status", snapshot, filters, scope)
    spec = export_spec(PAGE, "followup-status", "followup-status", snapshot.snapshot_id)
    med, lo, hi = (exp.extra[k] for k in ("median_followup_days", "median_followup_ci_lower_days",
                                          "median_followup_ci_upper_days"))
    fmt = lambda d: "NR" if d is None else f"{d / 30.4375:.1f}"
    withheld = exp.extra.get("median_followup_note")
    median = (f"Median follow-up (reverse Kaplan-Meier): {withheld}" if withheld else
              "Median follow-up (reverse Kaplan-Meier): not estimable" if med is None else
              f"Median follow-up (reverse Kaplan-Meier): {fmt(med)} months (95% CI {fmt(lo)}-{fmt(hi)}).")
    note = [html.Strong(median, id="median-followup"), html.Br(),
            "Died: death date known by the cut-off; off study: off-study date recorded, alive. "
            "Months = days / 30.4375." + (" " + SUPPRESSED_NOTE if scope.suppress else "")]
    return figs.followup_figure(exp.rows), graph_config("followup-status"), spec, note


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
