"""The subgroup forest plot export (`python -m dashboard export forest`; the Survival page's
"Subgroup forest plot" card reads the same export).

Hazard-ratio form (--form hr, the default): one row per subgroup level of each subgroup field
(--subgroups, default every field of SUBGROUPS but the compared one): the hazard ratio of the
compared group (--compare) against the reference group (--ref) of the grouping --by, within that
subgroup level (Cox, Efron ties, Wald 95% CI), events/n of the compared arm (n, events) and of the
reference arm (ref_n, ref_events), and the interaction p-value of the field (likelihood-ratio test
of arm x subgroup, the same on every row of the field). Single-arm form (--form single-arm): per
subgroup level, every patient of the filter: n, events, S(365) and the median with their 95% CIs.
Definitions: docs/analysis.md ("Subgroup forest plot"); the estimators are
dashboard/analytics/forest.py, checked against R.

`small` flags a level with an arm (single-arm: the level) of fewer than MIN_GROUP patients, for
every role. For a scope that suppresses small cells, computed over every site in the filter as
for the committee, then:
- every count from 1 to 4 (n, events, ref_n, ref_events) is shown as "<5";
- no hazard ratio (nor CI) where either arm of the level has fewer than MIN_GROUP patients
  (single-arm: no S(365), median nor CIs for a level under MIN_GROUP);
- p_interaction is withheld for a field with fewer than two levels showing a hazard ratio;
- one more count is withheld (None) wherever a "<5" would be the arm's (or the filter's) total,
  public on the Kaplan-Meier summary, minus the field's other levels (complement.py).
A comparison the filter's patients cannot give (--ref or --compare absent, a single level) gives no
rows and `extra["note"]` saying why; options that can never work (unknown field, --compare equal to
--ref) are errors.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard import data
from dashboard.access import MIN_GROUP, Scope, request_memo, shown_count
from dashboard.analytics import forest as fa
from dashboard.data import ALL_SITES
from dashboard.exports import AGGREGATE, Export, export, suppress_counts
from dashboard.exports.complement import to_withhold
from dashboard.exports.survival import check_endpoint
from dashboard.filters import Filters
from dashboard.grouping import GROUPINGS, check_by, group_sql, ordered_levels

# the baseline subgroup fields of the forest plot (columns of the cohort view), in display order
SUBGROUPS = ("bclc_stage", "child_pugh_class", "etiology_group", "ecog_group", "sex", "age_group", "afp_group",
             "tumor_size_group", "up_to_seven_group", "site_id")
FORMS = ("hr", "single-arm")
DEFAULT_REF = {"bclc_stage": ("B", "C")}          # the comparison a clinician expects: BCLC C vs B
HR_COLUMNS = ["subgroup_field", "subgroup_level", "group", "n", "events", "ref_n", "ref_events", "hazard_ratio",
              "ci_lower", "ci_upper", "p_interaction", "small"]
SINGLE_COLUMNS = ["subgroup_field", "subgroup_level", "group", "n", "events", "surv_365", "surv_365_ci_lower",
                  "surv_365_ci_upper", "median_days", "median_ci_lower_days", "median_ci_upper_days", "small"]
SINGLE_ESTIMATES = SINGLE_COLUMNS[5:11]
ALL_PATIENTS = "All patients"

assert all(f in GROUPINGS for f in SUBGROUPS)
_FIELDS_SQL = ",\n       ".join(f"coalesce(cast(c.{f} as varchar), 'unknown') as {f}" for f in SUBGROUPS)
FOREST_SQL = f"""
select e.time_days, e.is_event, {group_sql("c")} as arm,
       {_FIELDS_SQL}
from patient_endpoints_all e
join cohort c using (patient_id)
where e.endpoint = $endpoint
order by c.patient_id
"""


def check_form(form: str | None) -> str:
    form = form or "hr"
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; choose one of: {', '.join(FORMS)}")
    return form


def parse_subgroups(subgroups, by: str | None) -> list[str]:
    """The subgroup fields from 'sex,afp_group' (or a list); default every SUBGROUPS field but `by`."""
    if subgroups is None or subgroups == "" or subgroups == []:
        return [f for f in SUBGROUPS if f != by]
    items = [x.strip() for x in subgroups.split(",")] if isinstance(subgroups, str) else list(subgroups)
    items = list(dict.fromkeys(x for x in items if x))
    bad = [x for x in items if x not in SUBGROUPS]
    if bad:
        raise ValueError(f"unknown subgroup field {bad[0]!r}; choose from: {', '.join(SUBGROUPS)}")
    if by in items:
        raise ValueError(f"--subgroups cannot include the compared grouping {by!r}")
    return items


def patients_frame(snapshot, filters, scope, endpoint, by) -> pd.DataFrame:
    """One row per patient in the filter: time_days, is_event (0/1), arm (the `by` level) and every
    SUBGROUPS field ('unknown' where not recorded). Fetched once per request."""
    memo = request_memo("forest_patients")
    key = (str(snapshot.path), snapshot.fingerprint, filters.to_query(), scope, endpoint, by)
    if memo is not None and key in memo:
        return memo[key]
    rows = data.execute(FOREST_SQL, snapshot, filters, scope, params={"endpoint": endpoint, "by": by})
    rows["is_event"] = rows["is_event"].astype(int)
    rows["time_days"] = rows["time_days"].astype(float)
    if memo is not None:
        memo[key] = rows
    return rows


def default_comparison(by: str, sizes: dict) -> tuple[str | None, str | None]:
    """(reference, compared): BCLC B and C; otherwise the largest known level as reference and the
    next largest as compared (ties: level order)."""
    if by in DEFAULT_REF and all(lv in sizes for lv in DEFAULT_REF[by]):
        return DEFAULT_REF[by]
    known = [lv for lv in sizes if lv != fa.UNKNOWN] or list(sizes)
    ranked = sorted(known, key=lambda lv: -sizes[lv])
    return (ranked[0] if ranked else None), (ranked[1] if len(ranked) > 1 else None)


class NotInFilter(ValueError):
    """A comparison the filter's patients cannot give (a level absent, a single level): no rows, a note."""


def resolve_comparison(by, levels, sizes, ref, compare) -> tuple[str, str]:
    """The reference and compared levels, validated against the levels present in the filter
    (NotInFilter when the filter's patients lack one)."""
    d_ref, d_cmp = default_comparison(by, sizes)
    ref = ref if ref not in (None, "") else d_ref
    if ref not in levels:
        raise NotInFilter(f"the reference group {ref!r} (--ref) is not a level of {GROUPINGS[by]} in this filter; "
                         f"levels: {', '.join(levels) or 'none'}")
    if compare in (None, ""):
        compare = d_cmp if d_cmp != ref else next((lv for lv in levels if lv != ref), None)
    if compare is None:
        raise NotInFilter(f"{GROUPINGS[by]} has a single level in this filter: nothing to compare")
    if compare == ref:
        raise ValueError("--compare must differ from --ref")
    if compare not in levels:
        raise NotInFilter(f"the compared group {compare!r} (--compare) is not a level of {GROUPINGS[by]} in this filter; "
                         f"levels: {', '.join(levels)}")
    return str(ref), str(compare)


def forest_rows(rows: pd.DataFrame, fields, ref: str, compare: str) -> pd.DataFrame:
    """The hazard-ratio form's rows for the patients of `rows` (module docstring)."""
    arms = rows[rows["arm"].isin([ref, compare])]
    arm = (arms["arm"] == compare).astype(int).to_numpy()
    parts = []
    for field in fields:
        levels = ordered_levels(field, arms[field]) if len(arms) else []
        hr = fa.subgroup_hazard_ratios(arms["time_days"], arms["is_event"], arm, arms[field].to_numpy(object),
                                       levels)
        known = arms[field].where(arms[field] != fa.UNKNOWN, None).to_numpy(object)
        p, _ = fa.interaction_lrt(arms["time_days"], arms["is_event"], arm, known)
        hr.insert(0, "subgroup_field", field)
        hr.insert(2, "group", compare)
        hr["p_interaction"] = np.nan if p is None else p
        parts.append(hr)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=HR_COLUMNS)
    out["small"] = (out["n"] < MIN_GROUP) | (out["ref_n"] < MIN_GROUP)
    return out[HR_COLUMNS]


def single_arm_rows(rows: pd.DataFrame, fields) -> pd.DataFrame:
    parts = []
    for field in fields:
        levels = ordered_levels(field, rows[field]) if len(rows) else []
        s = fa.subgroup_survival(rows["time_days"], rows["is_event"], rows[field].to_numpy(object), levels)
        s.insert(0, "subgroup_field", field)
        s.insert(2, "group", ALL_PATIENTS)
        parts.append(s)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=SINGLE_COLUMNS)
    out["small"] = out["n"] < MIN_GROUP
    return out[SINGLE_COLUMNS]


OPTIONS = ("endpoint", "by", "ref", "compare", "subgroups", "form")
OPTIONS_HELP = ("--endpoint os|ttp|pfs|local_ttp, --by FIELD (default bclc_stage), --ref LEVEL (default B), "
                "--compare LEVEL (default C), --subgroups F1,F2 (default all), --form hr|single-arm")


@dataclass(frozen=True)
class ForestSuppression:
    """The small-cell rules of the forest export for a suppressing scope (module docstring)."""

    def __call__(self, exp: Export, scope: Scope) -> Export:
        if exp.rows.empty:
            return suppress_counts(exp, {})
        rows = exp.rows.copy()
        single = exp.extra["form"] == "single-arm"
        if single:
            under = rows["n"] < MIN_GROUP
            for c in SINGLE_ESTIMATES:
                rows[c] = rows[c].astype(object).where(~under, None)
            totals = {"n": exp.n_patients, "events": exp.extra["events_total"]}
        else:
            under = (rows["n"] < MIN_GROUP) | (rows["ref_n"] < MIN_GROUP)
            for c in ("hazard_ratio", "ci_lower", "ci_upper"):
                rows[c] = rows[c].astype(object).where(~under, None)
            shown = (~under & rows["hazard_ratio"].notna()).groupby(rows["subgroup_field"]).transform("sum")
            rows["p_interaction"] = rows["p_interaction"].astype(object).where(shown >= 2, None)
            arm_n = exp.extra["arm_n"]
            arm_events = exp.extra["arm_events"]
            compare, ref = exp.extra["compare"], exp.extra["ref"]
            totals = {"n": arm_n[compare], "events": arm_events[compare], "ref_n": arm_n[ref],
                      "ref_events": arm_events[ref]}
        out = suppress_counts(Export(exp.name, rows, exp.n_patients, dict(exp.extra)), {c: () for c in totals})
        out.rows = _complement(out.rows, totals)
        for key in ("arm_n", "arm_events"):
            if key in out.extra:
                out.extra[key] = {g: shown_count(n, scope) for g, n in out.extra[key].items()}
        if "events_total" in out.extra:
            out.extra["events_total"] = shown_count(out.extra["events_total"], scope)
        what = "no estimates" if single else "no hazard ratio"
        if under.any():
            out.extra["note"] = (f"Subgroups with {'' if single else 'an arm of '}fewer than {MIN_GROUP} patients: "
                                 f"{what} for your role.")
        out.extra["min_group"] = MIN_GROUP
        return out


def _complement(rows: pd.DataFrame, totals: dict) -> pd.DataFrame:
    """Withhold one more count of a field wherever a single "<5" is its column's total (public
    elsewhere) minus the field's other levels."""
    rows = rows.copy()
    for column, total in totals.items():
        rows[column] = rows[column].astype(object)
        for _, idx in rows.groupby("subgroup_field", sort=False).groups.items():
            values = {i: rows.at[i, column] for i in idx}
            values["total"] = total
            hidden = to_withhold(values, [("total", list(idx))], public=("total",))
            for i in hidden:
                rows.at[i, column] = None
    return rows


@export("forest", "subgroup forest plot: hazard ratio (Efron Cox, Wald 95% CI) of --compare vs --ref of --by "
                  "within each subgroup level, events/n per arm, interaction p (likelihood-ratio test); or "
                  "--form single-arm: S(365) and median per subgroup level; " + OPTIONS_HELP,
        options=OPTIONS, level=AGGREGATE, suppress=ForestSuppression())
def forest_export(snapshot, filters=Filters(), scope=ALL_SITES, endpoint="os", by="bclc_stage", ref=None,
                  compare=None, subgroups=None, form="hr", **_):
    endpoint, by, form = check_endpoint(endpoint), check_by(by or "bclc_stage"), check_form(form)
    if by == "none":
        raise ValueError("--by must name a grouping to compare (not 'none')")
    rows = patients_frame(snapshot, filters, scope, endpoint, by)
    levels = ordered_levels(by, rows["arm"]) if len(rows) else []
    sizes = rows["arm"].value_counts().to_dict()
    extra = {"endpoint": endpoint, "by": by, "form": form, "min_group": MIN_GROUP}
    if form == "single-arm":
        fields = parse_subgroups(subgroups, None)
        out = single_arm_rows(rows, fields)
        extra.update(subgroups=fields, events_total=int(rows["is_event"].sum()), ref=None, compare=None)
        return Export("forest", out, len(rows), extra)
    fields = parse_subgroups(subgroups, by)
    nothing = {**extra, "subgroups": fields, "ref": ref, "compare": compare, "arm_n": {}, "arm_events": {}}
    if not levels:
        return Export("forest", pd.DataFrame(columns=HR_COLUMNS), 0, nothing)
    try:
        ref, compare = resolve_comparison(by, levels, sizes, ref, compare)
    except NotInFilter as e:        # the filter's patients cannot give this comparison: no rows, said why
        return Export("forest", pd.DataFrame(columns=HR_COLUMNS), len(rows), {**nothing, "note": str(e) + "."})
    events = rows.groupby("arm")["is_event"].sum()
    extra.update(subgroups=fields, ref=ref, compare=compare,
                 arm_n={g: int(sizes.get(g, 0)) for g in (ref, compare)},
                 arm_events={g: int(events.get(g, 0)) for g in (ref, compare)})
    return Export("forest", forest_rows(rows, fields, ref, compare), len(rows), extra)

