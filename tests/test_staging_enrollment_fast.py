"""The fast paths of the Downstaging and Enrollment pages against the computations they replace.

At 100,000 patients the exports of these pages read every cohort column and every patient's row
into pandas and looped over them (the Aalen-Johansen over every subject at every time). They now
count in DuckDB what they only count and carry one influence per distinct (time, status). Each
test here runs the new export and the previous computation, kept below verbatim as an oracle
(`old_*`), on the synthetic registry and on the mini fixture for several filters, and asks for the
same rows: equal to the bit, except the Aalen-Johansen standard error and the CI bounds derived
from it, whose final sum of squares is added in another order (equal to 1e-12 relative; measured
differences are a few units in the last place). Table 1 and follow-up status are checked against
analytics/baseline.py's baseline_table and followup_status, which stay the oracle.
The same comparisons were run on the 100,000-patient stress registry (benchmarks/cache/stress).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import data
from dashboard.analytics import competing, staging
from dashboard.analytics.baseline import COUNTED, baseline_table, followup_status, sql_text
from dashboard.analytics.survival import km_fit, median_followup
from dashboard.data import ALL_SITES
from dashboard.exports import enrollment as enrollment_exports
from dashboard.exports import staging as staging_exports
from dashboard.figures import downstaging as figs
from dashboard.filters import Filters
from dashboard.grouping import check_by, group_column, ordered_levels

FILTERS = [Filters(), Filters(bclc=("C",)), Filters(site=("S01", "S02")),
           Filters(sex=("F",), etiology=("HBV", "unknown")), Filters(age_min=50, age_max=70), Filters(bclc=("0",))]
BYS = ["bclc_stage", "none", "site_id", "etiology_group", "afp_group", "drug"]
CI_COLUMNS = ("ci_lower", "ci_upper")


@pytest.fixture(scope="module", params=["synthetic", "mini"])
def snapshot(request):
    root = request.getfixturevalue("synthetic_root" if request.param == "synthetic" else "mini_root")
    return data.resolve("latest", root)


def same_frame(new: pd.DataFrame, old: pd.DataFrame, rtol_columns=()):
    """Same columns, dtypes, rows and values; `rtol_columns` equal to 1e-12 relative, same nulls."""
    assert list(new.columns) == list(old.columns)
    assert len(new) == len(old)
    for c in new.columns:
        if c in rtol_columns:
            a, b = new[c].to_numpy(float), old[c].to_numpy(float)
            assert np.array_equal(np.isnan(a), np.isnan(b)), c
            ok = ~np.isnan(b)
            np.testing.assert_allclose(a[ok], b[ok], rtol=1e-12, atol=0, err_msg=c)
            assert new[c].dtype == old[c].dtype, c
        else:
            pd.testing.assert_series_equal(new[c].reset_index(drop=True), old[c].reset_index(drop=True),
                                           check_exact=True)


# --- the previous computations, verbatim (oracles) ----------------------------------------------
def old_aalen_johansen(time, status, cause: int = 1, conf_level: float = 0.95, conf_type: str = "log"):
    """competing.aalen_johansen before: every subject at every distinct time."""
    t = pd.to_numeric(pd.Series(np.asarray(time, dtype=object)), errors="coerce").to_numpy(float)
    s = pd.to_numeric(pd.Series(np.asarray(status, dtype=object)), errors="coerce").to_numpy(float)
    keep = ~(np.isnan(t) | np.isnan(s))
    t, s = t[keep], s[keep].astype(int)
    n = len(t)
    cols = ["time_days", "n_risk", "n_event", "n_competing", "n_censor", "cif", "std_err", "ci_lower", "ci_upper"]
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
    utime = np.unique(t)
    surv_prev, cif = 1.0, 0.0
    u_surv, u_cif = np.zeros(n), np.zeros(n)
    rows = []
    for tt in utime:
        at_risk = t >= tt
        here = t == tt
        nr = int(at_risk.sum())
        d_all = int(np.sum(here & (s > 0)))
        d_k = int(np.sum(here & (s == cause)))
        n_cens = int(np.sum(here & (s == 0)))
        if d_all > 0:
            lam_all, lam_k = d_all / nr, d_k / nr
            dl_all = (((here & (s > 0)).astype(float)) - at_risk * lam_all) / nr
            dl_k = (((here & (s == cause)).astype(float)) - at_risk * lam_k) / nr
            u_cif = u_cif + u_surv * lam_k + surv_prev * dl_k
            u_surv = u_surv * (1 - lam_all) - surv_prev * dl_all
            cif = cif + surv_prev * lam_k
            surv_prev = surv_prev * (1 - lam_all)
        rows.append((tt, nr, d_k, d_all - d_k, n_cens, cif, float(np.sqrt(np.sum(u_cif ** 2)))))
    out = pd.DataFrame(rows, columns=cols[:7])
    out = pd.concat([pd.DataFrame([(0.0, n, 0, 0, 0, 0.0, 0.0)], columns=cols[:7]), out], ignore_index=True)
    lower, upper = competing._confint(out["cif"].to_numpy(float), out["std_err"].to_numpy(float),
                                      conf_type, conf_level)
    out["ci_lower"], out["ci_upper"] = lower, upper
    return out


def old_with_groups(rows, cohort, by):
    groups = pd.DataFrame({"patient_id": cohort["patient_id"], "group": group_column(cohort, by)})
    levels = ordered_levels(by, groups["group"].unique()) if len(groups) else []
    out = rows.merge(groups, on="patient_id", how="left")
    out["group"] = out["group"].astype(object)
    return out, levels


def old_flow_links(flow, measure):
    order = {s: i for i, s in enumerate(staging.state_order(measure))}
    if flow.empty:
        return pd.DataFrame({"source": pd.Series(dtype=str), "target": pd.Series(dtype=str),
                             "n": pd.Series(dtype=int)})
    links = flow.groupby(["source", "target"], as_index=False).size().rename(columns={"size": "n"})
    links = links.sort_values(["source", "target"], key=lambda c: c.map(order), ignore_index=True)
    links["n"] = links["n"].astype(int)
    return links[["source", "target", "n"]]


def old_group_rates(patients, levels):
    from dashboard.analytics.proportions import clopper_pearson
    rows = []
    for group in ["all"] + [g for g in levels if g != "all"]:
        sub = patients if group == "all" else patients[patients["group"] == group]
        for measure, (achieved_col, eligible_col) in staging.RATE_MEASURES.items():
            eligible = sub[sub[eligible_col].astype(bool)]
            n, x = len(eligible), int(eligible[achieved_col].astype(bool).sum())
            rate, lo, hi = clopper_pearson(x, n)
            # the patients whose baseline was not recorded (added with the amended contract)
            unknown = int(sub[BASELINE_OF[measure]].isna().sum())
            rows.append((group, measure, n, x, rate, lo, hi, unknown))
    return pd.DataFrame(rows, columns=["group", "measure", "eligible", "achieved", "rate", "ci_lower", "ci_upper",
                                       "baseline_unknown"])


BASELINE_OF = {"downstaged_to_milan": "baseline_within_milan", "converted_to_resectable": "baseline_resectable"}


def old_cumulative_incidence(ttd, levels, conf_type="log"):
    cols = ["group", "time_days", "cif", "ci_lower", "ci_upper", "n_risk", "n_event", "n_competing", "n_censor"]
    parts = []
    for group in levels:
        sub = ttd[ttd["group"] == group]
        if sub.empty:
            continue
        fit = old_aalen_johansen(sub["time_days"], sub["status"], cause=1, conf_type=conf_type)
        parts.append(fit.drop_duplicates("time_days", keep="last").assign(group=group))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "group" else float) for c in cols})
    out = pd.concat(parts, ignore_index=True)[cols]
    for c in ("n_risk", "n_event", "n_competing", "n_censor"):
        out[c] = out[c].astype(int)
    out["time_days"] = out["time_days"].astype(int)
    return out


def old_one_minus_km(ttd, t):
    if ttd.empty or t > ttd["time_days"].max():
        return None
    fit = km_fit(ttd["time_days"], (ttd["status"] == 1).astype(int))
    idx = np.searchsorted(fit.time, t, side="right") - 1
    return float(1 - fit.surv[idx]) if idx >= 0 else 0.0


def old_downsizing_summary(rows, levels):
    out = []
    for group in levels:
        v = rows.loc[rows["group"] == group, "best_pct_change"].dropna().astype(float)
        if v.empty:
            out.append((group, 0, None, None, None, 0))
            continue
        q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
        out.append((group, len(v), float(med), float(q1), float(q3), int((v <= -30).sum())))
    return pd.DataFrame(out, columns=["group", "n", "median", "q1", "q3", "n_30"])


def old_staging_flow(snapshot, filters, measure):
    flow = data.execute("select source, target from staging_flow where measure = ?", snapshot, filters, ALL_SITES,
                        params=[measure])
    return old_flow_links(flow, measure), len(flow)


def old_downstaging_summary(snapshot, filters, by):
    cohort = data.query("cohort", snapshot, filters)
    outcomes = data.query("staging_outcomes", snapshot, filters)
    outcomes["outside_milan_at_baseline"] = ~outcomes["baseline_within_milan"].astype(bool)
    outcomes["not_resectable_at_baseline"] = ~outcomes["baseline_resectable"].astype(bool)
    patients, levels = old_with_groups(outcomes, cohort, by)
    return old_group_rates(patients, levels), len(cohort)


def old_downstaging_cif(snapshot, filters, by, ci):
    cohort = data.query("cohort", snapshot, filters)
    ttd = data.query("time_to_downstaging", snapshot, filters, order_by=("patient_id",))
    ttd, levels = old_with_groups(ttd, cohort, by)
    rows = old_cumulative_incidence(ttd, levels, conf_type=ci)
    pooled = old_cumulative_incidence(ttd.assign(group="all"), ["all"], conf_type=ci)
    at = staging.step_at(pooled, 365)
    at_one_year = None if at is None else {
        "time_days": 365, "cif": at["cif"], "ci_lower": at["ci_lower"], "ci_upper": at["ci_upper"],
        "one_minus_km": old_one_minus_km(ttd, 365)}
    return rows, len(cohort), {
        "by": by, "conf_type": ci, "n_eligible": len(ttd), "n_downstaged": int((ttd["status"] == 1).sum()),
        "n_died_first": int((ttd["status"] == 2).sum()), "n_censored": int((ttd["status"] == 0).sum()),
        "all_at_one_year": at_one_year,
        "n_baseline_unknown": int(data.query("staging_outcomes", snapshot, filters)["baseline_within_milan"].isna().sum())}


# the downsizing view before (queries/downsizing.sql): the export's rows must not change with it
OLD_DOWNSIZING_SQL = """
with baseline as (
    select
        m.patient_id, m.lesion_id, m.viable_diameter_mm,
        row_number() over (partition by m.patient_id order by m.viable_diameter_mm desc, m.lesion_id) as size_rank
    from stg_lesion_measurements m
    join stg_lesions l using (patient_id, lesion_id)
    join cohort c on c.patient_id = m.patient_id
    where l.is_target and m.visit = 'baseline' and m.viable_diameter_mm > 0
),
index_lesion as (
    select patient_id, lesion_id, viable_diameter_mm as baseline_diameter_mm
    from baseline
    where size_rank = 1
),
followup as (
    select
        x.patient_id, m.visit, i.imaging_date, m.viable_diameter_mm,
        100.0 * (m.viable_diameter_mm - x.baseline_diameter_mm) / x.baseline_diameter_mm as pct_change
    from index_lesion x
    join stg_lesion_measurements m on m.patient_id = x.patient_id and m.lesion_id = x.lesion_id
    join stg_imaging i on i.patient_id = m.patient_id and i.visit = m.visit
    left join best_response b on b.patient_id = x.patient_id and b.scope = 'overall'
    where m.visit <> 'baseline'
      and m.viable_diameter_mm is not null
      and (b.first_pd_date is null or i.imaging_date <= b.first_pd_date)
),
best as (
    select
        patient_id,
        count(*) as n_followup_measurements,
        min(pct_change) as best_pct_change,
        arg_min(viable_diameter_mm, (pct_change, imaging_date)) as best_diameter_mm,
        arg_min(visit, (pct_change, imaging_date)) as best_visit
    from followup
    group by patient_id
),
final as (
    select
        c.patient_id, c.site_id, x.lesion_id, x.baseline_diameter_mm, b.best_diameter_mm, b.best_pct_change,
        b.best_visit, coalesce(b.n_followup_measurements, 0) as n_followup_measurements,
        case when x.lesion_id is null then 'no baseline target diameter'
             when b.best_pct_change is null then 'no follow-up measurement' end as not_evaluable_reason
    from cohort c
    left join index_lesion x using (patient_id)
    left join best b using (patient_id)
)
select * from final
"""


def old_downsizing(snapshot, filters, by):
    cohort = data.query("cohort", snapshot, filters)
    rows = data.execute(f"select * from ({OLD_DOWNSIZING_SQL}) order by patient_id", snapshot, filters)
    rows, levels = old_with_groups(rows, cohort, by)
    evaluable = rows[rows["best_pct_change"].notna()].copy()
    evaluable["level"] = evaluable["group"].map({g: i for i, g in enumerate(levels)})
    evaluable = evaluable.sort_values(["level", "best_pct_change", "patient_id"])[staging_exports.DOWNSIZING_COLUMNS]
    reasons = rows["not_evaluable_reason"].dropna().value_counts().sort_index()
    summary = old_downsizing_summary(evaluable, levels)
    return evaluable.reset_index(drop=True), len(cohort), {
        "by": by, "groups": levels, "summary": summary.to_dict(orient="records"), "n_evaluable": len(evaluable),
        "n_not_evaluable": int(reasons.sum()), "not_evaluable": {str(k): int(v) for k, v in reasons.items()}}


# --- Aalen-Johansen -------------------------------------------------------------------------------
def test_aalen_johansen_by_distinct_time_and_status_equals_subject_by_subject():
    """Random data with heavy ties, competing types 2 and 3, every CI transform and cause: times,
    counts and the CIF are bit-identical; std_err and the CI to 1e-12 relative."""
    rng = np.random.default_rng(20240101)
    for trial in range(120):
        n = int(rng.integers(0, 300))
        t = rng.integers(0, int(rng.integers(1, 50)), n).astype(float)
        s = rng.integers(0, 4 if trial % 3 == 0 else 3, n)
        cause = 2 if trial % 5 == 0 else 1
        for ci in competing.CONF_TYPES:
            new = competing.aalen_johansen(t, s, cause=cause, conf_type=ci)
            old = old_aalen_johansen(t, s, cause=cause, conf_type=ci)
            same_frame(new, old, rtol_columns=("std_err",) + CI_COLUMNS)


def test_aalen_johansen_from_counts_equals_one_row_per_subject():
    rng = np.random.default_rng(7)
    t = rng.integers(0, 40, 800).astype(float)
    s = rng.integers(0, 3, 800)
    counted = pd.DataFrame({"t": t, "s": s}).groupby(["t", "s"]).size().reset_index(name="n")
    counted = pd.concat([counted, pd.DataFrame({"t": [99.0], "s": [1], "n": [0]})])   # a zero count changes nothing
    pd.testing.assert_frame_equal(competing.aalen_johansen(counted.t, counted.s, counts=counted.n),
                                  competing.aalen_johansen(t, s), check_exact=True)
    with pytest.raises(ValueError, match="counts"):
        competing.aalen_johansen([1, 2], [1, 0], counts=[1, -1])


def test_one_minus_km_from_counts_equals_km_fit():
    rng = np.random.default_rng(3)
    ttd = pd.DataFrame({"time_days": rng.integers(0, 500, 2000), "status": rng.integers(0, 3, 2000)})
    counted = ttd.groupby(["time_days", "status"], as_index=False).size().rename(columns={"size": "n"})
    for t in (0, 1, 100, 365, 499, 500):
        assert staging.one_minus_km(counted, t) == old_one_minus_km(ttd, t)


# --- staging exports --------------------------------------------------------------------------------
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f.to_query() or "all")
def test_staging_flow_and_rates_equal_the_previous_exports(snapshot, filters):
    for measure in staging.MEASURES:
        exp = staging_exports.staging_flow_export(snapshot, filters, measure=measure)
        rows, n = old_staging_flow(snapshot, filters, measure)
        same_frame(exp.rows, rows)
        assert exp.n_patients == n
    for by in BYS:
        exp = staging_exports.downstaging_summary_export(snapshot, filters, by=by)
        rows, n = old_downstaging_summary(snapshot, filters, check_by(by))
        same_frame(exp.rows, rows)
        assert exp.n_patients == n


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f.to_query() or "all")
def test_downstaging_cif_equals_the_previous_export(snapshot, filters):
    for by, ci in [(by, "log") for by in BYS] + [("bclc_stage", "log-log"), ("none", "plain")]:
        exp = staging_exports.downstaging_cif_export(snapshot, filters, by=by, ci=ci)
        rows, n, extra = old_downstaging_cif(snapshot, filters, check_by(by), ci)
        same_frame(exp.rows, rows, rtol_columns=CI_COLUMNS)
        assert exp.n_patients == n
        new_at, old_at = exp.extra.pop("all_at_one_year"), extra.pop("all_at_one_year")
        assert exp.extra == extra
        assert (new_at is None) == (old_at is None)
        if old_at is not None:
            assert (new_at["cif"], new_at["one_minus_km"]) == (old_at["cif"], old_at["one_minus_km"])
            np.testing.assert_allclose([new_at[c] for c in CI_COLUMNS], [old_at[c] for c in CI_COLUMNS], rtol=1e-12)


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f.to_query() or "all")
def test_downsizing_view_and_export_equal_the_previous_ones(snapshot, filters):
    view = data.execute("select * from downsizing order by patient_id", snapshot, filters)
    old_view = data.execute(f"select * from ({OLD_DOWNSIZING_SQL}) order by patient_id", snapshot, filters)
    pd.testing.assert_frame_equal(view, old_view, check_exact=True)
    for by in BYS:
        exp = staging_exports.downsizing_export(snapshot, filters, by=by)
        rows, n, extra = old_downsizing(snapshot, filters, check_by(by))
        same_frame(exp.rows, rows)
        assert exp.n_patients == n
        pd.testing.assert_frame_equal(pd.DataFrame(exp.extra.pop("summary")), pd.DataFrame(extra.pop("summary")),
                                      check_exact=True)             # NaN-aware (no median without a patient)
        assert exp.extra == extra


def test_group_sql_is_group_column(snapshot):
    """The group a patient gets in SQL (grouping.group_sql, the grouping a bound value) is the one
    grouping.group_column gives in pandas; a hostile grouping is just a value matching no branch."""
    from dashboard.grouping import GROUPINGS, group_sql
    cohort = data.query("cohort", snapshot, order_by=("patient_id",))
    for by in GROUPINGS:
        sql = data.execute(f'select {group_sql("c")} as "group" from cohort c order by c.patient_id',
                           snapshot, params={"by": by})
        assert sql["group"].tolist() == group_column(cohort, by).astype(object).tolist(), by
    hostile = data.execute(f'select {group_sql("c")} as "group" from cohort c', snapshot,
                           params={"by": 'bclc_stage" from cohort; --'})
    assert set(hostile["group"]) == {"unknown"}
    with pytest.raises(ValueError, match="unknown grouping"):
        staging_exports.downsizing_export(snapshot, by='bclc_stage" from cohort; --')


# --- downsizing figure ------------------------------------------------------------------------------
def old_downsizing_figure(rows, groups=None, by="none"):
    """figures.downstaging.downsizing_figure before: one box per group with every patient as a point."""
    from dashboard.figures.builder import Figure
    from dashboard.figures.common import base_layout, colour_for
    groups = [g for g in (groups or list(dict.fromkeys(rows["group"]))) if g in set(rows["group"])]
    counts = rows["group"].value_counts()
    many = len(groups) > 8

    def tick(g):
        n = int(counts[g])
        return f"{figs.group_label(by, g)}<br>{'' if many else 'n='}{n}" + (" (<5)" if n < 5 and not many else "")

    fig = Figure()
    for i, g in enumerate(groups):
        d = rows[rows.group == g]
        colour = colour_for(g, i)
        n = len(d)
        label = tick(g)
        fig.add_box(
            y=d["best_pct_change"], x=[label] * n, name=figs.group_label(by, g), boxpoints="all", jitter=0.45,
            pointpos=0, marker=dict(color=colour, size=5, opacity=0.55), line=dict(color=colour, width=2),
            fillcolor=figs._rgba(colour, 0.12), showlegend=False, boxmean=False, hoveron="points+boxes",
            customdata=np.column_stack([d["patient_id"], d["lesion_id"], d["baseline_diameter_mm"],
                                        d["best_diameter_mm"], d["best_visit"]]),
            hovertemplate="<b>%{customdata[0]}</b> lesion %{customdata[1]}<br>%{customdata[2]:.0f} mm at baseline"
                          " → %{customdata[3]:.0f} mm at %{customdata[4]}<br>best change %{y:.1f}%<extra></extra>")
        med = float(np.median(d["best_pct_change"]))
        fig.add_annotation(x=label, y=1, yref="paper", yanchor="bottom", showarrow=False, name="median",
                           text=f"{med:+.0f}%".replace("-", "−"), font=dict(size=12, color=colour),
                           hovertext=f"{figs.group_label(by, g)}: median {med:+.1f}% (n={n})")
    fig.add_annotation(x=0, xref="paper", xanchor="right", y=1, yref="paper", yanchor="bottom", showarrow=False,
                       text="median", font=dict(size=12, color="#495057"))
    fig.add_hline(y=-30, line=dict(color="#6c757d", dash="dash", width=1.5),
                  annotation=dict(text="−30%", font=dict(size=11, color="#6c757d")), annotation_position="right")
    fig.add_hline(y=0, line=dict(color="#adb5bd", width=1))
    top = max(10.0, float(rows["best_pct_change"].max()) + 8)
    fig.update_yaxes(title="Best change of the largest viable diameter", ticksuffix="%", range=[-108, top],
                     zeroline=False, hoverformat=".1f")
    fig.update_xaxes(type="category", tickangle=0, categoryorder="array", categoryarray=[tick(g) for g in groups],
                     tickfont=dict(size=11 if many else 13))
    base_layout(fig, height=420)
    fig.update_layout(margin=dict(l=60, r=50, t=40, b=60), hovermode="closest")
    return fig


def as_json(fig):
    from dash._utils import to_json
    return to_json(fig)


def as_plain(fig):
    """The figure as the browser gets it (JSON), read back: equal whatever the order of the keys."""
    import json
    return json.loads(as_json(fig))


@pytest.mark.parametrize("by", ["bclc_stage", "none", "site_id"])
def test_downsizing_figure_is_unchanged_below_the_point_budget(snapshot, by):
    exp = staging_exports.downsizing_export(snapshot, Filters(), by=by)
    assert exp.extra["n_evaluable"] <= figs.POINTS_BUDGET
    assert as_plain(figs.downsizing_figure(exp.rows, exp.extra["groups"], by)) == \
        as_plain(old_downsizing_figure(exp.rows, exp.extra["groups"], by))


def large_downsizing_rows(sizes: dict) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    parts = []
    for g, n in sizes.items():
        change = np.round(rng.normal(-30, 35, n).clip(-100, 150), 1)
        parts.append(pd.DataFrame({"group": g, "patient_id": [f"{g}-{i:06d}" for i in range(n)], "site_id": "S01",
                                   "lesion_id": "T1", "baseline_diameter_mm": 50.0,
                                   "best_diameter_mm": 50.0 * (1 + change / 100), "best_pct_change": change,
                                   "best_visit": "M3"}))
    rows = pd.concat(parts, ignore_index=True)
    return rows.sort_values(["group", "best_pct_change", "patient_id"], ignore_index=True)


def test_downsizing_figure_draws_a_fixed_sample_over_a_box_of_every_patient():
    """100,000 patients: a big group is a box from every value (type 7 quartiles, whiskers at the
    most extreme values within 1.5 IQR) plus a fixed, evenly spaced sample of points; a small
    group keeps every point and plotly's own box."""
    rows = large_downsizing_rows({"B": 30000, "C": 12000, "A": 40})
    k = figs.points_per_group(3)
    fig = figs.downsizing_figure(rows, ["A", "B", "C"], "bclc_stage")
    a, b_box, b_points, c_box, c_points = fig.data
    assert a.boxpoints == "all" and len(a.y) == 40 and a.q1 is None
    summary = staging.downsizing_summary(rows, ["A", "B", "C"]).set_index("group")
    for box, points, g in ((b_box, b_points, "B"), (c_box, c_points, "C")):
        v = rows.loc[rows.group == g, "best_pct_change"].to_numpy()
        assert box.boxpoints is False and box.y is None
        assert (box.q1[0], box.median[0], box.q3[0]) == tuple(summary.loc[g, ["q1", "median", "q3"]])
        iqr = box.q3[0] - box.q1[0]
        assert box.lowerfence[0] == v[v >= box.q1[0] - 1.5 * iqr].min()
        assert box.upperfence[0] == v[v <= box.q3[0] + 1.5 * iqr].max()
        assert points.boxpoints == "all" and len(points.y) == k and box.x == [points.x[0]]
        assert points.line.width == 0 and points.hoveron == "points"
        assert min(points.y) == v.min() and max(points.y) == v.max()          # the sample keeps the extremes
        assert np.isclose(np.median(points.y), np.median(v), atol=1.0)        # and the spread
    again = figs.downsizing_figure(rows, ["A", "B", "C"], "bclc_stage")
    assert as_json(again) == as_json(fig)                                    # fixed: the same sample every time
    assert len(as_json(fig)) < 600_000


def test_points_per_group_keeps_the_registry_whole_and_bounds_the_figure():
    assert figs.points_per_group(1) == figs.POINTS_BUDGET
    assert figs.points_per_group(12) == figs.MIN_POINTS
    assert max(figs.points_per_group(g) * g for g in range(1, 40)) <= 40 * figs.MIN_POINTS
    assert list(figs.point_sample(np.array([3.0, 1.0, 2.0]), 5)) == [0, 1, 2]
    assert list(figs.point_sample(np.array([5.0, 1.0, 4.0, 2.0, 3.0]), 3)) == [0, 1, 4]   # min, median, max


def test_downsizing_footnote_says_when_points_are_sampled(monkeypatch, tmp_path):
    from dashboard.callbacks import downstaging as cb
    from dashboard.exports import Export
    rows = large_downsizing_rows({"B": 5000, "C": 100})
    summary = staging.downsizing_summary(rows, ["B", "C"])
    fake = Export("downsizing", rows, len(rows), {"by": "bclc_stage", "groups": ["B", "C"],
                                                  "summary": summary.to_dict(orient="records"),
                                                  "n_evaluable": len(rows), "n_not_evaluable": 0,
                                                  "not_evaluable": {}})
    monkeypatch.setattr(cb.exports, "compute_export", lambda *a, **k: fake)
    monkeypatch.setattr(cb, "state_context", lambda state: (type("S", (), {"snapshot_id": "x"})(), Filters(),
                                                            ALL_SITES))
    note = cb.downsizing_card({}, "bclc_stage")[3]
    assert f"a fixed sample of {figs.points_per_group(2):,}" in note and "the CSV have every patient" in note


def test_the_downsizing_card_computes_its_export_without_storing_it(synthetic_root, monkeypatch, tmp_path):
    """The card's view is cached; its export (every patient's row: 95,000 at 100,000 patients, 99 ms
    to pickle) is computed for it and not stored. The card draws the same figure as from the
    cached export, and nothing named export:downsizing reaches the cache."""
    from dashboard import cache, exports
    from dashboard.callbacks import downstaging as cb
    from dashboard.wire import plain
    from plotly.io.json import to_json_plotly
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    monkeypatch.setenv("REGISTRY_CACHE", str(tmp_path))
    kinds = []
    cached = cache.cached
    monkeypatch.setattr(cache, "cached", lambda kind, *a, **k: kinds.append(kind) or cached(kind, *a, **k))
    state = {"snapshot": data.resolve("latest").snapshot_id, "query": "bclc=B,C"}
    card = cb.downsizing_card(state, "bclc_stage")
    assert "export:downsizing" not in kinds
    snapshot, filters, scope = cb.state_context(state)
    stored = exports.run_export("downsizing", snapshot, filters, scope, by="bclc_stage")
    assert "export:downsizing" in kinds                                  # the download's path still caches
    assert to_json_plotly(plain(card[0])) == to_json_plotly(plain(
        figs.downsizing_figure(stored.rows, stored.extra["groups"], stored.extra["by"])))


# --- Enrollment ------------------------------------------------------------------------------------
@pytest.mark.parametrize("filters", FILTERS + [Filters(child_pugh=("B", "C")), Filters(ecog=("0", "1"))],
                         ids=lambda f: f.to_query() or "all")
def test_baseline_table_and_followup_equal_the_oracle(snapshot, filters):
    cohort = data.query("cohort", snapshot, filters)
    exp = enrollment_exports.baseline_export(snapshot, filters)
    pd.testing.assert_frame_equal(exp.rows, baseline_table(cohort, by="bclc_stage"), check_exact=True)
    assert exp.n_patients == len(cohort)
    exp = enrollment_exports.followup_export(snapshot, filters)
    pd.testing.assert_frame_equal(exp.rows, followup_status(cohort), check_exact=True)
    assert exp.n_patients == len(cohort)
    os_ = data.execute("select time_days, is_event from patient_endpoints where endpoint = 'os'", snapshot, filters)
    expected = median_followup(os_["time_days"], os_["is_event"]) if len(os_) else (None, None, None)
    assert tuple(exp.extra[k] for k in ("median_followup_days", "median_followup_ci_lower_days",
                                        "median_followup_ci_upper_days")) == expected


def test_baseline_counts_cover_every_categorical_variable(snapshot):
    counts = data.execute(enrollment_exports.BASELINE_COUNTS_SQL, snapshot)
    assert set(counts["variable"]) == set(COUNTED)
    assert [sql_text(v) for v in (True, False, np.bool_(True), 0, 3, "HBV")] == ["true", "false", "true", "0", "3",
                                                                                "HBV"]


def test_baseline_table_with_missing_values_and_odd_counts():
    """Values baseline_table sees as missing or outside every level (AFP NaN, tumour count 0,
    an unknown etiology, a stage outside the contract) count the same from SQL-shaped input."""
    from dashboard.analytics.baseline import NUMERIC, baseline_table_counted
    cohort = pd.DataFrame({
        "bclc_stage": ["B", "B", "C", "X", "C"],
        "age_years": [60, 70, np.nan, 50, 81],
        "sex": ["M", "F", "M", None, "F"],
        "etiology": ["HBV", None, "other", "weird", "HCV"],
        "ecog_ps": [0, 1, 2, 4, np.nan],
        "child_pugh_class": ["A", "B", "A", "C", "A"],
        "albi_grade": [1, 2, np.nan, 3, 1],
        "afp_ng_ml": [10.0, np.nan, 500.0, 400.0, float("nan")],
        "tumor_count": [1, 0, 3, 5, 9],
        "largest_tumor_cm": [3.0, 7.5, np.nan, 12.25, 4.0],
        "has_macrovascular_invasion": [True, False, False, True, None],
        "has_extrahepatic_spread": [False, False, True, False, False],
        "is_within_milan": [True, False, False, False, True],
        "is_within_up_to_seven": [True, True, False, False, True],
    })

    def text(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        return sql_text(bool(v)) if isinstance(v, (bool, np.bool_)) else sql_text(int(v) if isinstance(v, float) else v)

    derived = cohort.assign(tumor_count_group=np.select(
        [cohort.tumor_count == 1, cohort.tumor_count.between(2, 3), cohort.tumor_count.between(4, 5),
         cohort.tumor_count > 5], ["1", "2-3", "4-5", "> 5"], None))
    records = []
    for var in COUNTED:
        for overall in (True, False):
            keys = [pd.Series("all", index=derived.index) if overall else derived["bclc_stage"], derived[var].map(text)]
            for (level, value), n in derived.groupby(keys, dropna=False).size().items():
                records.append(dict(overall=overall, level_of_by=None if overall else level, variable=var,
                                    value=value, n=n))
    counts = pd.DataFrame(records)
    numeric = cohort[["bclc_stage"] + NUMERIC]
    pd.testing.assert_frame_equal(baseline_table_counted(counts, numeric), baseline_table(cohort), check_exact=True)
    pd.testing.assert_frame_equal(baseline_table_counted(counts.iloc[0:0], numeric.iloc[0:0]),
                                  baseline_table(cohort.iloc[0:0]), check_exact=True)


# --- Downstaging, faster again: the previous implementations, verbatim (oracles, exact equality) -------
def prev_aalen_johansen(time, status, cause: int = 1, conf_level: float = 0.95,
                   conf_type: str = "log", counts=None) -> pd.DataFrame:
    """competing.aalen_johansen before it skipped the times without an event (verbatim)."""
    if conf_type not in competing.CONF_TYPES:
        raise ValueError(f"conf_type must be one of {competing.CONF_TYPES}, got {conf_type!r}")
    t, s, w = competing._clean(time, status, counts)
    nonzero = w > 0
    t, s, w = t[nonzero], s[nonzero], w[nonzero]
    n = int(w.sum())
    cols = ["time_days", "n_risk", "n_event", "n_competing", "n_censor", "cif", "std_err",
            "ci_lower", "ci_upper"]
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
    # one entry per distinct (time, status), sorted by time then status
    order = np.lexsort((s, t))
    t, s, w = t[order], s[order], w[order]
    new_key = np.ones(len(t), dtype=bool)
    new_key[1:] = (t[1:] != t[:-1]) | (s[1:] != s[:-1])
    starts = np.flatnonzero(new_key)
    gt, gs, gw = t[starts], s[starts], np.add.reduceat(w, starts)
    # distinct times: [first, end) ranges of entries
    new_time = np.ones(len(gt), dtype=bool)
    new_time[1:] = gt[1:] != gt[:-1]
    first = np.flatnonzero(new_time)
    end = np.append(first[1:], len(gt))
    utime = gt[first]
    n_total = np.add.reduceat(gw, first)
    d_all_t = np.add.reduceat(np.where(gs > 0, gw, 0), first)
    d_k_t = np.add.reduceat(np.where(gs == cause, gw, 0), first)
    n_cens_t = n_total - d_all_t
    n_risk = n - np.concatenate([[0], np.cumsum(n_total)[:-1]])

    m = len(utime)
    cif_t = np.zeros(m)
    se_t = np.zeros(m)
    surv_prev = 1.0             # all-cause S(t-)
    cif = 0.0
    se = 0.0
    g = len(gt)
    u_surv = np.zeros(g)        # influence of each subject on S(t-) (IJ), then on S(t)
    u_cif = np.zeros(g)         # influence on CIF_cause
    weights = gw.astype(float)
    is_event, is_cause = gs > 0, gs == cause
    for j in range(m):
        d_all = int(d_all_t[j])
        if d_all > 0:
            nr, d_k = int(n_risk[j]), int(d_k_t[j])
            a, b = int(first[j]), int(end[j])       # at risk: entries a..; here (time == t): a..b
            # hazards at t and their derivatives w.r.t. each subject's weight (0 for those not at risk)
            lam_all, lam_k = d_all / nr, d_k / nr
            # derivative of each hazard: (event here - lam) / n for those at risk, 0 for the others
            # (adding or subtracting S(t-) * 0 changes nothing); at risk, not here: (0 - lam) / n
            dl_all = np.where(is_event[a:b], (1.0 - lam_all) / nr, (0.0 - lam_all) / nr)
            dl_k = np.where(is_cause[a:b], (1.0 - lam_k) / nr, (0.0 - lam_k) / nr)
            # CIF(t) = CIF(t-) + S(t-) lam_k ; S(t) = S(t-) (1 - lam_all)
            new_cif = u_cif + u_surv * lam_k
            new_cif[a:b] += surv_prev * dl_k
            new_cif[b:] += surv_prev * ((0.0 - lam_k) / nr)
            u_surv = u_surv * (1 - lam_all)
            u_surv[a:b] -= surv_prev * dl_all
            u_surv[b:] -= surv_prev * ((0.0 - lam_all) / nr)
            u_cif = new_cif
            cif = cif + surv_prev * lam_k
            surv_prev = surv_prev * (1 - lam_all)
            se = float(np.sqrt(np.dot(weights, u_cif * u_cif)))
        cif_t[j], se_t[j] = cif, se
    out = pd.DataFrame({
        "time_days": np.concatenate([[0.0], utime]),
        "n_risk": np.concatenate([[n], n_risk]).astype(np.int64),
        "n_event": np.concatenate([[0], d_k_t]).astype(np.int64),
        "n_competing": np.concatenate([[0], d_all_t - d_k_t]).astype(np.int64),
        "n_censor": np.concatenate([[0], n_cens_t]).astype(np.int64),
        "cif": np.concatenate([[0.0], cif_t]),
        "std_err": np.concatenate([[0.0], se_t]),
    })
    lower, upper = competing._confint(out["cif"].to_numpy(float), out["std_err"].to_numpy(float),
                            conf_type, conf_level)
    out["ci_lower"], out["ci_upper"] = lower, upper
    return out


def prev_cumulative_incidence(ttd, levels, conf_type="log"):
    """staging.cumulative_incidence before it fitted groups from numpy arrays (verbatim)."""
    cols = ["group", "time_days", "cif", "ci_lower", "ci_upper", "n_risk", "n_event", "n_competing",
            "n_censor"]
    parts = []
    counted = "n" in ttd.columns
    by_group = dict(tuple(ttd.groupby("group", sort=False))) if len(ttd) else {}
    for group in levels:
        sub = by_group.get(group)
        if sub is None or sub.empty or (counted and sub["n"].sum() == 0):
            continue
        fit = prev_aalen_johansen(sub["time_days"], sub["status"], cause=1, conf_type=conf_type,
                                  counts=sub["n"] if counted else None)
        fit = fit.drop_duplicates("time_days", keep="last").assign(group=group)
        parts.append(fit)
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "group" else float) for c in cols})
    out = pd.concat(parts, ignore_index=True)[cols]
    for c in ("n_risk", "n_event", "n_competing", "n_censor"):
        out[c] = out[c].astype(int)
    out["time_days"] = out["time_days"].astype(int)
    return out


def test_aalen_johansen_equals_the_previous_implementation_exactly():
    """Skipping the times without an event and updating in place: every column bit-identical,
    std_err and the CI included (the same floating-point operations in the same order)."""
    rng = np.random.default_rng(20251126)
    for trial in range(150):
        n = int(rng.integers(0, 250))
        t = rng.integers(0, int(rng.integers(1, 60)), n)
        s = rng.integers(0, 4 if trial % 3 == 0 else 3, n)
        cause = 2 if trial % 5 == 0 else 1
        counts = rng.integers(0, 4, n) if trial % 2 else None
        for ci in competing.CONF_TYPES:
            for tt in (t, t.astype(float), list(t)):
                pd.testing.assert_frame_equal(
                    competing.aalen_johansen(tt, s, cause=cause, conf_type=ci, counts=counts),
                    prev_aalen_johansen(tt, s, cause=cause, conf_type=ci, counts=counts), check_exact=True)
    pd.testing.assert_frame_equal(competing.aalen_johansen([np.nan, 3], [1, None]),
                                  prev_aalen_johansen([np.nan, 3], [1, None]), check_exact=True)


def test_cumulative_incidence_equals_the_previous_implementation_exactly():
    rng = np.random.default_rng(11)
    for trial in range(60):
        n = int(rng.integers(0, 400))
        ttd = pd.DataFrame({"group": rng.choice(["A", "B", "C", "x"], n),
                            "time_days": rng.integers(0, int(rng.integers(1, 90)), n).astype(np.int32),
                            "status": rng.integers(0, 3, n).astype(np.int32)})
        if trial % 2:
            ttd = ttd.groupby(["group", "time_days", "status"], as_index=False).size().rename(columns={"size": "n"})
            ttd.loc[ttd.index[:3], "n"] = 0                  # zero counts change nothing
        for ci in competing.CONF_TYPES:
            for levels in (["A", "B", "C"], ["C", "zz"], []):
                pd.testing.assert_frame_equal(staging.cumulative_incidence(ttd, levels, ci),
                                              prev_cumulative_incidence(ttd, levels, ci), check_exact=True)


def prev_staging_exports(snapshot, filters, by, ci="log"):
    """downstaging-summary and downstaging-cif before they shared one count query (verbatim SQL)."""
    from dashboard.grouping import group_sql
    counts = data.execute(f'select {group_sql("c")} as "group", count(*) as n from cohort c group by all',
                          snapshot, filters, params={"by": by})
    counts = counts[counts["n"] > 0]
    levels = ordered_levels(by, counts["group"]) if len(counts) else []
    n = int(counts["n"].sum())
    rate_counts = data.execute(f"""
select {group_sql("c")} as "group",
       count(*) filter (where not o.baseline_within_milan) as milan_eligible,
       count(*) filter (where not o.baseline_within_milan and o.is_downstaged_to_milan) as milan_achieved,
       count(*) filter (where not o.baseline_resectable) as resectable_eligible,
       count(*) filter (where not o.baseline_resectable and o.is_converted_to_resectable) as resectable_achieved,
       count(*) filter (where o.baseline_within_milan is null) as milan_unknown,
       count(*) filter (where o.baseline_resectable is null) as resectable_unknown
from cohort c
join staging_outcomes o using (patient_id)
group by all""", snapshot, filters, params={"by": by})
    rates = staging.group_rates_from_counts(rate_counts, levels)
    ttd = data.execute(f'select {group_sql("c")} as "group", t.time_days, t.status, count(*) as n '
                       "from time_to_downstaging t join cohort c using (patient_id) group by all",
                       snapshot, filters, params={"by": by})
    rows = prev_cumulative_incidence(ttd, levels, conf_type=ci)
    pooled_counts = ttd.groupby(["time_days", "status"], as_index=False)["n"].sum().assign(group="all")
    pooled = prev_cumulative_incidence(pooled_counts, ["all"], conf_type=ci)
    at = staging.step_at(pooled, 365)
    at_one_year = None if at is None else {
        "time_days": 365, "cif": at["cif"], "ci_lower": at["ci_lower"], "ci_upper": at["ci_upper"],
        "one_minus_km": staging.one_minus_km(pooled_counts, 365)}
    by_status = ttd.groupby("status")["n"].sum()
    return levels, n, rates, rows, {
        "by": by, "conf_type": ci, "n_eligible": int(ttd["n"].sum()), "n_downstaged": int(by_status.get(1, 0)),
        "n_died_first": int(by_status.get(2, 0)), "n_censored": int(by_status.get(0, 0)),
        "all_at_one_year": at_one_year, "n_baseline_unknown": int(rate_counts["milan_unknown"].sum())}


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f.to_query() or "all")
def test_staging_counts_exports_equal_the_previous_ones_exactly(snapshot, filters):
    """One count query for the group levels, downstaging-summary and downstaging-cif: the same levels,
    patients, rows and footnote numbers, to the bit."""
    for by, ci in [(by, "log") for by in BYS] + [("bclc_stage", "log-log"), ("none", "plain")]:
        levels, n, rates, rows, extra = prev_staging_exports(snapshot, filters, by, ci)
        counts = staging_exports.staging_counts(snapshot, filters, ALL_SITES, by)
        assert (counts["levels"], counts["n"]) == (levels, n)
        summary = staging_exports.downstaging_summary_export(snapshot, filters, by=by)
        pd.testing.assert_frame_equal(summary.rows, rates, check_exact=True)
        assert summary.n_patients == n
        cif = staging_exports.downstaging_cif_export(snapshot, filters, by=by, ci=ci)
        pd.testing.assert_frame_equal(cif.rows, rows, check_exact=True)
        assert cif.n_patients == n
        new_at, old_at = cif.extra.pop("all_at_one_year"), extra.pop("all_at_one_year")
        assert cif.extra == extra
        assert new_at == old_at or (new_at is not None and old_at is not None and all(
            new_at[k] == old_at[k] or (pd.isna(new_at[k]) and pd.isna(old_at[k])) for k in old_at))


def prev_link_bands(links: pd.DataFrame, order: list[str], left_pos: dict, right_pos: dict, scale: float) -> dict:
    """_link_bands before it read the rows as lists and numpy arrays (verbatim)."""
    rank = {s: i for i, s in enumerate(order)}
    src_top = {s: pos[0] for s, pos in left_pos.items()}
    tgt_top = {s: pos[0] for s, pos in right_pos.items()}
    bands = {}
    for r in links.sort_values("target", key=lambda c: c.map(rank)).itertuples():
        bands[(r.source, r.target)] = [src_top[r.source], src_top[r.source] - r.n * scale]
        src_top[r.source] -= r.n * scale
    for r in links.sort_values("source", key=lambda c: c.map(rank)).itertuples():
        bands[(r.source, r.target)] += [tgt_top[r.target], tgt_top[r.target] - r.n * scale]
        tgt_top[r.target] -= r.n * scale
    return {k: tuple(v) for k, v in bands.items()}


def prev_flow_figure(links: pd.DataFrame, measure: str, height: int = 500) -> figs.Figure:
    """flow_figure before it read the rows as lists and numpy arrays (verbatim)."""
    if links.empty or links["n"].sum() == 0:
        return figs.message_figure(figs.NO_PATIENTS)
    order = figs.state_order(measure)
    links = links[links["n"] > 0].copy()
    links["kind"] = [figs.link_kind(measure, s, t) for s, t in zip(links.source, links.target)]
    total = int(links["n"].sum())
    out_n = links.groupby("source")["n"].sum().to_dict()
    in_n = links.groupby("target")["n"].sum().to_dict()
    lefts, rights = [s for s in order if s in out_n], [s for s in order if s in in_n]
    scale = min((1 - figs.FLOW_GAP * (len(col) - 1)) / total for col in (lefts, rights))
    left_pos, right_pos = figs._stack(lefts, out_n, scale), figs._stack(rights, in_n, scale)
    bands = prev_link_bands(links, order, left_pos, right_pos, scale)
    margin = dict(l=8, r=8, t=40, b=56)
    plot_h = height - margin["t"] - margin["b"]
    kind_names = figs.KIND_LABELS[measure] | {figs.DIED: "Died before restaging", figs.NOT_RESTAGED: "Not yet restaged"}

    fig, annotations, placed, shown = figs.Figure(), [], [], set()
    x0, x1 = figs.FLOW_X["left"][1], figs.FLOW_X["right"][0]
    for r in sorted(links.itertuples(), key=lambda r: -r.n):      # big links first: they get the best places
        ys0, ys1, yt0, yt1 = bands[(r.source, r.target)]
        top_x, top_y = figs._bezier(x0, ys0, x1, yt0)
        bot_x, bot_y = figs._bezier(x0, ys1, x1, yt1)
        word = kind_names[r.kind].split(" (")[0]
        kind = "" if r.kind in (figs.DIED, figs.NOT_RESTAGED) else f" ({word[0].lower() + word[1:]})"
        text = f"{r.source} → {r.target}{kind}<br>{r.n} patients ({r.n / out_n[r.source]:.0%} of {r.source})"
        colour = figs.KIND_COLOURS[r.kind]
        fig.add_scatter(x=np.concatenate([top_x, bot_x[::-1]]), y=np.concatenate([top_y, bot_y[::-1]]),
                        fill="toself", mode="lines", line=dict(width=0.5, color=figs._rgba(colour, 0.7)),
                        fillcolor=figs._rgba(colour, 0.45), hoveron="fills", hoverinfo="text", text=text,
                        name=kind_names[r.kind], legendgroup=r.kind, showlegend=r.kind not in shown,
                        legendrank=figs.LINK_KINDS.index(r.kind))
        shown.add(r.kind)
        spot = figs._label_spot(x0, (ys0 + ys1) / 2, x1, (yt0 + yt1) / 2,
                           (7.5 * len(str(r.n)) + 10) / figs.ASSUMED_WIDTH_PX, 20 / plot_h, placed)
        placed.append(spot)
        annotations.append(dict(x=spot[0], y=spot[1], text=f"<b>{r.n}</b>", showarrow=False, name="link",
                                font=dict(size=12, color="#212529"), bgcolor="rgba(255,255,255,0.9)",
                                bordercolor=colour, borderwidth=1, borderpad=1, hovertext=text.replace("<br>", ": ")))

    for side, states, pos, counts in (("left", lefts, left_pos, out_n), ("right", rights, right_pos, in_n)):
        xa, xb = figs.FLOW_X[side]
        label_ys = figs._spread([(pos[s][0] + pos[s][1]) / 2 for s in states], 38 / plot_h)
        for s, ly in zip(states, label_ys):
            top, bottom = pos[s]
            if top - bottom < figs.MIN_NODE:
                mid = (top + bottom) / 2
                top, bottom = mid + figs.MIN_NODE / 2, mid - figs.MIN_NODE / 2
            when = "at baseline" if side == "left" else ("" if s in (figs.DIED, figs.NOT_RESTAGED) else "best at follow-up")
            hover = f"{s} {when}".strip() + f"<br>{counts[s]} of {total} patients ({counts[s] / total:.1%})"
            fig.add_scatter(x=[xa, xb, xb, xa, xa], y=[bottom, bottom, top, top, bottom], fill="toself",
                            mode="lines", line=dict(width=0), fillcolor=figs._state_colour(s), hoveron="fills",
                            hoverinfo="text", text=hover, showlegend=False)
            annotations.append(dict(
                x=xa - 0.008 if side == "left" else xb + 0.008, y=ly, xanchor="right" if side == "left" else "left",
                text=f"<b>{s[0].upper() + s[1:]}</b><br>n = {counts[s]}", showarrow=False, font=dict(size=13),
                align="right" if side == "left" else "left", name="node", hovertext=hover.replace("<br>", ": ")))
    for x, text, anchor in ((x0, figs.FLOW_HEADERS[0], "right"), (x1, figs.FLOW_HEADERS[1], "left")):
        annotations.append(dict(x=x, y=1, yref="paper", yanchor="bottom", xanchor=anchor, showarrow=False,
                                text=f"<b>{text}</b>", font=dict(size=13, color="#495057"), name="header"))
    fig.update_xaxes(visible=False, range=[0, 1], fixedrange=True)
    fig.update_yaxes(visible=False, range=[0, 1], fixedrange=True)
    figs.base_layout(fig, height=height)
    fig.update_layout(annotations=annotations, dragmode=False, margin=margin, hovermode="closest",
                      hoverlabel=dict(bgcolor="white"),
                      legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="center", x=0.5,
                                  traceorder="normal", font=dict(size=12)))
    return fig


def prev_cif_figure(rows: pd.DataFrame, by: str = "none") -> figs.Figure:
    """cif_figure before it read the rows as lists and numpy arrays (verbatim)."""
    if rows.empty:
        return figs.message_figure("No patient outside Milan at baseline in the current filter: nobody to downstage.")
    fig = figs.Figure()
    groups = list(dict.fromkeys(rows["group"]))
    ends = []
    for i, g in enumerate(groups):
        d = rows[rows.group == g].sort_values("time_days")
        n = int(d["n_risk"].iloc[0])
        colour = figs.colour_for(g, i)
        months = d["time_days"] / figs.MONTH
        lower = d["ci_lower"].where(d["cif"] > 0, 0.0).fillna(0.0)
        upper = d["ci_upper"].where(d["cif"] > 0, 0.0).fillna(0.0)
        name = f"{figs.group_label(by, g)} (n={n}{', <5: descriptive' if n < figs.SMALL_GROUP else ''})"
        if len(groups) <= figs.MAX_BANDS:
            fig.add_scatter(x=months, y=upper, mode="lines", line=dict(width=0, shape="hv"), showlegend=False,
                            legendgroup=g, hoverinfo="skip", name=f"{g} upper")
            fig.add_scatter(x=months, y=lower, mode="lines", line=dict(width=0, shape="hv"), fill="tonexty",
                            fillcolor=figs._rgba(colour, 0.15), showlegend=False, legendgroup=g, hoverinfo="skip",
                            name=f"{g} lower")
        fig.add_scatter(
            x=months, y=d["cif"], mode="lines", name=name, legendgroup=g,
            line=dict(color=colour, width=2.5, shape="hv", dash="dash" if n < figs.SMALL_GROUP else "solid"),
            customdata=np.column_stack([d["time_days"], d["ci_lower"].fillna(0), d["ci_upper"].fillna(0),
                                        d["n_risk"], d["n_event"], d["n_competing"]]),
            hovertemplate=f"<b>{figs.group_label(by, g)}</b><br>day %{{customdata[0]}} (%{{x:.1f}} months)"
                          "<br>downstaged: %{y:.1%} (95% CI %{customdata[1]:.1%}–%{customdata[2]:.1%})"
                          "<br>at risk %{customdata[3]}; downstaged %{customdata[4]}, died %{customdata[5]} "
                          "at this time<extra></extra>")
        last = d.iloc[-1]
        ends.append((float(last["time_days"] / figs.MONTH), float(last["cif"]), colour))
    # end labels, nudged apart so that two curves ending together stay readable
    ymax = max(0.05, float(np.nanmax(rows["ci_upper"].where(rows["cif"] > 0).fillna(0).to_numpy())) * 1.08,
               max(e[1] for e in ends) * 1.15)
    ymax = min(1.0, ymax)
    ends = sorted(ends, key=lambda e: -e[1]) if len(ends) <= figs.MAX_END_LABELS else []
    for (x, y, colour), sy in zip(ends, figs._spread([e[1] / ymax for e in ends], 0.06)):
        fig.add_annotation(x=x, y=sy * ymax, text=f"<b>{y:.0%}</b>", showarrow=False, xanchor="left", xshift=4,
                           font=dict(size=12, color=colour), name="end")
    fig.update_yaxes(title="Downstaged to within Milan", tickformat=".0%", range=[0, ymax], rangemode="tozero")
    fig.update_xaxes(title="Months since first DEB-TACE", dtick=3, rangemode="tozero")
    figs.base_layout(fig, height=420)
    fig.update_layout(hovermode="closest", margin=dict(l=60, r=40, t=40, b=50))
    return fig


def prev_flow_links(flow: pd.DataFrame, measure: str) -> pd.DataFrame:
    """flow_links before it read the rows as lists and numpy arrays (verbatim)."""
    order = {s: i for i, s in enumerate(staging.state_order(measure))}
    if "n" in flow.columns:
        flow = flow[flow["n"] > 0]
    if flow.empty:
        return pd.DataFrame({"source": pd.Series(dtype=str), "target": pd.Series(dtype=str),
                             "n": pd.Series(dtype=int)})
    unknown = set(flow["source"]).union(flow["target"]) - set(order)
    if unknown:
        raise ValueError(f"states not in the {measure} order: {sorted(unknown)}")
    if "n" in flow.columns:
        links = flow.groupby(["source", "target"], as_index=False)["n"].sum()
    else:
        links = flow.groupby(["source", "target"], as_index=False).size().rename(columns={"size": "n"})
    links = links.sort_values(["source", "target"], key=lambda c: c.map(order), ignore_index=True)
    links["n"] = links["n"].astype(int)
    return links[["source", "target", "n"]]


def prev_downsizing_summary(rows: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    """downsizing_summary before it read the rows as lists and numpy arrays (verbatim)."""
    out = []
    by_group = dict(tuple(rows.groupby("group", sort=False)["best_pct_change"])) if len(rows) else {}
    for group in levels:
        v = by_group.get(group, pd.Series(dtype=float)).dropna().astype(float)
        if v.empty:
            out.append((group, 0, None, None, None, 0))
            continue
        q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
        out.append((group, len(v), float(med), float(q1), float(q3), int((v <= -30).sum())))
    return pd.DataFrame(out, columns=["group", "n", "median", "q1", "q3", "n_30"])


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f.to_query() or "all")
def test_flow_and_cif_figures_equal_the_previous_ones(snapshot, filters):
    """The flow and CIF figures, built from lists and numpy arrays instead of DataFrames: the same
    JSON, byte for byte."""
    for measure in staging.MEASURES:
        rows = staging_exports.staging_flow_export(snapshot, filters, measure=measure).rows
        assert as_json(figs.flow_figure(rows, measure)) == as_json(prev_flow_figure(rows, measure))
        assert as_json(figs.flow_figure(rows, measure, height=300)) == as_json(prev_flow_figure(rows, measure, 300))
    for by, ci in [(by, "log") for by in BYS] + [("bclc_stage", "log-log"), ("none", "plain")]:
        rows = staging_exports.downstaging_cif_export(snapshot, filters, by=by, ci=ci).rows
        assert as_json(figs.cif_figure(rows, by)) == as_json(prev_cif_figure(rows, by))


def test_flow_links_and_downsizing_summary_equal_the_previous_ones():
    rng = np.random.default_rng(5)
    for measure in staging.MEASURES:
        states = staging.state_order(measure)
        for trial in range(30):
            n = int(rng.integers(0, 60))
            flow = pd.DataFrame({"source": rng.choice(states[:-2], n), "target": rng.choice(states, n)})
            pd.testing.assert_frame_equal(staging.flow_links(flow, measure), prev_flow_links(flow, measure),
                                          check_exact=True)
            counted = flow.groupby(["source", "target"], as_index=False).size().rename(columns={"size": "n"})
            counted.loc[counted.index[:2], "n"] = 0
            pd.testing.assert_frame_equal(staging.flow_links(counted, measure), prev_flow_links(counted, measure),
                                          check_exact=True)
    with pytest.raises(ValueError, match="states not in"):
        staging.flow_links(pd.DataFrame({"source": ["BCLC B"], "target": ["nowhere"]}), "bclc")
    for trial in range(40):
        n = int(rng.integers(0, 80))
        rows = pd.DataFrame({"group": rng.choice(["A", "B", "C"], n),
                             "best_pct_change": np.where(rng.random(n) < 0.1, np.nan, rng.normal(-20, 40, n))})
        for levels in (["A", "B", "C", "D"], ["C"], []):
            pd.testing.assert_frame_equal(staging.downsizing_summary(rows, levels),
                                          prev_downsizing_summary(rows, levels), check_exact=True)


def test_downsizing_all_rowid_is_the_export_order(snapshot):
    """The downsizing export sorts a group's patients by downsizing_all's rowid: the table must be
    stored in the order of best change (nulls last), then patient."""
    by_rowid = data.execute("select patient_id from downsizing_all order by rowid", snapshot)
    by_value = data.execute("select patient_id from downsizing_all "
                            "order by best_pct_change asc nulls last, patient_id asc", snapshot)
    assert by_rowid["patient_id"].tolist() == by_value["patient_id"].tolist()
