"""Enrollment per site under a filter (issue 19, item 6): the `enrollment` export's n_enrolled (the filter) and
enrolled_total (the site's every patient, no filter, within the user's sites) against pandas counts over the
snapshot's patients.parquet; the issue's example (S08 under ?bclc=C: 2 of 27 enrolled, target 40, from the synthetic
registry's latest cut); the card shows "n of N enrolled (target T)" and no "% of target" under a filter, as today
without one; a sponsor sees both counts from 1 to 4 as "<5"; an investigator's totals are of their own sites."""
import pandas as pd
import pytest

from dashboard import data, exports
from dashboard.access import SUPPRESSED, User, scope_for
from dashboard.callbacks import enrollment as cb
from dashboard.filters import Filters


@pytest.fixture(scope="module")
def latest(synthetic_root):
    return data.resolve("latest", synthetic_root)


def pandas_counts(snapshot, **where) -> pd.Series:
    """Enrolled patients per site (first DEB-TACE on or before the cut-off), read with pandas; `where` column=values."""
    patients = pd.read_parquet(snapshot.path / "patients.parquet")
    patients = patients[pd.to_datetime(patients["first_treatment_date"]) <= pd.Timestamp(snapshot.cutoff_date)]
    for column, values in where.items():
        patients = patients[patients[column].isin(values)]
    return patients.groupby("site_id").size()


def test_issue_example_s08_under_bclc_c(latest):
    rows = exports.run_export("enrollment", latest, Filters(bclc=("C",))).rows.set_index("site_id")
    assert (rows.loc["S08", "n_enrolled"], rows.loc["S08", "enrolled_total"], rows.loc["S08", "target_enrollment"]) \
        == (2, 27, 40)
    sites = pd.read_parquet(latest.path / "sites.parquet").set_index("site_id")
    assert sites.loc["S08", "target_enrollment"] == 40


@pytest.mark.parametrize("where", [{"bclc_stage": ["C"]}, {"bclc_stage": ["B"], "sex": ["F"]}, {}])
def test_counts_equal_pandas_over_the_parquet_files(latest, where):
    names = {"bclc_stage": "bclc", "sex": "sex"}
    filters = Filters(**{names[k]: tuple(v) for k, v in where.items()})
    exp = exports.run_export("enrollment", latest, filters)
    rows = exp.rows.set_index("site_id")
    filtered, total = pandas_counts(latest, **where), pandas_counts(latest)
    assert rows["n_enrolled"].to_dict() == {s: int(filtered.get(s, 0)) for s in rows.index}
    assert rows["enrolled_total"].to_dict() == {s: int(total.get(s, 0)) for s in rows.index}
    assert list(exp.rows.columns[:5]) == ["site_id", "site_name", "n_enrolled", "enrolled_total", "target_enrollment"]
    assert exp.extra["subgroup"] == bool(where)


def test_a_site_filter_alone_keeps_whole_sites(latest):
    exp = exports.run_export("enrollment", latest, Filters(site=("S02", "S08")))
    assert exp.extra["subgroup"] is False
    assert exp.rows["n_enrolled"].tolist() == exp.rows["enrolled_total"].tolist() == \
        [int(pandas_counts(latest)[s]) for s in ("S02", "S08")]
    # with a site filter and a subgroup filter: the totals are of the selected sites only
    sub = exports.run_export("enrollment", latest, Filters(site=("S08",), bclc=("C",))).rows
    assert sub[["site_id", "n_enrolled", "enrolled_total"]].values.tolist() == [["S08", 2, 27]]


def _card(latest, query):
    fig, _, _, note = cb.enrollment_card({"snapshot": latest.snapshot_id, "query": query})
    enrolled = next(t for t in fig.data if t.name == "Enrolled")
    return fig, dict(zip([y.split(" ")[0] for y in enrolled.y], enrolled.text)), note


def test_card_under_a_filter_shows_n_of_total_and_target_never_percent(latest, synthetic_root, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    fig, texts, note = _card(latest, "bclc=C")
    assert texts["S08"] == "2 of 27 enrolled (target 40)"
    assert not any("%" in t for t in texts.values())
    assert "No \"% of target\" under a filter" in note
    total = next(t for t in fig.data if t.name == "Enrolled in total")
    assert dict(zip([y.split(" ")[0] for y in total.y], total.x))["S08"] == 27
    # unfiltered: as before, the count and its % of target (27 / 40 = 67.5% -> "68%")
    fig, texts, note = _card(latest, "")
    assert texts["S08"] == "27 (68%)"
    assert not any(t.name == "Enrolled in total" for t in fig.data)


def test_sponsor_sees_both_counts_suppressed(latest):
    sponsor = scope_for(User("sponsor", "sponsor"))
    rows = exports.run_export("enrollment", latest, Filters(bclc=("C",)), sponsor).rows.set_index("site_id")
    assert rows.loc["S08", "n_enrolled"] == SUPPRESSED and rows.loc["S08", "enrolled_total"] == 27
    # every count from 1 to 4, in either column, is "<5"
    filtered, total = pandas_counts(latest, bclc_stage=["C"]), pandas_counts(latest)
    for site, r in rows.iterrows():
        for shown, n in ((r["n_enrolled"], int(filtered.get(site, 0))), (r["enrolled_total"], int(total.get(site, 0)))):
            assert shown == (SUPPRESSED if 1 <= n <= 4 else n)
    small = exports.run_export("enrollment", latest, Filters(bclc=("A",), sex=("F",)), sponsor).rows
    assert (small["n_enrolled"] == SUPPRESSED).any()


def test_investigator_totals_are_of_own_sites(latest):
    investigator = scope_for(User("investigator", "investigator", ("S01",)), ("S01",))
    rows = exports.run_export("enrollment", latest, Filters(site=("S01",), bclc=("C",)), investigator).rows
    assert rows[["site_id", "n_enrolled", "enrolled_total"]].values.tolist() == \
        [["S01", int(pandas_counts(latest, bclc_stage=["C"])["S01"]), int(pandas_counts(latest)["S01"])]]


# --- cumulative accrual under a filter: the light "Enrolled in total" line (issue 19, item 6) ---------------------
def pandas_cumulative(snapshot, months, site=None, **where) -> list[int]:
    """Patients enrolled (first DEB-TACE on or before the cut-off) by the end of each month, read with pandas from
    patients.parquet; `site` one site id or every site, `where` column=values."""
    patients = pd.read_parquet(snapshot.path / "patients.parquet")
    first = pd.to_datetime(patients["first_treatment_date"])
    keep = first <= pd.Timestamp(snapshot.cutoff_date)
    if site is not None:
        keep &= patients["site_id"] == site
    for column, values in where.items():
        keep &= patients[column].isin(values)
    month_of = first[keep].dt.to_period("M").dt.to_timestamp()
    return [int((month_of <= pd.Timestamp(m)).sum()) for m in months]


def _accrual_card(latest, query, mode="pooled"):
    return cb.accrual_card({"snapshot": latest.snapshot_id, "query": query}, mode)


@pytest.mark.parametrize("site", ["all", "S08"])
def test_accrual_total_equals_pandas_under_bclc_c(latest, site):
    exp = exports.run_export("accrual", latest, Filters(bclc=("C",)))
    assert exp.extra["subgroup"] is True
    assert list(exp.rows.columns) == ["site_id", "site_name", "month", "n_enrolled", "cum_enrolled",
                                      "target_enrollment", "cumulative_total"]
    rows = exp.rows[exp.rows.site_id == site]
    one = None if site == "all" else site
    assert rows["cumulative_total"].tolist() == pandas_cumulative(latest, rows.month, one)
    assert rows["cum_enrolled"].tolist() == pandas_cumulative(latest, rows.month, one, bclc_stage=["C"])
    # the issue's example: 240 BCLC C patients against a target of 600 (sites.parquet), every patient beside them
    if site == "all":
        assert (rows["cum_enrolled"].iloc[-1], rows["target_enrollment"].iloc[-1]) \
            == (240, pd.read_parquet(latest.path / "sites.parquet")["target_enrollment"].sum()) == (240, 600)
        assert rows["cumulative_total"].iloc[-1] > 240


def test_accrual_card_draws_the_total_line_under_bclc_c_pooled_and_per_site(latest, synthetic_root, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    fig, _, _, note = _accrual_card(latest, "bclc=C")
    total = next(t for t in fig.data if t.name == "Enrolled in total")
    months = pd.to_datetime(pd.Series(total.x))
    assert list(total.y) == pandas_cumulative(latest, months)
    assert [t.name for t in fig.data] == ["Enrolled (cumulative)", "Enrolled in total", "Target (sum of sites)"]
    assert "dark: patients in the filter; light: every patient enrolled" in note and "target 600" in note
    fig, _, _, _ = _accrual_card(latest, "bclc=C", "site")
    s08 = next(t for t in fig.data if t.name == "Enrolled in total" and t.legendgroup == "S08")
    assert list(s08.y) == pandas_cumulative(latest, pd.to_datetime(pd.Series(s08.x)), "S08")
    assert sum(t.name == "Enrolled in total" for t in fig.data) == len(pd.read_parquet(latest.path / "sites.parquet"))


@pytest.mark.parametrize("query", ["", "site=S02,S08"])
def test_accrual_without_a_subgroup_filter_has_no_total_line(latest, synthetic_root, monkeypatch, query):
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))
    for mode in ("pooled", "site"):
        fig, _, _, note = _accrual_card(latest, query, mode)
        assert fig.data and not any(t.name == "Enrolled in total" for t in fig.data)
        assert "light:" not in note
    filters = Filters(site=("S02", "S08")) if query else Filters()
    exp = exports.run_export("accrual", latest, filters)
    assert exp.extra["subgroup"] is False
    assert exp.rows["cumulative_total"].tolist() == exp.rows["cum_enrolled"].tolist()


def test_accrual_total_is_suppressed_for_a_sponsor_as_the_filtered_counts(latest, synthetic_root, monkeypatch):
    sponsor = scope_for(User("sponsor", "sponsor"))
    filters = Filters(bclc=("C",))
    full = exports.run_export("accrual", latest, filters).rows
    shown = exports.compute_export("accrual", latest, filters, sponsor).rows
    small = full["cumulative_total"].between(1, 4)
    assert small.any()                                   # early months of single sites: the test can tell
    assert (shown["cumulative_total"][small] == SUPPRESSED).all()
    assert (shown["cumulative_total"][~small] == full["cumulative_total"][~small]).all()
