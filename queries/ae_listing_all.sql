-- One row per adverse-event episode (CTCAE v4.0) of the snapshot, with the patient's latest DEB-TACE session on or
-- before the episode's onset (whatever session the episode was recorded against) and the days from it to the onset.
-- Materialized once per snapshot: every episode, no filter, no scope (none of them changes these values); `ae_listing`
-- keeps the episodes of the patients in the current filter and scope.
-- No session on or before onset: last_session_number, last_session_date and days_since_last_session are null.
with with_last as (
    select
        e.patient_id, e.ae_id,
        e.soc, e.term, e.grade, e.is_serious, e.is_treatment_related,
        e.onset_date, e.resolution_date, e.session_number,
        t.session_number as last_session_number,
        t.treatment_date as last_session_date
    from stg_adverse_events e
    asof left join stg_treatments t
        on t.patient_id = e.patient_id and e.onset_date >= t.treatment_date
),

final as (
    select
        *,
        (onset_date - last_session_date)::integer as days_since_last_session
    from with_last
)

select * from final
