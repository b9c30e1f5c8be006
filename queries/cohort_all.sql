-- One row per patient enrolled by the cut-off (every patient: no filter, no scope), with baseline fields and derived grouping fields.
-- A grouping field is 'unknown' where the source did not record the value it derives from (never a guessed group).
-- Materialized once per snapshot: the joins and derived fields are computed once; `cohort` applies the filters and scope.
with first_session as (
    select patient_id, drug, microsphere_size
    from stg_treatments
    where session_number = 1
),

final as (
    select
        p.*,
        s.site_name,
        date_trunc('month', p.first_treatment_date)::date as enrollment_month,
        case when p.afp_ng_ml is null then 'unknown'
             when p.afp_ng_ml > 400 then '> 400' else '<= 400' end as afp_group,
        case when p.largest_tumor_cm is null then 'unknown'
             when p.largest_tumor_cm > 7 then '> 7 cm' else '<= 7 cm' end as tumor_size_group,
        case when p.age_years is null then 'unknown'
             when p.age_years >= 65 then '>= 65' else '< 65' end as age_group,
        case when p.is_within_up_to_seven is null then 'unknown'
             when p.is_within_up_to_seven then 'within' else 'beyond' end as up_to_seven_group,
        coalesce(p.etiology, 'unknown') as etiology_group,
        coalesce(cast(p.ecog_ps as varchar), 'unknown') as ecog_group,
        fs.drug,
        fs.microsphere_size
    from stg_patients p
    join stg_sites s using (site_id)
    left join first_session fs using (patient_id)
    where p.first_treatment_date <= snapshot_cutoff()
)

select * from final
