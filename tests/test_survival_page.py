"""The Survival page end to end, without a browser: the NCCTG lung data mapped into a registry
snapshot and run through the views, the analytics and `python -m dashboard export`, against R.

Every expected number comes from R 4.2.2 with survival 3.5-3 (tests/reference/r_survival.json,
written by tests/reference/make_reference.R from tests/reference/lung.csv; each test names the
block it reads). The statistics module is tested against the same numbers directly in
test_survival_stats.py; these tests prove the whole path (snapshot -> patient_endpoints and
cohort views -> SurvivalAnalysis -> export JSON/CSV, and the page callback) gives them too.
Tolerance: 1e-6 relative, as the analysis plan asks.

Mapping of lung.csv into a snapshot: one site; first DEB-TACE 2020-01-01 for everyone; status 1
-> death_date = first DEB-TACE + time, status 0 -> last_known_alive_date = first DEB-TACE + time;
sex 1/2 -> 'M'/'F'; ph.ecog -> ecog_ps, the one missing ph.ecog -> 4, which the ECOG analyses
filter out with --filter ecog=0,1,2,3 (R drops that NA row: 227 rows). Each patient also has one
post-baseline scan on the same day, PD when status is 1 and SD otherwise, so TTP, PFS and local
TTP equal the lung data too.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from browser_helpers import export as export_subprocess
from fixtures import patient, scan, session, write_snapshot
from dashboard import data, exports
from dashboard.__main__ import main as cli_main
from dashboard.exports import survival as km

REF_DIR = Path(__file__).resolve().parent / "reference"
R = json.loads((REF_DIR / "r_survival.json").read_text())
LUNG = pd.read_csv(REF_DIR / "lung.csv")
T0 = dt.date(2020, 1, 1)
SEX = {"male": "M", "female": "F", "overall": "all"}
REL = 1e-6


def close(actual, expected, rel=REL, abs_=1e-12):
    """Elementwise equality within tolerance; R's null (NA) must be None/NaN here too."""
    a = np.array([np.nan if v is None else v for v in np.atleast_1d(actual)], dtype=float)
    b = np.array([np.nan if v is None else v for v in np.atleast_1d(expected)], dtype=float)
    assert a.shape == b.shape, (a, b)
    assert np.array_equal(np.isnan(a), np.isnan(b)), f"NA pattern differs:\n{a}\n{b}"
    ok = ~np.isnan(b)
    np.testing.assert_allclose(a[ok], b[ok], rtol=rel, atol=abs_)


def iso(days: float) -> str:
    return (T0 + dt.timedelta(days=int(days))).isoformat()


def registry_from(times, statuses, **per_patient) -> dict:
    """A one-site registry whose OS, TTP, PFS and local TTP are (times, statuses); per_patient
    gives columns of patients (lists aligned with times)."""
    patients, scans, sessions = [], [], []
    for i, (t, s) in enumerate(zip(times, statuses)):
        pid = f"P{i + 1:03d}"
        extra = {k: v[i] for k, v in per_patient.items()}
        bclc = extra.pop("bclc", "B")
        end = iso(t)
        patients.append(patient(pid, "S01", T0.isoformat(), bclc, death=end if s == 1 else None,
                                last_alive=end, **extra))
        sessions.append(session(pid, 1, T0.isoformat()))
        response = "PD" if s == 1 else "SD"
        scans.append(scan(pid, "FU", end, overall=response, local=response))
    return {"sites": [dict(site_id="S01", site_name="Lung Hospital", activation_date=dt.date(2019, 1, 1),
                           target_enrollment=300)],
            "patients": patients, "treatments": sessions, "imaging": scans}


@pytest.fixture(scope="module")
def lung_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("lung")
    ecog = [4 if pd.isna(v) else int(v) for v in LUNG["ph.ecog"]]
    rows = registry_from(LUNG["time"], LUNG["status"], sex=["M" if s == 1 else "F" for s in LUNG["sex"]],
                         ecog_ps=ecog, age_years=[int(a) for a in LUNG["age"]])
    write_snapshot(root, "2022-12-31", rows)
    return root


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """R's three tiny data sets (r_survival.json tiny_km) as BCLC stages A, B and C."""
    root = tmp_path_factory.mktemp("tiny")
    sets = [("A", "tiny_a"), ("B", "tiny_b"), ("C", "tiny_c")]
    times, statuses, stages = [], [], []
    for stage, key in sets:
        d = R["tiny_km"][key]["data"]
        times += d["time"]
        statuses += d["status"]
        stages += [stage] * len(d["time"])
    write_snapshot(root, "2024-06-30", registry_from(times, statuses, bclc=stages))
    return root


def cli(capsys, root, name, *args) -> dict:
    """`python -m dashboard export NAME --data ROOT ARGS...` in this process; the parsed JSON."""
    code = cli_main(["export", name, "--data", str(root), *args])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def by_group(doc) -> dict:
    return {r["group"]: r for r in doc["rows"]}


# --- the snapshots are valid registry data ----------------------------------------------------
def test_lung_snapshot_validates_and_keeps_every_patient(lung_root, capsys):
    doc = cli(capsys, lung_root, "patients")
    assert doc["n_patients"] == 228
    ends = pd.DataFrame(doc["rows"])
    assert (ends["os_days"].to_numpy() == LUNG["time"].to_numpy()).all()
    assert (ends["os_event"].astype(int).to_numpy() == LUNG["status"].to_numpy()).all()
    for ep in ("ttp", "pfs", "local_ttp"):
        assert (ends[f"{ep}_days"].to_numpy() == LUNG["time"].to_numpy()).all()
        assert (ends[f"{ep}_event"].astype(int).to_numpy() == LUNG["status"].to_numpy()).all()


# --- km-summary -------------------------------------------------------------------------------
@pytest.mark.parametrize("ci", ["log-log", "log", "plain"])
def test_km_summary_by_sex_reproduces_r(lung_root, capsys, ci):
    """Source: r_survival.json lung_km.by_conf_type[ci] (summary(survfit(Surv(time, status) ~ sex,
    lung, conf.type = ci))$table and summary(fit, times = c(182, 365, 730))) and lung_logrank.sex
    (survdiff): e.g. log-log male 270 (210, 306), female 426 (345, 524); chi-square 10.3267."""
    doc = cli(capsys, lung_root, "km-summary", "--by", "sex", "--ci", ci)
    assert (doc["endpoint"], doc["by"], doc["ci"], doc["n_patients"]) == ("os", "sex", ci, 228)
    rows = by_group(doc)
    assert list(rows) == ["M", "F", "All patients"]          # men first: the reference level; pooled row last
    for key in ("male", "female", "overall"):               # the pooled row: R's fit without grouping
        ref, row = R["lung_km"]["by_conf_type"][ci][key], rows["All patients" if key == "overall" else SEX[key]]
        assert (row["n"], row["events"]) == (ref["n"], ref["events"])
        close([row["median_days"], row["median_ci_lower_days"], row["median_ci_upper_days"]],
              [ref["median"], ref["median_lower"], ref["median_upper"]])
        at = ref["at_times"]
        for i, t in enumerate(at["time"]):
            close([row[f"surv_{t:g}"], row[f"surv_{t:g}_ci_lower"], row[f"surv_{t:g}_ci_upper"]],
                  [at["surv"][i], at["lower"][i], at["upper"][i]])
    lr = R["lung_logrank"]["sex"]
    assert doc["logrank"]["df"] == lr["df"] == 1
    close([doc["logrank"]["chisq"], doc["logrank"]["p_value"]], [lr["chisq"], lr["p"]])


def test_km_summary_headline_numbers_through_a_real_subprocess(lung_root):
    """The command a statistician types, in its own process. Source: the analysis plan's sanity
    values (R survival 3.5-3): men 270 (210-306), women 426 (345-524) days, log-rank 10.33 on 1 df,
    p = 0.00131; median follow-up by reverse KM 588 (511, 821) days (r_survival.json
    lung_reverse_km.overall)."""
    doc = export_subprocess(lung_root, "km-summary", by="sex")
    rows = by_group(doc)
    assert [rows["M"][k] for k in ("median_days", "median_ci_lower_days", "median_ci_upper_days")] == [270, 210, 306]
    assert [rows["F"][k] for k in ("median_days", "median_ci_lower_days", "median_ci_upper_days")] == [426, 345, 524]
    assert round(doc["logrank"]["chisq"], 2) == 10.33 and round(doc["logrank"]["p_value"], 5) == 0.00131
    ref = R["lung_reverse_km"]["overall"]
    assert [doc["median_followup_days"], doc["median_followup_ci_lower_days"],
            doc["median_followup_ci_upper_days"]] == [ref["median"], ref["median_lower"], ref["median_upper"]]


@pytest.mark.parametrize("ci", ["log-log", "log"])
def test_km_summary_without_grouping_is_the_overall_fit(lung_root, capsys, ci):
    """Source: r_survival.json lung_km.by_conf_type[ci].overall: 310 (284, 361) log-log,
    310 (285, 363) log; S(365) = 0.409242."""
    doc = cli(capsys, lung_root, "km-summary", "--by", "none", "--ci", ci)
    assert [r["group"] for r in doc["rows"]] == ["all"]
    assert doc["logrank"] is None
    ref, row = R["lung_km"]["by_conf_type"][ci]["overall"], doc["rows"][0]
    assert (row["n"], row["events"]) == (228, 165)
    close([row["median_days"], row["median_ci_lower_days"], row["median_ci_upper_days"]],
          [ref["median"], ref["median_lower"], ref["median_upper"]])
    close([row["surv_365"], row["surv_365_ci_lower"], row["surv_365_ci_upper"]],
          [ref["at_times"]["surv"][1], ref["at_times"]["lower"][1], ref["at_times"]["upper"][1]])


@pytest.mark.parametrize("endpoint", ["ttp", "pfs", "local_ttp"])
def test_every_endpoint_reads_its_own_rows(lung_root, capsys, endpoint):
    """The snapshot gives every endpoint the lung times, so each reproduces R's log-log medians
    (r_survival.json lung_km.by_conf_type['log-log']) and the same log-rank test."""
    doc = cli(capsys, lung_root, "km-summary", "--by", "sex", "--endpoint", endpoint)
    assert doc["endpoint"] == endpoint
    rows = by_group(doc)
    for key in ("male", "female"):
        ref = R["lung_km"]["by_conf_type"]["log-log"][key]
        assert [rows[SEX[key]][k] for k in ("median_days", "median_ci_lower_days", "median_ci_upper_days")] == \
            [ref["median"], ref["median_lower"], ref["median_upper"]]
    close(doc["logrank"]["chisq"], R["lung_logrank"]["sex"]["chisq"])


def test_four_level_ecog_grouping_logrank_and_cox(lung_root, capsys):
    """Source: r_survival.json lung_logrank['ph.ecog'] (survdiff on the 227 rows with ph.ecog,
    chi-square 21.96 on 3 df, level 3 a single patient) and lung_cox['ph.ecog']
    (coxph(Surv(time, status) ~ factor(ph.ecog)), Efron, reference 0: --ref 0, the default being the
    largest group)."""
    doc = cli(capsys, lung_root, "km-summary", "--by", "ecog_group", "--filter", "ecog=0,1,2,3")
    ref = R["lung_logrank"]["ph.ecog"]
    assert doc["n_patients"] == ref["rows_used"] == 227
    assert [r["group"] for r in doc["rows"]] == ["0", "1", "2", "3", "All patients"]
    assert [r["n"] for r in doc["rows"]] == ref["n"] + [227]
    assert [r["events"] for r in doc["rows"]] == ref["observed"] + [sum(ref["observed"])]
    assert doc["logrank"]["df"] == 3
    close([doc["logrank"]["chisq"], doc["logrank"]["p_value"]], [ref["chisq"], ref["p"]])

    cox = by_group(cli(capsys, lung_root, "cox", "--by", "ecog_group", "--filter", "ecog=0,1,2,3", "--ref", "0"))
    assert cox["0"]["hazard_ratio"] == 1.0 and cox["0"]["p_value"] is None
    for level in ("1", "2", "3"):
        r = R["lung_cox"]["ph.ecog"]["levels"][f"factor(ph.ecog){level}"]
        close([cox[level][k] for k in ("hazard_ratio", "ci_lower", "ci_upper", "p_value")],
              [r["hr"], r["hr_lower"], r["hr_upper"], r["wald_p"]])


# --- cox --------------------------------------------------------------------------------------
def test_cox_by_sex_reproduces_r(lung_root, capsys):
    """Source: r_survival.json lung_cox.sex (coxph(Surv(time, status) ~ factor(sex)), Efron):
    HR female vs male 0.588003 (0.423718, 0.815985), Wald p 0.0014912."""
    doc = cli(capsys, lung_root, "cox", "--by", "sex")
    assert doc["reference"] == "M"
    assert list(doc["rows"][0]) == ["group", "hazard_ratio", "ci_lower", "ci_upper", "p_value"]
    rows = by_group(doc)
    assert rows["M"] == {"group": "M", "hazard_ratio": 1.0, "ci_lower": None, "ci_upper": None, "p_value": None}
    r = R["lung_cox"]["sex"]["levels"]["factor(sex)2"]
    close([rows["F"][k] for k in ("hazard_ratio", "ci_lower", "ci_upper", "p_value")],
          [r["hr"], r["hr_lower"], r["hr_upper"], r["wald_p"]])


def test_cox_without_grouping_has_no_rows(lung_root, capsys):
    doc = cli(capsys, lung_root, "cox", "--by", "none")
    assert doc["rows"] == [] and doc["reference"] is None


# --- km-risk-table ----------------------------------------------------------------------------
@pytest.mark.parametrize("by,keys", [("sex", ("male", "female")), ("none", ("overall",))])
def test_risk_table_default_grid_every_90_days(lung_root, capsys, by, keys):
    """Source: r_survival.json lung_risk_table.grid (t = 0, 90, ..., 990; n.risk = #{time >= t},
    cumulative events and censored #{time <= t}, checked against summary(fit, times)). The
    export's default grid is every 90 days up to the longest time (1022 days): the same times."""
    doc = cli(capsys, lung_root, "km-risk-table", "--by", by)
    rows = pd.DataFrame(doc["rows"])
    for key in keys:
        ref = R["lung_risk_table"]["grid"][key]
        got = rows[rows["group"] == SEX[key]]
        assert got["time_days"].tolist() == ref["time"]
        assert got["n_at_risk"].tolist() == ref["n_risk"]
        assert got["cum_events"].tolist() == ref["cum_events"]
        assert got["cum_censored"].tolist() == ref["cum_censored"]


def test_risk_table_at_tied_death_times_counts_time_at_least_t(lung_root, capsys):
    """Source: r_survival.json lung_risk_table.tied_event_times.table: at t = 11 three men die,
    and all 138 men are at risk (time >= 11, R's convention; lifelines' default would say 135)."""
    doc = cli(capsys, lung_root, "km-risk-table", "--by", "sex", "--times", "11,13,53,145,163,201")
    rows = pd.DataFrame(doc["rows"])
    for key in ("male", "female"):
        ref = R["lung_risk_table"]["tied_event_times"]["table"][key]
        got = rows[rows["group"] == SEX[key]]
        assert got["time_days"].tolist() == ref["time"]
        assert got["n_at_risk"].tolist() == ref["n_risk"]
        assert got["cum_events"].tolist() == ref["cum_events"]
        assert got["cum_censored"].tolist() == ref["cum_censored"]
    men_11 = rows[(rows.group == "M") & (rows.time_days == 11)].iloc[0]
    assert men_11.n_at_risk == 138 and men_11.cum_events == 3


# --- km-curve ---------------------------------------------------------------------------------
def test_km_curve_is_rs_step_function_from_time_zero(lung_root, capsys):
    """Source: r_survival.json lung_km.overall_step_function_loglog (survfit(Surv(time, status)
    ~ 1, lung, conf.type = 'log-log'): 186 distinct times), after survfit0's row S(0) = 1."""
    doc = cli(capsys, lung_root, "km-curve", "--by", "none")
    rows = pd.DataFrame(doc["rows"])
    ref = R["lung_km"]["overall_step_function_loglog"]
    assert rows.iloc[0][["time_days", "surv", "ci_lower", "ci_upper", "n_risk"]].tolist() == [0, 1, 1, 1, 228]
    step = rows.iloc[1:]
    close(step["time_days"], ref["time"])
    close(step["surv"], ref["surv"])
    close(step["ci_lower"], ref["lower"])
    close(step["ci_upper"], ref["upper"])
    close(step["n_risk"], ref["n_risk"])
    close(step["n_event"], ref["n_event"])
    close(step["n_censor"], ref["n_censor"])
    assert list(rows.columns[:5]) == ["group", "time_days", "surv", "ci_lower", "ci_upper"]


# --- a curve flat at exactly 0.5 --------------------------------------------------------------
@pytest.mark.parametrize("ci", ["log-log", "log", "plain"])
def test_flat_half_medians_through_the_export(tiny_root, capsys, ci):
    """Source: r_survival.json tiny_km (R survival 3.5-3): tiny_a S = 0.5 on [2, 4) -> median 3;
    tiny_b S = 0.5 on [15, 25) -> 20; tiny_c S = 0.5 on [2, 3) -> 2.5 (the midpoint of the flat,
    where lifelines would say 2, 15, 2); the upper bounds are never crossed: NR (null)."""
    doc = cli(capsys, tiny_root, "km-summary", "--ci", ci)          # default grouping: BCLC stage
    rows = by_group(doc)
    for stage, key in (("A", "tiny_a"), ("B", "tiny_b"), ("C", "tiny_c")):
        ref = R["tiny_km"][key][ci]
        assert [rows[stage][k] for k in ("median_days", "median_ci_lower_days", "median_ci_upper_days")] == \
            [ref["median"], ref["median_lower"], ref["median_upper"]]
    curve = pd.DataFrame(cli(capsys, tiny_root, "km-curve", "--ci", ci)["rows"])
    for stage, key in (("A", "tiny_a"), ("B", "tiny_b"), ("C", "tiny_c")):
        step, ref = curve[curve.group == stage].iloc[1:], R["tiny_km"][key][ci]["step"]
        close(step["surv"], ref["surv"])
        close(step["ci_lower"], ref["lower"])
        close(step["ci_upper"], ref["upper"])


def test_survival_past_the_last_follow_up_is_not_estimable_unless_zero(tiny_root, capsys):
    """tiny_b's last time (day 30) is a censoring at S = 0.25: S(182) is not estimable (R's
    summary(fit, times = 182) leaves it out); tiny_a ends with a death at S = 0: S(182) = 0 (its
    log-log CI is NA in R)."""
    rows = by_group(cli(capsys, tiny_root, "km-summary"))
    assert [rows["B"][k] for k in ("surv_182", "surv_182_ci_lower", "surv_182_ci_upper")] == [None] * 3
    assert [rows["A"][k] for k in ("surv_182", "surv_182_ci_lower", "surv_182_ci_upper")] == [0.0, None, None]


# --- options and formats ----------------------------------------------------------------------
def test_summary_columns_and_csv(lung_root, capsys):
    doc = cli(capsys, lung_root, "km-summary", "--by", "sex")
    assert list(doc["rows"][0]) == km.SUMMARY_COLUMNS == [
        "group", "n", "events", "median_days", "median_ci_lower_days", "median_ci_upper_days",
        "surv_182", "surv_182_ci_lower", "surv_182_ci_upper", "surv_365", "surv_365_ci_lower", "surv_365_ci_upper",
        "surv_730", "surv_730_ci_lower", "surv_730_ci_upper"]
    assert cli_main(["export", "km-summary", "--data", str(lung_root), "--by", "sex", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ",".join(km.SUMMARY_COLUMNS)
    assert lines[1].startswith("M,138,112,270.0,210.0,306.0,")


@pytest.mark.parametrize("args,message", [
    (["--by", "tumour_colour"], "unknown grouping"),
    (["--times=-5"], "--times"),
    (["--times", "0,abc"], "--times"),
])
def test_bad_options_are_errors_not_crashes(lung_root, capsys, args, message):
    name = "km-risk-table" if "--times" in " ".join(args) else "km-summary"
    assert cli_main(["export", name, "--data", str(lung_root), *args]) == 2
    assert message in capsys.readouterr().err


def test_unknown_endpoint_and_ci_are_refused(lung_root):
    for args in (["--endpoint", "dfs"], ["--ci", "arcsine"]):
        with pytest.raises(SystemExit) as e:
            cli_main(["export", "km-summary", "--data", str(lung_root), *args])
        assert e.value.code == 2
    snapshot = data.resolve("latest", lung_root)
    with pytest.raises(ValueError, match="unknown endpoint"):
        km.survival_analysis(snapshot, endpoint="dfs")
    with pytest.raises(ValueError, match="unknown CI transform"):
        km.survival_analysis(snapshot, ci="arcsine")


# --- figure -----------------------------------------------------------------------------------
def test_ticks_every_six_months_or_three_for_short_follow_up():
    from dashboard.figures.survival import tick_days, tick_months
    assert tick_months(1022) == [0, 6, 12, 18, 24, 30]          # lung: 33.6 months
    assert tick_months(600) == [0, 3, 6, 9, 12, 15, 18]         # under 2 years: every 3 months
    assert tick_months(100) == [0, 1, 2, 3]
    assert tick_days(400) == [0, 3 * 30.4375, 6 * 30.4375, 9 * 30.4375, 12 * 30.4375]


def test_group_colours_follow_the_shared_palette():
    from dashboard.figures.common import BCLC_COLOURS, QUALITATIVE
    from dashboard.figures.survival import group_colours
    assert group_colours("bclc_stage", ["A", "B", "C"]) == {s: BCLC_COLOURS[s] for s in "ABC"}
    ecog = group_colours("ecog_group", ["0", "1", "2", "3"])        # not BCLC stage 0's colour
    assert list(ecog.values()) == QUALITATIVE[:4] and len(set(ecog.values())) == 4


def test_figure_draws_the_exports_rows(lung_root):
    from dashboard.figures.survival import CI_BAND, km_figure, months, tick_days
    snapshot = data.resolve("latest", lung_root)
    a = km.survival_analysis(snapshot, by="sex")
    ticks = tick_days(a.max_days())
    curve, risk = a.curve(), a.risk_table(ticks)
    fig = km_figure(curve, risk, a.levels, show_ci=False)
    by_name = {t.name: t for t in fig.data}
    men = curve[curve.group == "M"]
    np.testing.assert_allclose(by_name["M"].x, months(men.time_days))
    np.testing.assert_allclose(by_name["M"].y, men.surv)
    assert by_name["M"].line.shape == "hv"
    # censoring marks at the censored times, on the curve
    cens = by_name["M censoring"]
    np.testing.assert_allclose(cens.x, months(men[men.n_censor > 0].time_days))
    # the numbers under the curve at exactly the x ticks, as the risk-table rows give them
    table = by_name["F at risk"]
    assert list(fig.layout.xaxis.tickvals) == list(table.x) == [t / 30.4375 for t in ticks]
    assert list(table.text) == [str(v) for v in risk[risk.group == "F"].n_at_risk]
    assert list(by_name["F events"].text) == [str(v) for v in risk[risk.group == "F"].cum_events]
    assert list(by_name["F censored"].text) == [str(v) for v in risk[risk.group == "F"].cum_censored]
    assert table.xaxis == "x2" and fig.layout.xaxis.matches == "x2"     # one x axis for curves and table
    # CI bands: drawn, hidden until asked for
    bands = [t for t in fig.data if t.meta == CI_BAND]
    assert len(bands) == 4 and all(t.visible is False for t in bands)
    assert all(t.visible for t in km_figure(curve, risk, a.levels, show_ci=True).data if t.meta == CI_BAND)


def test_figure_without_patients_says_so():
    from dashboard.figures.survival import km_figure
    fig = km_figure(pd.DataFrame(columns=km.CURVE_COLUMNS), pd.DataFrame(columns=km.RISK_COLUMNS), [])
    assert "No patients" in fig.layout.annotations[0].text


# --- the page callback ------------------------------------------------------------------------
def text_of(component) -> str:
    """All text inside a Dash component tree."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(text_of(c) for c in component)
    return text_of(getattr(component, "children", None))


def find(component, id_):
    if isinstance(component, (list, tuple)):
        return next((f for c in component if (f := find(c, id_)) is not None), None)
    if getattr(component, "id", None) == id_:
        return component
    return find(getattr(component, "children", None), id_) if hasattr(component, "children") else None


def table_rows(table) -> dict[str, list[str]]:
    body = table.children[1]
    return {text_of(tr.children[0]).strip(): [text_of(td).strip() for td in tr.children[1:]] for tr in body.children}


@pytest.fixture
def lung_state(lung_root, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(lung_root))
    return {"snapshot": "2022-12-31", "query": ""}


def test_callback_shows_rs_numbers_and_hands_the_exports_its_options(lung_state, lung_root):
    """The page's table, worked by hand from R's numbers (days / 30.4375, one decimal): men
    270 (210, 306) days = 8.9 (6.9-10.1) months, women 426 (345, 524) = 14.0 (11.3-17.2); women's
    1-year S 0.526463 (0.403580, 0.635316) = 52.6% (40.4-63.5); log-rank 10.33 on 1 df, p 0.0013;
    HR 0.588 (0.424, 0.816), p 0.0015; median follow-up 588 (511, 821) days = 19.3 (16.8-27.0)."""
    from dashboard.callbacks.survival import survival_view
    (fig, config, curve_spec, curve_note, summary, summary_spec, summary_note, cox, cox_spec, cox_note,
     risk_spec) = survival_view(lung_state, "os", "sex", "log-log", [])
    rows = table_rows(find(summary, "survival-summary-table"))
    assert rows["M"][:3] == ["138", "112", "8.9 (6.9–10.1)"]
    assert rows["F"][:3] == ["90", "53", "14.0 (11.3–17.2)"]
    assert rows["F"][4] == "52.6% (40.4–63.5)"
    assert text_of(find(summary, "survival-logrank")) == "Log-rank test: χ² = 10.33 on 1 df, p = 0.0013 (descriptive)."
    assert "19.3 (16.8–27.0) months" in text_of(find(summary, "survival-followup"))
    hr = table_rows(find(cox, "survival-cox-table"))
    assert hr["M"] == ["1 (reference)", ""] and hr["F"] == ["0.59 (0.42–0.82)", "0.0015"]
    assert "log-log" in text_of(summary_note) and "descriptive" in text_of(summary_note)
    assert "death from any cause" in text_of(curve_note)
    # every CSV button gets the export and the options the page used
    opts = {"endpoint": "os", "by": "sex", "ci": "log-log"}
    assert (curve_spec["export"], curve_spec["options"]) == ("km-curve", opts)
    assert (summary_spec["export"], summary_spec["options"]) == ("km-summary", opts)
    assert (cox_spec["export"], cox_spec["options"]) == ("cox", opts)
    assert risk_spec["export"] == "km-risk-table"
    # the numbers under the curves are the risk-table export at the figure's ticks
    snapshot = data.resolve("latest", lung_root)
    risk = exports.run_export("km-risk-table", snapshot, **risk_spec["options"]).rows
    assert sorted(set(risk.time_days)) == [m * 30.4375 for m in (0, 6, 12, 18, 24, 30)]
    shown = {t.name: list(t.text) for t in fig.data if t.meta == "risk-table"}
    for g in ("M", "F"):
        assert shown[f"{g} at risk"] == [str(v) for v in risk[risk.group == g].n_at_risk]
        assert shown[f"{g} censored"] == [str(v) for v in risk[risk.group == g].cum_censored]
    # at 6 months (182.625 days) men at risk = men with time >= 183 days, counted from lung.csv
    men = LUNG[LUNG.sex == 1]
    assert shown["M at risk"][1] == str(int((men.time >= 182.625).sum()))


def test_callback_with_log_ci_and_bands(lung_state):
    """Source: r_survival.json lung_km.by_conf_type.log.male: 270 (212, 310) = 8.9 (7.0-10.2)."""
    from dashboard.callbacks.survival import survival_view
    out = survival_view(lung_state, "os", "sex", "log", ["on"])
    assert table_rows(find(out[4], "survival-summary-table"))["M"][2] == "8.9 (7.0–10.2)"
    assert all(t.visible for t in out[0].data if t.meta == "ci-band")
    assert "log (R's default)" in text_of(out[6])


def test_callback_flags_groups_under_five_patients(tiny_root, monkeypatch):
    from dashboard.callbacks.survival import survival_view
    monkeypatch.setenv("REGISTRY_DATA", str(tiny_root))
    out = survival_view({"snapshot": "2024-06-30", "query": ""}, "os", "bclc_stage", "log-log", [])
    legend = [t.name for t in out[0].data if t.meta == "km"]
    assert legend == ["A (n = 4) †", "B (n = 6)", "C (n = 4) †"]
    assert "Fewer than 5 patients (A, C)" in text_of(out[6])
    rows = table_rows(find(out[4], "survival-summary-table"))
    assert rows["A †"][2] == "0.1 (0.0–NR)" and rows["B"][2] == "0.7 (0.2–NR)"   # 3 (1, NR) and 20 (5, NR) days
    assert rows["B"][3] == "—"                                                   # S(182): not estimable


def test_callback_without_grouping_and_without_patients(lung_state):
    from dashboard.callbacks.survival import survival_view
    out = survival_view(lung_state, "pfs", "none", "plain", [])
    assert "needs two or more groups" in text_of(out[4])
    assert "Hazard ratios need a grouping" in text_of(out[7])
    assert [t.name for t in out[0].data if t.meta == "km"] == ["All patients (n = 228)"]
    empty = survival_view({**lung_state, "query": "age_max=20"}, "os", "sex", "log-log", [])
    assert "No patients" in empty[0].layout.annotations[0].text
    assert "No patients" in text_of(empty[4]) and "No patients" in text_of(empty[7])


def test_callback_falls_back_to_defaults_for_unknown_options(lung_state):
    from dashboard.callbacks.survival import survival_view
    out = survival_view(lung_state, "dfs", "colour", "arcsine", None)
    assert out[2]["options"] == {"endpoint": "os", "by": "bclc_stage", "ci": "log-log"}


def test_page_layout_reads_its_options_from_the_url():
    import dash
    from dashboard import ids
    from dashboard.app import create_app
    create_app()                                    # registers the pages
    page = next(p for p in dash.page_registry.values() if p["path"] == "/survival")
    layout = page["layout"](endpoint="pfs", by="sex", ci="log", bands="on")
    values = {key: find(layout, ids.page_option(key)).value for key in ("endpoint", "by", "ci", "bands")}
    assert values == {"endpoint": "pfs", "by": "sex", "ci": "log", "bands": ["on"]}
    for container in ("survival-endpoint", "survival-by", "survival-ci", "survival-bands"):
        assert find(layout, container) is not None
    bad = page["layout"](endpoint="x", by="y", ci="z", bands="maybe")
    assert {key: find(bad, ids.page_option(key)).value for key in ("endpoint", "by", "ci", "bands")} == \
        {"endpoint": "os", "by": "bclc_stage", "ci": "log-log", "bands": []}


def test_analysis_rows_are_the_patient_endpoints_of_the_filter_in_patient_order(synthetic_root):
    """survival_analysis reads patient_endpoints_all joined to cohort, without the text columns: the
    same rows, values and order as the `patient_endpoints` view joined to cohort (the query before)."""
    from dashboard.filters import Filters
    from dashboard.grouping import group_sql
    snap = data.resolve("latest", synthetic_root)
    before = (f'select e.endpoint, e.time_days, e.is_event, {group_sql("c")} as "group" from patient_endpoints e '
              "join cohort c using (patient_id) where e.endpoint in ($endpoint, 'os') order by e.endpoint, c.patient_id")
    for filters in (Filters(), Filters.parse_pairs([("bclc", "B,C"), ("sex", "F")])[0]):
        for endpoint, by in (("ttp", "bclc_stage"), ("os", "site_id"), ("pfs", "none")):
            a = km.survival_analysis(snap, filters, endpoint=endpoint, by=by)
            rows = data.execute(before, snap, filters, params={"endpoint": endpoint, "by": by})
            for part, name in ((a.patients, endpoint), (a.os, "os")):
                expected = rows[rows["endpoint"] == name]
                assert len(part) == len(expected) > 10
                assert part["group"].tolist() == expected["group"].tolist()
                assert part["time_days"].tolist() == expected["time_days"].astype(float).tolist()
                assert part["is_event"].tolist() == expected["is_event"].astype(int).tolist()
