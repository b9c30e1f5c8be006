"""Query views on the hand-written mini registry (tests/fixtures.py), answers worked out by hand,
plus dbt-style contracts (unique keys, not null, accepted values) on every analysis view."""
import datetime as dt

import pandas as pd
import pytest

from dashboard import data
from dashboard.filters import Filters


def q(snapshot, view, **filters):
    return data.query(view, snapshot, Filters(**filters))


def endpoint(snapshot, pid, ep):
    df = q(snapshot, "patient_endpoints")
    row = df[(df.patient_id == pid) & (df.endpoint == ep)].iloc[0]
    return int(row.time_days), bool(row.is_event)


def test_os_time_is_days_from_first_treatment_to_death_or_last_alive(mini_snapshot):
    # P1: first DEB-TACE 2024-01-10, died 2024-07-10 -> 182 days, event (hand count: 21+29+31+30+31+30+10)
    assert endpoint(mini_snapshot, "P1", "os") == (182, True)
    # P2: alive, last known alive 2024-12-31, first treatment 2024-02-01 -> 334 days, censored
    assert endpoint(mini_snapshot, "P2", "os") == (334, False)


def test_ttp_event_is_first_pd_scan_and_censoring_is_last_scan(mini_snapshot):
    assert endpoint(mini_snapshot, "P1", "ttp") == (101, True)     # PD at M3 2024-04-20
    assert endpoint(mini_snapshot, "P3", "ttp") == (40, False)     # CR, last scan 2024-04-10
    # P4 died with no post-baseline scan: TTP censored at day 0, PFS an event at death (31 days)
    assert endpoint(mini_snapshot, "P4", "ttp") == (0, False)
    assert endpoint(mini_snapshot, "P4", "pfs") == (31, True)
    # P1: PD on 2024-04-20 (day 101), died 2024-07-10 (day 182): PFS is the earlier, the PD
    assert endpoint(mini_snapshot, "P1", "pfs") == (101, True)


def test_local_ttp_uses_local_response(mini_snapshot):
    # P1's overall PD at M3 is driven by the untreated lesion: locally SD, no local PD
    assert endpoint(mini_snapshot, "P1", "local_ttp") == (157, False)
    assert endpoint(mini_snapshot, "P2", "local_ttp") == (165, True)


def test_tumour_burden_sum_percent_change_and_nadir(mini_snapshot):
    tb = q(mini_snapshot, "tumour_burden").set_index(["scope", "patient_id", "visit"])
    p2 = tb.loc[("overall", "P2")]
    assert list(p2.sort_values("imaging_date").sum_mm) == [40, 36, 30, 37]
    assert list(p2.sort_values("imaging_date").nadir_mm) == [40, 36, 30, 30]
    assert p2.loc["M5", "pct_change"] == pytest.approx(-7.5)          # 100 * (37 - 40) / 40
    # a target lesion unmeasured at a visit leaves that visit without a sum
    assert pd.isna(tb.loc[("overall", "P5", "M1"), "sum_mm"])
    # local scope: treated target lesions only (P1's L1, 30 mm at baseline)
    assert tb.loc[("local", "P1", "baseline"), "sum_mm"] == 30


def test_best_response_and_waterfall_value(mini_snapshot):
    br = q(mini_snapshot, "best_response").set_index(["scope", "patient_id"])
    # P1: PR (-40%) then PD; the -80% after the PD does not count
    assert br.loc[("overall", "P1"), "bor"] == "PR"
    assert br.loc[("overall", "P1"), "best_pct_change"] == pytest.approx(-40.0)
    assert br.loc[("overall", "P1"), "best_visit"] == "M1"
    # P2: PD from the nadir (+23%) while still 7.5% below baseline; best change -25% at M3
    assert br.loc[("overall", "P2"), "best_pct_change"] == pytest.approx(-25.0)
    assert br.loc[("overall", "P2"), "bor"] == "SD"
    # P3: CR shows as -100%
    assert br.loc[("overall", "P3"), "best_pct_change"] == pytest.approx(-100.0)
    assert br.loc[("overall", "P3"), "bor"] == "CR"
    # P4: no follow-up scan -> NE, not evaluable
    assert br.loc[("overall", "P4"), "bor"] == "NE"
    assert br.loc[("overall", "P4"), "not_evaluable_reason"] == "no follow-up scan"
    # P5: scanned but a lesion unmeasured -> recorded SD, no waterfall bar
    assert br.loc[("overall", "P5"), "not_evaluable_reason"] == "no post-baseline sum"
    # local differs from overall for P1: no local PD, best local change at M5 = 100*(5-30)/30
    assert br.loc[("local", "P1"), "best_pct_change"] == pytest.approx(-250 / 3)


def test_ae_worst_grade_per_patient_and_term(mini_snapshot):
    ae = q(mini_snapshot, "ae_worst_grade").set_index(["patient_id", "term"])
    # P1 had Fever grade 1 and grade 3: counted once, at grade 3
    assert ae.loc[("P1", "Fever"), "worst_grade"] == 3
    assert ae.loc[("P1", "Fever"), "n_episodes"] == 2
    assert bool(ae.loc[("P1", "Fever"), "any_serious"])
    assert len(ae) == 4


def test_staging_outcomes(mini_snapshot):
    st = q(mini_snapshot, "staging_outcomes").set_index("patient_id")
    # P1 downstaged at the first review, then back out: counts as downstaged, best stage A
    assert st.loc["P1", "best_bclc_stage"] == "A"
    assert bool(st.loc["P1", "is_downstaged_to_milan"])
    assert st.loc["P4", "restaging_status"] == "died before restaging"
    assert st.loc["P5", "restaging_status"] == "not yet restaged"
    assert bool(st.loc["P2", "is_converted_to_resectable"])
    # P3 (within Milan at baseline) was never restaged: not downstaged for lack of a review; the
    # baseline-Milan rule itself is tested on the varied registry (tests/test_mutants_views.py)
    assert st.loc["P3", "restaging_status"] == "not yet restaged"
    assert not bool(st.loc["P3", "is_downstaged_to_milan"])


def test_enrollment_and_accrual(mini_snapshot):
    en = q(mini_snapshot, "enrollment").set_index("site_id")
    assert en.loc["S01", "n_enrolled"] == 3 and en.loc["S02", "n_enrolled"] == 2
    assert en.loc["S01", "first_enrollment_date"].date() == dt.date(2024, 1, 10)
    acc = q(mini_snapshot, "accrual_monthly")
    last = acc[acc.month == acc.month.max()].set_index("site_id")
    assert last.loc["S01", "cum_enrolled"] == 3 and last.loc["S02", "cum_enrolled"] == 2
    assert acc.month.min().date() == dt.date(2024, 1, 1) and acc.month.max().date() == dt.date(2024, 12, 1)


def test_filters_apply_to_every_view(mini_snapshot):
    assert set(q(mini_snapshot, "cohort", bclc=("C",)).patient_id) == {"P2", "P4"}
    assert set(q(mini_snapshot, "patient_endpoints", site=("S02",)).patient_id) == {"P3", "P4"}
    assert set(q(mini_snapshot, "cohort", etiology=("unknown",)).patient_id) == {"P2"}
    assert set(q(mini_snapshot, "cohort", sex=("F",)).patient_id) == {"P2"}
    assert set(q(mini_snapshot, "cohort", enrolled_from=dt.date(2024, 3, 1),
                 enrolled_to=dt.date(2024, 5, 1)).patient_id) == {"P3", "P4"}
    en = q(mini_snapshot, "enrollment", site=("S02",))
    assert list(en.site_id) == ["S02"]


# --- dbt-style contracts on every view ---------------------------------------------------------
GRAIN = {
    # staging views: the snapshot contract's keys (dashboard/contract.py), enforced by the validator
    "stg_sites": ["site_id"],
    "stg_patients": ["patient_id"],
    "stg_treatments": ["patient_id", "session_number"],
    "stg_lesions": ["patient_id", "lesion_id"],
    "stg_imaging": ["patient_id", "visit"],
    "stg_lesion_measurements": ["patient_id", "lesion_id", "visit"],
    "stg_staging": ["patient_id", "visit"],
    "stg_adverse_events": ["patient_id", "ae_id"],
    "cohort": ["patient_id"],
    "sites_in_scope": ["site_id"],
    "enrollment": ["site_id"],
    "accrual_monthly": ["site_id", "month"],
    "patient_endpoints": ["patient_id", "endpoint"],
    "patient_summary": ["patient_id"],
    "tumour_burden": ["scope", "patient_id", "visit"],
    "tumour_burden_all": ["scope", "patient_id", "visit"],
    "best_response": ["scope", "patient_id"],
    "best_response_all": ["scope", "patient_id"],
    "spider_points": ["scope", "patient_id", "visit"],
    "spider_points_all": ["scope", "patient_id", "visit"],
    "response_consistency": ["scope", "patient_id", "visit"],
    "response_consistency_all": ["scope", "patient_id", "visit"],
    # one mark per session (session_number), scan (visit), first PD and lane end; those two
    # columns are null on the other marks, so the non-null event_date stands in for them
    "swimmer_events": ["scope", "patient_id", "event", "event_date"],
    "ae_episodes": ["patient_id", "ae_id"],
    "ae_episodes_all": ["patient_id", "ae_id"],
    "cohort_all": ["patient_id"],
    "patient_endpoints_all": ["patient_id", "endpoint"],
    "staging_outcomes_all": ["patient_id"],
    "downsizing_all": ["patient_id"],
    # a term filed under two SOCs (a validator warning, not an error) gives one row per SOC
    "ae_worst_grade": ["patient_id", "soc", "term"],
    "staging_outcomes": ["patient_id"],
    "staging_flow": ["patient_id", "measure"],
    "time_to_downstaging": ["patient_id"],
    "downsizing": ["patient_id"],
}
RESPONSES = {"CR", "PR", "SD", "PD", "NE"}
SCOPES = {"overall", "local"}
GRADES = {1, 2, 3, 4, 5}
# nullable code lists include None (a missing value is not a code outside the list)
ACCEPTED = {
    ("best_response", "bor"): RESPONSES,
    ("ae_worst_grade_all", "worst_grade"): GRADES,
    ("best_response", "scope"): SCOPES,
    ("best_response", "not_evaluable_reason"): {None, "no baseline sum", "no follow-up scan", "no post-baseline sum"},
    ("patient_endpoints", "endpoint"): {"os", "ttp", "pfs", "local_ttp"},
    ("tumour_burden", "scope"): SCOPES,
    ("tumour_burden", "response"): RESPONSES | {None},
    ("spider_points", "scope"): SCOPES,
    ("spider_points", "bor"): RESPONSES,
    ("spider_points", "response"): RESPONSES | {None},
    ("swimmer_events", "scope"): SCOPES,
    ("swimmer_events", "bor"): RESPONSES,
    ("swimmer_events", "event"): {"session", "scan", "first_pd", "death", "last_contact"},
    ("swimmer_events", "end_status"): {"died", "off study", "alive on study"},
    ("swimmer_events", "response"): RESPONSES | {None},
    ("response_consistency", "scope"): SCOPES,
    ("response_consistency", "recorded"): RESPONSES | {None},
    ("response_consistency", "implied"): {"CR", "PR", "SD", "PD"},
    ("ae_episodes", "grade"): GRADES,
    ("ae_worst_grade", "worst_grade"): GRADES,
    ("staging_outcomes", "restaging_status"): {"restaged", "died before restaging", "not yet restaged"},
    ("staging_flow", "measure"): {"bclc", "milan", "resectable"},
    ("staging_flow", "source"): {"BCLC 0", "BCLC A", "BCLC B", "BCLC C", "BCLC D", "within Milan", "outside Milan",
                                 "resectable", "not resectable"},
    ("staging_flow", "target"): {"BCLC 0", "BCLC A", "BCLC B", "BCLC C", "BCLC D", "within Milan", "outside Milan",
                                 "resectable", "not resectable", "died before restaging", "not yet restaged"},
    ("time_to_downstaging", "status"): {0, 1, 2},
    ("time_to_downstaging", "outcome"): {"within Milan", "died", "censored"},
    ("downsizing", "not_evaluable_reason"): {None, "no baseline target diameter", "no follow-up measurement"},
}


def check_contracts(snapshot):
    for view, key in GRAIN.items():
        df = data.query(view, snapshot)
        assert not df.duplicated(key).any(), f"{view}: key {key} not unique"
        assert df[key].notna().all().all(), f"{view}: key {key} has nulls"
    for (view, col), allowed in ACCEPTED.items():
        assert set(data.query(view, snapshot)[col].unique()) <= allowed
    ep = data.query("patient_endpoints", snapshot)
    assert (ep.time_days >= 0).all(), "negative survival time"
    n = len(data.query("cohort", snapshot))
    assert len(ep) == 4 * n and len(data.query("best_response", snapshot)) == 2 * n


def test_view_contracts_on_mini_registry(mini_snapshot):
    check_contracts(mini_snapshot)


def test_view_contracts_on_synthetic_registry(synthetic_root):
    check_contracts(data.resolve("latest", synthetic_root))


def test_every_view_file_opens_with_its_grain_and_ends_with_final():
    for name, sql in data.view_files().items():
        assert sql.startswith("-- One row per"), f"queries/{name}.sql must open with its grain"
        assert sql.rstrip().endswith("select * from final"), f"queries/{name}.sql must end with select * from final"
