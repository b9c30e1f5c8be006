"""The headline export: the Overview's numbers for the filter and cut, one row per (metric, group).

Every number is read from the export of the page that shows it (km-summary, response-summary,
ae-incidence, downstaging-summary, overview, enrollment), run with the same filters, so the
headline cannot drift from those pages. Definitions: docs/analysis.md ("The Overview's headline").

Rows: metric, group, value, ci_lower, ci_upper, n (n = the patients the value is computed over).
- os_1y: S(365) of OS with its 95% CI (log-log, as km-summary), group 'all' and each BCLC stage;
- median_os_days: median OS with its 95% CI (null: not reached), 'all' and each BCLC stage;
- enrolled: patients in the filter; target: the sum of the sites' target enrollment (n null);
- median_followup_days: reverse Kaplan-Meier median follow-up of OS with its 95% CI;
- orr, dcr: mRECIST overall response, ITT denominator, Clopper-Pearson CI (0..1);
- grade3plus_patients, grade5_patients: patients whose worst grade of any AE is >= 3, is 5;
- downstaged_milan, converted_resection: the rate (0..1) among patients outside Milan (not
  resectable) at baseline, Clopper-Pearson CI, n = those patients.
`extra` holds the accrual status: accrual_open (a patient first treated in the ACCRUAL_WINDOW_DAYS
before the cut-off), last_enrolment_date, n_sites, n_sites_recruiting (sites with such a patient).

For a suppressing scope the rows are built from the source exports as that scope sees them, so
each number is withheld exactly where its page withholds it (a KM estimate of fewer than MIN_GROUP
patients, a rate of 1-4 responders, a grade count that would reveal a "<5" by subtraction); then
every count of 1-4 (n, enrolled, patients with grade >= 3 or 5) is "<5" with the values derived from
it withheld, the last enrolment date (a patient's date) is dropped, and `extra["withheld"]` names the
values withheld ("metric/group"), so a page can tell "not shown for your role" from "not reached".
"""
from __future__ import annotations

import pandas as pd

from dashboard import data
from dashboard.access import SUPPRESSED, Scope, is_small
from dashboard.analytics.safety import ANY_AE
from dashboard.data import ALL_SITES
from dashboard.exports import AGGREGATE, Export, export, run_export
from dashboard.exports import survival as km
from dashboard.filters import Filters

COLUMNS = ["metric", "group", "value", "ci_lower", "ci_upper", "n"]
METRICS = ("os_1y", "median_os_days", "enrolled", "target", "median_followup_days", "orr", "dcr",
           "grade3plus_patients", "grade5_patients", "downstaged_milan", "converted_resection")
COUNT_METRICS = ("enrolled", "grade3plus_patients", "grade5_patients")     # value is a number of patients
ALL = "all"
ACCRUAL_WINDOW_DAYS = 90
ONE_YEAR = 365

# the source exports and the options they are run with (the pages' defaults: OS, log-log CIs)
KM = {"endpoint": "os", "ci": "log-log"}
SOURCES = {
    "km_all": ("km-summary", {**KM, "by": "none"}),
    "km_bclc": ("km-summary", {**KM, "by": "bclc_stage"}),
    "response": ("response-summary", {"response_scope": "overall", "by": "none"}),
    "ae": ("ae-incidence", {"level": "soc", "by": "none"}),
    "downstaging": ("downstaging-summary", {"by": "none"}),
    "overview": ("overview", {}),
    "enrollment": ("enrollment", {}),
}

# patients first treated in the accrual window before the cut-off, and their sites
ACCRUAL_SQL = """
select count(*) filter (where first_treatment_date > snapshot_cutoff() - $window::integer) as n_recent,
       count(distinct site_id) filter (where first_treatment_date > snapshot_cutoff() - $window::integer)
           as n_sites_recruiting,
       max(first_treatment_date) as last_enrolment_date
from cohort
"""


def _num(v):
    """A value as the row holds it: None for missing or NaN, "<5" kept, numbers as they are."""
    if v is None or isinstance(v, str):
        return v
    try:
        return None if pd.isna(v) else v
    except (TypeError, ValueError):
        return v


def _row(metric, group, value=None, lower=None, upper=None, n=None) -> dict:
    return {"metric": metric, "group": group, "value": _num(value), "ci_lower": _num(lower),
            "ci_upper": _num(upper), "n": _num(n)}


def _km_rows(summary: Export, group_of) -> list[dict]:
    rows = []
    for r in summary.rows.to_dict("records"):
        if r["group"] == km.POOLED:           # km-summary's pooled row under the groups: 'all' comes from by=none
            continue
        group = group_of(r["group"])
        rows.append(_row("os_1y", group, r["surv_365"], r["surv_365_ci_lower"], r["surv_365_ci_upper"], r["n"]))
        rows.append(_row("median_os_days", group, r["median_days"], r["median_ci_lower_days"],
                         r["median_ci_upper_days"], r["n"]))
    return rows


def sources(snapshot, filters: Filters, scope: Scope) -> dict[str, Export]:
    """The source exports as `scope` may see them (each cached on its own)."""
    return {key: run_export(name, snapshot, filters, scope, **options) for key, (name, options) in SOURCES.items()}


def headline_rows(src: dict[str, Export]) -> pd.DataFrame:
    """The headline rows (COLUMNS, in METRICS order; BCLC stages after 'all') from the source exports."""
    km_all, km_bclc = src["km_all"], src["km_bclc"]
    by_metric: dict[str, list[dict]] = {m: [] for m in METRICS}
    pooled = _km_rows(km_all, lambda g: ALL) or [_row("os_1y", ALL, n=0), _row("median_os_days", ALL, n=0)]
    for r in pooled + _km_rows(km_bclc, str):
        by_metric[r["metric"]].append(r)

    n = src["overview"].rows.iloc[0]["n_patients"]
    by_metric["enrolled"].append(_row("enrolled", ALL, n, n=n))
    targets = src["enrollment"].rows["target_enrollment"].dropna()
    by_metric["target"].append(_row("target", ALL, int(targets.sum()) if len(targets) else None))

    by_metric["median_followup_days"].append(_row(
        "median_followup_days", ALL, km_all.extra["median_followup_days"],
        km_all.extra["median_followup_ci_lower_days"], km_all.extra["median_followup_ci_upper_days"],
        km_all.n_patients))

    response = src["response"].rows
    for metric in ("orr", "dcr"):
        if len(response):
            r = response.iloc[0]
            by_metric[metric].append(_row(metric, ALL, r[metric], r[f"{metric}_ci_lower"], r[f"{metric}_ci_upper"],
                                          r["n"]))
        else:
            by_metric[metric].append(_row(metric, ALL, n=0))

    ae = src["ae"]
    overall = ae.rows[(ae.rows["soc"] == ANY_AE) & ae.rows["term"].isna()]
    for metric, column in (("grade3plus_patients", "n_grade_3_plus"), ("grade5_patients", "n_grade_5")):
        if len(overall):
            r = overall.iloc[0]
            by_metric[metric].append(_row(metric, ALL, r[column], n=r["denominator"]))
        else:
            by_metric[metric].append(_row(metric, ALL, 0, n=0))

    rates = src["downstaging"].rows.set_index("measure")
    for metric, measure in (("downstaged_milan", "downstaged_to_milan"),
                            ("converted_resection", "converted_to_resectable")):
        r = rates.loc[measure]
        by_metric[metric].append(_row(metric, ALL, r["rate"], r["ci_lower"], r["ci_upper"], r["eligible"]))
    rows = pd.DataFrame([r for m in METRICS for r in by_metric[m]], columns=COLUMNS, dtype=object)
    if any(isinstance(v, str) for v in rows[["value", "n"]].to_numpy().ravel()):
        return rows                         # "<5" among them (suppressed): as they are
    # numbers as nullable columns (the result cache stores them; None stays null, n stays whole)
    return rows.astype({"value": "Float64", "ci_lower": "Float64", "ci_upper": "Float64", "n": "Int64"})


def accrual(snapshot, filters: Filters, scope: Scope, src: dict[str, Export]) -> dict:
    """Whether accrual is open (a patient of the filter first treated in the ACCRUAL_WINDOW_DAYS up to the
    cut-off), the last enrolment date, and the sites (in the filter; recruiting in the window)."""
    facts = data.execute(ACCRUAL_SQL, snapshot, filters, scope, params={"window": ACCRUAL_WINDOW_DAYS}).iloc[0]
    last = facts["last_enrolment_date"]
    return {"accrual_window_days": ACCRUAL_WINDOW_DAYS,
            "accrual_open": bool(facts["n_recent"] > 0),
            "last_enrolment_date": None if pd.isna(last) else pd.Timestamp(last).date().isoformat(),
            "n_sites": int(src["overview"].rows.iloc[0]["n_sites"]),
            "n_sites_recruiting": int(facts["n_sites_recruiting"])}


def km_withheld(src: dict[str, Export]) -> list[str]:
    """The Kaplan-Meier values km-summary withholds for the scope ("metric/group"): every estimate of a
    group it does not draw (a median "not reached" included), and the median follow-up it withholds."""
    out = [f"{m}/{ALL}" for m in ("os_1y", "median_os_days") if ALL in src["km_all"].extra.get("not_drawn", ())]
    out += [f"{m}/{g}" for g in src["km_bclc"].extra.get("not_drawn", ()) for m in ("os_1y", "median_os_days")]
    if "median_followup" in src["km_all"].extra.get("withheld", ()):
        out.append(f"median_followup_days/{ALL}")
    return out


def build(snapshot, filters: Filters, scope: Scope) -> Export:
    """The headline from the source exports as `scope` may see them."""
    src = sources(snapshot, filters, scope)
    exp = Export("headline", headline_rows(src), src["overview"].n_patients,
                 {**accrual(snapshot, filters, scope.pooled(), src), "withheld": km_withheld(src)})
    exp.context = (snapshot, filters)           # read by suppress_headline to run the sources again
    return exp


def suppress_headline(exp: Export, scope: Scope) -> Export:
    """The headline for a suppressing scope: built again from the sources as the scope sees them, then
    every count of 1-4 "<5" (n, and the value of a count metric) with the values derived from it withheld;
    the last enrolment date dropped; the accrual status withheld for 1-4 patients; `withheld` filled."""
    snapshot, filters = exp.context
    shown = build(snapshot, filters, scope)
    rows = shown.rows.astype(object)
    rows = rows.where(rows.notna(), None)
    for i, r in rows.iterrows():
        if is_small(r["n"]):
            rows.at[i, "n"] = SUPPRESSED
            rows.loc[i, ["ci_lower", "ci_upper"]] = None
            rows.at[i, "value"] = SUPPRESSED if r["metric"] in COUNT_METRICS else None
        if r["metric"] in COUNT_METRICS and is_small(r["value"]):
            rows.at[i, "value"] = SUPPRESSED
    before = {(m, g): _num(v) for m, g, v in zip(exp.rows["metric"], exp.rows["group"], exp.rows["value"])}
    withheld = list(dict.fromkeys(shown.extra["withheld"] + [
        f"{m}/{g}" for m, g, v in zip(rows["metric"], rows["group"], rows["value"])
        if v is None and before.get((m, g)) is not None]))
    extra = {k: v for k, v in shown.extra.items() if k != "last_enrolment_date"}
    extra["withheld"] = withheld
    if is_small(exp.n_patients):
        extra["accrual_open"] = None
        extra["n_sites_recruiting"] = None
    return Export("headline", rows.reset_index(drop=True), SUPPRESSED if is_small(exp.n_patients) else exp.n_patients,
                  extra)


@export("headline", "the Overview's headline: 1-year OS and median OS (pooled and per BCLC stage), enrolled and "
                    "target, median follow-up, ORR and DCR, patients with grade >= 3 and grade 5 AEs, downstaging "
                    "to Milan and conversion to resection (rows metric, group, value, ci_lower, ci_upper, n); "
                    "accrual status",
        level=AGGREGATE, suppress=suppress_headline)
def headline_export(snapshot, filters=Filters(), scope=ALL_SITES, **_):
    return build(snapshot, filters, scope)
