"""Survival exports: Kaplan-Meier summary, step function, numbers at risk and Cox hazard ratios
(registered with @export; see dashboard/exports/__init__.py).

All four read one `SurvivalAnalysis`: the endpoint's rows of `patient_endpoints` joined to
`cohort` for the grouping, with one Kaplan-Meier fit per group. The Survival page builds the same
object once per callback and draws every card from it, so the page and
`python -m dashboard export km-summary|km-curve|km-risk-table|cox` print the same numbers.
Definitions: docs/analysis.md ("Time-to-event endpoints"); the estimators are
dashboard/analytics/survival.py, checked against R's survival package.

For a scope that suppresses small cells (dashboard/access.py) the numbers are computed over every
site in the filter as for the committee, then (`SmallGroups`, the exports' `suppress`):
- a group of fewer than MIN_GROUP (10) patients is not drawn: its rows leave km-curve and
  km-risk-table, its median, S(t) and their CIs are withheld in km-summary (its n and events stay,
  as counts), and it has no hazard-ratio row in cox; `extra["note"]` names such groups;
- every count from 1 to 4 (n, events, at risk, cumulative events and censored, events and censored
  at a step, each group's n in `group_n`, the export's n_patients) is shown as "<5";
- the log-rank test is still over every group (the model the committee sees), but shown only when
  at least two groups have MIN_GROUP patients or more: a test between groups the reader cannot see
  is not readable, and over a handful of patients its statistic is a fingerprint of their times;
- the Cox model is still fitted over every group, with the same reference level; the hazard ratio
  of a group under MIN_GROUP is not shown, and none is when the reference group is under MIN_GROUP
  (every ratio and CI is relative to it, so their widths would reveal its number of events); a
  default reference picked as the largest group is not named when it is under MIN_GROUP (it would
  rank groups shown as "<5");
- median follow-up (reverse Kaplan-Meier of OS, every group pooled) is withheld when the filter
  holds fewer than MIN_GROUP patients.
- km-summary's pooled row ("All patients", under the groups when there is a grouping) has its
  estimates withheld when the filter holds fewer than MIN_GROUP patients, and one more group's events
  are withheld (None) wherever a "<5" would be the pooled events minus the other groups'.
So a group of 1-4 patients shows "<5" for its n and for its events when it has any, and no other
number of its own. The other numbers are the committee's, unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from dashboard import data
from dashboard.access import MIN_GROUP, Scope, request_memo, shown_count
from dashboard.analytics import survival as sv
from dashboard.data import ALL_SITES
from dashboard.exports import AGGREGATE, Export, export, suppress_counts
from dashboard.exports.complement import to_withhold
from dashboard.filters import Filters
from dashboard.grouping import GROUPINGS, check_by, group_sql, ordered_levels

ENDPOINTS = {"os": "Overall survival", "ttp": "Time to progression", "pfs": "Progression-free survival",
             "local_ttp": "Local time to progression"}
ENDPOINT_DEFINITIONS = {
    "os": "OS: death from any cause, from the first DEB-TACE; alive patients censored at the last date "
          "known alive.",
    "ttp": "TTP: first mRECIST progression (overall response PD), from the first DEB-TACE; censored at the "
           "last post-baseline scan (deaths without progression too; day 0 without a post-baseline scan).",
    "pfs": "PFS: progression or death, whichever comes first, from the first DEB-TACE; censored at the last "
           "post-baseline scan (day 0 without one).",
    "local_ttp": "Local TTP: first local progression of the treated target lesions (local response PD), from "
                 "the first DEB-TACE; censored as TTP.",
}
CI_TYPES = {"log-log": "log-log (SAS default)", "log": "log (R's default)", "plain": "plain (linear)"}
FIXED_TIMES = (182, 365, 730)          # S at 6 months, 1 year (the primary endpoint), 2 years
RISK_STEP_DAYS = 90                    # the risk-table export's default grid
SMALL_GROUP = 5                        # groups under this many patients are flagged
# the Cox reference a clinician expects where a grouping has one (otherwise the largest group)
DEFAULT_REFERENCE = {"bclc_stage": "B"}

POOLED = "All patients"                 # km-summary's pooled row under the groups (with a grouping)
SUMMARY_COLUMNS = ["group", "n", "events", "median_days", "median_ci_lower_days", "median_ci_upper_days"] + [
    f"surv_{t}{suffix}" for t in FIXED_TIMES for suffix in ("", "_ci_lower", "_ci_upper")]
CURVE_COLUMNS = ["group", "time_days", "surv", "ci_lower", "ci_upper", "n_risk", "n_event", "n_censor"]
RISK_COLUMNS = ["group", "time_days", "n_at_risk", "cum_events", "cum_censored"]
COX_COLUMNS = ["group", "hazard_ratio", "ci_lower", "ci_upper", "p_value"]

# the patient's group computed in SQL (grouping.group_sql, the grouping a bound value): at
# 100,000 patients fetching every cohort column was most of the query's time
# the rows of patient_endpoints (patient_endpoints_all joined to cohort: the filter's patients) for the
# endpoint and OS, in patient order; flags instead of the endpoint's and patient's text (at 100,000
# patients, 200,000 strings made a third of the page's time)
ENDPOINT_SQL = f"""
select e.endpoint = $endpoint as is_endpoint, e.endpoint = 'os' as is_os, e.time_days, e.is_event,
       {group_sql("c")} as "group"
from patient_endpoints_all e
join cohort c using (patient_id)
where e.endpoint in ($endpoint, 'os')
order by e.endpoint, c.patient_id
"""


def check_endpoint(endpoint: str | None) -> str:
    endpoint = endpoint or "os"
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; choose one of: {', '.join(ENDPOINTS)}")
    return endpoint


def check_ci(ci: str | None) -> str:
    ci = ci or "log-log"
    if ci not in sv.CONF_TYPES:
        raise ValueError(f"unknown CI transform {ci!r}; choose one of: {', '.join(sv.CONF_TYPES)}")
    return ci


def parse_times(times) -> list[float]:
    """Risk-table times in days from '0,90,180' (or a list); each >= 0, duplicates dropped."""
    if isinstance(times, str):
        items = [x.strip() for x in times.split(",") if x.strip()]
    else:
        items = list(times)
    try:
        out = [float(x) for x in items]
    except ValueError:
        raise ValueError(f"--times must be comma-separated numbers of days, got {times!r}") from None
    if not out or any(not math.isfinite(t) or t < 0 for t in out):
        raise ValueError(f"--times must be one or more days >= 0, got {times!r}")
    if len(set(out)) > MAX_TIMES:
        raise ValueError(f"--times takes at most {MAX_TIMES} days, got {len(set(out))}")
    return sorted(set(out))


MAX_TIMES = 100         # a risk table wider than this is not a table (and a crafted list is unbounded)


def default_times(max_days: float, step: float = RISK_STEP_DAYS) -> list[float]:
    """0, step, 2 step, ... up to the longest follow-up time."""
    return [float(t) for t in np.arange(0, max(max_days, 0) + 1e-9, step)]


def surv_within_followup(fit: sv.KMFit, t: float):
    """(S(t), lower, upper) as R's summary(fit, times = t), or Nones where S(t) is not estimable:
    t after the group's last follow-up time while S is still above 0 (R's summary leaves such a
    time out unless extend = TRUE, which carries the last value forward)."""
    if fit.n == 0 or (t > fit.time[-1] and fit.surv[-1] > 0):
        return None, None, None
    return sv.surv_at(fit, t)


@dataclass(frozen=True)
class SurvivalAnalysis:
    """One endpoint by one grouping, with one Kaplan-Meier fit per group (computed once).

    ``patients`` holds one row per patient in the filter, in patient order: group, time_days,
    is_event (0/1);
    ``os`` the same patients' OS rows (median follow-up by reverse Kaplan-Meier is always of OS).
    """
    endpoint: str
    by: str
    ci: str
    patients: pd.DataFrame
    os: pd.DataFrame
    levels: tuple[str, ...]

    @property
    def n_patients(self) -> int:
        return len(self.patients)

    def _of(self, level) -> pd.DataFrame:
        return self.patients[self.patients["group"] == level]

    @cached_property
    def fits(self) -> dict[str, sv.KMFit]:
        return {lv: sv.km_fit(g["time_days"], g["is_event"], conf_type=self.ci)
                for lv in self.levels for g in [self._of(lv)]}

    @cached_property
    def group_factor(self) -> pd.Categorical:
        return pd.Categorical(self.patients["group"], categories=list(self.levels))

    def small_groups(self) -> list[str]:
        return [lv for lv, fit in self.fits.items() if fit.n < SMALL_GROUP]

    @cached_property
    def pooled_fit(self) -> sv.KMFit:
        return sv.km_fit(self.patients["time_days"], self.patients["is_event"], conf_type=self.ci)

    def summary(self) -> pd.DataFrame:
        """Per group: n, events, median with its CI (None = not reached), S(182/365/730) with CI
        (None where not estimable, see surv_within_followup); with a grouping, a last row POOLED
        of every patient of the filter."""
        rows = []
        fits = list(self.fits.items())
        if self.by != "none" and self.n_patients:
            fits.append((POOLED, self.pooled_fit))
        for level, fit in fits:
            med, lo, hi = sv.median_survival(fit)
            row = dict(group=level, n=fit.n, events=fit.events, median_days=med,
                       median_ci_lower_days=lo, median_ci_upper_days=hi)
            for t in FIXED_TIMES:
                s, s_lo, s_hi = surv_within_followup(fit, t)
                row.update({f"surv_{t}": s, f"surv_{t}_ci_lower": s_lo, f"surv_{t}_ci_upper": s_hi})
            rows.append(row)
        return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

    def curve(self) -> pd.DataFrame:
        """The step function of every group from S(0) = 1 (R's survfit0), one row per distinct time."""
        parts = [sv.km_table(fit).assign(group=level) for level, fit in self.fits.items()]
        if not parts:
            return pd.DataFrame(columns=CURVE_COLUMNS)
        return pd.concat(parts, ignore_index=True)[CURVE_COLUMNS]

    def risk_table(self, times) -> pd.DataFrame:
        """Per group and time t: at risk (time >= t), cumulative events and censored (time <= t)."""
        parts = [sv.risk_table(g["time_days"], g["is_event"], times).assign(group=level)
                 for level in self.levels for g in [self._of(level)]]
        if not parts:
            return pd.DataFrame(columns=RISK_COLUMNS)
        return pd.concat(parts, ignore_index=True)[RISK_COLUMNS]

    @cached_property
    def logrank(self) -> sv.LogRank | None:
        """Log-rank test across the groups (None with fewer than two groups)."""
        if len(self.levels) < 2:
            return None
        return sv.logrank_test(self.patients["time_days"], self.patients["is_event"], self.group_factor)

    def logrank_dict(self) -> dict | None:
        lr = self.logrank
        return None if lr is None else {"chisq": lr.chisq, "df": lr.df, "p_value": lr.p_value}

    @cached_property
    def default_reference(self) -> str | None:
        """The Cox reference level when none is chosen: BCLC B for BCLC stage (where present), else
        the largest group, 'unknown' only when no other group exists (ties: the first in level order);
        None without a grouping or patients."""
        if self.by == "none" or not self.levels:
            return None
        if self.by == "bclc_stage" and DEFAULT_REFERENCE["bclc_stage"] in self.levels:
            return DEFAULT_REFERENCE["bclc_stage"]
        sizes = {lv: self.fits[lv].n for lv in self.levels}
        known = [lv for lv in self.levels if lv != "unknown"] or list(self.levels)
        return max(known, key=lambda lv: sizes[lv])          # max keeps the first of equal sizes

    def reference(self, ref=None) -> tuple[str | None, str | None]:
        """(reference level, message): `ref` when it is a level of the grouping in the filter, else
        the default reference with a message saying why (None when no ref was asked for)."""
        default = self.default_reference
        if ref in (None, "") or default is None:
            return default, None
        if str(ref) in self.levels:
            return str(ref), None
        return default, (f"Reference {str(ref)[:40]!r} is not a group of {GROUPINGS.get(self.by, self.by)} in this "
                         f"filter ({', '.join(map(str, self.levels))}); the default, {default}, is used.")

    def cox_against(self, reference: str | None) -> pd.DataFrame:
        """Hazard ratios of each group against `reference` (a level), the reference row first, then
        the other groups in level order (no rows without a grouping)."""
        if self.by == "none" or not self.levels or reference is None:
            return pd.DataFrame(columns=COX_COLUMNS)
        hr = sv.cox_hazard_ratios(self.patients["time_days"], self.patients["is_event"], self.group_factor,
                                  reference=reference)
        order = [reference] + [lv for lv in self.levels if lv != reference]
        return hr.set_index("group").reindex(order).reset_index()[COX_COLUMNS]

    @cached_property
    def cox(self) -> pd.DataFrame:
        """Hazard ratios of each group against the default reference (no rows without a grouping)."""
        return self.cox_against(self.default_reference)

    @cached_property
    def median_followup(self) -> tuple[float | None, float | None, float | None]:
        """Median follow-up (days) by reverse Kaplan-Meier of OS, every group pooled, with its CI."""
        if self.os.empty:
            return None, None, None
        return sv.median_followup(self.os["time_days"], self.os["is_event"], conf_type=self.ci)

    def max_days(self) -> float:
        return float(self.patients["time_days"].max()) if len(self.patients) else 0.0

    def options(self) -> dict:
        return {"endpoint": self.endpoint, "by": self.by, "ci": self.ci}


def survival_analysis(snapshot, filters=Filters(), scope=ALL_SITES, endpoint="os", by="bclc_stage",
                      ci="log-log") -> SurvivalAnalysis:
    """The endpoint's times and events for the patients in the filter, grouped by `by`. Computed
    once per request: the page's four exports of the same options share it."""
    endpoint, by, ci = check_endpoint(endpoint), check_by(by), check_ci(ci)
    memo = request_memo("survival_analysis")
    key = (str(snapshot.path), snapshot.fingerprint, filters.to_query(), scope, endpoint, by, ci)
    if memo is not None and key in memo:
        return memo[key]
    analysis = _survival_analysis(snapshot, filters, scope, endpoint, by, ci)
    if memo is not None:
        memo[key] = analysis
    return analysis


def _survival_analysis(snapshot, filters, scope, endpoint, by, ci) -> SurvivalAnalysis:
    rows = data.execute(ENDPOINT_SQL, snapshot, filters, scope, params={"endpoint": endpoint, "by": by})
    rows["is_event"] = rows["is_event"].astype(int)
    rows["time_days"] = rows["time_days"].astype(float)
    keep = ["group", "time_days", "is_event"]
    patients = rows.loc[rows["is_endpoint"].to_numpy(bool), keep].reset_index(drop=True)
    os_rows = rows.loc[rows["is_os"].to_numpy(bool), keep].reset_index(drop=True)
    levels = tuple(ordered_levels(by, patients["group"])) if len(patients) else ()
    return SurvivalAnalysis(endpoint, by, ci, patients, os_rows, levels)


def group_n(analysis: SurvivalAnalysis) -> dict:
    """Patients per group, in level order: what the small-group rules of `SmallGroups` read."""
    return {str(level): fit.n for level, fit in analysis.fits.items()}


def summary_extra(analysis: SurvivalAnalysis) -> dict:
    med, lo, hi = analysis.median_followup
    return {**analysis.options(), "logrank": analysis.logrank_dict(), "median_followup_days": med,
            "median_followup_ci_lower_days": lo, "median_followup_ci_upper_days": hi,
            "small_group_threshold": SMALL_GROUP, "group_n": group_n(analysis)}


OPTIONS = ("endpoint", "by", "ci")
OPTIONS_HELP = "--endpoint os|ttp|pfs|local_ttp, --by FIELD|none, --ci log-log|log|plain"


# withheld for a group of fewer than MIN_GROUP patients: every estimate of that group
SUMMARY_ESTIMATES = ("median_days", "median_ci_lower_days", "median_ci_upper_days") + tuple(
    f"surv_{t}{s}" for t in FIXED_TIMES for s in ("", "_ci_lower", "_ci_upper"))
FOLLOWUP = ("median_followup_days", "median_followup_ci_lower_days", "median_followup_ci_upper_days")


def by_size(by: str, default) -> bool:
    """True when the default Cox reference `default` was picked as the largest group (not by a rule
    such as BCLC B)."""
    return default is not None and DEFAULT_REFERENCE.get(by) != default


def groups_text(by: str, groups) -> str:
    """'BCLC stage A, D' (the whole filter's one group: 'All patients')."""
    return "All patients" if by == "none" else f"{GROUPINGS.get(by, by)} {', '.join(map(str, groups))}"


def few_text(by: str, groups) -> str:
    """'BCLC stage A, D: fewer than 10 patients each'."""
    return f"{groups_text(by, groups)}: fewer than {MIN_GROUP} patients" + (" each" if len(groups) > 1 else "")


def pooled_complement(rows: pd.DataFrame) -> pd.DataFrame:
    """The summary with one more group's events withheld (None) wherever a group's "<5" events would be
    the pooled row's events minus the other groups' (dashboard/exports/complement.py). The pooled n is
    the banner's n, shown already beside the groups' n (group_n, the legend): it adds nothing."""
    at = rows.index[rows["group"] == POOLED]
    if not len(at):
        return rows
    groups = [i for i in rows.index if i != at[0]]
    values = dict(zip(rows.index, rows["events"]))
    hidden = to_withhold(values, [(at[0], groups)])
    if not hidden:
        return rows
    rows = rows.copy()
    rows["events"] = rows["events"].astype(object)
    rows.loc[sorted(hidden), "events"] = None
    return rows


@dataclass(frozen=True)
class SmallGroups:
    """The small-cell rules of one survival export for a suppressing scope (module docstring).

    counts:   count columns shown as "<5" when 1-4.
    rows:     "drop": the rows of a group under MIN_GROUP are removed (curves, numbers at risk,
              hazard ratios); "estimates": they stay with SUMMARY_ESTIMATES withheld (summary).
    what:     what the note says happens to such a group.
    summary:  the log-rank test and median follow-up in `extra` follow their rules too.
    reference: no row at all when the reference group is under MIN_GROUP (hazard ratios).
    `extra` gains not_drawn (the groups under MIN_GROUP), withheld (what else is not shown: logrank,
    median_followup, hazard_ratios) and note (the sentence naming the groups not shown, or None)."""
    counts: tuple[str, ...]
    rows: str
    what: str
    summary: bool = False
    reference: bool = False

    def __call__(self, exp: Export, scope: Scope) -> Export:
        sizes = exp.extra.get("group_n", {})
        small = [g for g, n in sizes.items() if n < MIN_GROUP]
        by = exp.extra.get("by", "none")
        rows = exp.rows
        hidden = rows["group"].astype(str).isin(small)
        if self.rows == "estimates":            # the pooled row: every patient of the filter
            hidden |= (rows["group"] == POOLED) & (exp.n_patients < MIN_GROUP)
        if self.rows == "drop":
            rows = rows[~hidden].reset_index(drop=True)
        elif hidden.any():
            rows = rows.copy()
            for column in SUMMARY_ESTIMATES:
                rows[column] = rows[column].astype(object).where(~hidden, None)
        present = set(exp.rows["group"].astype(str))
        named = [g for g in small if g in present]          # cox without a grouping has no rows to name
        note = f"{few_text(by, named)}, {self.what} for your role." if named else None
        withheld, extra = [], dict(exp.extra)
        if self.rows == "estimates" and (hidden & (rows["group"] == POOLED)).any():
            withheld.append("pooled")
        if self.summary:
            if extra.get("logrank") is not None and sum(n >= MIN_GROUP for n in sizes.values()) < 2:
                extra["logrank"] = None
                withheld.append("logrank")
            if 0 < exp.n_patients < MIN_GROUP:
                extra.update(dict.fromkeys(FOLLOWUP))
                withheld.append("median_followup")
        if self.reference and extra.get("reference") in small:
            rows = rows.iloc[0:0]
            withheld.append("hazard_ratios")
            note = (f"Hazard ratios: not shown for your role (the reference group, "
                    f"{groups_text(by, [extra['reference']])}, has fewer than {MIN_GROUP} patients).")
            if by_size(by, extra.get("reference_default")) and extra["reference"] == extra["reference_default"]:
                # the default picked as the largest of groups under MIN_GROUP: naming it would rank
                # groups the role sees only as "<5"
                note = f"Hazard ratios: not shown for your role (the default reference group has fewer than " \
                       f"{MIN_GROUP} patients)."
                extra.update(reference=None)
        if self.reference and by_size(by, extra.get("reference_default")) and \
                extra.get("reference_default") in small:
            extra.update(reference_default=None)
        out = suppress_counts(Export(exp.name, rows, exp.n_patients, extra), {c: () for c in self.counts})
        if self.rows == "estimates":
            out.rows = pooled_complement(out.rows)
        out.extra.update(group_n={g: shown_count(n, scope) for g, n in sizes.items()}, not_drawn=small,
                         min_group=MIN_GROUP, withheld=withheld, note=note)
        return out


@export("km-summary", "Kaplan-Meier per group: n, events, median (95% CI) and S at 182/365/730 days (95% CI) "
                      "in days, log-rank test, median follow-up (reverse KM of OS); " + OPTIONS_HELP,
        options=OPTIONS,
        level=AGGREGATE, suppress=SmallGroups(("n", "events"), "estimates", "estimates not shown", summary=True))
def km_summary_export(snapshot, filters=Filters(), scope=ALL_SITES, endpoint="os", by="bclc_stage",
                      ci="log-log", **_):
    a = survival_analysis(snapshot, filters, scope, endpoint, by, ci)
    return Export("km-summary", a.summary(), a.n_patients, summary_extra(a))


@export("km-curve", "Kaplan-Meier step functions per group (time in days, S, pointwise CI, n at risk, events, "
                    "censored), from S(0) = 1; " + OPTIONS_HELP, options=OPTIONS,
        level=AGGREGATE, suppress=SmallGroups(("n_risk", "n_event", "n_censor"), "drop", "not drawn"))
def km_curve_export(snapshot, filters=Filters(), scope=ALL_SITES, endpoint="os", by="bclc_stage",
                    ci="log-log", **_):
    a = survival_analysis(snapshot, filters, scope, endpoint, by, ci)
    return Export("km-curve", a.curve(), a.n_patients, {**a.options(), "group_n": group_n(a)})


@export("km-risk-table", "numbers under the Kaplan-Meier curves per group: at risk (time >= t), cumulative events "
                         "and censored (time <= t) at --times (days; default every 90); " + OPTIONS_HELP,
        options=OPTIONS + ("times",),
        level=AGGREGATE, suppress=SmallGroups(("n_at_risk", "cum_events", "cum_censored"), "drop", "not shown"))
def km_risk_table_export(snapshot, filters=Filters(), scope=ALL_SITES, endpoint="os", by="bclc_stage",
                         ci="log-log", times=None, **_):
    a = survival_analysis(snapshot, filters, scope, endpoint, by, ci)
    grid = parse_times(times) if times is not None else default_times(a.max_days())
    return Export("km-risk-table", a.risk_table(grid), a.n_patients,
                  {**a.options(), "times": grid, "group_n": group_n(a)})


@export("cox", "Cox proportional-hazards hazard ratio of each group against the reference group, its row first "
               "(--ref LEVEL; default BCLC B for BCLC stage, else the largest group; Efron ties, Wald 95% CI and "
               "p); " + OPTIONS_HELP, options=OPTIONS + ("ref",),
        level=AGGREGATE, suppress=SmallGroups((), "drop", "no hazard ratio", reference=True))
def cox_export(snapshot, filters=Filters(), scope=ALL_SITES, endpoint="os", by="bclc_stage", ci="log-log",
               ref=None, **_):
    """extra: reference (the level used), reference_default (the rule's level), reference_note (why
    a --ref was not used, or None)."""
    a = survival_analysis(snapshot, filters, scope, endpoint, by, ci)
    reference, note = a.reference(ref)
    return Export("cox", a.cox_against(reference), a.n_patients,
                  {**a.options(), "ref": ref, "group_n": group_n(a), "reference": reference,
                   "reference_default": a.default_reference, "reference_note": note})
