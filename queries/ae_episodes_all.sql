-- One row per adverse-event episode (CTCAE v4.0) of the snapshot, with the DEB-TACE session it followed, the days
-- from that session to its onset, and integer codes of its patient, system organ class and term.
-- Materialized once per snapshot: every episode, no filter, no scope and no episode option (none of them changes these
-- values); `ae_episodes` keeps the episodes of the patients in the current filter and scope that pass the options.
-- The session an episode followed is its recorded session_number; an episode recorded without one is attributed to
-- the patient's latest session on or before its onset (no such session: no session, days_from_session null).
-- patient_key numbers the patients of stg_patients by patient_id, soc_key the system organ classes by name and
-- term_key the (soc, term) pairs by name: the ae-incidence export takes worst grades by these integers (faster to
-- group by than the names, and one to one with them).
with attributed as (
    select
        a.*,
        coalesce(a.session_number, latest.session_number) as attributed_session_number
    from stg_adverse_events a
    asof left join stg_treatments latest
        on latest.patient_id = a.patient_id and a.onset_date >= latest.treatment_date
),

with_days as (
    select
        a.patient_id, a.ae_id,
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

patient_keys as (
    select patient_id, row_number() over (order by patient_id)::integer as patient_key
    from stg_patients
),

term_keys as (
    select
        soc, term,
        dense_rank() over (order by soc)::integer as soc_key,
        row_number() over (order by soc, term)::integer as term_key
    from (select distinct soc, term from stg_adverse_events)
),

final as (
    select w.*, p.patient_key, k.soc_key, k.term_key
    from with_days w
    join patient_keys p using (patient_id)
    join term_keys k using (soc, term)
)

select * from final
