-- One row per patient per fact that the "what changed" comparison of two data cuts looks for, for the patients in `cohort`:
-- enrolled (date: first treatment), death (death_date), progression (the TTP event of patient_endpoints: first PD),
-- grade3plus_ae (one row per adverse event of grade >= 3, key ae_id, date: onset) and downstaged (downstaged to Milan as
-- staging_outcomes defines it, date: the first review within Milan). `key` tells a patient's facts of one kind apart
-- (the ae_id; '' otherwise). A fact of the current cut without the same (patient_id, kind, key) in the previous cut is new.
with facts as (
    select c.patient_id, c.site_id, 'enrolled' as kind, '' as key, c.first_treatment_date as date
    from cohort c
    union all
    select c.patient_id, c.site_id, 'death', '', c.death_date
    from cohort c
    where c.death_date is not null
    union all
    select e.patient_id, c.site_id, 'progression', '', e.end_date
    from patient_endpoints e
    join cohort c using (patient_id)
    where e.endpoint = 'ttp' and e.is_event
    union all
    select a.patient_id, c.site_id, 'grade3plus_ae', cast(a.ae_id as varchar), a.onset_date
    from stg_adverse_events a
    join cohort c using (patient_id)
    where a.grade >= 3
    union all
    select s.patient_id, c.site_id, 'downstaged', '', s.first_within_milan_date
    from staging_outcomes s
    join cohort c using (patient_id)
    where s.is_downstaged_to_milan
),

final as (
    select patient_id, site_id, kind, key, date
    from facts
)

select * from final
