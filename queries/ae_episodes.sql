-- One row per adverse-event episode (CTCAE v4.0) of a patient in `cohort` that passes the Safety page's episode
-- filters, with the DEB-TACE session it followed and the days from that session to its onset.
-- The session an episode followed is its recorded session_number; an episode recorded without one is attributed to
-- the patient's latest session on or before its onset (no such session: no session, days_from_session null).
-- Episode filters arrive as DuckDB variables bound by the data seam (dashboard/data.py, `variables=`), NULL = no
-- restriction: ae_related_only (treatment-related episodes only), ae_serious_only (serious episodes only),
-- ae_within_days N (onset 0 to N days after the session it followed; episodes with no session are then left out).
-- The filters choose WHICH EPISODES count; worst grades are taken afterwards (ae_worst_grade).
with episodes as (
    select
        a.*,
        c.site_id,
        c.bclc_stage,
        c.child_pugh_class
    from stg_adverse_events a
    join cohort c using (patient_id)
),

attributed as (
    select
        e.*,
        coalesce(e.session_number, latest.session_number) as attributed_session_number
    from episodes e
    asof left join stg_treatments latest
        on latest.patient_id = e.patient_id and e.onset_date >= latest.treatment_date
),

with_days as (
    select
        a.patient_id, a.ae_id, a.site_id, a.bclc_stage, a.child_pugh_class,
        a.soc, a.term, a.grade, a.onset_date, a.resolution_date,
        a.is_serious, a.is_treatment_related,
        a.session_number,
        a.attributed_session_number,
        t.treatment_date as session_date,
        (a.onset_date - t.treatment_date)::integer as days_from_session
    from attributed a
    left join stg_treatments t
        on t.patient_id = a.patient_id and t.session_number = a.attributed_session_number
),

final as (
    select *
    from with_days
    where (getvariable('ae_related_only') is null or not getvariable('ae_related_only') or is_treatment_related)
      and (getvariable('ae_serious_only') is null or not getvariable('ae_serious_only') or is_serious)
      and (getvariable('ae_within_days') is null
           or days_from_session between 0 and getvariable('ae_within_days'))
)

select * from final
