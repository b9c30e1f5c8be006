-- One row per adverse-event episode (CTCAE v4.0) of a patient in `cohort`, with the patient's site and the latest
-- DEB-TACE session on or before the episode's onset (whatever session the episode was recorded against).
-- days_since_last_session = onset_date - that session's date; no session on or before onset: last_session_number,
-- last_session_date and days_since_last_session are null. session_number is the session the episode was recorded
-- against (null when none was recorded). The `ae-listing` export selects the serious safety signals from it.
with episodes as (
    select
        e.patient_id, e.ae_id, c.site_id,
        e.soc, e.term, e.grade, e.is_serious, e.is_treatment_related,
        e.onset_date, e.resolution_date, e.session_number
    from stg_adverse_events e
    join cohort c using (patient_id)
),

with_last as (
    select
        e.*,
        t.session_number as last_session_number,
        t.treatment_date as last_session_date
    from episodes e
    asof left join stg_treatments t
        on t.patient_id = e.patient_id and e.onset_date >= t.treatment_date
),

final as (
    select
        patient_id, ae_id, site_id, soc, term, grade, is_serious, is_treatment_related,
        onset_date, resolution_date, session_number,
        last_session_number, last_session_date,
        (onset_date - last_session_date)::integer as days_since_last_session
    from with_last
)

select * from final
