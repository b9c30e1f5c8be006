"""Patient record exports: one patient's baseline, DEB-TACE sessions, scans, adverse events and restaging
reviews (registered with @export), the data of the patient view (/patient/<id>).

Every query reads the patient through `cohort`, so the request's filters and scope apply: a patient outside
them (an investigator's other sites, a site the filter leaves out) has no row. The patient id is bound as a
parameter ($patient_id), never formatted into SQL, and checked by `check_patient_id` before any query.
"""
from __future__ import annotations

import re

from dashboard import data
from dashboard.access import ALL_SITES
from dashboard.exports import PATIENT, Export, export
from dashboard.filters import Filters

PATIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")     # letters, digits, "_", "-", "."; at most 40

IN_COHORT = "patient_id = $patient_id and patient_id in (select patient_id from cohort)"

PART_SQL = {
    # baseline as of the first treatment, and how follow-up ended (death, last contact, off study)
    "baseline": f"""
        select patient_id, site_id, first_treatment_date, age_years, sex, etiology, ecog_ps, bclc_stage,
               child_pugh_class, child_pugh_score, albi_grade, afp_ng_ml, tumor_count, largest_tumor_cm,
               is_within_milan, is_resectable, last_known_alive_date, death_date, off_study_date, off_study_reason
        from stg_patients where {IN_COHORT}""",
    "sessions": f"""
        select patient_id, session_number, treatment_date, drug, dose_mg, microsphere_size, is_superselective
        from stg_treatments where {IN_COHORT} order by session_number""",
    # scans with the overall target sum of viable diameters (null: a target lesion unmeasured, or none) and its
    # % change from baseline, as the response page computes them (tumour_burden_all, scope 'overall')
    "scans": f"""
        select i.patient_id, i.visit, i.imaging_date, i.modality, b.sum_mm, b.pct_change,
               i.overall_response, i.local_response, i.has_new_lesion
        from stg_imaging i
        left join tumour_burden_all b on b.scope = 'overall' and b.patient_id = i.patient_id and b.visit = i.visit
        where i.patient_id = $patient_id and i.patient_id in (select patient_id from cohort)
        order by i.imaging_date, i.visit""",
    "aes": f"""
        select patient_id, ae_id, term, soc, grade, is_serious, is_treatment_related, onset_date, resolution_date,
               session_number
        from stg_adverse_events where {IN_COHORT} order by onset_date, ae_id""",
    "restaging": f"""
        select patient_id, visit, review_date, bclc_stage, is_within_milan, is_within_up_to_seven, is_resectable
        from stg_staging where {IN_COHORT} order by review_date, visit""",
}
PARTS = tuple(PART_SQL)


def check_patient_id(patient_id) -> str | None:
    """The id when it has the form of a patient id (bounded length and characters), else None."""
    if isinstance(patient_id, str) and PATIENT_ID.fullmatch(patient_id):
        return patient_id
    return None


@export("patient-record", "one patient's record (--patient-id ID): --part baseline|sessions|scans|aes|restaging "
                          "(default baseline); no rows when the patient is not in the filter and your sites",
        options=("patient_id", "part"), level=PATIENT)
def patient_record_export(snapshot, filters=Filters(), scope=ALL_SITES, patient_id=None, part="baseline", **_):
    if part not in PART_SQL:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, not {part!r}")
    pid = check_patient_id(patient_id)
    if pid is None:
        raise ValueError("patient_id: 1-40 letters, digits, '_', '-' or '.', starting with a letter or digit")
    rows = data.execute(PART_SQL[part], snapshot, filters, scope, params={"patient_id": pid})
    for column in ("session_number", "grade", "ecog_ps", "child_pugh_score", "tumor_count", "age_years"):
        if column in rows.columns:
            rows[column] = rows[column].astype("Int64")
    n = data.value(f"select count(*) from cohort where {IN_COHORT}", snapshot, filters, scope,
                   params={"patient_id": pid})
    return Export("patient-record", rows, int(n))
