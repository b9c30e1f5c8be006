-- One row per patient in the current filter and site scope, with baseline fields and derived grouping fields.
-- Every analysis view reads patients through this view: it is the one place filters and scope apply.
-- Filter values arrive as DuckDB variables bound by the data seam (dashboard/data.py), never as SQL text.
-- A value the source did not record is the filter value 'unknown': a filter on a field keeps such patients only when
-- 'unknown' is among the chosen values, and no filter on the field keeps everyone.
-- The rows of cohort_all (joins and derived fields computed once per snapshot) that pass the filters and scope.
with final as (
    select p.*
    from cohort_all p
    where (getvariable('scope_sites') is null or list_contains(getvariable('scope_sites'), p.site_id))
      and (getvariable('f_site') is null or list_contains(getvariable('f_site'), p.site_id))
      and (getvariable('f_bclc') is null or list_contains(getvariable('f_bclc'), coalesce(p.bclc_stage, 'unknown')))
      and (getvariable('f_child_pugh') is null
           or list_contains(getvariable('f_child_pugh'), coalesce(p.child_pugh_class, 'unknown')))
      and (getvariable('f_etiology') is null or list_contains(getvariable('f_etiology'), p.etiology_group))
      and (getvariable('f_sex') is null or list_contains(getvariable('f_sex'), p.sex))
      and (getvariable('f_ecog') is null or list_contains(getvariable('f_ecog'), p.ecog_group))
      and (getvariable('f_age_min') is null or p.age_years >= getvariable('f_age_min'))
      and (getvariable('f_age_max') is null or p.age_years <= getvariable('f_age_max'))
      and (getvariable('f_enrolled_from') is null or p.first_treatment_date >= getvariable('f_enrolled_from'))
      and (getvariable('f_enrolled_to') is null or p.first_treatment_date <= getvariable('f_enrolled_to'))
)

select * from final
