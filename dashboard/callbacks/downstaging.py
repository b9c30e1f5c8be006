"""Downstaging page callbacks: state -> exports (data + analytics) -> figures, one per card."""
from dash import Input, callback

from dashboard import exports, ids
from dashboard.analytics import staging
from dashboard.state import state_context
from dashboard.components import card_outputs, export_spec, graph_config
from dashboard.figures import downstaging as figs
from dashboard.figures.common import NO_PATIENTS
from dashboard.grouping import GROUPINGS
from dashboard.state import cached_view

PAGE = "downstaging"
# the page's controls keep their value in the URL (?measure=milan&by=site_id)
MEASURE, BY = ids.page_option("measure"), ids.page_option("by")
FLOW, RATES, CIF, DOWNSIZING = "downstaging-flow", "downstaging-rates", "downstaging-cif", "downstaging-downsizing"

FLOW_NOTES = {
    "bclc": "Right: the best follow-up stage, the lowest BCLC stage recorded at any restaging review "
            "(0 < A < B < C < D); a patient downstaged once and restaged higher later counts at the lower stage.",
    "milan": "Right: within Milan when within Milan at any restaging review, even if outside again later.",
    "resectable": "Right: resectable when judged resectable at any restaging review, even if not later.",
}


def _measure(measure) -> str:
    return measure if measure in FLOW_NOTES else "bclc"


def _by(by) -> str:
    """The grouping the page's control shows for a URL value (its layout's fallback)."""
    return by if by in GROUPINGS else "bclc_stage"


# figure -> (export, options) of its CSV download from the page options (dashboard/callbacks/downloads.py)
DOWNLOADS = {
    FLOW: lambda p, *context: ("staging-flow", {"measure": _measure(p.get("measure"))}),
    RATES: lambda p, *context: ("downstaging-summary", {"by": _by(p.get("by"))}),
    CIF: lambda p, *context: ("downstaging-cif", {"by": _by(p.get("by"))}),
    DOWNSIZING: lambda p, *context: ("downsizing", {"by": _by(p.get("by"))}),
}


def _n(count) -> str:
    """A count of a note: '–' where withheld (None: dashboard/exports/complement.py)."""
    return "–" if count is None else str(count)


def _pct(p) -> str:
    return "–" if p is None or p != p else f"{100 * p:.1f}%"


def baseline_unknown_note(rows) -> str:
    """The patients in no denominator because the source did not record their baseline (all groups)."""
    overall = rows[rows["group"] == "all"].set_index("measure")["baseline_unknown"] if len(rows) else {}
    milan, resectable = (overall.get(m, 0) for m in ("downstaged_to_milan", "converted_to_resectable"))
    if milan in (0, None) and resectable in (0, None):
        return ""
    return (f" Baseline not recorded by the source, so in neither numerator nor denominator: Milan status "
            f"{_n(milan)}, resectability {_n(resectable)} patients.")


def flow_card(state, measure="bclc"):
    snapshot, filters, scope = state_context(state)
    measure = _measure(measure)
    exp = exports.run_export("staging-flow", snapshot, filters, scope, measure=measure)
    spec = export_spec(PAGE, FLOW, "staging-flow", snapshot.snapshot_id, {"measure": measure})
    unknown = staging.UNKNOWN_STATES[measure]
    from_unknown = (f" '{unknown[0].upper() + unknown[1:]}': the source did not record it at baseline (yellow; "
                    "neither better nor worse can be told)." if unknown in set(exp.rows["source"]) else "")
    note = (f"Left: the baseline state (patients table). {FLOW_NOTES[measure]} Patients without any review: "
            "'died before restaging' (death recorded) or 'not yet restaged'. Widths and numbers are patients "
            f"(N = {_n(exp.n_patients)} in the current filter); link colour: green better, grey-blue unchanged, "
            f"red worse than at baseline.{from_unknown}" + (
                " A link of fewer than 5 patients reads <5 and is drawn at a fixed width; a node with such links "
                "reads n ≥ its counted patients plus one per such link (the exact numbers are not shown for your "
                "role)." if scope.suppress else ""))
    return figs.flow_figure(exp.rows, measure), graph_config(FLOW), spec, note


def rates_card(state, by="bclc_stage"):
    snapshot, filters, scope = state_context(state)
    exp = exports.run_export("downstaging-summary", snapshot, filters, scope, by=by)
    spec = export_spec(PAGE, RATES, "downstaging-summary", snapshot.snapshot_id, {"by": exp.extra["by"]})
    note = ("Downstaged to within Milan: outside Milan at baseline and within Milan at any restaging review; "
            "denominator = patients outside Milan at baseline. Converted to resectable: not resectable at baseline "
            "and resectable at any review; denominator = patients not resectable at baseline. Eligible patients "
            "without a review (died or not yet restaged) count as not achieved. Labels: achieved/eligible and "
            "rate; bars: exact 95% CI (Clopper-Pearson). Open markers (circles; the diamond of all patients): fewer than 5 eligible (descriptive)." + (
                " <5: 1 to 4 patients; the number and its rate are not shown for your role; –: not shown so that a "
                "<5 beside it cannot be worked out by subtraction." if scope.suppress else ""))
    note += baseline_unknown_note(exp.rows)
    if exp.n_patients == 0:
        return figs.message_figure(NO_PATIENTS), graph_config(RATES), spec, note
    return figs.rates_figure(exp.rows, exp.extra["by"]), graph_config(RATES), spec, note


def cif_card(state, by="bclc_stage"):
    snapshot, filters, scope = state_context(state)
    exp = exports.run_export("downstaging-cif", snapshot, filters, scope, by=by)
    spec = export_spec(PAGE, CIF, "downstaging-cif", snapshot.snapshot_id, {"by": exp.extra["by"]})
    x = exp.extra
    at = x["all_at_one_year"]
    compare = ("" if at is None else
               f" At 12 months, all eligible patients: {_pct(at['cif'])} (95% CI {_pct(at['ci_lower'])}–"
               f"{_pct(at['ci_upper'])}); 1 − KM would give {_pct(at['one_minus_km'])}.")
    note = (f"Patients outside Milan at baseline (n = {_n(x['n_eligible'])}: {_n(x['n_downstaged'])} downstaged, "
            f"{_n(x['n_died_first'])} died first, {_n(x['n_censored'])} censored). Time from the first DEB-TACE to "
            "the first restaging review within Milan; death before that is a competing event; others are censored "
            "at their last review (day 0 without one). Cumulative incidence by Aalen-Johansen, not 1 − Kaplan-Meier: "
            "1 − KM counts the dead as if they could still be downstaged and so overstates the probability."
            f"{compare} Band (drawn for up to {figs.MAX_BANDS} groups; hover shows it always): 95% pointwise CI, "
            "log transform of the infinitesimal-jackknife SE (R survival's multi-state default). "
            "Months = days / 30.4375." + (
                f" Not included: {_n(x['n_baseline_unknown'])} patients whose baseline Milan status the source "
                "did not record." if x.get("n_baseline_unknown") not in (0, None) else ""))
    if exp.n_patients == 0:
        return figs.message_figure(NO_PATIENTS), graph_config(CIF), spec, note
    not_drawn = x.get("not_drawn", [])
    if not_drawn:
        note += " " + figs.not_drawn_note(x["by"], not_drawn)
    return figs.cif_figure(exp.rows, x["by"], not_drawn), graph_config(CIF), spec, note


def downsizing_card(state, by="bclc_stage"):
    snapshot, filters, scope = state_context(state)
    # every patient's row, uncached: this card's view is cached, and storing the export cost more
    # than computing it (exports.compute_export)
    exp = exports.compute_export("downsizing", snapshot, filters, scope, by=by)
    spec = export_spec(PAGE, DOWNSIZING, "downsizing", snapshot.snapshot_id, {"by": exp.extra["by"]})
    reasons = "; ".join(f"{k}: {v}" for k, v in exp.extra["not_evaluable"].items())
    drawn = [s["n"] for s in exp.extra["summary"] if s["n"] > 0]     # the figure's boxes
    k = figs.points_per_group(len(drawn))
    sampled = [n for n in drawn if n > k]
    points = (f"points: patients (n = {exp.extra['n_evaluable']})" if not sampled else
              f"points: patients (n = {exp.extra['n_evaluable']}); in a box of more than {k:,} patients, a fixed "
              f"sample of {k:,} evenly spaced in order of change (its box and the CSV have every patient)")
    note = ("Index lesion: the target lesion with the largest viable (enhancing, mRECIST) diameter at baseline. "
            "Best change: its smallest percent change from baseline, 100 × (d − d0) / d0, over post-baseline scans "
            "up to and including the first PD (the waterfall's window); −100% = no viable tumour left. "
            f"Box: median and quartiles; {points}. Not shown, not "
            f"evaluable: {exp.extra['n_not_evaluable']}" + (f" ({reasons})." if reasons else "."))
    not_drawn = exp.extra.get("not_drawn", [])
    if not_drawn:
        note += " Patient ids and dates are not shown for your role. " + figs.not_drawn_note(exp.extra["by"],
                                                                                                   not_drawn)
    elif "patient_id" not in exp.rows.columns:
        note += " Patient ids and dates are not shown for your role."
    if scope.patient_sites:
        note += (f" Patients of your site{'s' if len(scope.patient_sites) > 1 else ''} only "
                 f"({', '.join(scope.patient_sites)}): other sites' patients are not shown for your role.")
    if exp.n_patients == 0:
        return figs.message_figure(NO_PATIENTS), graph_config(DOWNSIZING), spec, note
    fig = figs.downsizing_figure(exp.rows, exp.extra["groups"], exp.extra["by"], not_drawn)
    return fig, graph_config(DOWNSIZING), spec, note


@callback(*card_outputs(FLOW), Input(ids.STATE, "data"), Input(MEASURE, "value"))
@cached_view("downstaging.flow")
def _flow(state, measure):
    return flow_card(state, measure)


@callback(*card_outputs(RATES), Input(ids.STATE, "data"), Input(BY, "value"))
@cached_view("downstaging.rates")
def _rates(state, by):
    return rates_card(state, by)


@callback(*card_outputs(CIF), Input(ids.STATE, "data"), Input(BY, "value"))
@cached_view("downstaging.cif")
def _cif(state, by):
    return cif_card(state, by)


@callback(*card_outputs(DOWNSIZING), Input(ids.STATE, "data"), Input(BY, "value"))
@cached_view("downstaging.downsizing")
def _downsizing(state, by):
    return downsizing_card(state, by)
