-- One row per adverse-event episode (CTCAE v4.0) of a patient in `cohort`, with the patient's site and the latest
-- DEB-TACE session on or before the episode's onset (from ae_listing_all, computed once per snapshot).
-- days_since_last_session = onset_date - that session's date; null when no session is on or before the onset.
-- session_number is the session the episode was recorded against (null when none was recorded).
-- The `ae-listing` export selects the serious safety signals from it.
with final as (
    select
        e.patient_id, e.ae_id, c.site_id,
        e.soc, e.term, e.grade, e.is_serious, e.is_treatment_related,
        e.onset_date, e.resolution_date, e.session_number,
        e.last_session_number, e.last_session_date, e.days_since_last_session
    from ae_listing_all e
    join cohort c using (patient_id)
)

select * from final
