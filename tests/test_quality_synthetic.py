"""The data-quality export on the built-in synthetic registry (the latest cut and an early one): for every
rule the validator shares, the export's rows equal the validator's warning count; the page's own rules
are counted again in the test with pandas straight from the parquet files (independent of the SQL)."""
from __future__ import annotations

import pandas as pd
import pytest

from dashboard import data, exports
from dashboard.filters import Filters
from dashboard.quality import RULES, validator_rules

RESTAGING = "restaging missing at 6 months"
NO_CONTACT = "no contact for more than 120 days before the cut-off while alive and on study"
NOT_MEASURED = "target lesion not measured at a scan"


@pytest.fixture(scope="module", params=["latest", "2023-12-31"])
def cut(request, synthetic_root):
    snapshot = data.resolve(request.param, synthetic_root)
    read = lambda t: pd.read_parquet(snapshot.table_path(t))      # noqa: E731
    return snapshot, exports.compute_export("data-quality", snapshot, Filters()), read


def test_shared_rules_count_what_the_validator_counts(cut):
    snapshot, exp, _ = cut
    warnings = {(f.table, f.rule, f.column): f.count for f in data.report_for(snapshot).warnings}
    shared = validator_rules()
    assert len(shared) == 12
    for r in shared:
        rows = int(((exp.rows.table == r.table) & (exp.rows.rule == r.label)).sum())
        assert rows == warnings.get((r.table, r.rule, r.column), 0), r.label
    # the registry makes some of them: the comparison is not only of zeros
    assert sum(warnings.get((r.table, r.rule, r.column), 0) for r in shared) > 0


def test_restaging_no_contact_and_unmeasured_counted_with_pandas(cut):
    snapshot, exp, read = cut
    p, staging = read("patients"), read("staging")
    day = lambda col: (pd.to_datetime(p[col]) - pd.to_datetime(p.first_treatment_date)).dt.days   # noqa: E731
    late_review = staging.merge(p[["patient_id", "first_treatment_date"]], on="patient_id")
    late_review = set(late_review.loc[(pd.to_datetime(late_review.review_date)
                                       - pd.to_datetime(late_review.first_treatment_date)).dt.days >= 152, "patient_id"])
    restage = p[(day("last_known_alive_date") > 182) & (p.off_study_date.isna() | (day("off_study_date") > 182))
                & ~p.patient_id.isin(late_review)]
    assert set(exp.rows.loc[exp.rows.rule == RESTAGING, "patient_id"]) == set(restage.patient_id)
    assert len(restage) > 0

    cutoff = pd.Timestamp(snapshot.cutoff_date)
    on_study = p.death_date.isna() & p.off_study_date.isna() & p.off_study_reason.isna()
    silent = p[on_study & ((cutoff - pd.to_datetime(p.last_known_alive_date)).dt.days > 120)]
    assert set(exp.rows.loc[exp.rows.rule == NO_CONTACT, "patient_id"]) == set(silent.patient_id)

    m, lesions = read("lesion_measurements"), read("lesions")
    target = m.merge(lesions[lesions.is_target], on=["patient_id", "lesion_id"])
    assert (exp.rows.rule == NOT_MEASURED).sum() == target.viable_diameter_mm.isna().sum()


def test_every_row_names_a_rule_and_the_patients_site(cut):
    _, exp, read = cut
    assert set(zip(exp.rows.table, exp.rows.rule)) <= {(r.table, r.label) for r in RULES}
    site = read("patients").set_index("patient_id").site_id
    assert (exp.rows.site_id == exp.rows.patient_id.map(site)).all()
    assert exp.rows.detail.str.len().gt(0).all()
