-- One row per patient in the current filter and site scope, with baseline fields and derived grouping fields.
-- Every analysis view reads patients through this view: it is the one place filters and scope apply.
-- Filter values arrive as DuckDB variables bound by the data seam (dashboard/data.py), never as SQL text.
with first_session as (
    select patient_id, drug, microsphere_size
    from stg_treatments
    where session_number = 1
),

filtered as (
    select p.*
    from stg_patients p
    where p.first_treatment_date <= snapshot_cutoff()
      and (getvariable('scope_sites') is null or list_contains(getvariable('scope_sites'), p.site_id))
      and (getvariable('f_site') is null or list_contains(getvariable('f_site'), p.site_id))
      and (getvariable('f_bclc') is null or list_contains(getvariable('f_bclc'), p.bclc_stage))
      and (getvariable('f_child_pugh') is null or list_contains(getvariable('f_child_pugh'), p.child_pugh_class))
      and (getvariable('f_etiology') is null or list_contains(getvariable('f_etiology'), coalesce(p.etiology, 'unknown')))
      and (getvariable('f_sex') is null or list_contains(getvariable('f_sex'), p.sex))
      and (getvariable('f_ecog') is null or list_contains(getvariable('f_ecog'), p.ecog_ps))
      and (getvariable('f_age_min') is null or p.age_years >= getvariable('f_age_min'))
      and (getvariable('f_age_max') is null or p.age_years <= getvariable('f_age_max'))
      and (getvariable('f_enrolled_from') is null or p.first_treatment_date >= getvariable('f_enrolled_from'))
      and (getvariable('f_enrolled_to') is null or p.first_treatment_date <= getvariable('f_enrolled_to'))
),

final as (
    select
        f.*,
        s.site_name,
        date_trunc('month', f.first_treatment_date)::date as enrollment_month,
        case when f.afp_ng_ml is null then 'unknown'
             when f.afp_ng_ml > 400 then '> 400' else '<= 400' end as afp_group,
        case when f.largest_tumor_cm > 7 then '> 7 cm' else '<= 7 cm' end as tumor_size_group,
        coalesce(f.etiology, 'unknown') as etiology_group,
        cast(f.ecog_ps as varchar) as ecog_group,
        fs.drug,
        fs.microsphere_size
    from filtered f
    join stg_sites s using (site_id)
    left join first_session fs using (patient_id)
)

select * from final
