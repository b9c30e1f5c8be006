"""The subgroup forest plot: statistics and the `forest` export.

Sources of the expected numbers: R's survival package (tests/reference/r_forest.json, written by
tests/reference/make_forest_reference.R: coxph Efron + Wald CI per subgroup level, anova(..., test =
"LRT") for the interaction, survfit log-log for the single-arm form) on (a) the NCCTG lung data
(lung.csv), computed here directly by dashboard/analytics/forest.py, and (b) the synthetic registry's
latest cut (synthetic_forest.csv, export_synthetic_forest.py), through the export end to end; counts
per arm also taken with pandas from the parquet files.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import data, exports
from dashboard.analytics import forest as fa
from dashboard.exports import forest as fx
from dashboard.filters import Filters

REFERENCE = Path(__file__).resolve().parent / "reference"
R = json.loads((REFERENCE / "r_forest.json").read_text())
REL = 1e-6


def close(got, want) -> bool:
    """Equal to 1e-6 relative; R's NA (None) only where ours is missing (None/NaN)."""
    missing = got is None or (isinstance(got, float) and got != got)
    if want is None:
        return missing
    return not missing and got == pytest.approx(want, rel=REL, abs=1e-12)


def r_p(block):
    """R's interaction p, None where anova has no interaction term (df 0: not estimable)."""
    return block["p_interaction"] if block["df"] > 0 else None


# --- (a) NCCTG lung, computed directly ---------------------------------------------------------
@pytest.fixture(scope="module")
def lung():
    d = pd.read_csv(REFERENCE / "lung.csv")
    d["arm"] = (d["sex"] == 2).astype(int)
    d["ecog"] = d["ph.ecog"].map(lambda v: None if pd.isna(v) else "2+" if v >= 2 else str(int(v)))
    d["age65"] = np.where(d["age"] >= 65, ">= 65", "< 65")
    d["inst"] = d["inst"].map(lambda v: None if pd.isna(v) else str(int(v)))
    return d


@pytest.mark.parametrize("block", R["lung"]["hr"], ids=lambda b: b["field"])
def test_lung_subgroup_hazard_ratios_equal_r(lung, block):
    """HR, Wald CI and events/n per arm within each level: R coxph(Surv ~ sex) per level (r_forest.json)."""
    field = block["field"]
    sub = lung[field].fillna(fa.UNKNOWN).to_numpy(object)
    levels = [r["subgroup_level"] for r in block["rows"]]
    got = fa.subgroup_hazard_ratios(lung["time"], lung["status"], lung["arm"], sub, levels)
    for want, row in zip(block["rows"], got.to_dict("records")):
        assert row["subgroup_level"] == want["subgroup_level"]
        for c in ("n", "events", "ref_n", "ref_events"):
            assert row[c] == want[c], (field, want["subgroup_level"], c)
        for c in ("hazard_ratio", "ci_lower", "ci_upper"):
            assert close(row[c], want[c]), (field, want["subgroup_level"], c, row[c], want[c])


@pytest.mark.parametrize("block", R["lung"]["hr"], ids=lambda b: b["field"])
def test_lung_interaction_lrt_equals_r_anova(lung, block):
    """The interaction p and df: R anova(coxph(~ sex + sub), coxph(~ sex * sub), test = "LRT")."""
    p, df = fa.interaction_lrt(lung["time"], lung["status"], lung["arm"], lung[block["field"]].to_numpy(object))
    assert df == block["df"]
    if block["field"] == "inst":
        # R stops the interaction fit at 20 iterations with infinite coefficients (its warning); the
        # likelihood is then within R's own tolerance of its limit, so 1e-4 relative, not 1e-6
        assert p == pytest.approx(block["p_interaction"], rel=1e-4)
    else:
        assert close(p, r_p(block))


def test_lung_single_arm_equals_r(lung):
    """S(365) (log-log CI) and median per level: R survfit / summary(times = 365) (r_forest.json). By
    institution includes levels (e.g. inst 33, one death then one censored) whose curve is flat at 0.5 to
    the end: the median is the time it reached 0.5, as R prints it (issue 19 item 4)."""
    for field, rows in R["lung"]["single_arm"].items():
        sub = lung[field].fillna(fa.UNKNOWN).to_numpy(object)
        got = fa.subgroup_survival(lung["time"], lung["status"], sub, [r["subgroup_level"] for r in rows])
        for want, row in zip(rows, got.to_dict("records")):
            assert (row["n"], row["events"]) == (want["n"], want["events"])
            defined = want["last_time"] >= 365 or want["surv_365"] == 0
            for c in ("surv_365", "surv_365_ci_lower", "surv_365_ci_upper"):
                assert close(row[c], want[c] if defined else None), (field, want["subgroup_level"], c)
            for c in ("median_days", "median_ci_lower_days", "median_ci_upper_days"):
                assert close(row[c], want[c]), (field, want["subgroup_level"], c)


def test_not_estimable_subgroups_give_empty_hazard_ratios():
    """Hand-made: a level whose reference arm has no events, a level with one arm empty, a level with no
    events at all: NaN HR/CI (never an exception), counts as given."""
    time = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    event = [1, 0, 1, 1, 0, 0, 1, 0, 0, 0]
    arm = [1, 0, 1, 0, 1, 1, 1, 0, 1, 0]
    sub = ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"]
    got = fa.subgroup_hazard_ratios(time, event, arm, np.array(sub, dtype=object), ["a", "b", "c", "d", "e"])
    assert got["n"].tolist() == [1, 1, 2, 1, 1] and got["ref_n"].tolist() == [1, 1, 0, 1, 1]
    assert got["events"].tolist() == [1, 1, 0, 1, 0] and got["ref_events"].tolist() == [0, 1, 0, 0, 0]
    assert got.loc[[0, 2, 3, 4], "hazard_ratio"].isna().all()
    p, df = fa.interaction_lrt(time, event, arm, np.array(sub, dtype=object))
    assert p is None or 0 <= p <= 1


# --- (b) the synthetic registry, through the export -------------------------------------------
@pytest.fixture(scope="module")
def synthetic(synthetic_root):
    return data.resolve("latest", synthetic_root)


@pytest.fixture(scope="module")
def forest(synthetic):
    return exports.compute_export("forest", synthetic)


def test_reference_csv_is_the_test_registry(synthetic):
    """synthetic_forest.csv (what R read) holds the test registry's patients, OS and BCLC stage."""
    csv = pd.read_csv(REFERENCE / "synthetic_forest.csv")
    pts = pd.read_parquet(synthetic.path / "patients.parquet").sort_values("patient_id")
    assert csv["patient_id"].tolist() == pts["patient_id"].tolist()
    assert csv["bclc_stage"].tolist() == pts["bclc_stage"].tolist()
    assert (csv["age_years"] >= 65).tolist() == (pts["age_years"] >= 65).tolist()


def test_forest_export_defaults_to_bclc_c_vs_b(forest):
    assert (forest.extra["by"], forest.extra["ref"], forest.extra["compare"]) == ("bclc_stage", "B", "C")
    assert list(forest.rows.columns) == fx.HR_COLUMNS
    assert (forest.rows["group"] == "C").all()
    assert forest.extra["subgroups"] == [f for f in fx.SUBGROUPS if f != "bclc_stage"]


@pytest.mark.parametrize("block", R["synthetic"]["hr"], ids=lambda b: b["field"])
def test_forest_export_equals_r(forest, block):
    """Every row of `export forest` (defaults: OS, BCLC C vs B) equals R's coxph per subgroup level and the
    interaction p of anova(..., test = "LRT") on synthetic_forest.csv (r_forest.json)."""
    rows = forest.rows[forest.rows["subgroup_field"] == block["field"]]
    assert rows["subgroup_level"].tolist() == fx.ordered_levels(block["field"],
                                                                [r["subgroup_level"] for r in block["rows"]])
    want_rows = {r["subgroup_level"]: r for r in block["rows"]}
    for row in rows.to_dict("records"):
        want = want_rows[row["subgroup_level"]]
        for c in ("n", "events", "ref_n", "ref_events"):
            assert row[c] == want[c], (block["field"], row["subgroup_level"], c)
        for c in ("hazard_ratio", "ci_lower", "ci_upper"):
            assert close(row[c], want[c]), (block["field"], row["subgroup_level"], c, row[c], want[c])
        assert close(row["p_interaction"], r_p(block))
        assert row["small"] == (want["n"] < 10 or want["ref_n"] < 10)


def test_forest_counts_equal_pandas_on_parquet(synthetic, forest):
    """n/events per arm within sex: counted with pandas from patients.parquet (OS event = a death date)."""
    pts = pd.read_parquet(synthetic.path / "patients.parquet")
    for row in forest.rows[forest.rows["subgroup_field"] == "sex"].to_dict("records"):
        for stage, n_col, e_col in (("C", "n", "events"), ("B", "ref_n", "ref_events")):
            sel = pts[(pts["bclc_stage"] == stage) & (pts["sex"] == row["subgroup_level"])]
            assert row[n_col] == len(sel)
            assert row[e_col] == int(sel["death_date"].notna().sum())


def test_forest_single_arm_export_equals_r(synthetic):
    """--form single-arm: S(365) and median per level over every patient (R survfit, r_forest.json)."""
    exp = exports.compute_export("forest", synthetic, form="single-arm")
    assert list(exp.rows.columns) == fx.SINGLE_COLUMNS
    for field, rows in R["synthetic"]["single_arm"].items():
        got = exp.rows[exp.rows["subgroup_field"] == field].set_index("subgroup_level")
        assert sorted(got.index) == sorted(r["subgroup_level"] for r in rows)
        for want in rows:
            row = got.loc[want["subgroup_level"]]
            assert (row["n"], row["events"]) == (want["n"], want["events"])
            defined = want["last_time"] >= 365 or want["surv_365"] == 0
            for c in ("surv_365", "surv_365_ci_lower", "surv_365_ci_upper"):
                assert close(row[c], want[c] if defined else None), (field, want["subgroup_level"], c)
            for c in ("median_days", "median_ci_lower_days", "median_ci_upper_days"):
                assert close(row[c], want[c]), (field, want["subgroup_level"], c)


def test_a_level_not_in_the_filter_gives_no_rows_and_says_why(synthetic):
    exp = exports.compute_export("forest", synthetic, ref="X")
    assert exp.rows.empty and "'X' (--ref) is not a level of BCLC stage" in exp.extra["note"]
    exp = exports.compute_export("forest", synthetic, compare="Z")
    assert exp.rows.empty and "'Z' (--compare)" in exp.extra["note"]
    exp = exports.compute_export("forest", synthetic, Filters(bclc=("C",)))
    assert exp.rows.empty and "single level" in exp.extra["note"] and exp.n_patients > 0


@pytest.mark.parametrize("options, message", [
    (dict(ref="B", compare="B"), "differ"),
    (dict(subgroups="nope"), "unknown subgroup"), (dict(subgroups="bclc_stage"), "cannot include"),
    (dict(form="forest"), "unknown form"), (dict(by="none"), "--by"),
])
def test_forest_bad_options_give_clear_errors(synthetic, options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        exports.compute_export("forest", synthetic, **options)


def test_forest_other_comparison_and_subgroups(synthetic):
    """--by sex --ref M --compare F --subgroups afp_group: the HR per AFP level equals a direct coxph fit
    (dashboard's cox_hazard_ratios, itself checked against R) on the same patients."""
    from dashboard.analytics.survival import cox_hazard_ratios
    exp = exports.compute_export("forest", synthetic, by="sex", ref="M", compare="F", subgroups="afp_group")
    assert exp.rows["subgroup_field"].unique().tolist() == ["afp_group"]
    csv = pd.read_csv(REFERENCE / "synthetic_forest.csv")
    hi = csv[csv["afp_ng_ml"] > 400]
    want = cox_hazard_ratios(hi["os_days"], hi["os_event"], hi["sex"], reference="M").set_index("group")
    row = exp.rows.set_index("subgroup_level").loc["> 400"]
    assert row["hazard_ratio"] == pytest.approx(want.loc["F", "hazard_ratio"], rel=1e-9)


def test_forest_no_patient_and_single_level_filters(synthetic):
    """No patient in the filter: no rows (every role)."""
    import datetime as dt
    from dashboard.access import Scope
    for scope in (Scope(), Scope(patient_sites=(), suppress=True)):
        exp = exports.compute_export("forest", synthetic, Filters(enrolled_to=dt.date(2000, 1, 1)), scope)
        assert exp.rows.empty
        exp = exports.compute_export("forest", synthetic, Filters(bclc=("C",)), scope)
        assert exp.rows.empty and "single level" in exp.extra["note"]


@pytest.mark.parametrize("field", ["age65", "ecog"])
def test_cox_loglik_equals_r_fit_loglik(lung, field):
    """survival.cox_loglik of ~ arm + sub and ~ arm * sub: R's fit$loglik[2] of both (r_forest.json)."""
    from dashboard.analytics.survival import cox_loglik
    block = next(b for b in R["lung"]["hr"] if b["field"] == field)
    d = lung[lung[field].notna()]
    levels = sorted(d[field].unique())
    dummies = np.column_stack([(d[field] == lv).to_numpy(float) for lv in levels[1:]])
    arm = d["arm"].to_numpy(float)
    main = np.column_stack([arm, dummies])
    full = np.column_stack([main, dummies * arm[:, None]])
    t, e = d["time"].to_numpy(float), d["status"].to_numpy(int)
    assert close(cox_loglik(main, t, e)[0], block["loglik_main"])
    assert close(cox_loglik(full, t, e)[0], block["loglik_int"])
