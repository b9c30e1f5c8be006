-- One row per adverse-event episode (CTCAE v4.0) of a patient in `cohort` that passes the Safety page's episode
-- filters, with the DEB-TACE session it followed and the days from that session to its onset.
-- The session an episode followed is its recorded session_number; an episode recorded without one is attributed to
-- the patient's latest session on or before its onset (no such session: no session, days_from_session null). The
-- attribution does not depend on the filters: it is made once per snapshot, in ae_episodes_all.
-- Episode filters arrive as DuckDB variables bound by the data seam (dashboard/data.py, `variables=`), NULL = no
-- restriction: ae_related_only (treatment-related episodes only), ae_serious_only (serious episodes only),
-- ae_within_days N (onset 0 to N days after the session it followed; episodes with no session are then left out).
-- The filters choose WHICH EPISODES count; worst grades are taken afterwards (ae_worst_grade, the ae-incidence export).
with episodes as (
    select
        e.patient_id, e.ae_id,
        c.site_id, c.bclc_stage, c.child_pugh_class,
        e.soc, e.term, e.grade, e.onset_date, e.resolution_date,
        e.is_serious, e.is_treatment_related,
        e.session_number,
        e.attributed_session_number,
        e.session_date,
        e.days_from_session,
        c.etiology_group, c.sex, c.ecog_group, c.afp_group, c.tumor_size_group, c.drug,
        c.age_group, c.up_to_seven_group,
        e.patient_key, e.soc_key, e.term_key
    from ae_episodes_all e
    join cohort c using (patient_id)
),

final as (
    select *
    from episodes
    where (getvariable('ae_related_only') is null or not getvariable('ae_related_only') or is_treatment_related)
      and (getvariable('ae_serious_only') is null or not getvariable('ae_serious_only') or is_serious)
      and (getvariable('ae_within_days') is null
           or days_from_session between 0 and getvariable('ae_within_days'))
)

select * from final
